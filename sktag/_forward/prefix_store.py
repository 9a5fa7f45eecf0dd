"""The prefix store: what the frozen model computed for a row, kept by content across fits.

Everything a Tag-LLM computes before its function tag — the key/value cache
of the domain tags and the row's tokens, and the data-token states the
pooled readouts and :class:`~sktag.LLMEmbedding` average — depends on the
row and on a few settings (the backbone, its dtype and device, the domain
tags' values, segment isolation), never on labels, the function tag, the head
or the other rows.  A :class:`PrefixStore` keeps each row's results under a
key made of exactly those (the backbone by a digest of all its weights,
``Backbone.weights_digest``) (:func:`config_key`, :func:`row_key`), so that the
folds of a cross-validation, the candidates of a grid search, ``predict`` on
rows seen in another fit and ``LLMEmbedding`` run the model once per row.

One store serves the whole process (:func:`active_store`), within a memory
budget beyond which the least recently used rows are dropped
(:func:`set_prefix_store`, :func:`clear_prefix_store`,
:func:`prefix_store_info`); with a ``folder`` the rows are also written there,
one file each, so that worker processes on the same machine share them.
A row's results do not depend on which rows it was computed with
(:mod:`sktag._forward.states` computes prefixes in batches of rows of equal
length, without padding), so results are the same with the store on or off.
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import os
import pickle
import tempfile
import threading
from collections import OrderedDict

import torch

from .._runtime.digest import update_with_tensor

#: The store of a :func:`prefix_store` context (None: the process-wide store).
_ACTIVE = contextvars.ContextVar("sktag_prefix_store", default=None)
#: environment variables that configure the process-wide store (worker processes inherit them)
ENV_BYTES, ENV_FOLDER = "SKTAG_PREFIX_STORE_BYTES", "SKTAG_PREFIX_STORE_DIR"
_GiB = 1024**3


def _nbytes(value) -> int:
    if isinstance(value, torch.Tensor):
        return value.numel() * value.element_size()
    return sum(_nbytes(v) for v in value) if isinstance(value, (tuple, list)) else 0


def default_budget() -> int:
    """A quarter of the machine's memory, at most 8 GiB (the default ``max_bytes``)."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # pragma: no cover
        total = 8 * _GiB
    return int(min(0.25 * total, 8 * _GiB))


class PrefixStore:
    """Tensors by content key; the least recently used go first beyond ``max_bytes``.

    Parameters
    ----------
    max_bytes : int
        Memory the stored tensors may take.  Tensors still used by a fit stay
        alive after they are dropped from the store; only the store forgets them.
    folder : str or None
        Also write every stored value to a file in this folder, and read the
        rows other processes wrote there (files are written whole and then
        renamed, so a reader never sees half of one).

    Attributes
    ----------
    hits, misses : int
        Rows served from the store, and rows computed and stored.
    evicted : int
        Values dropped to stay within ``max_bytes``.
    """

    def __init__(self, max_bytes, folder=None):
        self.max_bytes = int(max_bytes)
        self.folder = None if folder is None else os.fspath(folder)
        if self.folder is not None:
            os.makedirs(self.folder, exist_ok=True)
        self.hits = self.misses = self.evicted = 0
        self.nbytes = 0
        self._values = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self):
        return len(self._values)

    def _path(self, key):
        name = hashlib.sha256(pickle.dumps(key, protocol=4)).hexdigest()
        return os.path.join(self.folder, f"sktag-prefix-{name}.pt")

    def get(self, key):
        """The value stored under ``key`` (a tensor or a tuple of them), or None."""
        with self._lock:
            value = self._values.get(key)
            if value is not None:
                self._values.move_to_end(key)
                return value
        if self.folder is None:
            return None
        try:
            value = torch.load(self._path(key), map_location="cpu", weights_only=True)["value"]
        except (OSError, RuntimeError, KeyError, EOFError, pickle.UnpicklingError):
            return None  # not there, or written by a process that died halfway (then it is computed again)
        self._keep(key, value)
        return value

    def put(self, key, value):
        """Store ``value`` under ``key`` (and in the folder, if any)."""
        if self.folder is not None and not os.path.exists(self._path(key)):
            fd, tmp = tempfile.mkstemp(prefix=".sktag-prefix-", dir=self.folder)
            try:
                with os.fdopen(fd, "wb") as f:
                    torch.save({"value": value}, f)
                os.replace(tmp, self._path(key))
            except (OSError, RuntimeError):  # a full disk loses the copy on disk, not the row
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
        self._keep(key, value)

    def _keep(self, key, value):
        size = _nbytes(value)
        if size > self.max_bytes:
            return
        with self._lock:
            old = self._values.pop(key, None)
            if old is not None:
                self.nbytes -= _nbytes(old)
            self._values[key] = value
            self.nbytes += size
            while self.nbytes > self.max_bytes:
                _, dropped = self._values.popitem(last=False)
                self.nbytes -= _nbytes(dropped)
                self.evicted += 1

    def clear(self):
        """Forget every stored value, and delete the files this store's folder holds (the counters stay)."""
        with self._lock:
            self._values.clear()
            self.nbytes = 0
        if self.folder is not None and os.path.isdir(self.folder):
            for entry in os.scandir(self.folder):
                if entry.name.startswith(("sktag-prefix-", ".sktag-prefix-")):
                    with contextlib.suppress(OSError):
                        os.unlink(entry.path)

    def info(self) -> dict:
        """``{"rows", "bytes", "max_bytes", "folder", "hits", "misses", "evicted"}``."""
        return {"rows": len(self), "bytes": self.nbytes, "max_bytes": self.max_bytes, "folder": self.folder,
                "hits": self.hits, "misses": self.misses, "evicted": self.evicted}


