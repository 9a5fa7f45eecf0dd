"""Stage 1 of Tag-LLM: learning a domain tag by next-token prediction.

A *domain tag* (``<SMILES>``, ``<Protein>``) is ``p`` learned vectors in the
input-embedding space of a frozen causal LLM, placed in front of every
string of its domain.  :class:`DomainTagPretrainer` learns it on unlabeled
strings of the domain: the input is ``[<Domain>] + tokens(string) (+ EOS)``
and the loss is the cross-entropy of predicting every token of the string
from the previous position, so the tag learns to tell the frozen model
"what follows is SMILES".  Only the tag is trained; the model's pretrained
embedding matrix and LM head are used as they are.

The learned tag is then given to :class:`~sktag.TagRegressor` /
:class:`~sktag.TagClassifier` (``domain_tags=pretrainer.tags_``), which keep
it frozen while they learn function tags.
"""

from __future__ import annotations

import copy
import time
from types import SimpleNamespace

import numpy as np
import torch
from sklearn.base import BaseEstimator
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted

from . import _engine
from ._encoding import TagLayout, layout_rows, token_limit, tokenize
from ._inputs import as_columns, check_strings
from ._backbone_access import BackboneMixin, autocast
from ._taginit import TagInit, init_tag
from ._threads import torch_threads
from ._training import FitData, History, TrainingLoop, check_callbacks, progress
from ._validation import BOOLEAN, COMMON, Instance, string_input_tags, validate_params
from .backbone import resolve_device, resolve_dtype
from .tags import TagSet

__all__ = ["DomainTagPretrainer"]


