"""Shared fixtures: a tiny random Llama with a character-level tokenizer.

The model is built from a config and the tokenizer with the ``tokenizers``
library, saved to a temporary folder and loaded through the same code path
as any local model (``model=<folder>``), so the suite is fast and offline.
"""

import contextlib
import copy
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
# dtype="auto" means bfloat16 on CPUs with native bf16 (sktag.backbone.cpu_supports_bf16): pin
# float32 so that the suite computes the same on every CPU; bf16 tests set SKTAG_CPU_BF16=1.
os.environ.setdefault("SKTAG_CPU_BF16", "0")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from sktag.testing import make_tiny_model  # noqa: E402
# Tiny models are dominated by threading overhead: one thread is fastest, and
# much faster when the machine is busy.  Integration tests on the real model
# raise it again (see ``real_model_threads``).
torch.set_num_threads(1)

try:  # RDKit is optional: without it, tests that reach a SMILES feature are skipped
    import rdkit  # noqa: E402, F401

    HAVE_RDKIT = True
except ImportError:
    HAVE_RDKIT = False


def _missing_rdkit(exc):
    """The ImportError for RDKit in ``exc`` or its causes, or None."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, ImportError) and (exc.name or "").split(".")[0] == "rdkit":
            return exc
        if "RDKitMissingError:" in str(exc):  # scikit-learn's "All the N fits failed" quotes the traceback
            return exc
        exc = exc.__cause__ or exc.__context__
    return None


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Without RDKit installed, report a test that failed *because* RDKit is missing as skipped."""
    outcome = yield
    if HAVE_RDKIT or call.excinfo is None:
        return
    exc = _missing_rdkit(call.excinfo.value)
    if exc is not None:
        rep = outcome.get_result()
        rep.outcome = "skipped"
        rep.longrepr = (str(item.path), item.location[1] or 0, "Skipped: needs RDKit, which is not installed")


@pytest.fixture(autouse=True)
def own_prefix_store():
    """Every test gets an empty prefix store of its own, so that no test's counts depend on the tests before it."""
    from sktag._forward.prefix_store import prefix_store

    with prefix_store() as store:
        yield store


@pytest.fixture
def real_model_threads():
    """Use up to two threads for a test on the real default model."""
    old = torch.get_num_threads()
    torch.set_num_threads(min(2, os.cpu_count() or 1))
    yield
    torch.set_num_threads(old)

# ------------------------------------------------------------------ tolerances
from sktag.backbone import resolve_device, resolve_dtype  # noqa: E402

#: The dtype the suite's backbones run in with ``dtype="auto"`` on the device ``device="auto"`` picks: float32 on
#: a CPU (the default above), bfloat16 with ``SKTAG_CPU_BF16=1`` on a CPU with native bfloat16, and bfloat16 on a
#: GPU (where the tiny-model suite runs in ``scripts/gpu_check.sh``).
SUITE_DTYPE = resolve_dtype("auto", resolve_device("auto"))


def tol(dtype=None, *, kind="values", scale=1.0):
    """``dict(rtol=..., atol=...)`` for two computations of one quantity that differ only in rounding.

    Another batch composition, left padding, a cached prefix against a full pass, or another CPU's kernels
    (AVX2 against AVX-512) change the order of floating-point sums, never the math.  Such results agree to
    about half the significant digits of the dtype they were computed in: ``sqrt(eps)``, 3.5e-4 in float32 and
    8.8e-2 in bfloat16.  Gradients (``kind="gradients"``) are one product further and get ten times that.
    ``scale`` is the magnitude of the compared values: the absolute tolerance is relative to it (predictions
    in the units of ``y``, say).  The one place tolerances are set: tests never loosen them one by one.

    Parameters
    ----------
    dtype : torch.dtype, optional
        The dtype the compared values were computed in; default :data:`SUITE_DTYPE`.
    """
    eps = torch.finfo(dtype or SUITE_DTYPE).eps
    t = float(np.sqrt(eps)) * {"values": 1.0, "gradients": 10.0}[kind]
    return dict(rtol=t, atol=t * float(scale))


def build_tiny_model(path, **kwargs):
    """Save a tiny random Llama and a character tokenizer to ``path``."""
    return make_tiny_model(path, **kwargs)


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory):
    """Folder of a tiny random Llama (hidden size 32, 2 layers)."""
    return build_tiny_model(tmp_path_factory.mktemp("tiny-llama"))


@pytest.fixture(scope="session")
def other_tiny_model(tmp_path_factory):
    """A second tiny model with other weights (for mismatch tests)."""
    return build_tiny_model(tmp_path_factory.mktemp("tiny-llama-2"), seed=1)


def _length_task(n, seed=0):
    rng = np.random.RandomState(seed)
    X = ["".join(rng.choice(list("CNOcn"), size=rng.randint(1, 16))) for _ in range(n)]
    y = np.array([len(s) for s in X], dtype=float)
    return X, y


