"""The LLM as a complement to classical models: a blend fitted on scaffold-grouped out-of-fold predictions.

:class:`HybridRegressor` and :class:`HybridClassifier` fit several *base
models* on the same strings — by default sktag's frozen LLM features with the
shipped domain tag + ridge / logistic regression, RDKit descriptors +
histogram gradient boosting and Morgan counts + random forest — and blend
their predictions.  The blend is learned on out-of-fold predictions from
folds that keep every Bemis-Murcko scaffold on one side, so that no base
model is judged on near copies of its training molecules, and it has too few
parameters to overfit a few hundred rows: non-negative weights and an
intercept for regression, a logistic regression on the base models'
out-of-fold scores for classification.

Base models that are pipelines starting with a label-free featuriser
(:class:`~sktag.LLMEmbedding`, :class:`~sktag.features.MorganFingerprint`,
:class:`~sktag.features.RDKitDescriptors`, or a ``ColumnTransformer`` of
them) compute their features once per ``fit``: the inner folds fit only the
rest of the pipeline, so the frozen LLM runs over the training strings once.
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin, clone
from sklearn.utils.validation import check_is_fitted

from ._forward.inputs import as_input, take
from ._runtime.report import progress
from ._runtime.validation import store_params, string_input_tags

__all__ = ["HybridRegressor", "HybridClassifier", "default_llm_model", "default_classical_models"]

BLENDS = {"regression": ("linear", "mean"), "classification": ("logistic", "mean")}


def logistic_regression_cv(**kwargs):
    """``LogisticRegressionCV(**kwargs)``, with the fitted attributes of scikit-learn 1.10 where it has the choice.

    (scikit-learn 1.9 warns on every fit until ``use_legacy_attributes`` is set; only ``predict_proba`` is used.)
    """
    import inspect

    from sklearn.linear_model import LogisticRegressionCV

    if "use_legacy_attributes" in inspect.signature(LogisticRegressionCV).parameters:
        kwargs.setdefault("use_legacy_attributes", False)
    return LogisticRegressionCV(**kwargs)


def default_llm_model(task, *, model="smollm2-135m", domains="SMILES", domain_tags="pretrained"):
    """Build the frozen LLM's pooled features + ridge (regression) or logistic regression (classification).

    A ``Pipeline`` of :class:`~sktag.LLMEmbedding` (``domain_tags``: sktag's
    shipped tags by default), ``StandardScaler`` and ``RidgeCV`` /
    ``LogisticRegressionCV``, with the steps ``"embedding"``, ``"scale"`` and
    ``"model"``.

    Parameters
    ----------
    task : {"regression", "classification"}
        Ridge for regression, logistic regression for classification.
    model : str or path-like, default="smollm2-135m"
        The frozen causal LM (see :class:`~sktag.TagRegressor`).
    domains : str, list of str or dict, default="SMILES"
        Domain of each input column, as in :class:`~sktag.LLMEmbedding`.
    domain_tags : "pretrained", TagSet, path or None, default="pretrained"
        The domain tags of the embedding, as in :class:`~sktag.LLMEmbedding`.

    Returns
    -------
    Pipeline
        The unfitted pipeline.
    """
    from sklearn.linear_model import RidgeCV
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    from .embedding import LLMEmbedding

    head = (logistic_regression_cv(Cs=np.logspace(-3, 1, 5), max_iter=2000) if task == "classification"
            else RidgeCV(alphas=np.logspace(-2, 5, 22)))
    return Pipeline([("embedding", LLMEmbedding(model=model, domains=domains, domain_tags=domain_tags)),
                     ("scale", StandardScaler()), ("model", head)])


def default_classical_models(task, *, smiles_column=None, random_state=None, n_estimators=500):
    """Build ``[(name, estimator)]``: RDKit descriptors + histogram gradient boosting, Morgan counts + random forest.

    Parameters
    ----------
    task : {"regression", "classification"}
        Regressors or classifiers.
    smiles_column : str or None, default=None
        For a DataFrame input: the SMILES column, the only one the
        featurisers see (through a ``ColumnTransformer``).
    random_state : int or None, default=None
        Seeds the gradient boosting and the random forest.
    n_estimators : int, default=500
        Trees of the random forest.

    Returns
    -------
    list of (str, Pipeline)
        ``"hgb_descriptors"`` and ``"rf_morgan_counts"``, each with the
        steps ``"features"`` and ``"model"``.
    """
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import (HistGradientBoostingClassifier, HistGradientBoostingRegressor, RandomForestClassifier,
                                  RandomForestRegressor)
    from sklearn.pipeline import Pipeline

    from .features import MorganFingerprint, RDKitDescriptors

    clf = task == "classification"

    def on_smiles(featuriser):
        return featuriser if smiles_column is None else ColumnTransformer([("smiles", featuriser, [smiles_column])])

    hgb = (HistGradientBoostingClassifier if clf else HistGradientBoostingRegressor)(random_state=random_state)
    rf = (RandomForestClassifier if clf else RandomForestRegressor)(n_estimators=n_estimators,
                                                                    random_state=random_state)
    return [("hgb_descriptors", Pipeline([("features", on_smiles(RDKitDescriptors())), ("model", hgb)])),
            ("rf_morgan_counts", Pipeline([("features", on_smiles(MorganFingerprint(radius=2, n_bits=2048,
                                                                                    counts=True))),
                                           ("model", rf)]))]


def _label_free(step):
    """Whether ``step`` is a featuriser whose output for a row depends on that row alone (fit learns nothing)."""
    from sklearn.compose import ColumnTransformer

    from .embedding import LLMEmbedding
    from .features import MorganFingerprint, RDKitDescriptors

    if isinstance(step, (LLMEmbedding, MorganFingerprint, RDKitDescriptors)):
        return True
    if isinstance(step, ColumnTransformer):
        return step.remainder == "drop" and all(_label_free(t) for _, t, _ in step.transformers)
    return False


def _split_featuriser(est):
    """``(featuriser, rest)`` of a pipeline that starts with a label-free featuriser, else ``(None, est)``."""
    from sklearn.pipeline import Pipeline

    if isinstance(est, Pipeline) and len(est.steps) > 1 and _label_free(est.steps[0][1]):
        rest = est.steps[1:]
        return est.steps[0], (rest[0][1] if len(rest) == 1 else Pipeline(rest))
    return None, est


# parameters both hybrids document alike
_CLASSICAL_PARAMETER = """
    classical : "default", list of (str, estimator) or None, default="default"
        The classical base models: ``"default"`` is
        :func:`default_classical_models` (RDKit descriptors + gradient
        boosting, Morgan counts + random forest, on the SMILES column)."""

_SHARED_PARAMETERS = """
    cv : int, default=5
        Scaffold-grouped inner folds (``GroupKFold`` on
        :func:`~sktag.model_selection.scaffold_groups`).
    model : str or path, default="smollm2-135m"
        The LLM of ``llm="embedding"`` and ``llm="tag"``.
    domains : str or dict, default="SMILES"
        ``domains`` of the LLM base model (a dict ``{column: domain}`` for a
        DataFrame with a second column such as a protein sequence).
    smiles_column : str or None, default=None
        The SMILES column of a DataFrame (default: the column whose domain
        is SMILES); the classical models see only this column.
    random_state : int or None, default=None
        Seeds the base models.
    verbose : int, default=0
        1 shows a progress bar over the base models."""


class _HybridBase(BaseEstimator):
    """What the two hybrids share: base models, scaffold-grouped inner folds, the out-of-fold blend."""

    _task = None

    def __init__(self, llm="embedding", classical="default", *, blend="auto", cv=5, model="smollm2-135m",
                 domains="SMILES", smiles_column=None, random_state=None, verbose=0):
        store_params(self, locals())

    def __sklearn_tags__(self):
        return string_input_tags(super().__sklearn_tags__())

    # ------------------------------------------------------------------ inputs
    def _smiles_column(self, X):
        """The SMILES column of a DataFrame ``X`` (None for one column of SMILES)."""
        if not isinstance(X, pd.DataFrame):
            return None
        if self.smiles_column is not None:
            if self.smiles_column not in X.columns:
                raise ValueError(f"smiles_column {self.smiles_column!r} is not a column of X "
                                 f"(columns: {list(X.columns)}).")
            return self.smiles_column
        if isinstance(self.domains, dict):
            found = [c for c, d in self.domains.items() if str(d).strip().lower() == "smiles"]
            if found:
                return found[0]
        if X.shape[1] == 1:
            return X.columns[0]
        raise ValueError(f"X has the columns {list(X.columns)}: say which holds the SMILES (smiles_column=... or "
                         "domains={column: 'SMILES', ...}).")

    def _check_input(self, X, y):
        if isinstance(X, (str, bytes)) or not hasattr(X, "__len__"):
            raise TypeError(f"X must be a sequence of strings or a DataFrame, got {type(X).__name__}.")
        X = as_input(X)
        if len(X) == 0:
            raise ValueError("Found array with 0 sample(s) while a minimum of 1 is required.")
        y = np.asarray(y)
        if y.ndim != 1 or len(y) != len(X):
            raise ValueError(f"y must be 1-D with one value per row of X ({len(X)}), got shape {y.shape}.")
        return X, y

    def _bases(self, smiles_column):
        """``[(name, unfitted estimator)]``: the LLM base model first, then the classical ones."""
        task = self._task
        bases = []
        if isinstance(self.llm, str) and self.llm == "embedding":
            bases.append(("llm_embedding", default_llm_model(task, model=self.model, domains=self.domains)))
        elif isinstance(self.llm, str) and self.llm == "tag":
            from .estimators import TagClassifier, TagRegressor

            Est = TagClassifier if task == "classification" else TagRegressor
            bases.append(("tag", Est(model=self.model, domains=self.domains, random_state=self.random_state)))
        elif self.llm is not None:
            if not hasattr(self.llm, "fit"):
                raise ValueError(f"llm must be 'embedding', 'tag', an estimator or None, got {self.llm!r}.")
            bases.append(("llm", clone(self.llm)))
        if isinstance(self.classical, str) and self.classical == "default":
            bases += default_classical_models(task, smiles_column=smiles_column, random_state=self.random_state)
        elif self.classical is not None:
            for item in self.classical:
                if not (isinstance(item, tuple) and len(item) == 2 and hasattr(item[1], "fit")):
                    raise ValueError(f"classical must be 'default', None or a list of (name, estimator) pairs; "
                                     f"got the entry {item!r}.")
                bases.append((str(item[0]), clone(item[1])))
        names = [n for n, _ in bases]
        if len(bases) < 2:
            raise ValueError(f"a hybrid blends at least two base models; llm={self.llm!r} and "
                             f"classical={self.classical!r} give {names}.")
        if len(set(names)) != len(names):
            raise ValueError(f"the base models' names must be unique, got {names}.")
        return bases

    def _inner_splits(self, smiles, y):
        """Scaffold-grouped inner folds of the rows (class-stratified for classification when possible)."""
        from sklearn.model_selection import GroupKFold, StratifiedGroupKFold

        from .model_selection import scaffold_groups

        k = int(self.cv)
        groups = scaffold_groups(smiles)
        n_groups = len(np.unique(groups))
        if n_groups < k:
            raise ValueError(f"{len(y)} rows in {n_groups} Bemis-Murcko scaffold group(s): {k} scaffold-grouped "
                             f"inner folds need at least {k}; use a smaller cv or more data.")
        if self._task == "classification" and np.min(np.unique(y, return_counts=True)[1]) >= k:
            splitter = StratifiedGroupKFold(k, shuffle=True, random_state=self.random_state)
        else:
            splitter = GroupKFold(k)
        return [(np.asarray(a), np.asarray(b)) for a, b in splitter.split(np.zeros(len(y)), y, groups)], groups

    # ------------------------------------------------------------------ fit
    def fit(self, X, y):
        """Fit the base models and their blend.

        Every base model is fitted on the scaffold-grouped inner folds (its
        out-of-fold predictions), the blend on those predictions, then every
        base model on all rows.

        Parameters
        ----------
        X : sequence of str, or DataFrame
            SMILES strings, or a DataFrame with a SMILES column and other
            string columns (a protein sequence, say) for the LLM base model;
            never modified.
        y : array-like of shape (n_samples,)
            The targets.

        Returns
        -------
        self : object
            The fitted estimator.
        """
        if self.blend != "auto" and self.blend not in BLENDS[self._task]:
            raise ValueError(f"blend must be 'auto' or one of {BLENDS[self._task]}, got {self.blend!r}.")
        if not isinstance(self.cv, (int, np.integer)) or isinstance(self.cv, bool) or self.cv < 2:
            raise ValueError(f"cv must be an int >= 2 (scaffold-grouped inner folds), got {self.cv!r}.")
        X, y = self._check_input(X, y)
        smiles_column = self._smiles_column(X)
        smiles = X if smiles_column is None else X[smiles_column]
        targets, classes = self._targets(y)
        n_out = None if classes is None else len(classes)
        splits, _ = self._inner_splits(smiles, targets)
        bases = self._bases(smiles_column)
        names = [n for n, _ in bases]
        oof, fitted, times = [], {}, {}
        steps = progress(bases, self.verbose > 0, desc="hybrid", unit="base model")
        for name, est in steps:
            t0 = time.perf_counter()
            pred, fitted[name] = self._fit_base(est, X, targets, splits, n_out)
            oof.append(pred)
            times[name] = time.perf_counter() - t0
        P = np.stack(oof, axis=1)
        attrs = dict(self._fit_blend(P, targets, names), base_names_=names, estimators_=fitted,
                     oof_predictions_=P, fit_times_=times,
                     n_features_in_=X.shape[1] if isinstance(X, pd.DataFrame) else 1)
        if classes is not None:
            attrs["classes_"] = classes
        self.__dict__.update(attrs)  # all at once: a fit that fails leaves the estimator as it was
        return self

    def _fit_base(self, est, X, y, splits, n_out):
        """Out-of-fold predictions of ``est`` on ``splits`` and ``est`` fitted on every row.

        A label-free featuriser at the head of a pipeline runs once over
        every row; the inner folds fit the rest of the pipeline on its output.
        """
        from sklearn.pipeline import Pipeline

        featuriser, rest = _split_featuriser(est)
        if featuriser is not None:
            name, step = featuriser
            step = clone(step)
            Z = step.fit_transform(X)
            X = Z
        oof = None
        for tr, va in splits:
            m = clone(rest).fit(take(X, tr), y[tr])
            p = self._base_output(m, take(X, va), n_out)
            if oof is None:
                oof = np.zeros((len(y),) + p.shape[1:])
            oof[va] = p
        full = clone(rest).fit(X, y)
        if featuriser is not None:
            full = Pipeline([(name, step)] + (full.steps if isinstance(full, Pipeline) else [("model", full)]))
        return oof, full

    def predict(self, X):
        """Predict with the blend of the base models.

        Parameters
        ----------
        X : sequence of str, or DataFrame
            The input strings.

        Returns
        -------
        ndarray of shape (n_samples,)
            The blended predictions of a regressor; for a classifier, the
            most probable class of each row.
        """
        return self._decide(self._blend(self._predict_bases(X)))

    def _predict_bases(self, X):
        check_is_fitted(self, "estimators_")
        X, _ = self._check_input(X, np.zeros(len(X)))
        if self.n_features_in_ > 1 and not isinstance(X, pd.DataFrame):
            raise ValueError(f"X has one column, but this {type(self).__name__} was fitted with "
                             f"{self.n_features_in_}.")
        n_out = len(self.classes_) if hasattr(self, "classes_") else None
        return np.stack([self._base_output(self.estimators_[n], X, n_out) for n in self.base_names_], axis=1)


class HybridRegressor(RegressorMixin, _HybridBase, BaseEstimator):
    __doc__ = f"""Frozen-LLM and classical regressors blended on scaffold-grouped out-of-fold predictions.

    With the default blend, the prediction is a non-negative weighted sum of
    the base models' predictions plus an intercept, fitted by least squares
    on their out-of-fold predictions (see :mod:`sktag.hybrid`).

    Parameters
    ----------
    llm : "embedding", "tag", estimator or None, default="embedding"
        The LLM base model: ``"embedding"`` is :func:`default_llm_model`
        (frozen features with the shipped domain tag + ridge, computed once
        per fit), ``"tag"`` a :class:`~sktag.TagRegressor` with its defaults
        (fitted once per inner fold: about ``cv + 1`` times the cost of one
        fit), an estimator of your own, or None for no LLM (the classical
        models alone, the control).{_CLASSICAL_PARAMETER}
    blend : {{"auto", "linear", "mean"}}, default="auto"
        ``"linear"`` (also ``"auto"``): non-negative weights and an
        intercept, least squares on the out-of-fold predictions;
        ``"mean"``: the plain mean of the base models' predictions.{_SHARED_PARAMETERS}

    Attributes
    ----------
    base_names_ : list of str
    estimators_ : dict
        Every base model, fitted on all rows.
    weights_ : ndarray of shape (n_base_models,)
        The blend's weights (non-negative), in the order of ``base_names_``.
    intercept_ : float
    oof_predictions_ : ndarray of shape (n_samples, n_base_models)
        The base models' out-of-fold predictions the blend was fitted on.
    oof_scores_ : dict
        RMSE of each base model's and of the blend's out-of-fold predictions
        (the blend's is in-sample for its few weights).
    fit_times_ : dict
        Seconds per base model (inner folds and final fit).
    n_features_in_ : int

    Examples
    --------
    >>> from sktag import HybridRegressor
    >>> from sktag.hybrid import default_classical_models
    >>> classical = default_classical_models("regression", n_estimators=20, random_state=0)
    >>> from sktag.testing import make_tiny_model
    >>> model = make_tiny_model()  # a tiny random model keeps the example fast
    >>> from sktag.datasets import load_esol
    >>> X, y = load_esol(return_X_y=True)
    >>> hyb = HybridRegressor(model=model, classical=classical, cv=3, random_state=0)
    >>> hyb = hyb.fit(X[:90], y[:90])
    >>> hyb.base_names_
    ['llm_embedding', 'hgb_descriptors', 'rf_morgan_counts']
    >>> hyb.weights_.shape, hyb.predict(X[90:95]).shape
    ((3,), (5,))
    """

    _task = "regression"

    @staticmethod
    def _targets(y):
        """``(targets, None)``: ``y`` as finite floats."""
        try:
            y = np.asarray(y, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"y must be numeric for a regressor: {exc}.") from None
        bad = np.flatnonzero(~np.isfinite(y))
        if len(bad):
            raise ValueError(f"y contains NaN or infinity in {len(bad)} rows (rows {bad[:10].tolist()}).")
        return y, None

    @staticmethod
    def _base_output(model, X, n_out=None):
        return np.asarray(model.predict(X), dtype=np.float64).reshape(-1)

    def _fit_blend(self, P, y, names):
        """Non-negative least squares with an intercept on the out-of-fold predictions ``P`` (or their mean)."""
        from scipy.optimize import nnls

        m = P.shape[1]
        if self.blend == "mean":
            w, b = np.full(m, 1.0 / m), 0.0
        else:
            mean_p, mean_y = P.mean(axis=0), y.mean()
            w, _ = nnls(P - mean_p, y - mean_y)
            b = float(mean_y - mean_p @ w)
        scores = {n: float(np.sqrt(np.mean((P[:, j] - y) ** 2))) for j, n in enumerate(names)}
        scores["blend"] = float(np.sqrt(np.mean((P @ w + b - y) ** 2)))
        return {"weights_": w, "intercept_": b, "oof_scores_": scores}

    def _blend(self, P):
        """The fitted blend of base-model predictions ``P`` ``[n, n_base_models]``."""
        return P @ self.weights_ + self.intercept_

    @staticmethod
    def _decide(blended):
        """The predictions: the blend itself."""
        return blended


class HybridClassifier(ClassifierMixin, _HybridBase, BaseEstimator):
    __doc__ = f"""Frozen-LLM and classical classifiers blended on scaffold-grouped out-of-fold probabilities.

    With the default blend, a logistic regression fitted on the base models'
    out-of-fold class scores gives the probabilities (see :mod:`sktag.hybrid`).

    Parameters
    ----------
    llm : "embedding", "tag", estimator or None, default="embedding"
        The LLM base model: ``"embedding"`` is :func:`default_llm_model`
        (frozen features with the shipped domain tag + logistic regression,
        computed once per fit), ``"tag"`` a :class:`~sktag.TagClassifier`
        with its defaults (fitted once per inner fold), an estimator of your
        own, or None for no LLM (the classical models alone, the control).{_CLASSICAL_PARAMETER}
    blend : {{"auto", "logistic", "mean"}}, default="auto"
        ``"logistic"`` (also ``"auto"``): a logistic regression on the base
        models' out-of-fold scores (the logit of the positive class for two
        classes, the log-probabilities of every class otherwise);
        ``"mean"``: the mean of their probabilities.{_SHARED_PARAMETERS}

    Attributes
    ----------
    classes_ : ndarray
    base_names_, estimators_, fit_times_, n_features_in_
        As in :class:`HybridRegressor`.
    blend_ : LogisticRegression or None
        The fitted blend (None for ``blend="mean"``).
    weights_ : ndarray
        The blend's coefficients: one per base model for two classes (on
        the logit of the positive class), else ``blend_.coef_``; for
        ``"mean"``, equal weights.
    oof_predictions_ : ndarray of shape (n_samples, n_base_models, n_classes)
        The base models' out-of-fold probabilities.
    oof_scores_ : dict
        Log loss of each base model's and of the blend's out-of-fold
        probabilities.
    """

    _task = "classification"

    @staticmethod
    def _targets(y):
        """``(codes, classes)``: the class of each row as an index into the sorted ``classes``."""
        from sklearn.utils.multiclass import check_classification_targets

        check_classification_targets(y)
        classes, codes = np.unique(y, return_inverse=True)
        if len(classes) < 2:
            raise ValueError(f"classification needs at least 2 classes in y, got {len(classes)}.")
        return codes, classes

    @staticmethod
    def _base_output(model, X, n_out):
        """Probabilities of every class, in the order of the fitted classes (0 for a class the model never saw)."""
        proba = np.asarray(model.predict_proba(X), dtype=np.float64)
        out = np.zeros((len(proba), n_out))
        out[:, np.asarray(model.classes_, dtype=int)] = proba
        return out

    @staticmethod
    def _scores(P):
        """Blend inputs ``[n, ...]`` from probabilities ``[n, n_base, n_classes]``."""
        Q = np.clip(P, 1e-6, 1 - 1e-6)
        if P.shape[2] == 2:
            return np.log(Q[:, :, 1] / Q[:, :, 0])
        return np.log(Q).reshape(len(P), -1)

    def _fit_blend(self, P, codes, names):
        """A logistic regression on the base models' out-of-fold scores (or the mean of their probabilities)."""
        from sklearn.linear_model import LogisticRegression
        from sklearn.metrics import log_loss

        labels = np.arange(P.shape[2])
        if self.blend == "mean":
            blend, weights = None, np.full(P.shape[1], 1.0 / P.shape[1])
            blended = P.mean(axis=1)
        else:
            S = self._scores(P)
            blend = LogisticRegression(max_iter=1000).fit(S, codes)
            weights = blend.coef_[0] if P.shape[2] == 2 else blend.coef_
            blended = blend.predict_proba(S)
        scores = {n: float(log_loss(codes, np.clip(P[:, j], 1e-15, 1), labels=labels)) for j, n in enumerate(names)}
        scores["blend"] = float(log_loss(codes, blended, labels=labels))
        return {"blend_": blend, "weights_": weights, "oof_scores_": scores}

    def predict_proba(self, X):
        """The blended class probabilities.

        Parameters
        ----------
        X : sequence of str, or DataFrame
            The input strings (a DataFrame with the columns ``fit`` saw).

        Returns
        -------
        ndarray of shape (n_samples, n_classes)
            The probabilities, columns in the order of ``classes_``.
        """
        return self._blend(self._predict_bases(X))

    def _blend(self, P):
        """The fitted blend of base-model probabilities ``P`` ``[n, n_base_models, n_classes]``."""
        if self.blend_ is None:
            return P.mean(axis=1)
        return self.blend_.predict_proba(self._scores(P))

    def _decide(self, proba):
        """The most probable class of each row, from the blended probabilities."""
        return self.classes_[np.argmax(proba, axis=1)]
