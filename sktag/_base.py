"""The estimator core shared by :class:`~sktag.TagRegressor` and :class:`~sktag.TagClassifier`.

The data path of ``fit``, top to bottom::

    X ─ _inputs.as_columns ─ TagLayout (once) ─ _encoding.encode ─ rows
      ─ prefix pass (_engine; cached with pooled states by _cache.PrefixStore)
      ─ function-tag step (_engine.tag_forward) ─ readout ─ head ─ task loss
      ─ _training.TrainingLoop

``fit`` validates everything and builds the new state in local variables;
the estimator's attributes change only when it succeeds (or, after at
least one complete epoch, when it is interrupted).
"""

from __future__ import annotations

import copy
import os
import time
import warnings

import numpy as np
import torch
from sklearn.base import TransformerMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted

from . import _engine
from ._encoding import TagLayout, domain_key, encode
from ._cache import build_store
from ._inputs import as_columns, check_sample_weight, resolve_domains
from ._mixins import BackboneMixin, autocast
from ._readouts import LAYERS, READOUTS, TagInit, TagModule, init_tag
from ._tagio import TagSetMixin
from ._threads import torch_threads
from ._training import FitData, History, TrainingLoop, progress
from ._validation import BOOLEAN, COMMON, Instance, Options, validate_params

def _standardize(head, F, w):
    """Set the head's input standardisation to the weighted mean and std of features ``F``."""
    mean = np.average(F, axis=0, weights=w)
    head.set_standardization(mean, np.sqrt(np.average((F - mean) ** 2, axis=0, weights=w)))


