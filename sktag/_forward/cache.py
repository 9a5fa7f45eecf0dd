"""The prefix cache: storage for the key/value caches (and pooled states) of a whole training set.

While a function tag trains, everything before it is constant, so its
key/value cache — and the pooled data-token states a readout needs — is
computed once per fit (by :class:`sktag._forward.states.StateSource`, through the
process-wide :mod:`~sktag._forward.prefix_store`), kept here without padding,
and gathered into left-padded batches every epoch.  It lives
in memory within the ``prefix_cache`` budget (:func:`memory_budget`); beyond
it (``"auto"``) or always (``"disk"``) in a temporary file mapped into memory,
which the operating system pages in and out (:func:`cache_location`).  Nothing
here runs the model.
"""

from __future__ import annotations

import os
import shutil
import tempfile

import numpy as np
import torch

from .engine import to_device

_GiB = 1024**3
#: free disk space a disk cache leaves untouched
DISK_MARGIN = _GiB


def format_bytes(n) -> str:
    """``1.2 MiB``-style size."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.2f} {unit}"
        n /= 1024


def memory_budget(spec, device) -> int:
    """Bytes the cached prefix may take (``prefix_cache`` parameter)."""
    if spec is False or spec is None:
        return 0
    if spec is True or spec == "auto":
        if device.type == "cuda":
            free, _ = torch.cuda.mem_get_info(device)
            return int(0.4 * free)
        try:
            total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        except (ValueError, OSError, AttributeError):  # pragma: no cover
            total = 8 * _GiB
        return int(min(0.25 * total, 8 * _GiB))
    return int(spec)


def may_use_disk(spec) -> bool:
    """Whether ``prefix_cache=spec`` may put the cache in a temporary file (``"auto"``, True, ``"disk"``)."""
    return spec is True or (isinstance(spec, str) and spec in ("auto", "disk"))


def cache_location(spec, need, device, folder):
    """Where a prefix cache of ``need`` bytes goes: ``(where, why)``.

    ``where`` is ``"memory"``, ``"disk"`` (a temporary file in ``folder``)
    or None (no cache: prefixes are recomputed every batch); ``why`` says
    why, in words.  ``prefix_cache``: False or None, no cache; a number,
    memory up to that many bytes; ``"auto"`` or True, memory up to
    :func:`memory_budget`, beyond it disk; ``"disk"``, disk.  Disk needs
    ``need`` plus :data:`DISK_MARGIN` free; the space is then reserved when
    the store is made (:func:`reserve`), so a disk that fills during the fit
    cannot take it away.
    """
    if spec is False or spec is None:
        return None, f"prefix_cache={spec!r}"
    if spec != "disk":
        budget = memory_budget(spec, device)
        if need <= budget:
            return "memory", f"{format_bytes(need)} in memory (budget {format_bytes(budget)})"
        why = f"prefix cache needs {format_bytes(need)} > budget {format_bytes(budget)} (prefix_cache={spec!r})"
        if not may_use_disk(spec):
            return None, why
    else:
        why = f"prefix_cache={spec!r}"
    free = shutil.disk_usage(folder).free
    if need + DISK_MARGIN > free:
        return None, f"{why}; {format_bytes(free)} free on disk in {folder} is too little for it"
    return "disk", f"{why}: {format_bytes(need)} in a temporary file in {folder}"


def reserve(fd, nbytes) -> None:
    """Give the open file ``fd`` ``nbytes`` of real disk blocks, or raise :class:`OSError`.

    A file that is only extended is sparse: its blocks are taken when the
    mapping is first written, and a disk filled meanwhile by another process
    would end this one with ``SIGBUS`` instead of an error.  Reserving them
    up front turns that into an :class:`OSError` (``ENOSPC``) here, before
    anything is computed.  Where :func:`os.posix_fallocate` is missing
    (macOS, Windows) zeros are written instead.
    """
    if hasattr(os, "posix_fallocate"):
        os.posix_fallocate(fd, 0, nbytes)
        return
    chunk = bytes(1 << 24)  # pragma: no cover - not on Linux
    done = 0
    while done < nbytes:
        done += os.write(fd, chunk[:min(len(chunk), nbytes - done)])


class PrefixCache:
    """Prefix key/value caches (and pooled states) of the rows of one fit.

    Memory: ``n_layers x 2 x kv_heads x head_dim x tokens x bytes`` per row,
    ``tokens`` being the row's prefix length (domain tags + data tokens).  In
    memory the rows' tensors are held as they come (shared with the
    :mod:`~sktag._forward.prefix_store`, not copied).  With ``folder``, the
    keys and values are copied into a temporary file there, mapped into
    memory (removed from the folder at once, so nothing is left behind even
    if the process dies; the space returns when the cache is freed), and
    gathered batches are moved to ``device``.  The file's blocks are reserved
    first (:func:`reserve`); when they cannot be, the :class:`OSError`
    propagates and nothing is left behind.
    """

    def __init__(self, n_layers, kvh, hd, lengths, dtype, device, folder=None):
        self.lengths = np.asarray(lengths, dtype=np.int64)
        self.offsets = np.concatenate([[0], np.cumsum(self.lengths)])
        self.device = device
        self.rows, self.pooled = {}, {}
        self.buf = None
        if folder is not None:
            shape = (n_layers, 2, int(self.offsets[-1]), kvh, hd)
            size = int(np.prod(shape))
            fd, path = tempfile.mkstemp(prefix="sktag-prefix-", suffix=".bin", dir=folder)
            try:  # a new file reads as zeros
                try:
                    reserve(fd, size * torch.empty((), dtype=dtype).element_size())
                finally:
                    os.close(fd)
                self.buf = torch.from_file(path, shared=True, size=size, dtype=dtype).view(shape)
            finally:
                os.unlink(path)

    @staticmethod
    def nbytes(backbone, total_tokens) -> int:
        return backbone.n_kv_bytes_per_token() * int(total_tokens)

    def put(self, row, kv, pooled=None):
        """Keep data-set row ``row``'s cache ``kv`` (``[n_layers, 2, n, kvh, hd]``) and pooled states ``[G, width]``."""
        if pooled is not None:
            self.pooled[int(row)] = pooled
        if self.buf is None:
            self.rows[int(row)] = kv
        elif kv is not None:
            o = int(self.offsets[row])
            self.buf[:, :, o:o + int(self.lengths[row])] = kv

    def row(self, row):
        """The cache of data-set row ``row``, ``[n_layers, 2, n, kvh, hd]``."""
        if self.buf is None:
            return self.rows[int(row)]
        o = int(self.offsets[row])
        return self.buf[:, :, o:o + int(self.lengths[row])]

    def gather_pooled(self, rows):
        """Pooled states of data-set ``rows``, ``[B, G, width]`` (None when none were kept)."""
        if not self.pooled:
            return None
        return torch.stack([self.pooled[int(r)] for r in rows]).to(self.device)

    def gather(self, rows):
        """Left-padded ``(kv, valid)`` for data-set ``rows`` (see :func:`pad_rows`)."""
        return pad_rows([self.row(r) for r in rows], self.device)


def pad_rows(kvs, device):
    """Left-pad row caches ``[n_layers, 2, n, kvh, hd]`` into ``(kv [n_layers, 2, B, kvh, L, hd], valid [B, L])``.

    Padding holds zeros and is marked invalid (never attended to).
    """
    lengths = [int(k.shape[2]) for k in kvs]
    L = max(lengths)
    n_layers, _, _, kvh, hd = kvs[0].shape
    out = torch.zeros((n_layers, 2, len(kvs), L, kvh, hd), dtype=kvs[0].dtype, device=device)
    valid = np.zeros((len(kvs), L), dtype=bool)
    for b, (kv, n) in enumerate(zip(kvs, lengths)):
        out[:, :, b, L - n:] = kv
        valid[b, L - n:] = True
    return out.permute(0, 1, 2, 4, 3, 5).contiguous(), to_device(valid, device)
