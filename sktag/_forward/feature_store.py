"""Label-free features computed once: a content-keyed store of :class:`~sktag.LLMEmbedding` rows.

The frozen model's pooled states of a row depend on the row and on the
embedding's fitted configuration (backbone, dtype, domain tags, layers,
pooling, isolation, encoding), never on labels or on the other rows.  Inside
:func:`feature_store`, ``LLMEmbedding`` looks each row up by that content
before running the model, and stores what it computes: the folds of a
benchmark, the inner folds of a stack and every row of a benchmark that uses
the same embedding then share one pass over the data.

A stored row was computed in another batch than a fresh computation would
use; batch composition changes the order of floating-point sums, so the
values agree to rounding (see the test suite's ``tol``), not bit for bit.
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import pickle
import threading
from collections import OrderedDict

import numpy as np

#: The store in effect (None: every row is computed).
_ACTIVE = contextvars.ContextVar("sktag_feature_store", default=None)


class FeatureStore:
    """Rows of label-free features by content key, least recently used first out beyond ``max_bytes``.

    Parameters
    ----------
    max_bytes : int
        Memory the stored rows may take; the least recently used rows are
        dropped beyond it.

    Attributes
    ----------
    hits, misses : int
        Rows served from the store, and rows computed and stored.
    """

    def __init__(self, max_bytes):
        self.max_bytes = int(max_bytes)
        self.hits = 0
        self.misses = 0
        self.nbytes = 0
        self._rows = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self):
        return len(self._rows)

    def get(self, key):
        """The stored row of ``key`` (a float32 array), or None."""
        with self._lock:
            row = self._rows.get(key)
            if row is not None:
                self._rows.move_to_end(key)
            return row

    def put(self, key, row):
        """Store ``row`` (kept as a float32 copy) under ``key``; drop the oldest rows beyond the budget."""
        row = np.array(row, dtype=np.float32)
        if row.nbytes > self.max_bytes:
            return
        with self._lock:
            old = self._rows.pop(key, None)
            if old is not None:
                self.nbytes -= old.nbytes
            self._rows[key] = row
            self.nbytes += row.nbytes
            while self.nbytes > self.max_bytes:
                _, dropped = self._rows.popitem(last=False)
                self.nbytes -= dropped.nbytes

    def clear(self):
        """Forget every stored row (the counters stay)."""
        with self._lock:
            self._rows.clear()
            self.nbytes = 0


@contextlib.contextmanager
def feature_store(max_bytes=2**30, store=None):
    """Share label-free LLM features by content within this context.

    Parameters
    ----------
    max_bytes : int, default=1 GiB
        Memory budget of a new store.
    store : FeatureStore or None, default=None
        Use this store (to keep it across contexts) instead of a new one.

    Yields
    ------
    FeatureStore
    """
    store = FeatureStore(max_bytes) if store is None else store
    token = _ACTIVE.set(store)
    try:
        yield store
    finally:
        _ACTIVE.reset(token)


def active_store():
    """The :class:`FeatureStore` in effect, or None."""
    return _ACTIVE.get()


def config_key(*parts) -> str:
    """A digest of what a row's features depend on besides the row (arrays and tensors by value)."""
    import torch

    h = hashlib.sha256()
    for part in parts:
        if isinstance(part, torch.Tensor):
            t = part.detach().cpu().contiguous()
            h.update(f"{tuple(t.shape)}{t.dtype}".encode())
            h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
        else:
            h.update(pickle.dumps(part, protocol=4))
        h.update(b"\x1f")
    return h.hexdigest()
