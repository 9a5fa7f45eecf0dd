"""Backbone access and persistence (``sktag._fit.backbone_access.BackboneMixin``).

Pickles are small and hold no backbone weights, load on a CPU-only machine
after a CUDA fit, and refuse a backbone whose weights changed.
"""

import os
import pickle
import subprocess
import sys

import numpy as np
import pytest
import torch

import sktag
from conftest import SMILES, TEXT, small_reg

TESTS_DIR = os.path.dirname(os.path.abspath(__file__))
REPO_DIR = os.path.dirname(TESTS_DIR)

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


def test_pickle_holds_no_backbone_weights(smiles_reg):
    data = pickle.dumps(smiles_reg)
    model = smiles_reg.get_backbone().model
    emb = model.get_input_embeddings().weight.detach().float().numpy()
    model_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    assert len(data) < 200_000
    assert len(data) < emb.nbytes < model_bytes
    assert emb[5].tobytes() not in data and emb[-1].tobytes() not in data
    assert "_backbone" not in pickle.loads(data).__dict__
    assert "_backbone" in smiles_reg.__dict__  # pickling does not strip the live estimator

def test_pickle_with_cuda_device_loads_on_cpu_only_machine(smiles_reg, monkeypatch):
    est = pickle.loads(pickle.dumps(smiles_reg)).set_params(device="cuda")
    expected = smiles_reg.predict(SMILES)
    data = pickle.dumps(est)
    payloads = []
    real = torch.storage._load_from_bytes

    def record(b):
        payloads.append(b)
        return real(b)

    monkeypatch.setattr(torch.storage, "_load_from_bytes", record)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    loaded = pickle.loads(data)
    assert payloads, "expected the tags to be pickled as torch storages"
    for b in payloads:  # storage location tags recorded by torch.save
        assert b"cpu" in b and b"cuda" not in b
    assert all(p.device.type == "cpu" for p in loaded.module_.parameters())
    with pytest.raises(ValueError, match=r"device='cuda' was requested but CUDA is not available"):
        loaded.predict(SMILES)
    np.testing.assert_array_equal(loaded.set_params(device="cpu").predict(SMILES), expected)

@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_fitted_on_gpu_unpickles_without_gpu(tiny_model, tmp_path):  # pragma: no cover - GPU only
    est = small_reg(tiny_model, device="auto").fit(TEXT, np.arange(8.0))
    assert next(est.module_.parameters()).device.type == "cuda"
    path = tmp_path / "gpu.pkl"
    path.write_bytes(pickle.dumps(est))
    code = (f"import pickle, numpy as np; est = pickle.load(open({str(path)!r}, 'rb')); "
            f"p = est.predict({TEXT!r}); assert np.isfinite(p).all(); print('ok')")
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "PYTHONPATH": REPO_DIR}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0 and "ok" in proc.stdout, proc.stderr[-2000:]

def test_unpickled_estimator_detects_changed_backbone(tmp_path):
    from conftest import build_tiny_model

    path = build_tiny_model(tmp_path / "m")
    est = small_reg(path).fit(TEXT, np.arange(8.0))
    data = pickle.dumps(est)
    build_tiny_model(tmp_path / "m", seed=1)  # other weights in the same folder
    sktag.clear_backbone_cache()
    loaded = pickle.loads(data)
    with pytest.raises(ValueError, match=r"was fitted on backbone .* but model=.* now loads a different "
                                         r"model .* Refit, or point model at the original weights"):
        loaded.predict(TEXT)
