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

import numpy as np
import torch
from sklearn.utils.validation import check_is_fitted

from ._forward import engine as _engine
from ._forward.deep import DeepTable, zero_blocks
from ._pretrain.base import Objective, TagPretrainerBase
from ._runtime.device import autocast
from ._runtime.report import progress
from ._runtime.threads import torch_threads
from ._runtime.validation import BOOLEAN, Options, store_params

__all__ = ["DomainTagPretrainer", "DescriptorTagPretrainer"]


class DomainTagPretrainer(TagPretrainerBase):
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
    tag_depth : {"shallow", "deep", "kv"}, default="shallow"
        ``"shallow"``: the tag is ``p`` vectors at the input (the paper's).
        ``"deep"``: also one learned ``p x d`` block per decoder block, added
        to that block's input at the tag positions (deep prompts in the
        residual stream), starting at zero.  ``"kv"``: instead one learned
        block per attention layer added to the keys and values it stores at
        the tag positions (free key/values, as P-Tuning v2 learns them),
        starting at zero.  The blocks travel in :attr:`tags_`
        (:attr:`sktag.TagSet.deep`, with their kind) and the estimators use
        them with the tag.  An epoch costs about the same: the gradient of a
        shallow tag also goes back through every block.
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
    >>> from sktag import TagRegressor, datasets
    >>> from sktag.pretrain import DomainTagPretrainer
    >>> from sktag.testing import make_tiny_model
    >>> model = make_tiny_model()  # a tiny random model keeps the example fast
    >>> smiles, _ = datasets.load_lipophilicity(return_X_y=True)
    >>> pre = DomainTagPretrainer(model=model, max_iter=1, random_state=0).fit(smiles[:60])
    >>> pre.tags_
    TagSet(backbone='...', hidden_size=32, tags=[SMILES (domain, 10)])
    >>> before, after = pre.initial_nll(smiles[-20:]), pre.nll(smiles[-20:])
    >>> X, y = datasets.load_esol(return_X_y=True)
    >>> reg = TagRegressor(model=model, domain_tags=pre.tags_, max_iter=1).fit(X[:60], y[:60])

    On a real model, ``after`` is below ``before`` when the tag has learned
    something about the strings.
    """

    def __init__(
        self,
        model="smollm2-135m",
        domain="SMILES",
        *,
        tag_length=10,
        tag_depth="shallow",
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
        store_params(self, locals())

    # ------------------------------------------------------------------ params
    _parameter_constraints = {**TagPretrainerBase._parameter_constraints, "add_eos": [BOOLEAN],
                              "tag_depth": [Options("shallow", "deep", "kv")]}

    def _deep_start(self, backbone):
        if self.tag_depth == "shallow":
            return None
        return DeepTable(zero_blocks(backbone, self.tag_length, self.tag_depth), self.tag_depth)

    # ------------------------------------------------------------------ inputs
    def _encode(self, X, backbone, tag_length):
        """``(rows, n_targets)``: ``[<Domain>] tokens(s) (EOS)`` per string of ``X``, and its targets."""
        return self._encode_strings(self._check_strings(X), backbone, tag_length, self.add_eos)

    # ------------------------------------------------------------------ engine
    def _batch_nll(self, backbone, rows, batch_rows, tag, deep=None):
        """Summed NLL (a 0-d tensor, gradient to ``tag`` and ``deep``) and number of targets of a batch."""
        batch = _engine.collate([rows[i] for i in batch_rows], device=backbone.device)
        with autocast(backbone):
            h = _engine.full_forward(backbone, batch, tag, all_positions=True, deep_table=deep)
            # position t predicts token t + 1; targets are the string's tokens only
            target = (batch.slot[:, 1:] < 0) & batch.valid[:, 1:]
            h_sel = h[:, :-1][target.to(h.device)]
            logits = backbone.lm_logits(h_sel).float()  # the model's own head and logit post-processing
        y = batch.ids[:, 1:][target].to(logits.device)
        nll = torch.nn.functional.cross_entropy(logits, y, reduction="sum")
        return nll, int(target.sum())

    @torch.inference_mode()
    def _mean_nll(self, X, tag, deep=None, batch_size=None):
        with torch_threads(self.n_threads):
            return self._mean_nll_threads(X, tag, deep, batch_size)

    def _mean_nll_threads(self, X, tag, deep, batch_size):
        backbone = self.get_backbone()
        tag = tag.to(backbone.device, torch.float32)
        deep = None if deep is None else deep.to(backbone.device, torch.float32)  # a DeepTable
        rows, _ = self._encode(X, backbone, tag.shape[0])
        lengths = np.array([len(r) for r in rows])
        total, count = 0.0, 0
        batches = _engine.length_batches(np.arange(len(rows)), lengths, batch_size or self.batch_size)
        for b in progress(batches, self.verbose > 1, desc="nll", leave=False):
            s, c = self._batch_nll(backbone, rows, b, tag, deep)
            total += float(s)
            count += c
        if count == 0:
            raise ValueError("X has no tokens to predict.")
        return total / count

    def _objective(self, strings, backbone, module, rng, initial=None):
        """Next-token prediction: the summed NLL of each batch, weighted by its number of targets."""
        rows, n_targets = self._encode_strings(strings, backbone, self.tag_length, self.add_eos)
        n_tokens = int(n_targets.sum())
        if n_tokens == 0:
            raise ValueError("X has no tokens to predict.")
        return Objective(rows=rows, step=lambda b: self._batch_nll(backbone, rows, b, module.tag, module.deep_table()),
                         weight_total=float(n_tokens), fitted={"n_tokens_": n_tokens},
                         description=f"{n_tokens} tokens")

    # ---------------------------------------------------------------- scoring
    def nll(self, X):
        """Mean per-token negative log-likelihood (nats) of ``X`` with the learned tag.

        A loss: lower is better.  Averaged over all predicted tokens of all
        strings (each string's tokens and its EOS; the first token is
        predicted from the tag).

        Parameters
        ----------
        X : sequence of str
            Strings of the domain (1-D: list, array, Series or one-column
            DataFrame).

        Returns
        -------
        nll : float
            Mean per-token negative log-likelihood, in nats.
        """
        check_is_fitted(self, "tags_")
        return self._mean_nll(X, self.tags_[self.domain_], self._fitted_deep())

    def initial_nll(self, X):
        """Mean per-token NLL of ``X`` with the *untrained* tag (the init rule).

        Compare with :meth:`nll` to see what pretraining gained.  Works before
        ``fit`` too (with ``tag_length`` vectors).

        Parameters
        ----------
        X : sequence of str
            Strings of the domain, as for :meth:`nll`.

        Returns
        -------
        nll : float
            Mean per-token negative log-likelihood, in nats, with the
            untrained tag.
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
            Strings of the domain (1-D: list, array, Series or one-column
            DataFrame).
        y : None
            Ignored.

        Returns
        -------
        score : float
            ``-nll(X)``.
        """
        return -self.nll(X)


from ._pretrain.descriptor import DescriptorTagPretrainer  # noqa: E402  (re-exported here)
