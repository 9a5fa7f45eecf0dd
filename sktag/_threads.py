"""Torch thread count for the duration of a fit or predict (see README, "Threads")."""

from __future__ import annotations

import contextlib

import torch


def effective_n_threads(n_threads) -> int:
    """Threads torch should use: ``n_threads`` when given, else its current count."""
    return int(n_threads) if n_threads is not None else torch.get_num_threads()


@contextlib.contextmanager
def torch_threads(n_threads):
    """Set torch's intra-op thread count for the block, then restore it."""
    old = torch.get_num_threads()
    new = effective_n_threads(n_threads)
    if new != old:
        torch.set_num_threads(new)
    try:
        yield new
    finally:
        if torch.get_num_threads() != old:
            torch.set_num_threads(old)
