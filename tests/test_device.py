"""Device and dtype of the frozen backbone (``sktag._runtime.device``): the parameters, bfloat16 on CPUs, autocast."""

import contextlib
import os
import warnings
from types import SimpleNamespace

import numpy as np
import pytest
import torch

import sktag.backbone as bbmod
from sktag import TagClassifier, TagRegressor
from sktag._runtime import device as _device
from sktag._runtime.device import autocast, resolve_device, resolve_dtype

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


@pytest.fixture
def fresh_bf16_probe():
    """The CPU's bfloat16 support is probed afresh in the test (and again after it)."""
    _device._cpu_has_native_bf16.cache_clear()
    yield
    _device._cpu_has_native_bf16.cache_clear()


# ------------------------------------------------------------------ the device parameter
def test_resolve_device_and_dtype():
    assert resolve_device("cpu").type == "cpu"
    pinned = torch.bfloat16 if os.environ["SKTAG_CPU_BF16"] == "1" else torch.float32  # conftest's pin
    assert resolve_dtype("auto", torch.device("cpu")) == pinned
    assert resolve_dtype("bf16", torch.device("cpu")) == torch.bfloat16
    with pytest.raises(ValueError, match="dtype"):
        resolve_dtype("int8", torch.device("cpu"))
    with pytest.raises(ValueError, match="device"):
        resolve_device("gpu0")


def test_a_device_is_taken_as_given_or_refused_with_a_reason():
    cpu = torch.device("cpu")
    assert resolve_device(cpu) is cpu
    assert resolve_device(None) == resolve_device("auto")
    with pytest.raises(ValueError, match="'nonsense' is not a valid torch device"):
        resolve_device("nonsense")
    with pytest.raises(ValueError, match="device must be 'auto', a string"):
        resolve_device(0)
    with pytest.raises(ValueError, match="sktag runs on 'cpu', 'cuda' or 'mps'"):
        resolve_device("meta")


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is present")
def test_cuda_without_a_gpu_is_refused():
    for device in ("cuda", "cuda:1", torch.device("cuda", 0)):
        with pytest.raises(ValueError, match="CUDA is not available"):
            resolve_device(device)


@pytest.mark.parametrize("Est", [TagRegressor, TagClassifier])
def test_cuda_device_rejected_without_gpu(Est, tiny_model):
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    est = Est(model=tiny_model, domains="Text", device="cuda")
    with pytest.raises(ValueError, match="CUDA is not available"):
        est.fit(["CC", "CO"], [0, 1])


# ------------------------------------------------------------------ the dtype parameter
def test_a_dtype_is_named_in_any_case_or_given_as_a_torch_dtype():
    cpu = torch.device("cpu")
    assert resolve_dtype("FP16", cpu) == resolve_dtype("float16", cpu) == torch.float16
    assert resolve_dtype(torch.bfloat16, cpu) is torch.bfloat16
    assert resolve_dtype("auto", torch.device("mps")) == torch.float32  # no bfloat16 rule outside CPU and CUDA
    with pytest.raises(ValueError, match="dtype=torch.float64 is not supported"):
        resolve_dtype(torch.float64, cpu)


def test_auto_dtype_on_cpu_follows_bf16_support(monkeypatch):
    cpu, cuda = torch.device("cpu"), torch.device("cuda", 0)  # no GPU needed to resolve a dtype
    monkeypatch.setenv("SKTAG_CPU_BF16", "1")
    assert bbmod.cpu_supports_bf16()
    assert resolve_dtype("auto", cpu) == torch.bfloat16
    assert resolve_dtype("float32", cpu) == torch.float32  # an explicit dtype is never overridden
    monkeypatch.setenv("SKTAG_CPU_BF16", "0")
    assert not bbmod.cpu_supports_bf16()
    assert resolve_dtype("auto", cpu) == torch.float32
    assert resolve_dtype(None, cpu) == torch.float32
    assert resolve_dtype("auto", cuda) == torch.bfloat16
    monkeypatch.setenv("SKTAG_CPU_BF16", "maybe")
    with pytest.raises(ValueError, match="SKTAG_CPU_BF16"):
        resolve_dtype("auto", cpu)