class BaseTagEstimator(TransformerMixin, TagSetMixin, BackboneMixin):
    """fit / partial_fit / predict plumbing; the task object defines the targets.

    Also a transformer of strings to the readout features (``transform``,
    ``fit_transform``, ``get_feature_names_out``, ``set_output``).
    """

    _task_class = None
    _parameter_constraints = {
        **COMMON,
        "domains": [Instance(str, list, tuple, dict, what="a domain name, a list or a dict")],
        "domain_tags": [Instance(str, os.PathLike, object, what="a TagSet, a path or 'text'"), None],
        "tune_domain_tags": [BOOLEAN],
        "isolate_segments": [BOOLEAN],
        "readout": [Options(*READOUTS)],
        "readout_layers": [LAYERS],
        "head_init": [Options("closed_form", "random")],
        "head_update": [Options("refit", "gradient")],
        "callbacks": [Instance(list, tuple), None],
        "class_weight": [Options("balanced"), Instance(dict), None],
        "scoring": [Options("accuracy", "loss")],
    }

    # ------------------------------------------------------------ parameters
    def _check_params(self):
        validate_params(self)
        if self.dtype is not None and self.device is not None:
            from .backbone import resolve_device, resolve_dtype

            resolve_dtype(self.dtype, resolve_device(self.device))
        for cb in self.callbacks or ():
            if not all(callable(getattr(cb, h, None)) for h in ("on_epoch_begin", "on_batch_end", "on_epoch_end")):
                raise ValueError(f"callbacks must be sktag Callback instances, got {cb!r}.")

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.string = True
        tags.input_tags.one_d_array = True
        tags.input_tags.two_d_array = True
        tags.input_tags.sparse = False
        tags.non_deterministic = False
        # ``transform`` gives the readout features: a transformer too (TransformerMixin), of strings to float64
        tags.transformer_tags.preserves_dtype = []
        return tags

    # ---------------------------------------------------------------- layout
    def _layout_for(self, n_columns, names, backbone):
        """The TagLayout of ``X`` for a fresh fit and the initial domain tags, sized alike.

        Every domain tag is made first (pretrained, the literal words of
        ``domain_tags="text"``, or the init rule), and the layout takes its
        lengths from those tensors, so the slots always match the tag table.
        """
        column_domains = resolve_domains(self.domains, n_columns, names)
        domains = TagLayout.build(column_domains, self.tag_length).domains  # distinct, case-insensitive
        spec = self.domain_tags
        if spec is None:
            tags = {d: init_tag(backbone, TagInit.MEAN, self.tag_length) for d in domains}
        elif isinstance(spec, str) and spec == TagInit.TEXT.value and not os.path.exists(spec):
            tags = {d: init_tag(backbone, TagInit.TEXT, self.tag_length, d) for d in domains}
        else:
            ts = self._pretrained_tagset(backbone)
            found = {d: ts.find(d) for d in domains}
            missing = [d for d, n in found.items() if n is None or ts.info(n)["kind"] != "domain"]
            if missing:
                held = [n for n in ts if ts.info(n)["kind"] == "domain"]
                raise ValueError(
                    f"no domain tag for the domain(s) {missing} of X in domain_tags; it holds the domain "
                    f"tags {held}. Pretrain those domains or pass domain_tags=None."
                )
            tags = {d: ts[n].clone() for d, n in found.items()}
        layout = TagLayout.build(column_domains, self.tag_length, names, {d: t.shape[0] for d, t in tags.items()})
        return layout, [tags[d] for d in layout.domains]

    def _pretrained_tagset(self, backbone):
        """The TagSet of ``domain_tags`` (an object or a path), checked against ``backbone``."""
        from .tags import TagSet

        spec = self.domain_tags
        ts = TagSet.load(spec, backbone=backbone) if isinstance(spec, (str, os.PathLike)) else spec
        if not isinstance(ts, TagSet):
            raise ValueError(f'domain_tags must be None, "text", a TagSet or a path, got {type(spec).__name__}.')
        ts.check_backbone(backbone)
        return ts

    def _readout(self, backbone):
        """The readout the parameters name (for a fresh fit)."""
        return READOUTS[self.readout](self.readout_layers, backbone)

    def _fitted_readout(self, backbone):
        """The readout of the fitted model (``readout_``, ``readout_layers_``), whatever the parameters say now."""
        return READOUTS[self.readout_](self.readout_layers_, backbone)

    def _check_continuable(self, backbone):
        """A warm start continues the fitted model: its structural parameters must not have changed."""
        now = self._readout(backbone)
        changed = [f"{name}={new!r} (fitted: {old!r})" for name, new, old in (
            ("readout", now.name, self.readout_),
            ("readout_layers", list(now.pooled_layers), self.readout_layers_),
            ("isolate_segments", bool(self.isolate_segments), self.isolate_segments_),
            ("canonicalize", bool(self.canonicalize), self.canonicalize_),
        ) if new != old]
        if changed:
            raise ValueError(f"warm_start: {', '.join(changed)} changed since the fit; refit with "
                             "warm_start=False.")

    # ------------------------------------------------------------ encoding
    def _encode(self, columns, labels, backbone, layout, on_invalid, canonicalize):
        """Rows of the already split ``columns`` (see :func:`sktag._inputs.as_columns`)."""
        return encode(columns, layout, backbone.tokenizer, row_labels=labels, max_length=self.max_length,
                      truncation=self.truncation, canonicalize=canonicalize, on_invalid=on_invalid,
                      validators=self._validators(), max_positions=backbone.max_positions)

    def _check_predict_columns(self, X):
        """Split ``X`` and check its columns against ``fit``'s; returns ``(columns, row_labels)``.

        Columns are matched by the names ``fit`` saw (``layout_.feature_names``),
        whatever their type: a different order or other names are refused.
        """
        columns, names, labels = as_columns(X)
        if len(columns) != self.n_features_in_:
            raise ValueError(
                f"X has {len(columns)} features, but {type(self).__name__} is expecting "
                f"{self.n_features_in_} features as input."
            )
        fitted = self.layout_.feature_names
        if fitted is not None and names is not None and [str(n) for n in names] != [str(n) for n in fitted]:
            raise ValueError(f"The column names of X {list(names)} differ from those seen in fit {list(fitted)}; "
                             "pass the same columns in the same order.")
        if fitted is not None and names is None and hasattr(self, "feature_names_in_"):
            warnings.warn("X has no column names, but this estimator was fitted with a DataFrame; columns "
                          "are matched by position.", UserWarning, stacklevel=4)
        if len(columns[0]) == 0:
            raise ValueError("Found array with 0 sample(s) (shape=(0,)) while a minimum of 1 is required.")
        return columns, labels

    # ------------------------------------------------------------- forward
    def _features(self, backbone, module, readout, layout, rows, b, store=None, isolate=False):
        """Readout features ``[B, f]`` of rows ``b`` (gradient to the trainable tags)."""
        with autocast(backbone):
            if torch.is_grad_enabled() and any(t.requires_grad for t in module.domain_tags):
                batch = _engine.collate([rows[i] for i in b], tail=layout.function_slots, device=backbone.device)
                h, pooled = _engine.full_forward_pooled(backbone, batch, module.tag_table(), isolate,
                                                        readout.pooled_layers)
            else:
                if store is not None:
                    kv, valid = store.gather(b)
                    pooled = store.gather_pooled(b)
                else:
                    batch = _engine.collate([rows[i] for i in b], device=backbone.device)
                    kv, pooled = _engine.prefix_pass(backbone, batch, module.tag_table().detach(), isolate,
                                                     readout.pooled_layers)
                    valid = batch.valid
                h = _engine.tag_forward(backbone, kv, valid, module.function_tag)
        return readout.features(h, pooled).to(module.head.mean.device)

    @torch.no_grad()
    def _all_features(self, backbone, module, readout, layout, rows, idx, lengths, store=None, desc=None,
                      isolate=False):
        out = None
        batches = _engine.length_batches(idx, lengths, self.predict_batch_size)
        for b in progress(batches, bool(self.verbose) and desc is not None, desc=desc, leave=False):
            f = self._features(backbone, module, readout, layout, rows, b, store, isolate).double().cpu().numpy()
            if out is None:
                out = np.full((len(rows), f.shape[1]), np.nan)
            out[b] = f
        return out

    def _build_store(self, backbone, module, readout, rows, lengths, idx, isolate):
        if self.tune_domain_tags:  # the prefix changes with the domain tags: nothing to cache
            return None, 0
        return build_store(backbone, rows, lengths, idx, module.tag_table().detach(), isolate,
                           readout.pooled_layers, self.prefix_cache, self.predict_batch_size, self.verbose)

    # --------------------------------------------------------------- heads
    def _solve_head(self, task, module, F, targets, w, standardize, penalty=None):
        """Closed-form head on features ``F`` of the training rows; returns its penalty."""
        if standardize:
            _standardize(module.head, F, w)
        Z = (F - module.head.mean.cpu().numpy()) / module.head.scale.cpu().numpy()
        coef, icpt, penalty = task.closed_form(Z, targets, w, random_state=0,
                                               n_outputs=module.head.linear.out_features, penalty=penalty)
        module.head.set_weights(coef, icpt)
        return penalty

    # ------------------------------------------------------------- fitting
    def _fit(self, X, y, sample_weight=None, *, incremental=False, classes=None):
        self._check_params()
        with torch_threads(self.n_threads):
            return self._fit_checked(X, y, sample_weight, incremental, classes)

    def _fit_checked(self, X, y, sample_weight, incremental, classes):
        fitted = hasattr(self, "module_")
        continuing = fitted and (self.warm_start or incremental)
        columns, names, labels = as_columns(X)
        n = len(columns[0])
        if n == 0:
            raise ValueError(f"Found array with 0 sample(s) (shape=(0, {len(columns)})) while a minimum of 1 "
                             "is required.")
        task = self._task_class(type(self).__name__)
        if y is None:
            task.fit_targets(None, None)  # raises sklearn's "requires y" message
        y_arr = np.asarray(y)  # also array-likes without len() (__array__ only)
        n_y = y_arr.shape[0] if y_arr.ndim else 0
        if n_y != n:
            raise ValueError(f"X has {n} samples but y has {n_y}; they must match.")
        sw = check_sample_weight(sample_weight, n)
        backbone = self._get_backbone(refit=not continuing)
        rng = check_random_state(self.random_state)
        if continuing:
            layout = self.layout_
            new_domains = resolve_domains(self.domains, len(columns), names)
            if [domain_key(d) for d in new_domains] != [domain_key(d) for d in layout.column_domains]:
                raise ValueError(f"warm_start: X now has the domains {new_domains} but the fitted tags are for "
                                 f"{list(layout.column_domains)}; refit with warm_start=False.")
            if self.tag_length != layout.function_length:
                raise ValueError(f"warm_start: tag_length is now {self.tag_length} but the fitted function tag "
                                 f"has {layout.function_length} vectors; refit with warm_start=False.")
            self._check_continuable(backbone)
            state = self._task_state_
            targets = task.encode(y, state)
            module = copy.deepcopy(self.module_)
            module.domain_tags.requires_grad_(self.tune_domain_tags)
            readout, isolate, canonicalize = self._fitted_readout(backbone), self.isolate_segments_, self.canonicalize_
            history = copy.deepcopy(self._history)
            if self.early_stopping and not history.early_stopping and not incremental:
                history.early_stopping, history.validation_scores = True, []  # from now on
        else:
            layout, domain_tags = self._layout_for(len(columns), names, backbone)
            targets, state = (task.fit_targets(y, sw, classes) if classes is not None
                              else task.fit_targets(y, sw))
            readout, isolate, canonicalize = self._readout(backbone), self.isolate_segments, self.canonicalize
            module = TagModule(domain_tags,
                               init_tag(backbone, TagInit.MEAN, self.tag_length),
                               readout.n_features(backbone.hidden_size), task.n_outputs(state),
                               tune_domain_tags=self.tune_domain_tags)
            history = History(self.early_stopping and not incremental)
        weights = sw * task.class_weights(targets, state, getattr(self, "class_weight", None), sw)
        rows, _ = self._encode(columns, labels, backbone, layout, "raise", canonicalize)
        module.to(backbone.device)

        train_idx, val_idx = self._split(n, targets, weights, rng, incremental)
        lengths = np.array([len(r) for r in rows])
        t0 = time.perf_counter()
        store, store_bytes = self._build_store(backbone, module, readout, rows, lengths,
                                               np.concatenate([train_idx, val_idx]), isolate)
        prefix_time = time.perf_counter() - t0 if store is not None else 0.0

        head_alpha = getattr(self, "head_alpha_", None) if continuing else None  # a refit chooses anew
        refit = self.head_update == "refit"
        w_train = weights[train_idx]

        def solve(standardize, idx=train_idx, penalty=None):
            F = self._all_features(backbone, module, readout, layout, rows, idx, lengths, store,
                                   isolate=isolate)[idx]
            return self._solve_head(task, module, F, targets[idx], weights[idx], standardize, penalty)

        if not continuing:
            gen = torch.Generator().manual_seed(int(rng.randint(0, 2**31 - 1)))
            if self.head_init == "closed_form":
                head_alpha = solve(standardize=True)
            else:
                if readout.name != "tag":  # pooled features have very different scales: standardise
                    F = self._all_features(backbone, module, readout, layout, rows, train_idx, lengths, store,
                                           isolate=isolate)
                    _standardize(module.head, F[train_idx], w_train)
                bound = 1.0 / np.sqrt(module.head.linear.in_features)
                w0 = torch.empty(module.head.linear.weight.shape).uniform_(-bound, bound, generator=gen)
                module.head.set_weights(w0, torch.zeros(w0.shape[0]))  # drawn on CPU: the same on any device

        y_t = task.target_tensor(targets, backbone.device)
        w_t = torch.as_tensor(weights, dtype=torch.float32, device=backbone.device)
        if refit:  # the head is solved in closed form, not trained
            module.head.requires_grad_(False)
        trained = [p for p in module.parameters() if p.requires_grad]
        opt = torch.optim.AdamW(trained, lr=self.learning_rate_init, weight_decay=self.alpha)

        def step(b):
            out = module.head(self._features(backbone, module, readout, layout, rows, b, store, isolate))
            b_t = _engine.to_device(b, backbone.device)
            wb = w_t[b_t]
            return (task.loss(out, y_t[b_t]) * wb).sum(), wb.sum()

        score = task.neg_log_loss if getattr(self, "scoring", None) == "loss" else task.score

        def validate():
            raw = self._head_outputs(backbone, module, readout, layout, rows, val_idx, lengths, store,
                                     isolate=isolate)
            return score(raw[val_idx], targets[val_idx], weights[val_idx])

        class _Refit:  # re-solve the head after each epoch, before validation
            def on_epoch_trained(self_):
                nonlocal head_alpha
                head_alpha = solve(standardize=False, penalty=head_alpha)

        batch_size = (64 if backbone.device.type == "cuda" else 32) if self.batch_size == "auto" else self.batch_size
        loop = TrainingLoop(module, opt, max_iter=1 if incremental else self.max_iter, batch_size=batch_size,
                            n_iter_no_change=self.n_iter_no_change, tol=self.tol,
                            early_stopping=history.early_stopping, auto_batch=self.batch_size == "auto",
                            verbose=self.verbose, callbacks=self.callbacks)
        data = FitData(train_idx, val_idx, lengths, float(w_train.sum()))
        t1 = time.perf_counter()

        def commit():
            module.head.requires_grad_(not refit)
            self._commit(backbone, layout, module, task, state, history, names, readout, isolate, canonicalize,
                         dict(prefix_time_=prefix_time, fit_time_=time.perf_counter() - t1,
                              batch_size_=loop.batch_size, prefix_cache_bytes_=int(store_bytes),
                              head_alpha_=head_alpha))

        try:
            outcome = loop.run(data, step, rng, history, validate if history.early_stopping else None,
                               after_epoch=_Refit().on_epoch_trained if refit else None)
        except FloatingPointError:
            # the loop restored the last finite epoch: keep it (as documented) unless nothing was learned
            if history.n_iter > 0 or continuing:
                commit()
            raise
        if outcome.interrupted and history.n_iter == 0 and not continuing:
            raise KeyboardInterrupt  # nothing learned: the estimator stays as it was
        if refit and len(val_idx):
            # the validation part chose the epoch; the final closed-form head uses every row
            head_alpha = solve(standardize=False, idx=np.sort(np.concatenate([train_idx, val_idx])),
                               penalty=head_alpha)
        commit()
        if outcome.interrupted:
            kept = "the best validation epoch so far" if history.early_stopping else "the last complete epoch"
            warnings.warn(f"fit was interrupted after {history.n_iter} complete epochs; the estimator keeps the "
                          f"weights of {kept} and can be used, or trained further with warm_start=True.",
                          UserWarning, stacklevel=3)
        elif not outcome.converged and not history.early_stopping and not incremental:
            self._warn_not_converged(history)
        return self

    def _commit(self, backbone, layout, module, task, state, history, names, readout, isolate, canonicalize,
                extra):
        """Replace the fitted state in one go.

        Everything a prediction depends on is recorded here (layout, readout
        and its layers, isolation, canonicalisation, dtype), so that
        ``predict``, ``transform`` and ``tagset`` read the fitted state, never
        parameters changed after ``fit``.
        """
        widths = backbone.hidden_widths()
        attrs = dict(module_=module, layout_=layout, n_features_in_=layout.n_features,
                     readout_=readout.name, readout_layers_=list(readout.pooled_layers),
                     isolate_segments_=bool(isolate), canonicalize_=bool(canonicalize), dtype_=backbone.dtype,
                     _readout_widths=[int(module.function_tag.shape[1])]
                     + [int(widths[i]) for i in readout.pooled_layers],
                     column_domains_=list(layout.column_domains), domains_=layout.domains,
                     backbone_identity_=backbone.identity, backbone_fingerprint_=backbone.fingerprint,
                     _task_state_=state, _history=history, _carried_validators=self._validators(),
                     loss_curve_=history.loss_curve, validation_scores_=history.validation_scores,
                     best_loss_=history.best_loss, best_validation_score_=history.best_validation_score,
                     best_epoch_=history.best_epoch, n_iter_=history.n_iter, t_=history.t,
                     epoch_times_=history.epoch_times, **task.attributes(state), **extra)
        if names is not None and all(isinstance(c, str) for c in names):
            attrs["feature_names_in_"] = np.asarray(names, dtype=object)
        elif hasattr(self, "feature_names_in_"):
            del self.feature_names_in_
        self.__dict__.update(attrs)

    def _warn_not_converged(self, history):
        curve = history.loss_curve
        if curve and curve[-1] == 0:
            return  # a training loss of zero has nothing left to settle
        if len(curve) >= 2 and curve[-1] < curve[-2]:
            trend = f"the training loss was still falling ({curve[-2]:.4g} -> {curve[-1]:.4g})"
        elif len(curve) >= 2 and curve[-1] > curve[-2]:
            trend = (f"the training loss rose in the last epoch ({curve[-2]:.4g} -> {curve[-1]:.4g}; lowest "
                     f"{history.best_loss:.4g}); a lower learning_rate_init may help")
        elif len(curve) >= 2:
            trend = f"the training loss did not change in the last epoch ({curve[-1]:.4g})"
        else:
            trend = f"the training loss was {curve[-1]:.4g}"
        warnings.warn(f"Stopped after max_iter={self.max_iter} epochs before the training loss settled: {trend}. "
                      "The weights of the last epoch are kept (use early_stopping=True to keep the best "
                      "validation epoch); raise max_iter if the fit is not good enough.",
                      ConvergenceWarning, stacklevel=4)

    def _split(self, n, targets, weights, rng, incremental):
        """Training and validation rows, both drawn from the rows of positive weight.

        Rows of weight zero take no part in the fit at all, so a fit with them
        is the fit without them (same split, same batches).
        """
        idx = np.flatnonzero(weights > 0)
        if not self.early_stopping or incremental:
            return idx, idx[:0]
        from sklearn.model_selection import train_test_split

        n_pos = len(idx)
        n_val = int(np.ceil(self.validation_fraction * n_pos))
        if n_val < 2 or n_pos - n_val < 1:
            weighted = " of positive weight" if n_pos < n else ""
            raise ValueError(f"early_stopping needs at least one training and two validation samples; with {n_pos} "
                             f"samples{weighted} and validation_fraction={self.validation_fraction} there are {n_val} "
                             "validation samples. Use more samples or early_stopping=False.")
        strata = self._task_class.stratify(targets)
        try:
            tr, va = train_test_split(idx, test_size=n_val, random_state=rng.randint(0, 2**31 - 1),
                                      stratify=None if strata is None else strata[idx])
        except ValueError as exc:
            raise ValueError(f"Cannot hold out a stratified validation set of {n_val} samples: {exc}. Use more "
                             "samples, a larger validation_fraction or early_stopping=False.") from exc
        return np.sort(tr), np.sort(va)

    # ----------------------------------------------------------- inference
    def _head_outputs(self, backbone, module, readout, layout, rows, idx, lengths, store=None, desc=None,
                      isolate=False):
        F = self._all_features(backbone, module, readout, layout, rows, idx, lengths, store, desc, isolate)
        out = np.full((len(rows), module.head.linear.out_features), np.nan)
        if F is not None:
            ok = np.asarray(idx)
            with torch.no_grad():
                out[ok] = module.head(torch.as_tensor(F[ok], dtype=torch.float32,
                                                      device=module.head.mean.device)).double().cpu().numpy()
        return out

    def _predict_path(self, X, head):
        """Head outputs (``head=True``) or readout features of ``X``, from the fitted state only."""
        check_is_fitted(self, "module_")
        self._check_params()
        columns, labels = self._check_predict_columns(X)
        with torch_threads(self.n_threads), torch.inference_mode():
            backbone = self._get_backbone()
            self.module_.to(backbone.device)
            rows, valid = self._encode(columns, labels, backbone, self.layout_, self.on_invalid, self.canonicalize_)
            idx = np.flatnonzero(valid)
            lengths = np.array([len(r) if r is not None else 0 for r in rows])
            readout = self._fitted_readout(backbone)
            args = (backbone, self.module_, readout, self.layout_, rows, idx, lengths)
            if head:
                return self._head_outputs(*args, desc="predict", isolate=self.isolate_segments_)
            F = self._all_features(*args, desc="transform", isolate=self.isolate_segments_)
            return F if F is not None else np.full((len(rows), sum(self._readout_widths)), np.nan)

    def _raw_predict(self, X):
        """Head outputs for ``X`` in the original row order (NaN for invalid rows)."""
        return self._predict_path(X, head=True)

    def transform(self, X):
        """Readout features of ``X`` (the head's input before standardisation).

        The paper's readout gives ``hidden_size`` columns (the function tag's
        final state); ``readout="pooled"`` adds ``hidden_size`` per pooled
        layer.  Invalid rows (``on_invalid="nan"``) are NaN.

        Parameters
        ----------
        X : sequence of str, or DataFrame / 2-D array of str columns

        Returns
        -------
        ndarray of shape (n_samples, n_features)
        """
        return self._predict_path(X, head=False)

    def get_feature_names_out(self, input_features=None):
        """Names of the columns :meth:`transform` gives.

        ``function_tag_<k>`` for the final hidden state at the last
        function-tag position, then, with ``readout="pooled"``,
        ``data_L<layer>_mean_<k>`` for the mean data-token state of each
        pooled layer (``readout_layers_``).

        Parameters
        ----------
        input_features : array-like of str, optional
            Ignored apart from a check: when given it must name the input
            columns seen in ``fit``.

        Returns
        -------
        ndarray of str
        """
        check_is_fitted(self, "module_")
        if input_features is not None:
            given = [str(c) for c in input_features]
            fitted = self.layout_.feature_names
            expected = [str(c) for c in fitted] if fitted is not None else None
            if (expected is not None and given != expected) or len(given) != self.n_features_in_:
                raise ValueError(f"input_features {given} do not match the {self.n_features_in_} input columns "
                                 f"seen in fit{'' if expected is None else f' {expected}'}.")
        tag_width, *layer_widths = self._readout_widths
        names = [f"function_tag_{k}" for k in range(tag_width)]
        for layer, width in zip(self.readout_layers_, layer_widths):
            names += [f"data_L{layer}_mean_{k}" for k in range(width)]
        return np.asarray(names, dtype=object)
