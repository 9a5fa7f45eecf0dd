"""Content digests of tensors: their shape, dtype and bytes (any dtype, bfloat16 included)."""

from __future__ import annotations


def update_with_tensor(h, tensor) -> None:
    """Feed ``tensor``'s shape, dtype and bytes (on the CPU, contiguous) to the hash object ``h``."""
    import torch

    t = tensor.detach().to("cpu").contiguous()
    h.update(f"{tuple(t.shape)}{t.dtype}".encode())
    h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
