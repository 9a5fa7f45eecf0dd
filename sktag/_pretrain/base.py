"""What the domain-tag pretrainers share: strings in, one learned domain tag out.

A pretrainer learns the ``p`` vectors of one domain tag (``<SMILES>``) in
front of unlabeled strings of its domain, against a frozen LLM, and hands
them on as a :class:`~sktag.TagSet` (``tags_``) that the estimators take
through ``domain_tags``.  The objectives differ (next-token prediction in
:class:`~sktag.pretrain.DomainTagPretrainer`, RDKit descriptors predicted
from the pooled states in :class:`~sktag.pretrain.DescriptorTagPretrainer`);
this base holds the rest: parameter checks, string validation, the encoding
``[<Domain>] tokens(s) (+ EOS)``, warm starts, the training loop and the
commit of the fitted state.

A subclass implements :meth:`TagPretrainerBase._objective`, which returns
an :class:`Objective`: the per-batch loss and what the training loop and
the commit need besides.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch
from sklearn.base import BaseEstimator
from sklearn.utils import check_random_state

from .._fit.backbone_access import BackboneMixin
from .._fit.records import PretrainState
from .._fit.training import FitData, History, Outcome, TrainingLoop, check_callbacks, in_training
from .._forward.deep import DeepTable
from .._forward.encoding import TagLayout, layout_rows, token_limit, tokenize
from .._forward.inputs import as_columns, check_strings
from .._forward.taginit import TagInit, init_tag
from .._runtime.threads import torch_threads
from .._runtime.validation import COMMON, Instance, string_input_tags, validate_params
from ..backbone import resolve_device, resolve_dtype
from ..tags import TagSet


@dataclass
class Objective:
    """What one pretraining objective gives the training loop.

    ``step(batch_rows) -> (loss_sum, weight_sum)`` is one batch's summed loss
    with the gradient to the tag; ``weight_total`` is the sum of the weights
    over the training set (tokens, or strings); ``after_epoch`` runs after
    each epoch's steps (a closed-form head is re-solved there); ``fitted``
    holds the objective's own fitted attributes, set on the estimator at
    commit; ``description`` goes into the saved tag's metadata.
    """

    rows: list
    step: Callable
    weight_total: float
    after_epoch: Callable | None = None
    fitted: dict = field(default_factory=dict)
    description: str = ""


class PretrainModule(torch.nn.Module):
    """The domain tag a pretrainer learns: ``tag`` and, for a deep tag, its blocks ``deep`` of kind ``deep_kind``."""

    def __init__(self, tag, deep=None, device=None):
        super().__init__()
        self.tag = torch.nn.Parameter(tag.to(device, torch.float32))
        self.deep = None if deep is None else torch.nn.Parameter(deep.blocks.to(device, torch.float32))
        self.deep_kind = None if deep is None else deep.kind

    def deep_table(self):
        """The deep blocks being trained (a DeepTable with the gradient to them), or None for a shallow tag."""
        return None if self.deep is None else DeepTable(self.deep, self.deep_kind)


class TagPretrainerBase(BackboneMixin, BaseEstimator):
    """Shared machinery of the domain-tag pretrainers (not used directly)."""

    _fitted_marker = "tags_"

    _parameter_constraints = {
        **COMMON,
        "domain": [Instance(str, what="a domain name")],
        "callbacks": [Instance(list, tuple), None],
    }

    def _check_params(self):
        validate_params(self)
        if not self.domain.strip() or "/" in self.domain:
            raise ValueError(f"domain must be a non-empty name without '/', such as 'SMILES'; got {self.domain!r}.")
        check_callbacks(self.callbacks)
        resolve_dtype(self.dtype, resolve_device(self.device))

    def __sklearn_tags__(self):
        return string_input_tags(super().__sklearn_tags__(), two_d=False, target_required=False)

    # ------------------------------------------------------------------ inputs
    def _check_strings(self, X):
        """A list of validated, normalised strings from a 1-D ``X``."""
        from ..domains import validate_strings

        columns, _, row_labels = as_columns(X)
        if len(columns) != 1:
            raise ValueError(
                f"{type(self).__name__} takes a 1-D sequence of {self.domain} strings; "
                f"got {len(columns)} columns."
            )
        strings, _ = check_strings(columns[0], row_labels)
        if not strings:
            raise ValueError("Found array with 0 sample(s) (shape=(0,)) while a minimum of 1 is required.")
        norm, _ = validate_strings(strings, self.domain, row_labels=row_labels, canonicalize=self.canonicalize,
                                   validator=self.domain_validators().get(self.domain.strip().lower()))
        return list(norm)

    def _encode_strings(self, strings, backbone, tag_length, add_eos):
        """``(rows, n_tokens)``: one :class:`~sktag._forward.encoding.EncodedRow` per string, and its token count.

        Each row is ``[<Domain>] tokens(s)``, plus the tokenizer's EOS token
        when ``add_eos`` and the string was not cut at ``max_length``.
        """
        tok = backbone.tokenizer
        eos = getattr(tok, "eos_token_id", None) if add_eos else None
        # the tag and the EOS token take positions of the model too
        limit, why = token_limit(self.max_length, 1, tag_length + (eos is not None), backbone.max_positions)
        ids = tokenize(tok, [strings], limit, self.truncation, why=why)[0]
        cut = set()
        if eos is not None:
            # a string cut at the limit does not end there: no EOS after it
            at_limit = [i for i, t in enumerate(ids) if len(t) == limit]
            full = tok([strings[i] for i in at_limit], add_special_tokens=False)["input_ids"] if at_limit else []
            cut = {i for i, f in zip(at_limit, full) if len(f) > limit}
        layout = TagLayout.build([self.domain], 0, domain_lengths={self.domain: tag_length})
        suffix = (lambda i: [] if i in cut else [int(eos)]) if eos is not None else None
        rows = layout_rows([ids], layout, suffix=suffix)
        return rows, np.array([len(r) - tag_length for r in rows], dtype=np.int64)

    def _init_tag(self, backbone):
        return init_tag(backbone, TagInit.MEAN, self.tag_length)

    def _deep_start(self, backbone):
        """The start of the tag's deep blocks (a :class:`~sktag._forward.deep.DeepTable`), or None for a shallow tag."""
        return None

    def _fitted_deep(self):
        """The fitted tag's deep blocks (a :class:`~sktag._forward.deep.DeepTable`), or None for a shallow tag."""
        block = self.tags_.deep.get(self.domain_)
        return None if block is None else DeepTable(block, self.tags_.deep_kind(self.domain_))

    # ------------------------------------------------------------------ fitting
    def fit(self, X, y=None):
        """Learn the domain tag on unlabeled strings.

        Parameters
        ----------
        X : sequence of str
            Strings of the domain (1-D: list, array, Series or one-column
            DataFrame).  Invalid strings (e.g. unparsable SMILES) raise.
        y : None
            Ignored; present for scikit-learn compatibility.

        Returns
        -------
        self : object
            The fitted estimator.
        """
        self._check_params()
        with torch_threads(self.n_threads):
            return self._fit(X)

    def _objective(self, strings, backbone, module, rng, initial=None):  # pragma: no cover - abstract
        """The :class:`Objective` of this pretrainer on ``strings`` (``module.tag`` is the tag being learned).

        ``initial`` is the untrained tag when a warm start continues a fitted
        one (None on a fresh fit, where ``module.tag`` starts from it).
        """
        raise NotImplementedError

    def _fit(self, X):
        """Check, encode, train the tag in the :class:`~sktag._fit.training.TrainingLoop`, commit what it keeps."""
        state = self.check_fit_input(X)
        state.optimizer = self.build_optimizer(state.module)
        with in_training(self, state):
            outcome = self.fit_loop(state)
        if outcome.keep:
            self._commit(state)
        outcome.conclude()
        return self

    def check_fit_input(self, X) -> PretrainState:
        """The backbone, the validated strings, the tag to train (fresh or continued) and the objective.

        Parameters
        ----------
        X : sequence of str
            The training strings.

        Returns
        -------
        PretrainState
            The fit in progress.
        """
        continuing = self._continues()
        backbone = self.get_backbone(refit=not continuing)
        if continuing:
            start, deep_start = self._continued_start(backbone)
            initial, history = self.initial_tag_, copy.deepcopy(self._history)
        else:
            initial = self._init_tag(backbone)
            start, history, deep_start = initial.clone(), History(False), self._deep_start(backbone)
        strings = self._check_strings(X)
        module = PretrainModule(start, deep_start, backbone.device)
        state = PretrainState(strings=strings, backbone=backbone, module=module, history=history, initial=initial,
                              rng=check_random_state(self.random_state), continuing=continuing)
        state.objective = self._objective(strings, backbone, module, state.rng, initial if continuing else None)
        return state

    def _continued_start(self, backbone):
        """``(tag, deep blocks)`` a warm start continues from; refused when the domain, length or depth changed."""
        start = self.tags_[self.domain_].clone() if self.domain_ == self.domain else None
        if start is None or start.shape[0] != self.tag_length:
            raise ValueError(
                "warm_start=True continues the fitted tag, but domain or tag_length changed "
                f"(fitted: {self.domain_!r}, {self.tags_[self.domain_].shape[0]} vectors); refit "
                "with warm_start=False."
            )
        deep_start, wanted = self._fitted_deep(), self._deep_start(backbone)
        if (None if deep_start is None else deep_start.kind) != (None if wanted is None else wanted.kind):
            raise ValueError("warm_start=True continues the fitted tag, but tag_depth changed; refit with "
                             "warm_start=False.")
        return start, deep_start

    def fit_loop(self, state: PretrainState) -> Outcome:
        """Epochs of the objective's step in the :class:`~sktag._fit.training.TrainingLoop`; how they ended.

        Parameters
        ----------
        state : PretrainState
            The fit in progress (also ``estimator.fit_state_`` while it trains).

        Returns
        -------
        Outcome
            How the run ended, and whether its state is kept.
        """
        objective = state.objective
        lengths = np.array([len(r) for r in objective.rows])
        loop = TrainingLoop(self, module=state.module, optimizer=state.optimizer, history=state.history,
                            max_iter=self.max_iter, batch_size=self.batch_size, n_iter_no_change=self.max_iter + 1,
                            verbose=self.verbose, callbacks=self.callbacks, desc=f"pretrain <{self.domain}>")
        t0 = time.perf_counter()
        outcome = loop.run(FitData(np.arange(len(lengths)), np.arange(0), lengths, float(objective.weight_total)),
                           objective.step, state.rng, continuing=state.continuing, after_epoch=objective.after_epoch)
        state.fit_time = time.perf_counter() - t0
        return outcome

    def build_optimizer(self, module):
        """AdamW over the tag (override to train it with another optimiser).

        Parameters
        ----------
        module : torch.nn.Module
            The module being trained: ``module.tag`` (and ``module.deep``, for a deep tag).

        Returns
        -------
        torch.optim.Optimizer
            The optimiser of the training loop.
        """
        trained = [module.tag] + ([] if module.deep is None else [module.deep])
        return torch.optim.AdamW(trained, lr=self.learning_rate_init, weight_decay=self.alpha)

    def _commit(self, state: PretrainState):
        """Replace the fitted state in one go (at the end of ``fit``)."""
        backbone, module, history, objective = state.backbone, state.module, state.history, state.objective
        ts = TagSet(backbone.identity, backbone.fingerprint, backbone.hidden_size)
        ts.add(self.domain, module.tag.detach().float().cpu(), kind="domain",
               description=f"pretrained by {type(self).__name__}: {history.n_iter} epochs, "
                           f"{len(objective.rows)} strings, {objective.description}")
        if module.deep is not None:
            ts.add_deep(self.domain, module.deep.detach().float().cpu(), kind=module.deep_kind)
        self._install_fitted(dict(
            fit_time_=state.fit_time, backbone_identity_=backbone.identity, backbone_fingerprint_=backbone.fingerprint,
            dtype_=backbone.dtype, initial_tag_=state.initial, _history=history, loss_curve_=history.loss_curve,
            n_iter_=history.n_iter, epoch_times_=history.epoch_times, **objective.fitted,
            _carried_validators=self.domain_validators(), tags_=ts, domain_=self.domain,
            **self._held_backbone(backbone)))

    def save(self, path):
        """Save :attr:`tags_` to a ``.safetensors`` file (``self.tags_.save(path)``).

        Parameters
        ----------
        path : str or path-like
            The file to write.
        """
        from sklearn.utils.validation import check_is_fitted

        check_is_fitted(self, "tags_")
        self.tags_.save(path)


def pretrain_rng_subset(rng, n, size):
    """Sorted positions of ``min(n, size)`` of ``n`` rows drawn without replacement."""
    if n <= size:
        return np.arange(n)
    return np.sort(rng.choice(n, size=size, replace=False))
