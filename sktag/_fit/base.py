"""The estimator core of :class:`~sktag.TagRegressor` and :class:`~sktag.TagClassifier`: ``fit`` as steps.

The data path of ``fit``, one module per step, each entered once::

    X ─ _forward.inputs (string columns, domains, sample weights)
      ─ _forward.encoding (TagLayout; encode: validated rows with tag slots)
      ─ _forward.states (prefix cache, function-tag step → engine States)
      ─ _forward.readouts (the head's input features) ─ _forward.module (standardised linear head)
      ─ _fit.tasks (loss, closed-form head, validation score)
      ─ _fit.training (TrainingLoop: epochs, stopping, the Outcome of the run)

``_fit`` calls the steps in order, skorch style, on a :class:`~sktag._fit.records.FitState`:
:meth:`~BaseTagEstimator.check_fit_input` (the inputs) →
:meth:`~BaseTagEstimator.initialize_layout` (layout, tags, readout) →
:meth:`~BaseTagEstimator.encode_rows` (rows, validation split) →
:meth:`~BaseTagEstimator.initialize_states` (prefix cache) →
:meth:`~BaseTagEstimator.initialize_head` →
:meth:`~BaseTagEstimator.build_optimizer` →
:meth:`~BaseTagEstimator.fit_loop` (with :meth:`~BaseTagEstimator.train_step`,
:meth:`~BaseTagEstimator.after_epoch`, :meth:`~BaseTagEstimator.validation_score`) →
:meth:`~BaseTagEstimator.finish_head` → :meth:`~BaseTagEstimator.commit_fit`.
Each is a public method a subclass may override.  The estimator's attributes
change only in ``commit_fit``, so a failed fit leaves it as it was.
"""

from __future__ import annotations

import copy
import time
import warnings
from functools import partial

import numpy as np
import torch
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state

from .._forward.deep import DeepLayers, block_shape, deep_domain_blocks, resolve_deep_layers
from .._forward.encoding import TagLayout, domain_key, encode
from .._forward.inputs import as_columns, check_sample_weight, resolve_domains
from .._forward.layers import LAYERS
from .._forward.module import TagModule
from .._forward.readouts import ReadoutSpec, make_readout
from .._forward.states import StateSource
from .._forward.taginit import DOMAIN_TAG_LENGTH, TagInit, domain_tag_vectors, domain_tags_digest, init_tag
from .._runtime.report import user_stacklevel
from .._runtime.threads import torch_threads
from .._runtime.validation import (BOOLEAN, COMMON, NONNEG_INT, Instance, Interval, Options, string_input_tags,
                                   validate_params)
from .backbone_access import BackboneMixin
from .inference import PredictMixin
from .records import FitInputs, FitModel, FitRun, FitState
from .tagio import TagSetMixin
from .training import FitData, History, Outcome, TrainingLoop, check_callbacks, in_training


