"""Stage 1 with labels for free: a domain tag that makes the pooled states predict RDKit descriptors.

The paper's stage 1 (:class:`~sktag.pretrain.DomainTagPretrainer`) teaches
the ``<SMILES>`` tag next-token prediction.  What the default estimators
read, though, is the mean of the data-token states at a few layers (the
pooled readout), and a tag placed *before* the data changes every one of
those states.  :class:`DescriptorTagPretrainer` trains the tag for exactly
that: on unlabeled SMILES, RDKit computes ~200 physico-chemical descriptors
per molecule (labels without limit), and the tag learns to make the pooled
states linearly predictive of them, through a ridge head re-solved in
closed form after every epoch.  Descriptor pretraining is what lifted
CheMeleon (Burns et al. 2025) over random forests and Chemprop; here the
LLM stays frozen and only the ``p`` tag vectors learn.
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.utils.validation import check_is_fitted

from .._forward import engine as _engine
from .._forward.layers import LAYERS, resolve_layers
from .._forward.pooling import pool_states
from .._runtime.device import autocast
from .._runtime.report import progress
from .._runtime.threads import torch_threads
from .._runtime.validation import Instance, Interval, store_params
from .base import Objective, TagPretrainerBase, pretrain_rng_subset

__all__ = ["DescriptorTagPretrainer"]

#: ridge penalties the head chooses from (generalised cross-validation), on standardised features
HEAD_ALPHAS = np.logspace(-1, 5, 13)


def _scale_descriptors(D):
    """Clip each descriptor to its 0.5-99.5 % quantiles and standardise it; drop constant or mostly missing ones.

    Returns ``(keep, low, high, center, scale)``: ``keep`` is a boolean mask
    over the columns of ``D`` and the others hold one value per kept column.
    """
    finite = np.isfinite(D)
    enough = finite.mean(axis=0) >= 0.5
    Dn = np.where(finite, D, np.nan)
    with np.errstate(all="ignore"):
        low = np.nanquantile(Dn[:, enough], 0.005, axis=0)
        high = np.nanquantile(Dn[:, enough], 0.995, axis=0)
        clipped = np.clip(Dn[:, enough], low, high)
        center, scale = np.nanmean(clipped, axis=0), np.nanstd(clipped, axis=0)
    varies = scale > 1e-8 * np.maximum(1.0, np.abs(center))
    keep = enough.copy()
    keep[enough] = varies
    return keep, low[varies], high[varies], center[varies], scale[varies]


class DescriptorTagPretrainer(TagPretrainerBase):
    """Learn a ``<SMILES>`` domain tag that makes the pooled states predict RDKit descriptors.

    An alternative stage 1 to :class:`DomainTagPretrainer`.  Each unlabeled
    SMILES ``s`` becomes ``[<SMILES>] tokens(s)``; the mean of its data-token
    states at ``readout_layers`` (the features the default estimators read)
    goes through a linear head to its RDKit 2-D descriptors, clipped to
    their 0.5-99.5 % quantiles and standardised.  ``fit`` trains only the
    ``tag_length`` tag vectors, with AdamW, to minimise the mean squared
    error over descriptors; the head is ridge regression solved in closed
    form on the pooled states of ``n_head_rows`` training strings (penalty
    chosen by generalised cross-validation) before the first epoch and again
    after each one.  The LLM never changes.

    Parameters
    ----------
    model : str or path-like, default="smollm2-135m"
        The frozen causal LM; see :class:`~sktag.TagRegressor`.
    domain : str, default="SMILES"
        Name of the learned tag; the strings must be SMILES (the
        descriptors are RDKit's).
    tag_length : int, default=10
        Number of vectors ``p`` of the tag.
    descriptors : list of str or None, default=None
        RDKit descriptor names (see :class:`~sktag.features.RDKitDescriptors`);
        None: all of them.  Constant ones and those missing for more than
        half the strings are dropped (``descriptor_names_``).
    readout_layers : int, list of int or str, default="spread10"
        Layers whose data-token states are pooled (mean) into the features
        the head reads; use the estimators' ``readout_layers``.
    n_head_rows : int, default=512
        Training strings whose pooled states the closed-form head is solved on.
    max_iter : int, default=3
        Number of epochs.
    batch_size : int, default=16
        Strings per optimisation step.
    learning_rate_init : float, default=1e-3
        AdamW learning rate of the tag.
    alpha : float, default=0.0
        AdamW weight decay of the tag.
    max_length : int, default=256
        Maximum number of tokens of one string.
    truncation : {"warn", "raise"}, default="warn"
        Longer strings are truncated with one warning, or rejected.
    canonicalize : bool, default=True
        Canonicalise SMILES with RDKit, as the estimators do.
    device : str, default="auto"
        ``"auto"`` is CUDA when available, else CPU.
    dtype : str, default="auto"
        Backbone dtype, as in :class:`DomainTagPretrainer` (``"auto"``:
        bfloat16 on CUDA and on CPUs with native bfloat16, else float32).
    trust_remote_code : bool, default=False
        Passed to ``transformers`` when loading ``model``.
    n_threads : int, default=None
        Torch threads while fitting and scoring (see
        :class:`~sktag.TagRegressor`).
    callbacks : list of sktag.Callback, default=None
        Hooks called by the training loop.
    random_state : int, RandomState instance or None, default=None
        Seeds the shuffling and the choice of the head's strings.
    verbose : int, default=0
        ``1``: progress bar over epochs with the loss; ``2``: also per batch.
    warm_start : bool, default=False
        Continue training the fitted tag on the next ``fit``.  The descriptor
        scaling and the head are derived anew from the new strings, and so is
        the baseline of :meth:`initial_mse` (the head solved for the untrained
        tag on them).

    Attributes
    ----------
    tags_ : TagSet
        The learned tag, named ``domain`` (kind ``"domain"``).
    initial_tag_ : torch.Tensor of shape (tag_length, hidden_size)
        The tag before training.
    descriptor_names_ : list of str
        The descriptors the tag learned to predict.
    readout_layers_ : list of int
        Resolved ``readout_layers``.
    head_alpha_ : float
        Ridge penalty of the final head.
    loss_curve_ : list of float
        Mean squared error (standardised descriptors) of each epoch, over
        the training strings while the tag changed.
    n_iter_, fit_time_, epoch_times_, dtype_, backbone_identity_, backbone_fingerprint_
        As in :class:`DomainTagPretrainer`.

    See Also
    --------
    DomainTagPretrainer : the paper's stage 1 (next-token prediction).
    sktag.features.RDKitDescriptors : the descriptors.

    Notes
    -----
    Every step backpropagates through all layers at every data token (the
    tag precedes them), so an epoch costs about three forward passes over
    the strings.  :meth:`mse` on the training strings is optimistic (the
    head was solved on some of them); held-out strings measure what the tag
    learned.  Uses RDKit (a dependency of sktag).

    Examples
    --------
    >>> from sktag import TagRegressor
    >>> from sktag.pretrain import DescriptorTagPretrainer
    >>> from sktag.testing import make_tiny_model
    >>> model = make_tiny_model()  # a tiny random model keeps the example fast
    >>> from sktag.datasets import load_esol
    >>> X, y = load_esol(return_X_y=True)
    >>> pre = DescriptorTagPretrainer(model=model, tag_length=4, max_iter=1, n_head_rows=40,
    ...                               descriptors=["MolWt", "TPSA", "MolLogP", "NumHDonors"],
    ...                               random_state=0).fit(X[:60])
    >>> pre.descriptor_names_
    ['MolWt', 'TPSA', 'MolLogP', 'NumHDonors']
    >>> before, after = pre.initial_mse(X[-20:]), pre.mse(X[-20:])
    >>> reg = TagRegressor(model=model, domain_tags=pre.tags_, max_iter=1).fit(X[:60], y[:60])
    """

    def __init__(self, model="smollm2-135m", domain="SMILES", *, tag_length=10, descriptors=None,
                 readout_layers="spread10", n_head_rows=512, max_iter=3, batch_size=16, learning_rate_init=1e-3,
                 alpha=0.0, max_length=256, truncation="warn", canonicalize=True, device="auto", dtype="auto",
                 trust_remote_code=False, n_threads=None, callbacks=None, random_state=None, verbose=0,
                 warm_start=False):
        store_params(self, locals())

    _parameter_constraints = {
        **TagPretrainerBase._parameter_constraints,
        "descriptors": [Instance(list, tuple), None],
        "readout_layers": [LAYERS],
        "n_head_rows": [Interval("int", 2, None)],
    }

    def _check_params(self):
        super()._check_params()
        if self.domain.strip().lower() != "smiles":
            raise ValueError(f"{type(self).__name__} learns from RDKit descriptors: domain must be a SMILES "
                             f"domain, got {self.domain!r}.")

    # ------------------------------------------------------------------ features
    def _descriptor_table(self, strings):
        from ..features import RDKitDescriptors

        rd = RDKitDescriptors(descriptors=None if self.descriptors is None else list(self.descriptors))
        return rd.fit_transform(strings), list(rd.get_feature_names_out())

    @staticmethod
    def _standardised(D, scaling):
        keep, low, high, center, scale = scaling
        Z = (np.clip(D[:, keep], low, high) - center) / scale
        return np.nan_to_num(Z, nan=0.0).astype(np.float32)  # a missing value counts as the mean

    @staticmethod
    def _pooled(backbone, rows, batch_rows, tag, layers):
        """Pooled data-token states ``[B, width]`` (float32) of a batch, with the gradient to ``tag``."""
        batch = _engine.collate([rows[i] for i in batch_rows], device=backbone.device)
        with autocast(backbone):
            hs = _engine.hidden_states(backbone, batch, tag, layers)
        return pool_states(hs, range(len(hs)), batch)[:, 0]

    @torch.no_grad()
    def _features(self, backbone, rows, idx, tag, layers):
        """Pooled states ``[len(idx), width]`` of ``rows[idx]``, in the order of ``idx``."""
        idx = np.asarray(idx)
        where = {int(i): k for k, i in enumerate(idx)}
        out = None
        lengths = np.array([len(r) for r in rows])
        for b in progress(_engine.length_batches(idx, lengths, self.batch_size), self.verbose > 1,
                          desc="pooled states", leave=False):
            F = self._pooled(backbone, rows, b, tag, layers).cpu().numpy()
            if out is None:
                out = np.empty((len(idx), F.shape[1]), dtype=np.float32)
            out[[where[int(i)] for i in b]] = F
        return out

    def _solve_head(self, F, Y):
        """Closed-form ridge head ``(mean, scale, coef, intercept, alpha)`` from features ``F`` to ``Y``."""
        from sklearn.linear_model import RidgeCV

        mean, scale = F.mean(axis=0), F.std(axis=0)
        scale = np.where(scale > 1e-6 * max(1.0, float(np.abs(F).max())), scale, 1.0)
        ridge = RidgeCV(alphas=HEAD_ALPHAS).fit((F - mean) / scale, Y)
        return (torch.as_tensor(mean), torch.as_tensor(scale), torch.as_tensor(ridge.coef_.T.astype(np.float32)),
                torch.as_tensor(np.asarray(ridge.intercept_, dtype=np.float32)), float(ridge.alpha_))

    @staticmethod
    def _predict(head, F):
        mean, scale, coef, intercept = (t.to(F.device) for t in head[:4])
        return ((F - mean) / scale) @ coef + intercept

    # ------------------------------------------------------------------ objective
    def _objective(self, strings, backbone, module, rng, initial=None):
        """Descriptor regression through the pooled states; the head is re-solved after every epoch.

        The baseline head (``initial_mse``) is solved for the untrained tag
        ``initial`` on a warm start, not for the tag the warm start continues.
        """
        layers = resolve_layers(self.readout_layers, len(backbone.hidden_widths()) - 1)
        D, names = self._descriptor_table(strings)
        scaling = _scale_descriptors(D)
        keep = scaling[0]
        if not keep.any():
            raise ValueError("No RDKit descriptor varies over these strings: there is nothing to learn from.")
        Y = torch.from_numpy(self._standardised(D, scaling))
        rows, _ = self._encode_strings(strings, backbone, self.tag_length, add_eos=False)
        head_idx = pretrain_rng_subset(rng, len(rows), self.n_head_rows)
        head = {}

        def resolve():
            F = self._features(backbone, rows, head_idx, module.tag.detach(), layers)
            head["now"] = self._solve_head(F, Y[head_idx].numpy())
            head.setdefault("initial", head["now"])

        if initial is not None:  # a warm start: the baseline is the untrained tag's, on these strings
            F0 = self._features(backbone, rows, head_idx, initial.to(backbone.device, torch.float32), layers)
            head["initial"] = self._solve_head(F0, Y[head_idx].numpy())

        def step(b):
            pred = self._predict(head["now"], self._pooled(backbone, rows, b, module.tag, layers))
            return ((pred - Y[b].to(pred.device)) ** 2).mean(dim=1).sum(), len(b)

        resolve()
        fitted = {"descriptor_names_": [n for n, k in zip(names, keep) if k], "readout_layers_": layers,
                  "_scaling": scaling, "_head": head}
        return Objective(rows=rows, step=step, weight_total=float(len(rows)), after_epoch=resolve, fitted=fitted,
                         description=f"{int(keep.sum())} RDKit descriptors")

    def _commit(self, state):
        super()._commit(state)
        self.head_alpha_ = self._head["now"][4]

    # ------------------------------------------------------------------ scoring
    def _mse(self, X, initial):
        """MSE of the standardised descriptors of ``X``, with the learned or the ``initial`` tag and head."""
        check_is_fitted(self, "tags_")
        tag = self.initial_tag_ if initial else self.tags_[self.domain_]
        head = self._head["initial" if initial else "now"]
        with torch_threads(self.n_threads):
            backbone = self.get_backbone()
            strings = self._check_strings(X)
            D = self._descriptor_table(strings)[0]
            if D.shape[1] != len(self._scaling[0]):  # pragma: no cover - the descriptor list is fixed by the fit
                raise ValueError("RDKit returned another number of descriptors than at fit time.")
            Y = self._standardised(D, self._scaling)
            rows, _ = self._encode_strings(strings, backbone, tag.shape[0], add_eos=False)
            F = torch.from_numpy(self._features(backbone, rows, np.arange(len(rows)), tag.to(backbone.device),
                                                self.readout_layers_))
            return float(((self._predict(head, F).numpy() - Y) ** 2).mean())

    def mse(self, X):
        """Mean squared error of the standardised descriptors of ``X`` predicted with the learned tag and head.

        Parameters
        ----------
        X : sequence of str
            SMILES strings (1-D: list, array, Series or one-column DataFrame).

        Returns
        -------
        mse : float
            Lower is better; 1.0 is what predicting every descriptor's
            training mean scores.
        """
        return self._mse(X, initial=False)

    def initial_mse(self, X):
        """Compute :meth:`mse` with the untrained tag and the head solved for it before the first epoch.

        Parameters
        ----------
        X : sequence of str
            SMILES strings, as for :meth:`mse`.

        Returns
        -------
        mse : float
            The baseline that :meth:`mse` is compared with.
        """
        return self._mse(X, initial=True)

    def score(self, X, y=None):
        """Return the negative :meth:`mse` (higher is better), for ``GridSearchCV``.

        Parameters
        ----------
        X : sequence of str
            SMILES strings (1-D: list, array, Series or one-column DataFrame).
        y : None
            Ignored; present for scikit-learn compatibility.

        Returns
        -------
        score : float
            ``-mse(X)``.
        """
        return -self.mse(X)