_PROCESS = {"store": None, "configured": False}
_PROCESS_LOCK = threading.Lock()


def _from_environment():
    """The process-wide store the environment asks for (None when ``SKTAG_PREFIX_STORE_BYTES=0``)."""
    spec = os.environ.get(ENV_BYTES, "").strip()
    max_bytes = default_budget() if spec in ("", "auto") else int(float(spec))
    if max_bytes <= 0:
        return None
    return PrefixStore(max_bytes, folder=os.environ.get(ENV_FOLDER) or None)


def set_prefix_store(max_bytes="auto", folder=None) -> None:
    """Configure the process-wide prefix store (a new, empty one replaces the current one).

    Parameters
    ----------
    max_bytes : "auto", int or False, default="auto"
        Memory it may take: ``"auto"`` is a quarter of the machine's memory,
        at most 8 GiB; ``0`` or False turns the store off (every fit and
        ``predict`` runs the model over all its rows, as without a store).
    folder : str or path, optional
        Also keep the rows in this folder, so that worker processes started
        afterwards (joblib, Dask or Ray workers on this machine) read and add
        to the same rows.  The setting goes to the environment
        (``SKTAG_PREFIX_STORE_BYTES``, ``SKTAG_PREFIX_STORE_DIR``), which
        those processes inherit.  :func:`clear_prefix_store` empties it.
    """
    if isinstance(max_bytes, bool) or max_bytes is None:
        max_bytes = "auto" if max_bytes else 0
    if not (max_bytes == "auto" or (isinstance(max_bytes, (int, float)) and max_bytes >= 0)):
        raise ValueError(f"max_bytes must be 'auto', a number of bytes >= 0 or False, got {max_bytes!r}")
    os.environ[ENV_BYTES] = str(max_bytes if max_bytes == "auto" else int(max_bytes))
    if folder is None:
        os.environ.pop(ENV_FOLDER, None)
    else:
        os.environ[ENV_FOLDER] = os.path.abspath(os.fspath(folder))
    with _PROCESS_LOCK:
        _PROCESS["store"], _PROCESS["configured"] = _from_environment(), True


def process_store():
    """The process-wide :class:`PrefixStore` (made from the environment on first use), or None when off."""
    with _PROCESS_LOCK:
        if not _PROCESS["configured"]:
            _PROCESS["store"], _PROCESS["configured"] = _from_environment(), True
        return _PROCESS["store"]


def clear_prefix_store() -> None:
    """Empty the process-wide prefix store (and its folder's files); the setting stays."""
    store = process_store()
    if store is not None:
        store.clear()


def prefix_store_info() -> dict:
    """What the process-wide prefix store holds: ``{"enabled", "rows", "bytes", "max_bytes", "folder",
    "hits", "misses", "evicted"}`` (``rows`` counts stored values: a row's key/value cache and its pooled
    states are two)."""
    store = process_store()
    if store is None:
        return {"enabled": False, "rows": 0, "bytes": 0, "max_bytes": 0, "folder": None, "hits": 0, "misses": 0,
                "evicted": 0}
    return {"enabled": True, **store.info()}


@contextlib.contextmanager
def prefix_store(max_bytes=None, store=None):
    """Use another store than the process-wide one within this context.

    Parameters
    ----------
    max_bytes : int, optional
        Budget of a new store (default: :func:`default_budget`); 0 turns the
        store off within the context.
    store : PrefixStore, optional
        Use this store instead of a new one (to keep it across contexts).

    Yields
    ------
    PrefixStore or None
    """
    if store is None and max_bytes != 0:
        store = PrefixStore(default_budget() if max_bytes is None else max_bytes)
    token = _ACTIVE.set(store if store is not None else False)
    try:
        yield store
    finally:
        _ACTIVE.reset(token)


def active_store():
    """The :class:`PrefixStore` in effect (a :func:`prefix_store` context's, else the process-wide one), or None."""
    store = _ACTIVE.get()
    if store is None:
        return process_store()
    return None if store is False else store


def config_key(*parts) -> str:
    """A digest of what a row's prefix depends on besides the row (tensors by value, None for absent parts)."""
    h = hashlib.sha256()
    h.update(torch.__version__.encode())
    for part in parts:
        if isinstance(part, torch.Tensor):
            update_with_tensor(h, part)
        else:
            h.update(pickle.dumps(part, protocol=4))
        h.update(b"\x1f")
    return h.hexdigest()


def row_key(row) -> bytes:
    """The content of an encoded row (its token ids, tag slots and segments)."""
    return b"\x1f".join((row.ids.tobytes(), row.slot.tobytes(), row.seg.tobytes()))
