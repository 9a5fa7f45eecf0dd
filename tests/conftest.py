"""Shared fixtures: a tiny random Llama with a character-level tokenizer.

The model is built from a config and the tokenizer with the ``tokenizers``
library, saved to a temporary folder and loaded through the same code path
as any local model (``model=<folder>``), so the suite is fast and offline.
"""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
# dtype="auto" means bfloat16 on CPUs with native bf16 (sktag.backbone.cpu_supports_bf16): pin
# float32 so that the suite computes the same on every CPU; bf16 tests set SKTAG_CPU_BF16=1.
os.environ.setdefault("SKTAG_CPU_BF16", "0")

import numpy as np  # noqa: E402
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


@pytest.fixture
def real_model_threads():
    """Use up to two threads for a test on the real default model."""
    old = torch.get_num_threads()
    torch.set_num_threads(min(2, os.cpu_count() or 1))
    yield
    torch.set_num_threads(old)

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
        params = dict(model=model, domains="Text", tag_length=3, max_iter=5, batch_size=16,
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
