"""Device and dtype of the frozen backbone (``device`` and ``dtype`` parameters)."""

from __future__ import annotations

import contextlib
import functools
import os

import torch

_DTYPES = {
    "float32": torch.float32,
    "fp32": torch.float32,
    "bfloat16": torch.bfloat16,
    "bf16": torch.bfloat16,
    "float16": torch.float16,
    "fp16": torch.float16,
}


def resolve_device(device) -> torch.device:
    """Turn the ``device`` parameter into a :class:`torch.device`.

    ``"auto"`` means CUDA when available, else CPU.  Raises ``ValueError`` on
    anything torch does not recognise or on CUDA without a GPU.

    Parameters
    ----------
    device : str, torch.device or None
        ``"auto"`` (or ``None``), ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"``, ... or a :class:`torch.device`.

    Returns
    -------
    torch.device
        The device.
    """
    if isinstance(device, torch.device):
        dev = device
    elif device is None or (isinstance(device, str) and device == "auto"):
        dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    elif isinstance(device, str):
        try:
            dev = torch.device(device)
        except (RuntimeError, ValueError) as exc:
            raise ValueError(
                f"device={device!r} is not a valid torch device; use 'auto', 'cpu', "
                "'cuda' or 'cuda:N'."
            ) from exc
    else:
        raise ValueError(
            f"device must be 'auto', a string like 'cpu'/'cuda:0' or a torch.device, "
            f"got {device!r}."
        )
    if dev.type == "mps" and not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
        raise ValueError(f"device={device!r} was requested but MPS is not available.")
    if dev.type not in ("cpu", "cuda", "mps"):
        raise ValueError(f"device={device!r}: sktag runs on 'cpu', 'cuda' or 'mps'.")
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device={device!r} was requested but CUDA is not available.")
        if dev.index is None:
            dev = torch.device("cuda", torch.cuda.current_device())
    return dev


def _cpu_flags() -> set[str]:
    """The CPU feature flags the Linux kernel reports (empty elsewhere)."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


@functools.lru_cache(maxsize=1)
def _cpu_has_native_bf16() -> bool:
    flags = _cpu_flags()
    if flags & {"avx512_bf16", "amx_bf16"}:
        return True
    # Not Linux, or flags hidden: ask PyTorch's own CPU probe where it has one.
    for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported"):
        probe = getattr(torch.cpu, name, None)
        if probe is not None:
            try:
                if probe():
                    return True
            except Exception:  # pragma: no cover - private torch API changed
                pass
    return False


def cpu_supports_bf16() -> bool:
    """Whether this CPU computes bfloat16 matrix products natively.

    True on x86-64 CPUs with AVX512-BF16 or AMX (Intel Cooper Lake, Sapphire
    Rapids and later; AMD Zen 4 and later), read from the CPU flags
    (``/proc/cpuinfo``) or, where those are not available, from PyTorch's CPU
    probe.  There a bfloat16 forward of the frozen backbone runs about twice as
    fast as float32.  On other CPUs PyTorch emulates bfloat16, which is slower
    than float32, so the answer is False.

    The environment variable ``SKTAG_CPU_BF16`` overrides the detection:
    ``1`` (or ``true``/``yes``) forces True, ``0`` (or ``false``/``no``) forces
    False.
    """
    env = os.environ.get("SKTAG_CPU_BF16", "").strip().lower()
    if env in ("1", "true", "yes", "on"):
        return True
    if env in ("0", "false", "no", "off"):
        return False
    if env:
        raise ValueError(f"SKTAG_CPU_BF16={env!r}: use 1 or 0 (or leave it unset to detect).")
    return _cpu_has_native_bf16()


def resolve_dtype(dtype, device: torch.device) -> torch.dtype:
    """Turn the ``dtype`` parameter into a :class:`torch.dtype`.

    ``"auto"`` is bfloat16 on CUDA; on CPU it is bfloat16 where the CPU has
    native bfloat16 arithmetic (AVX512-BF16 or AMX, see
    :func:`cpu_supports_bf16`; ``SKTAG_CPU_BF16=0/1`` overrides) and float32
    elsewhere.  This is the dtype of the frozen backbone only: tags, heads and
    optimiser state stay float32.

    Parameters
    ----------
    dtype : str, torch.dtype or None
        ``"auto"`` (or ``None``), ``"float32"``/``"fp32"``, ``"bfloat16"``/``"bf16"``,
        ``"float16"``/``"fp16"`` or a :class:`torch.dtype`.
    device : torch.device
        The device the backbone runs on (see :func:`resolve_device`).

    Returns
    -------
    torch.dtype
        The dtype.
    """
    if isinstance(dtype, torch.dtype):
        if dtype not in _DTYPES.values():
            raise ValueError(f"dtype={dtype} is not supported; use float32, bfloat16 or float16.")
        return dtype
    if dtype is None or dtype == "auto":
        if device.type == "cuda":
            return torch.bfloat16
        if device.type == "cpu" and cpu_supports_bf16():
            return torch.bfloat16
        return torch.float32
    if isinstance(dtype, str) and dtype.lower() in _DTYPES:
        return _DTYPES[dtype.lower()]
    raise ValueError(
        f"dtype={dtype!r} is not supported; use 'auto', 'float32', 'bfloat16' or 'float16'."
    )


def autocast(backbone):
    """Autocast to the backbone's half dtype on CUDA; a no-op elsewhere."""
    if backbone.device.type == "cuda" and backbone.dtype in (torch.bfloat16, torch.float16):
        return torch.autocast("cuda", dtype=backbone.dtype)
    return contextlib.nullcontext()
