"""Readout states of a data set: the prefix cache, then the function-tag step.

The fourth step of the data path (strings → validation → encoding →
**states** → readout → head).  A :class:`StateSource` holds the encoded rows
of one data set and the readout's :class:`~sktag._forward.readouts.Needs`, and gives
the :class:`~sktag._forward.engine.States` of any batch of rows:

* while only the function tag trains, everything before it is constant: the
  prefix (its key/value cache and pooled states) is computed once for the
  whole training set (:meth:`StateSource.cache`, in memory within the
  ``prefix_cache`` budget, beyond it in a temporary file;
  :class:`~sktag._forward.cache.PrefixCache`), and each step runs only the
  ``p`` function-tag positions against it;
* without a cache (``prefix_cache=False``, no room, or at predict time),
  each batch's prefixes are computed without autograd first;
* either way a row's prefix comes from the process-wide
  :mod:`~sktag._forward.prefix_store` when another fit, fold or ``predict``
  computed it before (:meth:`StateSource.prefixes`), and is computed in a
  batch of rows of its own length otherwise, so that it is the same whoever
  computes it;
* with tuned domain tags the prefix changes with every step: the whole
  sequence runs with autograd (:func:`sktag._forward.engine.full_states`).
"""

from __future__ import annotations

import tempfile
import time
import warnings

import numpy as np
import torch

from .._runtime.device import autocast
from .._runtime.report import progress
from ..exceptions import PerformanceWarning
from . import engine as _engine
from .cache import PrefixCache, cache_location, may_use_disk, pad_rows
from .prefix_store import active_store, config_key, row_key


def prefix_config(backbone, domain_table, deep_table, isolate) -> str:
    """The key of what a row's prefix depends on besides the row (:func:`~sktag._forward.prefix_store.config_key`).

    ``domain_table`` holds the domain tags' vectors (the rows' tag slots
    index it; None without domain tags), ``deep_table`` their deep blocks (a
    :class:`~sktag._forward.deep.DeepTable`) or None.
    """
    deep = (None, None) if deep_table is None else (deep_table.blocks, deep_table.kind)
    return config_key(backbone.weights_digest(), str(backbone.dtype), str(backbone.device), domain_table, *deep,
                      bool(isolate))


