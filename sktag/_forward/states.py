"""Readout states of a data set: the prefix cache, then the function-tag step.

The fourth step of the data path (strings → validation → encoding →
**states** → readout → head).  A :class:`StateSource` holds the encoded rows
of one data set and the readout's :class:`~sktag._forward.readouts.Needs`, and gives
the :class:`~sktag._forward.engine.States` of any batch of rows:

* while only the function tag trains, everything before it is constant: the
  prefix (its key/value cache and pooled states) is computed once for the
  whole training set (:meth:`StateSource.cache`, in memory within the
  ``prefix_cache`` budget, beyond it in a temporary file;
  :class:`~sktag._forward.cache.PrefixStore`), and each step runs only the
  ``p`` function-tag positions against it;
* without a cache (``prefix_cache=False``, no room, or at predict time),
  each batch's prefix is computed without autograd first;
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
from .cache import PrefixStore, cache_location, may_use_disk


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
    """

    def __init__(self, backbone, rows, layout, needs, isolate, batch_size, verbose=0):
        self.backbone, self.rows, self.layout, self.needs = backbone, rows, layout, needs
        self.isolate, self.batch_size, self.verbose = bool(isolate), int(batch_size), verbose
        self.lengths = np.array([len(r) if r is not None else 0 for r in rows])
        self.store = None
        self.cache_bytes = 0
        self.cache_seconds = 0.0
        self.cache_location = None

    def cache(self, idx, tag_table, budget_spec, deep_table=None) -> None:
        """Run the prefix of rows ``idx`` once and keep it, where ``budget_spec`` (``prefix_cache``) allows.

        ``tag_table`` and ``deep_table`` (deep domain tags, or None) are the
        frozen tags the prefix is computed with.  The cache goes to memory or
        to a temporary file (:func:`~sktag._forward.cache.cache_location`); where it
        can go nowhere, prefixes are recomputed every batch, which costs
        several times more per epoch, and ``"auto"`` and ``"disk"`` say so in
        a warning.  The file goes to :func:`tempfile.gettempdir` (``TMPDIR``).
        """
        bb = self.backbone
        need = PrefixStore.nbytes(bb, self.lengths[idx].sum())
        folder = tempfile.gettempdir()
        where, why = cache_location(budget_spec, need, bb.device, folder)
        store = None
        if where is not None:
            n_layers, kvh, hd = bb.kv_geometry()
            t0 = time.perf_counter()
            try:
                store = PrefixStore(n_layers, kvh, hd, self.lengths, bb.dtype, bb.device,
                                    folder=folder if where == "disk" else None)
            except OSError as err:  # the disk's blocks could not be reserved (full since the check)
                if where != "disk":
                    raise
                why = f"{why}, but reserving it failed ({err})"
        if store is None:
            if may_use_disk(budget_spec):
                warnings.warn(f"{why}: recomputing the prefixes every batch, several times slower per epoch. "
                              "Free disk space (or set TMPDIR to a folder with room), or pass prefix_cache=False "
                              "to accept it silently.", PerformanceWarning, stacklevel=2)
            elif self.verbose:
                print(f"[sktag] {why}; recomputing prefixes every batch.")
            return
        if self.verbose:
            print(f"[sktag] caching the prefixes: {why}")
        with torch.inference_mode():
            batches = _engine.length_batches(idx, self.lengths, self.batch_size)
            for b in progress(batches, bool(self.verbose), desc="caching prefixes", leave=False):
                batch = _engine.collate([self.rows[i] for i in b], device=bb.device)
                with autocast(bb):
                    kv, pooled = _engine.prefix_pass(bb, batch, tag_table, self.isolate, self.needs, deep_table)
                store.put(b, kv, batch.valid, pooled)
        self.store, self.cache_bytes, self.cache_seconds = store, int(need), time.perf_counter() - t0
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
                batch = _engine.collate([self.rows[i] for i in b], device=bb.device)
                deep = module.deep_table()
                kv, pooled = _engine.prefix_pass(bb, batch, module.tag_table().detach(), self.isolate, needs,
                                                 None if deep is None else deep.detach())
                valid = batch.valid
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