class BaseTagEstimator(PredictMixin, TagSetMixin, BackboneMixin):
    """The fit steps; the task object (``_task_class``) defines the targets.

    Also a transformer of strings to the readout features (``transform``,
    ``fit_transform``, ``get_feature_names_out``, ``set_output``).
    """

    _task_class = None
    _fitted_marker = "module_"
    _parameter_constraints = {
        **COMMON,
        "domains": [Instance(str, list, tuple, dict, what="a domain name, a list or a dict")],
        "domain_tags": [Instance(str, object, what="a TagSet, a path, 'pretrained' or 'text'"), None],
        "domain_tag_length": [NONNEG_INT, None],
        "tag_depth": [Options("shallow", "deep")],
        "deep_layers": [DeepLayers()],
        "domain_tag_depth": [Options("auto", "shallow", "deep", "kv")],
        "tune_domain_tags": [BOOLEAN],
        "domain_learning_rate": [Interval("real", 0, None, closed="neither"), None],
        "isolate_segments": [BOOLEAN],
        "readout": [ReadoutSpec()],
        "readout_layers": [LAYERS],
        "head_init": [Options("closed_form", "random")],
        "head_update": [Options("refit", "gradient")],
        "callbacks": [Instance(list, tuple), None],
    }

    def _check_params(self):
        validate_params(self)
        if self.dtype is not None and self.device is not None:
            from ..backbone import resolve_device, resolve_dtype

            resolve_dtype(self.dtype, resolve_device(self.device))
        check_callbacks(self.callbacks)

    def __sklearn_tags__(self):
        tags = string_input_tags(super().__sklearn_tags__())
        tags.transformer_tags.preserves_dtype = []  # strings in, float64 readout features out
        return tags

    def _fit(self, X, y, sample_weight=None, *, incremental=False, classes=None):
        self._check_params()
        with torch_threads(self.n_threads):
            state = self.check_fit_input(X, y, sample_weight, incremental=incremental, classes=classes)
            self.initialize_layout(state)
            self.encode_rows(state)
            self.initialize_states(state)
            self.initialize_head(state)
            state.run.optimizer = self.build_optimizer(state)
            with in_training(self, state):
                outcome = self.fit_loop(state)
            if outcome.error is None:
                self.finish_head(state)
            if outcome.keep:
                self.commit_fit(state)
            outcome.conclude(self._warn_not_converged if self._warns_not_converged(state) else None)
        return self

    # ------------------------------------------------------------ 1. validate
    def check_fit_input(self, X, y, sample_weight=None, *, incremental=False, classes=None) -> FitState:
        """Split and check ``X``, ``y`` and ``sample_weight``; the task, its targets and the backbone.

        A warm start (or ``partial_fit``) continues the fitted model: its
        domains and structure must not have changed.

        Parameters
        ----------
        X : sequence of str, or DataFrame / 2-D array of str columns
            The training strings, as :meth:`fit` takes them.
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            Their targets (labels for a classifier).
        sample_weight : array-like of shape (n_samples,) or None, default=None
            Row weights in the loss.
        incremental : bool, default=False
            ``True`` for :meth:`partial_fit`: continue the fitted model.
        classes : array-like, default=None
            All the classes (a classifier's first :meth:`partial_fit`).

        Returns
        -------
        FitState
            The fit in progress, which the next steps fill in.
        """
        continuing = self._continues(incremental)
        columns, names, labels = as_columns(X)
        n = len(columns[0])
        if n == 0:
            raise ValueError(f"Found array with 0 sample(s) (shape=(0, {len(columns)})) while a minimum of 1 "
                             "is required.")
        task = self._task_class.from_params(self)
        if y is None:
            task.fit_targets(None, None)  # raises sklearn's "requires y" message
        y_arr = np.asarray(y)  # also array-likes without len() (__array__ only)
        n_y = y_arr.shape[0] if y_arr.ndim else 0
        if n_y != n:
            raise ValueError(f"X has {n} samples but y has {n_y}; they must match.")
        sw = check_sample_weight(sample_weight, n)
        column_domains = resolve_domains(self.domains, len(columns), names)
        backbone = self.get_backbone(refit=not continuing)
        if continuing:
            self._check_continuable(column_domains, backbone)
            task_state = self._task_state_
            targets = task.encode(y, task_state)
        else:
            targets, task_state = (task.fit_targets(y, sw, classes) if classes is not None
                                   else task.fit_targets(y, sw))
        inputs = FitInputs(columns=columns, names=names, labels=labels, column_domains=column_domains, task=task,
                           task_state=task_state, targets=targets, weights=task.row_weights(targets, task_state, sw),
                           backbone=backbone, rng=check_random_state(self.random_state), continuing=continuing,
                           incremental=incremental)
        return FitState(inputs=inputs)

    def _check_continuable(self, column_domains, backbone):
        """A warm start continues the fitted model: its domains and structure must not have changed."""
        fitted = self.layout_
        if [domain_key(d) for d in column_domains] != [domain_key(d) for d in fitted.column_domains]:
            raise ValueError(f"warm_start: X now has the domains {column_domains} but the fitted tags are for "
                             f"{list(fitted.column_domains)}; refit with warm_start=False.")
        if self.tag_length != fitted.function_length:
            raise ValueError(f"warm_start: tag_length is now {self.tag_length} but the fitted function tag "
                             f"has {fitted.function_length} vectors; refit with warm_start=False.")
        now = make_readout(self.readout, backbone.hidden_widths(), self.readout_layers, fitted.n_features)
        deep_fitted = self.module_.tagged_blocks()  # (a changed tag_depth is reported once, on its own)
        deep_now = self._deep_layers(backbone) if self.tag_depth == self.tag_depth_ else deep_fitted
        changed = [f"{name}={new!r} (fitted: {old!r})" for name, new, old in (
            ("readout", now.name, self.readout_), ("readout_layers", now.fitted_layers, self.readout_layers_),
            ("tag_depth", self.tag_depth, self.tag_depth_),
            ("deep_layers", deep_now, deep_fitted),
            ("domain_tag_depth", self.domain_tag_depth,
             self.domain_tag_depth_ if self.domain_tag_depth != "auto" else "auto"),
            ("isolate_segments", bool(self.isolate_segments), self.isolate_segments_),
            ("canonicalize", bool(self.canonicalize), self.canonicalize_)) if new != old]
        fitted_digest = self._domain_tags_digest  # (None: fitted by a version that did not record it)
        if fitted_digest is not None and not changed:
            now_digest = domain_tags_digest(*self._start_domain_tags(column_domains, backbone))
            if now_digest != fitted_digest:
                changed.append("domain_tags (other domain tags than those the fit started from)")
        if changed:
            raise ValueError(f"warm_start: {', '.join(changed)} changed since the fit; refit with "
                             "warm_start=False.")

    def _deep_layers(self, backbone):
        """The blocks ``deep_layers`` names on ``backbone`` (a tuple; every block for ``"all"``); None if shallow."""
        if self.tag_depth != "deep":
            return None
        n = len(backbone.decoder_blocks())
        return resolve_deep_layers(self.deep_layers, n) or tuple(range(n))

    # ------------------------------------------------------------ 2. layout
    def initialize_layout(self, state: FitState) -> None:
        """The model to train (:class:`~sktag._fit.records.FitModel`) and the run's history.

        A fresh fit makes every domain tag first (pretrained, the words of
        ``domain_tags="text"``, or the init rule) and takes the layout's
        lengths from those tensors, so the slots always match the tag table.
        A warm start continues the fitted model and its history.

        Parameters
        ----------
        state : FitState
            The fit after :meth:`check_fit_input`; this step sets ``state.model`` and ``state.run``.
        """
        inputs = state.inputs
        if inputs.continuing:
            state.model, history = self._continued_model(), copy.deepcopy(self._history)
            self._continue_history(history, bool(self.early_stopping) and not inputs.incremental)
        else:
            state.model = self._new_model(inputs)
            history = History(self.early_stopping and not inputs.incremental)
        state.model.module.to(inputs.backbone.device)
        state.run = FitRun(history=history)

    def _continued_model(self) -> FitModel:
        """The fitted model, copied, to train further (warm start, ``partial_fit``)."""
        module = copy.deepcopy(self.module_)
        module.domain_tags.requires_grad_(self.tune_domain_tags)
        if module.domain_deep is not None:
            module.domain_deep.requires_grad_(self.tune_domain_tags)
        return FitModel(layout=self.layout_, module=module, readout=self._fitted_readout(),
                        isolate=self.isolate_segments_, canonicalize=self.canonicalize_,
                        domain_tags_digest=self._domain_tags_digest, head_alpha=self.head_alpha_)

    @staticmethod
    def _continue_history(history, validated):
        """The epochs from now on are validated or not as ``early_stopping`` says now.

        Never in ``partial_fit`` (one epoch on the rows given, none held out,
        as scikit-learn's MLP).
        """
        if validated and not history.early_stopping:
            history.early_stopping, history.validation_scores = True, []  # from now on
        elif not validated and history.early_stopping:
            # earlier scores stay on record, no new ones; patience now counts the training loss
            history.early_stopping, history.no_improvement_count = False, 0

    def _new_model(self, inputs: FitInputs) -> FitModel:
        """The layout, the untrained tags and head, and the readout of a fresh fit."""
        bb = inputs.backbone
        tags, blocks = self._start_domain_tags(inputs.column_domains, bb)
        digest = domain_tags_digest(tags, blocks)
        blocks = deep_domain_blocks(blocks, self.domain_tag_depth, bb, {d: t.shape[0] for d, t in tags.items()})
        layout = TagLayout.build(inputs.column_domains, self.tag_length, inputs.names,
                                 {d: t.shape[0] for d, t in tags.items()})
        readout = inputs.readout or make_readout(self.readout, bb.hidden_widths(), self.readout_layers,
                                                 layout.n_features)
        deep = block_shape(bb) if self.tag_depth == "deep" else None
        module = TagModule([tags[d] for d in layout.domains], init_tag(bb, TagInit.MEAN, self.tag_length),
                           readout.n_features, inputs.task.n_outputs(inputs.task_state),
                           tune_domain_tags=self.tune_domain_tags, deep_shape=deep,
                           domain_deep=[blocks[d] for d in layout.domains],
                           deep_layers=None if deep is None else resolve_deep_layers(self.deep_layers, deep[0]))
        return FitModel(layout=layout, module=module, readout=readout, isolate=bool(self.isolate_segments),
                        canonicalize=bool(self.canonicalize), domain_tags_digest=digest)

    def _start_domain_tags(self, column_domains, backbone):
        """``(vectors, blocks)``: every domain's tag as ``domain_tags`` and ``domain_tag_length`` give it now."""
        domains = TagLayout.build(column_domains, self.tag_length).domains  # distinct, any case
        n_domain = DOMAIN_TAG_LENGTH if self.domain_tag_length is None else self.domain_tag_length
        return domain_tag_vectors(self.domain_tags, domains, backbone, n_domain, deep=True)

    # ------------------------------------------------------------ 3. encode
    def encode_rows(self, state: FitState) -> None:
        """Validate, tokenise and lay out the rows (always raising on bad rows); the validation split.

        Parameters
        ----------
        state : FitState
            The fit after :meth:`initialize_layout`; this step sets the run's rows and split.
        """
        inputs, run, bb = state.inputs, state.run, state.inputs.backbone
        run.rows, _ = encode(inputs.columns, state.model.layout, bb.tokenizer, row_labels=inputs.labels,
                             max_length=self.max_length, truncation=self.truncation,
                             canonicalize=state.model.canonicalize, on_invalid="raise",
                             validators=self.domain_validators(), max_positions=bb.max_positions)
        run.train_idx, run.val_idx = self._split(len(run.rows), inputs.targets, inputs.weights, inputs.rng,
                                                 inputs.incremental)

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

    # ------------------------------------------------------------ 4. states
    def initialize_states(self, state: FitState) -> None:
        """The :class:`~sktag._forward.states.StateSource` of the rows, with the frozen prefix cached when it can be.

        With ``tune_domain_tags`` the prefix changes every step: nothing is cached.

        Parameters
        ----------
        state : FitState
            The fit after :meth:`encode_rows`; this step sets ``state.run.source``.
        """
        model, run = state.model, state.run
        run.source = StateSource(state.inputs.backbone, run.rows, model.layout, model.readout.needs, model.isolate,
                                 self.predict_batch_size, self.verbose)
        if not self.tune_domain_tags:
            run.source.cache(np.concatenate([run.train_idx, run.val_idx]), model.module, self.prefix_cache)

    # ------------------------------------------------------------ 5. head
    def initialize_head(self, state: FitState) -> None:
        """The head's start: closed form on the initial tags' features, or uniform random (the paper's).

        A warm start keeps the fitted head (and its penalty).

        Parameters
        ----------
        state : FitState
            The fit after :meth:`initialize_states`; this step sets ``state.module.head``.
        """
        if state.inputs.continuing:  # (the fitted head and its penalty)
            return
        gen = torch.Generator().manual_seed(int(state.inputs.rng.randint(0, 2**31 - 1)))
        if self.head_init == "closed_form":
            state.model.head_alpha = self.refit_head(state, standardize=True)
            return
        model, train = state.model, state.run.train_idx
        head = model.module.head
        if model.readout.standardize_random_head:  # features of very different scales: standardise
            head.standardize(state.run.source.features(model.module, model.readout, train)[train],
                             state.inputs.weights[train])
        bound = 1.0 / np.sqrt(head.linear.in_features)
        w0 = torch.empty(head.linear.weight.shape).uniform_(-bound, bound, generator=gen)
        head.set_weights(w0, torch.zeros(w0.shape[0]))  # drawn on CPU: the same on any device

    def refit_head(self, state: FitState, standardize=False, idx=None) -> float:
        """Solve the head in closed form on the features of rows ``idx`` (default: training); its penalty.

        Parameters
        ----------
        state : FitState
            The fit in progress, whose features the head is solved on.
        standardize : bool, default=False
            Also fit the head's feature standardisation on these rows.
        idx : array-like of int, default=None
            The rows to solve on; ``None`` is the training rows.

        Returns
        -------
        float
            The penalty the closed form chose (ridge alpha, or 1/C).
        """
        inputs, model = state.inputs, state.model
        idx = state.run.train_idx if idx is None else idx
        F = state.run.source.features(model.module, model.readout, idx)[idx]
        return model.module.head.solve(inputs.task, F, inputs.targets[idx], inputs.weights[idx],
                                       standardize=standardize, penalty=model.head_alpha)

    # ------------------------------------------------------------ 6. optimiser
    def build_optimizer(self, state: FitState) -> torch.optim.Optimizer:
        """AdamW over the trained tensors (the function tag; domain tags and head when they train).

        Override to train with another optimiser.

        Parameters
        ----------
        state : FitState
            The fit after :meth:`initialize_head`: ``state.module`` holds what trains.

        Returns
        -------
        torch.optim.Optimizer
            The optimiser of the training loop.
        """
        m = state.module
        if self.head_update == "refit":  # the head is solved in closed form, not trained
            m.head.requires_grad_(False)
        domain = [p for p in [*m.domain_tags, *(m.domain_deep or [])] if p.requires_grad]
        rest = [p for p in m.parameters() if p.requires_grad and all(p is not q for q in domain)]
        groups = [{"params": rest}]
        if domain:
            lr = self.learning_rate_init if self.domain_learning_rate is None else self.domain_learning_rate
            groups.append({"params": domain, "lr": lr})
        return torch.optim.AdamW(groups, lr=self.learning_rate_init, weight_decay=self.alpha)

    # ------------------------------------------------------------ 7. train
    def train_step(self, state: FitState, batch_rows):
        """``(Σ w·loss, Σ w)`` of one batch, with the graph to the trained tensors.

        Parameters
        ----------
        state : FitState
            The fit in progress (``estimator.fit_state_`` while it trains).
        batch_rows : ndarray of int
            The batch's row indices.

        Returns
        -------
        loss : torch.Tensor
            The weighted sum of the rows' losses.
        weight : torch.Tensor
            The sum of the rows' weights.
        """
        inputs, model, run = state.inputs, state.model, state.run
        states = run.source.states(model.module, batch_rows)
        out = model.module.head(model.readout.features(states).to(model.module.head.mean.device))
        dev = inputs.backbone.device
        if run.targets_t is None:  # on the device once per fit
            run.targets_t = inputs.task.target_tensor(inputs.targets, dev)
            run.weights_t = torch.as_tensor(inputs.weights, dtype=torch.float32, device=dev)
        rows = torch.as_tensor(np.asarray(batch_rows), device=dev)
        w = run.weights_t[rows]
        return (inputs.task.loss(out, run.targets_t[rows]) * w).sum(), w.sum()

    def validation_score(self, state: FitState) -> float:
        """The early-stopping score of the validation rows (the task's; higher is better).

        Parameters
        ----------
        state : FitState
            The fit in progress, with its validation rows ``state.run.val_idx``.

        Returns
        -------
        float
            The score; higher is better.
        """
        model, v = state.model, state.run.val_idx
        with torch.no_grad():
            raw = model.module.head.outputs(state.run.source.features(model.module, model.readout, v), v)
        return state.inputs.task.validation_score(raw[v], state.inputs.targets[v], state.inputs.weights[v])

    def fit_loop(self, state: FitState) -> Outcome:
        """Epochs of :meth:`train_step` in the :class:`~sktag._fit.training.TrainingLoop`; how they ended.

        With ``head_update="refit"`` the head is re-solved after every epoch
        (:meth:`after_epoch`), before validation.

        Parameters
        ----------
        state : FitState
            The fit, ready to train (also ``estimator.fit_state_`` while it does).

        Returns
        -------
        Outcome
            How the run ended (converged, stopped, interrupted, a non-finite
            loss) and whether its state is kept.
        """
        inputs, run = state.inputs, state.run
        cuda = inputs.backbone.device.type == "cuda"
        batch_size = (64 if cuda else 32) if self.batch_size == "auto" else self.batch_size
        loop = TrainingLoop(self, module=state.module, optimizer=run.optimizer, history=run.history,
                            max_iter=1 if inputs.incremental else self.max_iter, batch_size=batch_size,
                            n_iter_no_change=self.n_iter_no_change, tol=self.tol,
                            early_stopping=run.history.early_stopping, auto_batch=self.batch_size == "auto",
                            verbose=self.verbose, callbacks=self.callbacks)
        data = FitData(run.train_idx, run.val_idx, run.source.lengths, float(inputs.weights[run.train_idx].sum()))
        t0 = time.perf_counter()
        outcome = loop.run(data, partial(self.train_step, state), inputs.rng, continuing=inputs.continuing,
                           validate=partial(self.validation_score, state) if run.history.early_stopping else None,
                           after_epoch=partial(self.after_epoch, state) if self.head_update == "refit" else None)
        run.batch_size, run.fit_time = loop.batch_size, time.perf_counter() - t0
        return outcome

    def after_epoch(self, state: FitState) -> None:
        """Re-solve the closed-form head after an epoch's steps (``head_update="refit"``).

        Tuned domain tags move the features themselves: the head's
        standardisation follows them.

        Parameters
        ----------
        state : FitState
            The fit in progress, between an epoch's steps and its validation.
        """
        state.model.head_alpha = self.refit_head(state, standardize=state.module.tunes_domain_tags())

    def finish_head(self, state: FitState) -> None:
        """The final head: with ``head_update="refit"``, solved on every row once validation chose the epoch.

        Parameters
        ----------
        state : FitState
            The fit whose training ended.
        """
        refit = self.head_update == "refit"
        run = state.run
        if refit and len(run.val_idx):
            state.model.head_alpha = self.refit_head(state, standardize=state.module.tunes_domain_tags(),
                                                     idx=np.sort(np.r_[run.train_idx, run.val_idx]))
        state.module.head.requires_grad_(not refit)

    def _warns_not_converged(self, state: FitState) -> bool:
        """Whether a run that ``max_iter`` ended is worth a warning (not with early stopping or partial_fit)."""
        return not (state.history.early_stopping or state.inputs.incremental)

    def _warn_not_converged(self):
        history = self._history
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
                      ConvergenceWarning, stacklevel=user_stacklevel())

    # ------------------------------------------------------------ 8. commit
    def commit_fit(self, state: FitState) -> None:
        """Install the fitted state in one go.

        Everything a prediction depends on is recorded here (layout, readout
        and its layers, isolation, canonicalisation, dtype), so that
        ``predict``, ``transform`` and ``tagset`` read the fitted state, never
        parameters changed after ``fit``.

        Parameters
        ----------
        state : FitState
            The fit whose state is installed.
        """
        inputs, model, run = state.inputs, state.model, state.run
        bb, history, layout, source, module = inputs.backbone, run.history, model.layout, run.source, model.module
        attrs = dict(
            module_=module, layout_=layout, n_features_in_=layout.n_features,
            readout_=model.readout.name, readout_layers_=model.readout.fitted_layers,
            _hidden_widths=tuple(bb.hidden_widths()), isolate_segments_=bool(model.isolate),
            tag_depth_="shallow" if module.deep_tag is None else "deep",
            deep_layers_=module.tagged_blocks(),
            domain_tag_depth_="shallow" if module.domain_deep is None else module.domain_deep_kind,
            canonicalize_=bool(model.canonicalize), dtype_=bb.dtype, column_domains_=list(layout.column_domains),
            domains_=layout.domains, backbone_identity_=bb.identity, backbone_fingerprint_=bb.fingerprint,
            _task_state_=inputs.task_state, _history=history, _carried_validators=self.domain_validators(),
            loss_curve_=history.loss_curve, validation_scores_=history.validation_scores,
            best_loss_=history.best_loss, best_validation_score_=history.best_validation_score,
            best_epoch_=history.best_epoch, n_iter_=history.n_iter, t_=history.t, epoch_times_=history.epoch_times,
            prefix_time_=source.cache_seconds if source is not None else 0.0,
            prefix_cache_bytes_=source.cache_bytes if source is not None else 0,
            prefix_cache_location_=source.cache_location if source is not None else None,
            fit_time_=run.fit_time, batch_size_=run.batch_size, head_alpha_=model.head_alpha,
            _domain_tags_digest=model.domain_tags_digest, **self._held_backbone(bb),
            **inputs.task.attributes(inputs.task_state))
        self._install_fitted(attrs, inputs.names)