class StateSource:
    """The states a readout needs, for batches of the encoded ``rows`` of one data set.

    Parameters
    ----------
    backbone : Backbone
    rows : list of EncodedRow or None
        ``None`` for invalid rows (never asked for).
    layout : TagLayout
    needs : Needs
    isolate : bool
        Segment-isolating attention.
    batch_size : int
        Rows per forward of the prefix passes.
    verbose : int

    Attributes
    ----------
    reused, computed : int
        Rows whose prefix came from the prefix store, and rows whose prefix
        was computed here.
    """

    def __init__(self, backbone, rows, layout, needs, isolate, batch_size, verbose=0):
        self.backbone, self.rows, self.layout, self.needs = backbone, rows, layout, needs
        self.isolate, self.batch_size, self.verbose = bool(isolate), int(batch_size), verbose
        self.lengths = np.array([len(r) if r is not None else 0 for r in rows])
        self.store = None
        self.cache_bytes = 0
        self.cache_seconds = 0.0
        self.cache_location = None
        self.reused = self.computed = 0

    def _pooled_spec(self):
        """What the pooled states are: layers, pooling and groups (one group when the rows have one segment)."""
        needs = self.needs
        if not needs.pooled_layers:
            return None
        per_segment = needs.per_segment and self.layout.n_features > 1
        return tuple(needs.pooled_layers), needs.pooling, per_segment

    def prefixes(self, idx, tables, kv=True, desc=None):
        """Yield ``(row, kv, pooled)`` for the rows ``idx``: from the prefix store, else computed and stored.

        ``tables`` is ``(domain_table, tag_table, deep_table)``: the domain
        tags' vectors (for the key), the table the rows' slots index and the
        deep blocks (:class:`~sktag._forward.deep.DeepTable` or None), all
        frozen.  ``kv`` is the row's cache ``[n_layers, 2, n, kvh, hd]``
        (None with ``kv=False``), ``pooled`` its pooled states ``[G, width]``
        (float32; None when the readout pools nothing).  Missing rows are
        computed in batches of one length (:func:`~sktag._forward.engine.equal_length_batches`),
        so a row's values never depend on the rows computed with it.
        """
        bb, store = self.backbone, active_store()
        domain_table, tag_table, deep_table = tables
        config = prefix_config(bb, domain_table, deep_table, self.isolate)
        spec = self._pooled_spec()
        keys, todo = {}, []
        for i in map(int, idx):
            r = row_key(self.rows[i])
            wanted = (("kv", config, r) if kv else None, None if spec is None else ("pooled", config, spec, r))
            keys[i] = wanted
            found = [None if k is None or store is None else store.get(k) for k in wanted]
            if store is not None and all(f is not None for f, k in zip(found, wanted) if k is not None):
                self.reused += 1
                store.hits += 1
                yield i, *(None if f is None else f.to(bb.device) for f in found)
            else:
                todo.append(i)
        batches = _engine.equal_length_batches(np.asarray(todo, dtype=np.int64), self.lengths, self.batch_size)
        for b in progress(batches, bool(self.verbose) and desc is not None, desc=desc, leave=False):
            yield from self._compute(b, tag_table, deep_table, kv, [keys[i] for i in b.tolist()], store)

    def _compute(self, b, tag_table, deep_table, want_kv, keys, store):
        """Run the prefix of the rows ``b`` (all of one length) and store what each row gives."""
        bb = self.backbone
        batch = _engine.collate([self.rows[i] for i in b], device=bb.device)
        with autocast(bb):
            kv, pooled = _engine.prefix_pass(bb, batch, tag_table, self.isolate, self.needs, deep_table, kv=want_kv)
        for j, (i, (kv_key, pooled_key)) in enumerate(zip(b, keys)):
            row_kv = None if kv is None else kv[:, :, j].transpose(2, 3).contiguous()  # [nl, 2, n, kvh, hd]
            row_pooled = None if pooled is None else pooled[j].float().clone()
            if store is not None:  # kept in the machine's memory (its budget is of that memory)
                store.misses += 1
                if kv_key is not None:
                    store.put(kv_key, row_kv.to("cpu"))
                if pooled_key is not None:
                    store.put(pooled_key, row_pooled.to("cpu"))
            self.computed += 1
            yield int(i), row_kv, row_pooled

    @staticmethod
    def frozen_tables(module):
        """``(domain_table, tag_table, deep_table)`` of ``module``, detached (see :meth:`prefixes`)."""
        domain = torch.cat([t.detach() for t in module.domain_tags]) if len(module.domain_tags) else None
        deep = module.deep_table()
        return domain, module.tag_table().detach(), None if deep is None else deep.detach()

    def cache(self, idx, module, budget_spec) -> None:
        """Get the prefix of rows ``idx`` once and keep it, where ``budget_spec`` (``prefix_cache``) allows.

        ``module``'s frozen domain tags are the ones the prefix is computed
        with.  The cache goes to memory or to a temporary file
        (:func:`~sktag._forward.cache.cache_location`); where it can go
        nowhere, prefixes are fetched every batch (from the prefix store when
        it holds them, else computed: several times more per epoch), and
        ``"auto"`` and ``"disk"`` say so in a warning.  The file goes to
        :func:`tempfile.gettempdir` (``TMPDIR``).
        """
        bb = self.backbone
        need = PrefixCache.nbytes(bb, self.lengths[idx].sum())
        folder = tempfile.gettempdir()
        where, why = cache_location(budget_spec, need, bb.device, folder)
        cache = None
        if where is not None:
            n_layers, kvh, hd = bb.kv_geometry()
            t0 = time.perf_counter()
            try:
                cache = PrefixCache(n_layers, kvh, hd, self.lengths, bb.dtype, bb.device,
                                    folder=folder if where == "disk" else None)
            except OSError as err:  # the disk's blocks could not be reserved (full since the check)
                if where != "disk":
                    raise
                why = f"{why}, but reserving it failed ({err})"
        if cache is None:
            if may_use_disk(budget_spec):
                warnings.warn(f"{why}: recomputing the prefixes every batch, several times slower per epoch. "
                              "Free disk space (or set TMPDIR to a folder with room), or pass prefix_cache=False "
                              "to accept it silently.", PerformanceWarning, stacklevel=2)
            elif self.verbose:
                print(f"[sktag] {why}; recomputing prefixes every batch.")
            return
        with torch.inference_mode():
            for i, kv, pooled in self.prefixes(idx, self.frozen_tables(module), kv=bool(self.needs.tag_layers),
                                               desc="computing prefixes"):
                cache.put(i, kv, pooled)
        if self.verbose:
            print(f"[sktag] caching the prefixes: {why}; {self.reused} of {len(idx)} rows reused from the prefix "
                  "store")
        self.store, self.cache_bytes, self.cache_seconds = cache, int(need), time.perf_counter() - t0
        self.cache_location = where

    def states(self, module, b) -> _engine.States:
        """:class:`~sktag._forward.engine.States` of rows ``b`` (gradient to the trainable tags of ``module``)."""
        bb, needs = self.backbone, self.needs
        with autocast(bb):
            if torch.is_grad_enabled() and module.tunes_domain_tags():
                batch = _engine.collate([self.rows[i] for i in b], tail=self.layout.function_slots,
                                        device=bb.device)
                return _engine.full_states(bb, batch, module.tag_table(), self.isolate, needs,
                                           module.function_deep(), module.deep_table())
            if self.store is not None:
                kv, valid = self.store.gather(b)
                pooled = self.store.gather_pooled(b)
            else:
                with torch.no_grad():
                    got = {i: (k, p) for i, k, p in self.prefixes(b, self.frozen_tables(module),
                                                                   kv=bool(needs.tag_layers))}
                kv, valid = pad_rows([got[int(i)][0] for i in b], bb.device) if needs.tag_layers else (None, None)
                pooled = torch.stack([got[int(i)][1] for i in b]) if needs.pooled_layers else None
            tag = (_engine.tag_states(bb, kv, valid, module.function_tag, needs.tag_layers, module.function_deep())
                   if needs.tag_layers else None)
        return _engine.States(tag=tag, pooled=pooled)

    @torch.no_grad()
    def features(self, module, readout, idx, desc=None) -> np.ndarray:
        """The readout's features (float64) of rows ``idx``, ``[n_rows, n_features]``; NaN elsewhere."""
        out = np.full((len(self.rows), readout.n_features), np.nan)
        batches = _engine.length_batches(np.asarray(idx), self.lengths, self.batch_size)
        for b in progress(batches, bool(self.verbose) and desc is not None, desc=desc, leave=False):
            out[b] = readout.features(self.states(module, b)).double().cpu().numpy()
        return out