class DomainTagPretrainer(BackboneMixin, BaseEstimator):
    """Learn a domain tag (``<SMILES>``, ``<Protein>``, ...) on unlabeled strings.

    Stage 1 of Tag-LLM (Shen et al., ICML 2024).  Each string ``s`` becomes
    the input ``[<Domain>] tokens(s) [EOS]``, where ``<Domain>`` is
    ``tag_length`` trainable vectors spliced into the input embeddings of a
    frozen causal LM.  ``fit`` trains only those vectors, with AdamW, to
    minimise the mean cross-entropy of predicting each token of ``s`` from
    the position before it (the first token from the last tag position).
    Tag positions and padding are not prediction targets.  The LLM, its
    pretrained input embeddings and its LM head stay frozen and unchanged.

    Parameters
    ----------
    model : str or path-like, default="smollm2-135m"
        The frozen causal LM (alias of the embedded default model, a local
        folder or a Hugging Face hub id); see :class:`~sktag.TagRegressor`.
        Loaded once per process and shared, never pickled.
    domain : str, default="SMILES"
        Name of the domain, and of the learned tag in :attr:`tags_`.  Use the
        same name (same case) as in the ``domains`` parameter of the
        estimators that will use the tag.  ``"SMILES"`` and ``"Protein"``
        strings are validated (see :mod:`sktag.domains`).
    tag_length : int, default=10
        Number of vectors ``p`` of the tag.
    max_iter : int, default=5
        Number of epochs.
    batch_size : int, default=16
        Strings per optimisation step.
    learning_rate_init : float, default=1e-3
        AdamW learning rate.
    alpha : float, default=0.0
        AdamW weight decay.
    max_length : int, default=256
        Maximum number of tokens of one string (before the EOS token).
    truncation : {"warn", "raise"}, default="warn"
        Longer strings are truncated with one warning, or rejected.
    canonicalize : bool, default=True
        Canonicalise SMILES with RDKit (upper-case protein sequences), as the
        estimators do, so that the tag is learned on the strings it will
        later precede.
    add_eos : bool, default=True
        Append the tokenizer's end-of-sequence token (when it has one) to
        each string that was not truncated, so the tag also learns where a
        string ends.
    device : str, default="auto"
        ``"auto"`` is CUDA when available, else CPU.
    dtype : str, default="auto"
        Backbone dtype: ``"auto"`` is bfloat16 on CUDA and on CPUs with
        native bfloat16 (AVX512-BF16 or AMX; ``SKTAG_CPU_BF16=0/1`` overrides
        the detection), float32 on other CPUs.  The tag is kept in float32.
        :meth:`nll` and :meth:`score` run in the dtype ``fit`` resolved
        (``dtype_``).
    trust_remote_code : bool, default=False
        Passed to ``transformers`` when loading ``model``.
    n_threads : int, default=None
        Torch threads during ``fit``, :meth:`nll`, :meth:`initial_nll` and
        :meth:`score` (see :class:`~sktag.TagRegressor`).
    callbacks : list of sktag.Callback, default=None
        Hooks called by the training loop.
    random_state : int, RandomState instance or None, default=None
        Seeds the shuffling of the strings.
    verbose : int, default=0
        ``1``: progress bar over epochs with the loss; ``2``: also per batch.
    warm_start : bool, default=False
        Continue training the fitted tag on the next ``fit`` (the optimizer
        state is not kept between fits).

    Attributes
    ----------
    tags_ : TagSet
        The learned tag, named ``domain`` (kind ``"domain"``), with the
        identity and embedding fingerprint of the backbone.
    initial_tag_ : torch.Tensor of shape (tag_length, hidden_size)
        The tag before training: :meth:`Backbone.tag_init
        <sktag.backbone.Backbone.tag_init>` repeated ``tag_length`` times.
    backbone_identity_, backbone_fingerprint_ : str
        Which backbone the tag was learned on.
    dtype_ : torch.dtype
        The backbone dtype of the fit.
    loss_curve_ : list of float
        Mean per-token training NLL (nats) of each epoch, averaged over the
        epoch's steps while the tag changed.
    n_iter_ : int
        Epochs run.
    n_tokens_ : int
        Number of prediction targets (tokens) in the last training set.
    fit_time_ : float
        Seconds spent in the training loop.
    epoch_times_ : list of float
        Seconds per epoch.

    See Also
    --------
    sktag.TagRegressor, sktag.TagClassifier : use the tag via ``domain_tags``.
    sktag.TagSet : the saved tag library.

    Notes
    -----
    :meth:`score` follows scikit-learn's *higher is better* convention and
    returns the **negative** mean per-token NLL; :meth:`nll` returns the NLL
    itself (a loss, lower is better) and :meth:`initial_nll` the NLL with the
    untrained tag, for comparison.

    The reference Tag-LLM code trained tags against a randomly
    re-initialised embedding matrix; here the backbone's pretrained
    embeddings are used (and left bitwise unchanged).

    Examples
    --------
    >>> from sktag import TagRegressor
    >>> from sktag.pretrain import DomainTagPretrainer
    >>> from sktag.datasets import load_lipophilicity, load_esol
    >>> smiles, _ = load_lipophilicity(return_X_y=True)          # doctest: +SKIP
    >>> pre = DomainTagPretrainer(random_state=0).fit(smiles[:500])  # doctest: +SKIP
    >>> pre.initial_nll(smiles[-100:]), pre.nll(smiles[-100:])   # doctest: +SKIP
    >>> X, y = load_esol(return_X_y=True)                        # doctest: +SKIP
    >>> reg = TagRegressor(domain_tags=pre.tags_).fit(X, y)      # doctest: +SKIP
    """

    def __init__(
        self,
        model="smollm2-135m",
        domain="SMILES",
        *,
        tag_length=10,
        max_iter=5,
        batch_size=16,
        learning_rate_init=1e-3,
        alpha=0.0,
        max_length=256,
        truncation="warn",
        canonicalize=True,
        add_eos=True,
        device="auto",
        dtype="auto",
        trust_remote_code=False,
        n_threads=None,
        callbacks=None,
        random_state=None,
        verbose=0,
        warm_start=False,
    ):
        self.model = model
        self.domain = domain
        self.tag_length = tag_length
        self.max_iter = max_iter
        self.batch_size = batch_size
        self.learning_rate_init = learning_rate_init
        self.alpha = alpha
        self.max_length = max_length
        self.truncation = truncation
        self.canonicalize = canonicalize
        self.add_eos = add_eos
        self.device = device
        self.dtype = dtype
        self.trust_remote_code = trust_remote_code
        self.n_threads = n_threads
        self.callbacks = callbacks
        self.random_state = random_state
        self.verbose = verbose
        self.warm_start = warm_start

    # ------------------------------------------------------------------ params
    _parameter_constraints = {
        **COMMON,
        "domain": [Instance(str, what="a domain name")],
        "add_eos": [BOOLEAN],
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
        from .domains import validate_strings

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

    def _encode(self, X, backbone, tag_length):
        """``(rows, n_targets)``: one :class:`~sktag._encoding.EncodedRow` per string."""
        strings = self._check_strings(X)
        tok = backbone.tokenizer
        eos = getattr(tok, "eos_token_id", None) if self.add_eos else None
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

    # ------------------------------------------------------------------ engine
    def _batch_nll(self, backbone, rows, batch_rows, tag):
        """Summed NLL (a 0-d tensor, gradient to ``tag``) and number of targets of a batch."""
        batch = _engine.collate([rows[i] for i in batch_rows], device=backbone.device)
        with autocast(backbone):
            h = _engine.full_forward(backbone, batch, tag, all_positions=True)
            # position t predicts token t + 1; targets are the string's tokens only
            target = (batch.slot[:, 1:] < 0) & batch.valid[:, 1:]
            h_sel = h[:, :-1][target.to(h.device)]
            logits = backbone.lm_logits(h_sel).float()  # the model's own head and logit post-processing
        y = batch.ids[:, 1:][target].to(logits.device)
        nll = torch.nn.functional.cross_entropy(logits, y, reduction="sum")
        return nll, int(target.sum())

    @torch.inference_mode()
    def _mean_nll(self, X, tag, batch_size=None):
        with torch_threads(self.n_threads):
            return self._mean_nll_threads(X, tag, batch_size)

    def _mean_nll_threads(self, X, tag, batch_size):
        backbone = self.get_backbone()
        tag = tag.to(backbone.device, torch.float32)
        rows, _ = self._encode(X, backbone, tag.shape[0])
        lengths = np.array([len(r) for r in rows])
        total, count = 0.0, 0
        batches = _engine.length_batches(np.arange(len(rows)), lengths, batch_size or self.batch_size)
        for b in progress(batches, self.verbose > 1, desc="nll", leave=False):
            s, c = self._batch_nll(backbone, rows, b, tag)
            total += float(s)
            count += c
        if count == 0:
            raise ValueError("X has no tokens to predict.")
        return total / count

    def _init_tag(self, backbone):
        return init_tag(backbone, TagInit.MEAN, self.tag_length)

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
        self
        """
        self._check_params()
        with torch_threads(self.n_threads):
            return self._fit(X)

    def _fit(self, X):
        """Encode, then train the tag in the :class:`~sktag._training.TrainingLoop` (which ends the fit)."""
        continuing = self.warm_start and hasattr(self, "tags_")
        backbone = self.get_backbone(refit=not continuing)
        rng = check_random_state(self.random_state)
        if continuing:
            start = self.tags_[self.domain_].clone() if self.domain_ == self.domain else None
            if start is None or start.shape[0] != self.tag_length:
                raise ValueError(
                    "warm_start=True continues the fitted tag, but domain or tag_length changed "
                    f"(fitted: {self.domain_!r}, {self.tags_[self.domain_].shape[0]} vectors); refit "
                    "with warm_start=False."
                )
            initial, history = self.initial_tag_, copy.deepcopy(self._history)
        else:
            initial = self._init_tag(backbone)
            start, history = initial.clone(), History(False)
        rows, n_targets = self._encode(X, backbone, self.tag_length)
        lengths = np.array([len(r) for r in rows])
        n_tokens = int(n_targets.sum())
        if n_tokens == 0:
            raise ValueError("X has no tokens to predict.")
        module = torch.nn.Module()
        module.tag = torch.nn.Parameter(start.to(backbone.device, torch.float32))
        state = SimpleNamespace(module=module, history=history, optimizer=self.build_optimizer(module))
        loop = TrainingLoop(self, state, max_iter=self.max_iter, batch_size=self.batch_size,
                            n_iter_no_change=self.max_iter + 1, verbose=self.verbose, callbacks=self.callbacks,
                            desc=f"pretrain <{self.domain}>")
        t0 = time.perf_counter()
        loop.run(FitData(np.arange(len(rows)), np.arange(0), lengths, float(n_tokens)),
                 lambda b: self._batch_nll(backbone, rows, b, module.tag), rng, continuing=continuing,
                 commit=lambda: self._commit(backbone, module, history, initial, n_tokens, len(rows), t0))
        return self

    def build_optimizer(self, module):
        """AdamW over the tag (override to train it with another optimiser)."""
        return torch.optim.AdamW([module.tag], lr=self.learning_rate_init, weight_decay=self.alpha)

    def _commit(self, backbone, module, history, initial, n_tokens, n_strings, t0):
        """Replace the fitted state in one go (at the end of ``fit``)."""
        self.fit_time_ = time.perf_counter() - t0
        self.backbone_identity_ = backbone.identity
        self.backbone_fingerprint_ = backbone.fingerprint
        self.dtype_ = backbone.dtype
        self.initial_tag_ = initial
        self._history = history
        self.loss_curve_ = history.loss_curve
        self.n_iter_ = history.n_iter
        self.epoch_times_ = history.epoch_times
        self.n_tokens_ = n_tokens
        self._carried_validators = self.domain_validators()
        self._set_tags(backbone, module.tag.detach(), n_strings)

    def _set_tags(self, backbone, tag, n_strings):
        ts = TagSet(self.backbone_identity_, self.backbone_fingerprint_, backbone.hidden_size)
        ts.add(self.domain, tag.float().cpu(), kind="domain",
               description=f"pretrained by DomainTagPretrainer: {self.n_iter_} epochs, "
                           f"{n_strings} strings, {self.n_tokens_} tokens")
        self.tags_ = ts
        self.domain_ = self.domain

    # ---------------------------------------------------------------- scoring
    def nll(self, X):
        """Mean per-token negative log-likelihood (nats) of ``X`` with the learned tag.

        A loss: lower is better.  Averaged over all predicted tokens of all
        strings (each string's tokens and its EOS; the first token is
        predicted from the tag).

        Parameters
        ----------
        X : sequence of str

        Returns
        -------
        nll : float
        """
        check_is_fitted(self, "tags_")
        return self._mean_nll(X, self.tags_[self.domain_])

    def initial_nll(self, X):
        """Mean per-token NLL of ``X`` with the *untrained* tag (the init rule).

        Compare with :meth:`nll` to see what pretraining gained.  Works before
        ``fit`` too (with ``tag_length`` vectors).

        Parameters
        ----------
        X : sequence of str

        Returns
        -------
        nll : float
        """
        if hasattr(self, "initial_tag_"):
            init = self.initial_tag_
        else:
            self._check_params()
            init = self._init_tag(self.get_backbone())
        return self._mean_nll(X, init)

    def score(self, X, y=None):
        """Negative mean per-token NLL of ``X`` (higher is better).

        scikit-learn's convention, for ``GridSearchCV`` and
        ``cross_val_score``; ``-score(X) == nll(X)``.

        Parameters
        ----------
        X : sequence of str
        y : None
            Ignored.

        Returns
        -------
        score : float
        """
        return -self.nll(X)

    def save(self, path):
        """Save :attr:`tags_` to a ``.safetensors`` file (``self.tags_.save(path)``)."""
        check_is_fitted(self, "tags_")
        self.tags_.save(path)