def _composition_task(n, seed=1):
    """Target = fraction of 'N' characters: learnable by a tiny random model."""
    rng = np.random.RandomState(seed)
    X = ["".join(rng.choice(list("CNOcn"), size=rng.randint(3, 16))) for _ in range(n)]
    y = np.array([s.count("N") / len(s) for s in X])
    return X, y


@pytest.fixture
def length_task():
    """Random strings whose target is their length (learnable, plain text)."""
    return _length_task(120)


def _factory(Est, model):
    """``make(**overrides)`` building ``Est`` on ``model`` with small, fast defaults."""

    def make(**kw):
        params = dict(model=model, domains="Text", tag_length=3, max_iter=5, n_iter_no_change=3, batch_size=16,
                      learning_rate_init=1e-2, random_state=0)
        params.update(kw)
        return Est(**params)

    return make


@pytest.fixture
def make_reg(tiny_model):
    from sktag import TagRegressor

    return _factory(TagRegressor, tiny_model)


@pytest.fixture
def make_clf(tiny_model):
    from sktag import TagClassifier

    return _factory(TagClassifier, tiny_model)


# ------------------------------------------------- small fits on a handful of rows
#: Settings of the input-handling and reliability tests.  No early stopping: most of them use a
#: handful of rows, too few to hold out a validation set.
SMALL = dict(domains="Text", tag_length=3, max_iter=2, n_iter_no_change=3, batch_size=16, learning_rate_init=1e-2,
             random_state=0, early_stopping=False)

SMILES = ["CCO", "OCC", "CCN", "CCC", "c1ccccc1", "CO", "CN", "CC(=O)O", "C1CCCCC1", "CCCl",
          "O=C=O", "CC(C)O"]
Y_SMILES = np.linspace(-1.0, 2.0, len(SMILES))
PROTEINS = ["MKV", "ACDEFG", "mkvl", "GGGG", "WYWY", "KLMN"]
Y_PROTEINS = np.arange(len(PROTEINS), dtype=float)
TEXT = ["a", "bb", "ccc", "dddd", "ee", "f", "ggg", "hhhh"]
Y_CLF = np.array([0, 1, 1, 0, 1, 0, 1, 0])


def small_reg(model, **kw):
    """A TagRegressor with the :data:`SMALL` settings (``kw`` override them)."""
    from sktag import TagRegressor

    return TagRegressor(model=model, **{**SMALL, **kw})


def small_clf(model, **kw):
    """A TagClassifier with the :data:`SMALL` settings (``kw`` override them)."""
    from sktag import TagClassifier

    return TagClassifier(model=model, **{**SMALL, **kw})


@pytest.fixture(scope="module")
def smiles_reg(tiny_model):
    """A regressor fitted on 12 SMILES (one per test module)."""
    return small_reg(tiny_model, domains="SMILES").fit(SMILES, Y_SMILES)


@pytest.fixture(scope="module")
def protein_reg(tiny_model):
    return small_reg(tiny_model, domains="Protein").fit(PROTEINS, Y_PROTEINS)


@pytest.fixture(scope="module")
def text_clf(tiny_model):
    return small_clf(tiny_model).fit(TEXT, Y_CLF)


@pytest.fixture(scope="module")
def frame():
    return pd.DataFrame({"smiles": ["CCO", "CCN", "c1ccccc1", "CO", "CN", "CCC"],
                         "text": ["x", "yy", "z", "ww", "v", "uuu"]},
                        index=["a", "b", "c", "d", "e", "f"])


@pytest.fixture(scope="module")
def frame_reg(tiny_model, frame):
    """A regressor fitted on a two-column DataFrame (SMILES and text)."""
    return small_reg(tiny_model, domains={"smiles": "SMILES", "text": "Text"}).fit(frame, np.arange(6.0))


# ------------------------------------------------ the caller's data is never modified
def assert_same(after, before):
    """``after`` equals ``before`` in type, dtype, shape and values (NaN == NaN, None kept)."""
    if isinstance(before, pd.DataFrame):
        pd.testing.assert_frame_equal(after, before)
    elif isinstance(before, pd.Series):
        pd.testing.assert_series_equal(after, before)
    elif isinstance(before, np.ndarray):
        assert after.dtype == before.dtype and after.shape == before.shape
        if before.dtype == object:
            assert repr(after.tolist()) == repr(before.tolist())
        else:
            np.testing.assert_array_equal(after, before)
    else:
        assert type(after) is type(before)
        assert repr(after) == repr(before)  # repr: NaN == NaN, None kept


@contextlib.contextmanager
def unchanged(*objs):
    """Assert that the wrapped call leaves every object in ``objs`` as it was."""
    snapshots = [copy.deepcopy(o) for o in objs]
    yield
    for o, s in zip(objs, snapshots):
        assert_same(o, s)


