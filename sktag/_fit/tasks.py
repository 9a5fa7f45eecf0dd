"""Task objects: what differs between regression and classification.

A task is built from the estimator's parameters (:meth:`from_params`) and
owns the parameters that only it reads (``class_weight``, ``scoring``) with
their constraints (:attr:`parameter_constraints`), target encoding, the
head's output width, the loss, the validation score, the closed-form head
and the metadata a TagSet stores with a head.  A new kind of target
(ordinal, multi-label, ...) is one new class here; the estimator core only
calls the methods below.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.special import logsumexp
from sklearn.metrics import accuracy_score, r2_score
from sklearn.utils.class_weight import compute_class_weight
from sklearn.utils.multiclass import check_classification_targets, type_of_target

from .._runtime.validation import Instance, Options
from .ridge import ridge_gcv

#: penalties of the regression head's closed form
RIDGE_ALPHAS = np.logspace(-2, 5, 22)
#: lbfgs iterations of the classification head's closed form.  Pooled LLM
#: states are badly conditioned even standardised (their spectrum falls over
#: several decades): on all 9,861 CYP3A4 training molecules 500 iterations
#: left the cross-validation path unconverged, while the benchmark's
#: ``LLMEmbedding`` + ``LogisticRegressionCV(max_iter=2000)`` converged on the
#: same kind of features.  lbfgs stops at convergence, so fits that converge
#: sooner are unchanged.
LOGISTIC_MAX_ITER = 2000


def _internal():
    """Context for scikit-learn estimators sktag fits internally (the closed-form heads).

    They are handed ``sample_weight`` directly, as an estimator's own part,
    not routed from a user's meta-estimator: with
    ``sklearn.set_config(enable_metadata_routing=True)`` a
    ``LogisticRegressionCV`` would otherwise refuse the weights its scorer did
    not request.  Routing off inside gives the same computation either way.
    """
    from sklearn import config_context

    return config_context(enable_metadata_routing=False)


def _check_finite(y, what="y"):
    bad = ~np.isfinite(y)
    if bad.any():
        rows = np.flatnonzero(bad.reshape(len(y), -1).any(axis=1))
        raise ValueError(
            f"{what} contains NaN or infinity in {len(rows)} rows (rows {rows[:10].tolist()}"
            f"{' ...' if len(rows) > 10 else ''})."
        )


class RegressionTask:
    """Standardised targets (weighted mean and std), MSE, R², ridge head."""

    name = "regression"
    #: Constraints of the estimator parameters this task owns.
    parameter_constraints = {}

    def __init__(self, estimator_name="TagRegressor"):
        self.estimator_name = estimator_name

    @classmethod
    def from_params(cls, estimator):
        """The task of ``estimator`` (its class name in messages, its task parameters)."""
        return cls(type(estimator).__name__)

    def _as_2d(self, y):
        if y is None:
            raise ValueError(f"{self.estimator_name} requires y to be passed, but the target y is None.")
        arr = np.asarray(y)
        if np.iscomplexobj(arr):
            raise ValueError("Complex data not supported: y must be real.")
        if arr.dtype == object or arr.dtype.kind in "USb":
            try:
                arr = arr.astype(np.float64)
            except (TypeError, ValueError) as exc:
                raise ValueError(f"y must be numeric for a regressor: {exc}.") from exc
        arr = np.array(arr, dtype=np.float64)  # a copy: never modify the caller's y
        if arr.ndim not in (1, 2) or (arr.ndim == 2 and arr.shape[1] == 0):
            raise ValueError(f"y must be 1-D or 2-D, got shape {arr.shape}.")
        _check_finite(arr)
        return arr

    def fit_targets(self, y, sample_weight):
        """Learn the standardisation; returns ``(targets, state)``."""
        arr = self._as_2d(y)
        arr2 = arr[:, None] if arr.ndim == 1 else arr
        w = sample_weight if sample_weight is not None and len(sample_weight) == len(arr2) else None
        with np.errstate(over="ignore", invalid="ignore"):
            mean = np.average(arr2, axis=0, weights=w)
            scale = np.sqrt(np.average((arr2 - mean) ** 2, axis=0, weights=w))
        if not (np.all(np.isfinite(mean)) and np.all(np.isfinite(scale))):
            raise ValueError(
                f"y is too large to standardise (largest |y| = {np.abs(arr2).max():.3g}): its mean or "
                "standard deviation overflows float64 and would give infinite predictions. Rescale y."
            )
        state = {"y_mean": mean.tolist(), "y_scale": np.where(scale > 0, scale, 1.0).tolist(), "y_ndim": arr.ndim}
        return self.encode(y, state), state

    def encode(self, y, state):
        arr = self._as_2d(y)
        arr2 = arr[:, None] if arr.ndim == 1 else arr
        if arr2.shape[1] != len(state["y_mean"]):
            raise ValueError(f"y has {arr2.shape[1]} outputs; the fitted estimator has {len(state['y_mean'])}.")
        return (arr2 - np.asarray(state["y_mean"])) / np.asarray(state["y_scale"])

    @staticmethod
    def n_outputs(state):
        return len(state["y_mean"])

    def row_weights(self, targets, state, sample_weight):
        """Per-row weights of the loss: ``sample_weight`` (regression weighs no row further)."""
        return np.asarray(sample_weight, dtype=np.float64)

    @staticmethod
    def target_tensor(targets, device):
        return torch.as_tensor(targets, dtype=torch.float32, device=device)

    @staticmethod
    def loss(out, y):
        """Per-sample MSE over outputs."""
        return ((out - y) ** 2).mean(dim=1)

    @staticmethod
    def score(raw, targets, sw):
        return float(r2_score(targets, raw, sample_weight=sw))

    def validation_score(self, raw, targets, sw):
        """The early-stopping score (higher is better): R²."""
        return self.score(raw, targets, sw)

    @staticmethod
    def stratify(targets):
        return None

    @staticmethod
    def closed_form(F, targets, sw, random_state=None, n_outputs=None, penalty=None):
        """Ridge on standardised features, penalty by leave-one-out (GCV, :func:`~sktag._fit.ridge.ridge_gcv`).

        GCV is cheap, so every solve chooses the penalty anew (``penalty`` is ignored).
        """
        from sklearn.linear_model import Ridge

        if (np.asarray(sw) > 0).sum() < 2:  # leave-one-out needs two rows: a fixed penalty, no 0/0 warnings
            with _internal():
                ridge = Ridge(alpha=1.0).fit(F, targets, sample_weight=sw)
            return np.atleast_2d(ridge.coef_), np.atleast_1d(ridge.intercept_), 1.0
        with _internal():
            return ridge_gcv(F, targets, sw / sw.mean(), RIDGE_ALPHAS)

    @staticmethod
    def attributes(state):
        """Fitted estimator attributes of this task state."""
        return {"y_mean_": np.asarray(state["y_mean"], dtype=np.float64),
                "y_scale_": np.asarray(state["y_scale"], dtype=np.float64),
                "n_outputs_": len(state["y_mean"])}

    @staticmethod
    def decode(raw, state):
        """Predictions in the units and shape of ``y`` from the head's standardised outputs ``raw``."""
        pred = raw * np.asarray(state["y_scale"], dtype=np.float64) + np.asarray(state["y_mean"], dtype=np.float64)
        return pred.ravel() if state["y_ndim"] == 1 else pred


