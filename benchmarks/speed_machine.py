"""The machine side of ``speed.py``: device and CPU kind, the dtype's reason, the matmul floor.

Also imported by ``cheap_kernels.py`` and ``learning_curve.py`` so that every report names the CPU kind alike.
"""

from __future__ import annotations

import os
import platform
import time

import numpy as np


def _device_name(device):
    import torch

    if device.startswith("cuda"):
        return torch.cuda.get_device_name(torch.device(device))
    name = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    name = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{name}, {os.cpu_count()} logical CPUs"


#: CPU flags that decide the kernels (and ``dtype="auto"``)
_SIMD_FLAGS = ("avx2", "fma", "avx512f", "avx512_bf16", "avx512_vnni", "amx_tile", "amx_bf16", "amx_int8")


def cpu_kind():
    """The CPU kind: vendor model, the SIMD flags that matter, and PyTorch's kernel capability."""
    import torch

    flags = set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    break
    except OSError:
        pass
    capability = getattr(torch.backends.cpu, "get_cpu_capability", lambda: "unknown")()
    return {"model": _device_name("cpu"), "flags": [f for f in _SIMD_FLAGS if f in flags],
            "torch_capability": capability,
            "kind": ("AMX" if "amx_bf16" in flags else "AVX512-BF16" if "avx512_bf16" in flags
                     else "AVX-512" if "avx512f" in flags else "AVX2" if "avx2" in flags else "other")}


def dtype_reason(dtype_param, dtype, device, bf16_cpu):
    """Why the backbone runs in ``dtype`` (what ``dtype="auto"`` decided, or that it was given)."""
    if dtype_param not in (None, "auto"):
        return f"dtype={dtype_param!r} given"
    if str(device).startswith("cuda"):
        return "dtype='auto' on CUDA: bfloat16"
    if bf16_cpu:
        return "dtype='auto': the CPU has native bfloat16 (AVX512-BF16 or AMX), so bfloat16"
    return "dtype='auto': no native bfloat16 on this CPU (emulated bfloat16 is slower than float32), so float32"


def _sync(device):
    import torch

    if str(device).startswith("cuda"):
        torch.cuda.synchronize()


def matmul_rate(M, K, N, dtype, device, seconds):
    """Sustained FLOP/s of ``[M, K] @ [K, N]`` in ``dtype`` on ``device``."""
    import torch

    g = torch.Generator(device="cpu").manual_seed(0)
    a = torch.randn(M, K, generator=g).to(device=device, dtype=dtype)
    b = torch.randn(K, N, generator=g).to(device=device, dtype=dtype)
    for _ in range(3):
        a @ b
    _sync(device)
    n, t0 = 0, time.perf_counter()
    while True:
        for _ in range(10 if str(device).startswith("cuda") else 1):
            a @ b
            n += 1
        _sync(device)
        elapsed = time.perf_counter() - t0
        if elapsed >= seconds:
            break
    return 2.0 * M * K * N * n / elapsed


def matmul_floor(shape, device, m_prefix, m_epoch, seconds):
    import torch

    out = {"allow_tf32": bool(torch.backends.cuda.matmul.allow_tf32) if str(device).startswith("cuda") else None}
    for label, M in (("prefix", m_prefix), ("epoch", m_epoch)):
        for dname, dt in (("float32", torch.float32), ("bfloat16", torch.bfloat16)):
            rate = matmul_rate(int(M), shape["hidden"], shape["intermediate"], dt, device, seconds)
            out[f"{label}_{dname}"] = {"M": int(M), "K": shape["hidden"], "N": shape["intermediate"],
                                       "flops_per_s": rate}
    return out


def _fitted(est, name):
    value = getattr(est, name, None)
    if value is None:
        return None
    return [float(v) for v in value] if isinstance(value, (list, tuple, np.ndarray)) else float(value)