@pytest.mark.parametrize("flags, native", [({"avx512_bf16", "avx512f"}, True), ({"amx_bf16"}, True),
                                           ({"avx2", "fma"}, False)])
def test_native_bf16_is_read_from_the_cpu_flags(flags, native, monkeypatch, fresh_bf16_probe):
    monkeypatch.delenv("SKTAG_CPU_BF16", raising=False)
    monkeypatch.setattr(_device, "_cpu_flags", lambda: set(flags))
    for probe in ("_is_avx512_bf16_supported", "_is_amx_tile_supported"):  # torch's own probe says no
        monkeypatch.setattr(torch.cpu, probe, lambda: False, raising=False)
    assert _device.cpu_supports_bf16() is native
    assert resolve_dtype("auto", torch.device("cpu")) == (torch.bfloat16 if native else torch.float32)


def test_without_cpu_flags_torchs_probe_decides(monkeypatch, fresh_bf16_probe):
    monkeypatch.delenv("SKTAG_CPU_BF16", raising=False)
    monkeypatch.setattr(_device, "_cpu_flags", lambda: set())
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: True, raising=False)
    assert _device.cpu_supports_bf16()


def _cpu_flags_from_proc():
    with open("/proc/cpuinfo") as f:
        return {w for line in f if line.startswith("flags") for w in line.split(":", 1)[1].split()}


@pytest.mark.skipif(not os.path.exists("/proc/cpuinfo"), reason="reads the Linux CPU flags")
def test_cpu_bf16_detection_reads_the_cpu_flags(monkeypatch):
    monkeypatch.delenv("SKTAG_CPU_BF16", raising=False)
    flags = _cpu_flags_from_proc()
    native = bool(flags & {"avx512_bf16", "amx_bf16"})
    if native:
        assert bbmod.cpu_supports_bf16()
        assert resolve_dtype("auto", torch.device("cpu")) == torch.bfloat16
    elif not flags & {"avx512f", "amx_tile"}:  # torch's probe cannot disagree without AVX-512 / AMX
        assert not bbmod.cpu_supports_bf16()
        assert resolve_dtype("auto", torch.device("cpu")) == torch.float32


# ------------------------------------------------------------------ autocast
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
def test_autocast_of_a_cpu_backbone_is_a_null_context(dtype):
    assert isinstance(autocast(SimpleNamespace(device=torch.device("cpu"), dtype=dtype)), contextlib.nullcontext)


def test_autocast_of_a_real_cpu_backbone_is_a_null_context(backbone):
    ctx = autocast(backbone)
    assert isinstance(ctx, contextlib.nullcontext)
    with ctx:
        assert not torch.is_autocast_enabled()


def test_autocast_on_cuda_is_the_backbones_half_dtype_and_none_for_float32():
    cuda = torch.device("cuda", 0)  # no GPU needed: the context is only made, not entered
    assert isinstance(autocast(SimpleNamespace(device=cuda, dtype=torch.float32)), contextlib.nullcontext)
    for dtype in (torch.bfloat16, torch.float16):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "CUDA is not available ... Disabling autocast"
            ctx = autocast(SimpleNamespace(device=cuda, dtype=dtype))
        assert isinstance(ctx, torch.autocast) and ctx.device == "cuda" and ctx.fast_dtype == dtype


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_fit_predict_matches_cpu_roughly(tiny_model, length_task):
    X, y = length_task
    kw = dict(model=tiny_model, domains="Text", tag_length=3, max_iter=3, random_state=0)
    gpu = TagRegressor(device="cuda", dtype="float32", **kw).fit(X, y)
    cpu = TagRegressor(device="cpu", **kw).fit(X, y)
    assert gpu.module_.function_tag.device.type == "cuda"
    np.testing.assert_allclose(gpu.predict(X), cpu.predict(X), rtol=1e-2, atol=1e-2)
    bf = TagRegressor(device="cuda", **kw).fit(X, y)  # bf16 autocast
    assert np.isfinite(bf.predict(X)).all()