class ClassificationTask:
    """Class labels, cross-entropy, accuracy, logistic-regression head; ``class_weight`` and ``scoring``."""

    name = "classification"
    #: Constraints of the estimator parameters this task owns.
    parameter_constraints = {
        "class_weight": [Options("balanced"), Instance(dict), None],
        "scoring": [Options("accuracy", "loss")],
    }

    def __init__(self, estimator_name="TagClassifier", class_weight=None, scoring="accuracy"):
        self.estimator_name = estimator_name
        self.class_weight = class_weight
        self.scoring = scoring

    @classmethod
    def from_params(cls, estimator):
        """The task of ``estimator``: its ``class_weight`` and ``scoring``."""
        return cls(type(estimator).__name__, estimator.class_weight, estimator.scoring)

    def _labels(self, y):
        if y is None:
            raise ValueError(f"{self.estimator_name} requires y to be passed, but the target y is None.")
        arr = np.asarray(y)
        if arr.ndim == 2 and arr.shape[1] == 1:
            arr = arr.ravel()
        if arr.ndim != 1:
            raise ValueError(f"y must be 1-D for {self.estimator_name}, got shape {arr.shape}.")
        if arr.dtype.kind == "f":
            _check_finite(arr)
        if arr.dtype == object:
            missing = [i for i, v in enumerate(arr) if v is None or (isinstance(v, float) and np.isnan(v))]
            if missing:
                raise ValueError(f"y has missing labels in rows {missing[:10]}.")
        if type_of_target(arr) == "continuous":
            raise ValueError(
                f"y looks continuous (non-integer floats); {self.estimator_name} needs class labels. "
                "Use TagRegressor for regression."
            )
        check_classification_targets(arr)
        return arr

    def fit_targets(self, y, sample_weight, classes=None):
        arr = self._labels(y)
        found = np.unique(arr)
        classes = found if classes is None else np.unique(np.asarray(classes))
        if len(classes) < 2:
            raise ValueError(
                f"y has only one class ({classes[0].tolist()!r}); a classifier needs at least two."
                if len(classes) else "y is empty."
            )
        state = {"classes": classes.tolist()}
        return self.encode(y, state), state

    def encode(self, y, state):
        arr = self._labels(y)
        classes = np.asarray(state["classes"])
        unknown = np.setdiff1d(arr, classes)
        if len(unknown):
            raise ValueError(f"y has labels {unknown.tolist()} not among the classes {classes.tolist()}.")
        return np.searchsorted(classes, arr)

    @staticmethod
    def n_outputs(state):
        return len(state["classes"])

    def row_weights(self, targets, state, sample_weight):
        """Per-row weights of the loss: ``sample_weight`` times the weight of each row's class.

        ``class_weight`` is None, ``"balanced"`` or a dict; ``"balanced"``
        counts the rows of positive ``sample_weight`` only (rows of weight zero
        are absent rows).
        """
        sample_weight = np.asarray(sample_weight, dtype=np.float64)
        return sample_weight * self.class_weights(targets, state, self.class_weight, sample_weight)

    @staticmethod
    def class_weights(targets, state, class_weight, sample_weight=None):
        """Per-row multiplier of ``sample_weight`` from ``class_weight`` (None, "balanced", dict)."""
        if class_weight is None:
            return np.ones(len(targets))
        classes = np.asarray(state["classes"])
        counted = targets if sample_weight is None else targets[np.asarray(sample_weight) > 0]
        present = np.unique(counted)
        if isinstance(class_weight, dict):
            unknown = [k for k in class_weight if k not in set(classes.tolist())]
            if unknown:
                raise ValueError(f"class_weight names labels {unknown} that are not classes {classes.tolist()}.")
            per_class = np.array([float(class_weight.get(c, 1.0)) for c in classes.tolist()])
        else:
            per_class = np.ones(len(classes))
            per_class[present] = compute_class_weight("balanced", classes=present, y=counted)
        return per_class[targets]

    @staticmethod
    def target_tensor(targets, device):
        return torch.as_tensor(targets, dtype=torch.int64, device=device)

    @staticmethod
    def loss(out, y):
        return torch.nn.functional.cross_entropy(out, y, reduction="none")

    @staticmethod
    def score(raw, targets, sw):
        return float(accuracy_score(targets, raw.argmax(axis=1), sample_weight=sw))

    def validation_score(self, raw, targets, sw):
        """The early-stopping score (higher is better): accuracy, or minus the log-loss (``scoring``)."""
        return self.neg_log_loss(raw, targets, sw) if self.scoring == "loss" else self.score(raw, targets, sw)

    @staticmethod
    def neg_log_loss(raw, targets, sw):
        """Minus the weighted mean cross-entropy of the logits ``raw`` (higher is better)."""
        raw = np.asarray(raw, dtype=np.float64)
        log_p = raw - logsumexp(raw, axis=1, keepdims=True)
        nll = -log_p[np.arange(len(targets)), np.asarray(targets)]
        return float(-np.average(nll, weights=sw))

    @staticmethod
    def stratify(targets):
        return targets

    @staticmethod
    def closed_form(F, targets, sw, random_state=None, n_outputs=None, penalty=None):
        """L2 logistic regression on standardised features, C by 3-fold log-loss.

        With ``penalty`` (``1 / C`` of an earlier solve) the cross-validation
        is skipped: the estimators choose ``C`` once, at the initial tags, and
        keep it for the re-solves after each epoch.  Classes absent from ``targets`` (declared through ``partial_fit``) get
        zero weights and a very low bias; with a single class present the
        head predicts it with zero weights.
        """
        sw = sw / sw.mean()  # only relative weights matter, as in the gradient loss
        present = np.unique(targets)
        n_out = max(int(n_outputs or 0), int(targets.max()) + 1)
        coef_full, icpt_full = np.zeros((n_out, F.shape[1])), np.full(n_out, -10.0)
        if len(present) < 2:
            icpt_full[present] = 0.0
            return coef_full, icpt_full, float("nan")
        counts = np.bincount(targets)
        with _internal():
            lr, C = ClassificationTask._logistic(F, targets, sw, penalty, counts[present].min() >= 3, random_state)
        coef, icpt = lr.coef_, lr.intercept_
        if coef.shape[0] == 1:  # binary: sklearn gives one row; the head has one logit per class
            coef = np.vstack([-coef / 2, coef / 2])
            icpt = np.array([-icpt[0] / 2, icpt[0] / 2])
        coef_full[lr.classes_], icpt_full[lr.classes_] = coef, icpt
        return coef_full, icpt_full, 1.0 / C

    @staticmethod
    def _logistic(F, targets, sw, penalty, can_cross_validate, random_state):
        """The fitted logistic regression and its ``C``: ``1 / penalty``, else chosen by 3-fold log-loss."""
        from sklearn.linear_model import LogisticRegression, LogisticRegressionCV

        if penalty is not None and np.isfinite(penalty):
            C = 1.0 / penalty
        elif can_cross_validate:
            import warnings

            with warnings.catch_warnings():  # sklearn 1.9's FutureWarnings about 1.10 defaults
                warnings.simplefilter("ignore", FutureWarning)
                lr = LogisticRegressionCV(Cs=np.logspace(-3, 1, 5), cv=3, scoring="neg_log_loss",
                                          max_iter=LOGISTIC_MAX_ITER,
                                          random_state=random_state).fit(F, targets, sample_weight=sw)
            return lr, float(np.atleast_1d(lr.C_)[0])
        else:
            C = 0.1
        return LogisticRegression(C=C, max_iter=LOGISTIC_MAX_ITER).fit(F, targets, sample_weight=sw), C

    @staticmethod
    def attributes(state):
        return {"classes_": np.asarray(state["classes"])}