def assert_fit_rejects(case, model):
    """``case = (id, "reg"|"clf", params, X, y, exception, match)``: fit raises and leaves X, y alone."""
    _, kind, kw, X, y, exc, match = case
    est = (small_reg if kind == "reg" else small_clf)(model, **kw)
    with unchanged(X, y), pytest.raises(exc, match=match):
        est.fit(X, y)


def assert_predict_rejects(case, request):
    """``case = (id, fixture, X, exception, match)``: predict raises and leaves X alone."""
    _, fixture, X, exc, match = case
    est = request.getfixturevalue(fixture)
    with unchanged(X), pytest.raises(exc, match=match):
        est.predict(X)


def encoded_rows(backbone, strings_per_col, tag_lengths=(3, 4)):
    """Rows of ``strings_per_col`` with ``len(tag_lengths) - 1`` domain tags (cycled over columns)."""
    from sktag._forward.encoding import TagLayout, layout_rows

    tok = backbone.tokenizer
    tokenized = [tok(list(col), add_special_tokens=False)["input_ids"] for col in strings_per_col]
    n_tags = len(tag_lengths) - 1
    layout = TagLayout(tuple(f"d{j % n_tags}" for j in range(len(strings_per_col))), tuple(tag_lengths[:-1]),
                       tag_lengths[-1])
    return layout_rows(tokenized, layout)


@pytest.fixture
def backbone(tiny_model):
    """The tiny model's backbone in float32 on the CPU."""
    from sktag.backbone import load_backbone

    return load_backbone(tiny_model, dtype="float32", device="cpu")


#: SMILES of several token lengths (left padding in every batch of them)
SHORT_SMILES = ["CCO", "c1ccccc1O", "N", "CC(=O)Oc1ccccc1C(=O)O", "O=C=O"]


def random_tag_table(backbone, tag_lengths, seed=0):
    """A random tag table (``sum(tag_lengths)`` vectors of the backbone's width)."""
    g = torch.Generator().manual_seed(seed)
    return torch.randn(sum(tag_lengths), backbone.hidden_size, generator=g)


def assert_same_tagset(a, b):
    """TagSets ``a`` and ``b`` hold the same backbone, tags, infos and heads (bit for bit)."""
    assert (a.backbone, a.fingerprint, a.hidden_size) == (b.backbone, b.fingerprint, b.hidden_size)
    assert list(a) == list(b)
    for n in a:
        assert torch.equal(a[n], b[n]) and a[n].dtype == torch.float32
        assert a.info(n) == b.info(n)
    assert list(a.heads) == list(b.heads)
    for n, h in a.heads.items():
        assert torch.equal(h["weight"], b.heads[n]["weight"])
        assert torch.equal(h["bias"], b.heads[n]["bias"])
        assert torch.equal(h["mean"], b.heads[n]["mean"]) and torch.equal(h["scale"], b.heads[n]["scale"])
        assert h["task"] == b.heads[n]["task"]


# ------------------------------------------------ one-epoch fits on twelve strings of C, N and O
CNO = ["CC", "CN", "CO", "NN", "OO", "NC", "CCN", "NCO", "OCN", "CCO", "NNO", "OOC"]
#: the fraction of N in each string of :data:`CNO`
Y_CNO = np.array([s.count("N") / len(s) for s in CNO])
#: whether each string of :data:`CNO` holds an N
LABELS_CNO = np.array([1 if "N" in s else 0 for s in CNO])


def quick_reg(model, **kw):
    """A TagRegressor with the :data:`SMALL` settings, a 2-vector tag and one epoch (``kw`` override them)."""
    return small_reg(model, **{"tag_length": 2, "max_iter": 1, **kw})


#: scikit-learn checks that need no data (parameters, cloning, tags): every sktag estimator passes them
DATA_FREE_CHECKS = [
    "check_get_params_invariance", "check_set_params", "check_no_attributes_set_in_init",
    "check_estimator_cloneable", "check_parameters_default_constructible", "check_estimator_repr",
    "check_mixin_order", "check_estimator_tags_renamed", "check_valid_tag_types",
    "check_do_not_raise_errors_in_init_or_set_params",
]


# ------------------------------------------------------------------ bundled data samples
def esol_sample(n, seed=0):
    """``n`` ESOL molecules and their log solubility, drawn with ``seed``."""
    from sktag.datasets import load_esol

    X, y = load_esol(return_X_y=True)
    idx = np.random.RandomState(seed).choice(len(X), n, replace=False)
    return X[idx], y[idx]


@pytest.fixture(scope="module")
def bbbp40():
    """20 BBBP molecules of each class."""
    from sktag.datasets import load_bbbp

    X, y = load_bbbp(return_X_y=True)
    rng = np.random.RandomState(0)
    idx = np.concatenate([rng.choice(np.flatnonzero(y == c), 20, replace=False) for c in (0, 1)])
    return X[idx], y[idx]

