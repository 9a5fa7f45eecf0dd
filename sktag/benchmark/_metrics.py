"""Metrics computed from stored out-of-fold predictions.

Every metric takes ``(y_true, y_pred)``: for regression ``y_pred`` holds the
predictions; for classification it holds class scores, shape
``(n_samples, n_classes)`` in the order of ``classes`` (``predict_proba``),
or the positive-class score, shape ``(n_samples,)``, for two classes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

__all__ = ["Metric", "get_metric", "concordance_index", "METRICS", "DEFAULT_SCORING"]


@dataclass(frozen=True)
class Metric:
    """A metric of out-of-fold predictions.

    Parameters
    ----------
    name : str
        Column name in the results.
    func : callable
        ``func(y_true, y_pred)`` for regression; for classification
        ``func(y_true, proba, classes)`` with ``proba`` of shape
        ``(n_samples, n_classes)``.
    greater_is_better : bool, default=True
        Direction of the metric (used for "best", ranks and verdicts).
    task : {"regression", "classification"}, default="regression"
        The task the metric applies to.
    label : str or None, default=None
        Display name in tables (``name`` when None).
    """

    name: str
    func: Callable
    greater_is_better: bool = True
    task: str = "regression"
    label: str | None = None

    @property
    def display(self):
        """Label with an arrow giving the direction (``"RMSE ↓"``)."""
        return f"{self.label or self.name} {'↑' if self.greater_is_better else '↓'}"

    def __call__(self, y_true, y_pred, classes=None):
        """Score predictions; NaN where the metric is undefined on these rows."""
        y_true = np.asarray(y_true)
        if self.task == "regression":
            y_pred = np.asarray(y_pred, dtype=float)
            return float(self.func(y_true.astype(float), y_pred))
        proba, classes = _as_proba(y_pred, classes)
        if len(np.unique(y_true)) < 2 and self.name in _NEEDS_TWO_CLASSES:
            return float("nan")
        return float(self.func(y_true, proba, classes))


def _as_proba(y_pred, classes):
    y_pred = np.asarray(y_pred, dtype=float)
    if classes is None:
        classes = np.array([0, 1]) if y_pred.ndim == 1 else np.arange(y_pred.shape[1])
    classes = np.asarray(classes)
    if y_pred.ndim == 1:
        if len(classes) != 2:
            raise ValueError("a 1-D score needs exactly two classes")
        y_pred = np.column_stack([1.0 - y_pred, y_pred])
    return y_pred, classes


def concordance_index(y_true, y_pred):
    """Harrell's concordance index as in DeepDTA (ties in the prediction count 1/2).

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        The true values.
    y_pred : array-like of shape (n_samples,)
        The predicted values.

    Returns
    -------
    ci : float
        Fraction of ordered pairs of ``y_true`` that ``y_pred`` orders the
        same way; NaN when ``y_true`` is constant.
    """
    y_true = np.asarray(y_true, float)
    y_pred = np.asarray(y_pred, float)
    num = den = 0.0
    for i in range(0, len(y_true), 1000):  # blocks of rows: O(n^2) time, little memory
        dt = y_true[i:i + 1000, None] - y_true[None, :]
        dp = y_pred[i:i + 1000, None] - y_pred[None, :]
        mask = dt > 0
        den += mask.sum()
        num += ((dp > 0) & mask).sum() + 0.5 * ((dp == 0) & mask).sum()
    return float(num / den) if den else float("nan")


def _rmse(y, p):
    return np.sqrt(np.mean((y - p) ** 2))


def _r2(y, p):
    ss = np.sum((y - y.mean()) ** 2)
    return 1.0 - np.sum((y - p) ** 2) / ss if ss > 0 else float("nan")


def _spearman(y, p):
    from scipy.stats import spearmanr

    return spearmanr(y, p).statistic if len(y) > 2 else float("nan")


def _roc_auc(y, proba, classes):
    from sklearn.metrics import roc_auc_score

    if len(classes) == 2:
        return roc_auc_score(y == classes[1], proba[:, 1])
    present = np.isin(classes, y)
    if present.sum() < 2:
        return float("nan")
    p = proba[:, present]
    return roc_auc_score(y, p / p.sum(axis=1, keepdims=True), multi_class="ovr", labels=classes[present])


def _average_precision(y, proba, classes):
    from sklearn.metrics import average_precision_score

    if len(classes) != 2:
        return float("nan")
    return average_precision_score(y == classes[1], proba[:, 1])


def _accuracy(y, proba, classes):
    return np.mean(classes[np.argmax(proba, axis=1)] == y)


def _balanced_accuracy(y, proba, classes):
    from sklearn.metrics import balanced_accuracy_score

    return balanced_accuracy_score(y, classes[np.argmax(proba, axis=1)])


def _log_loss(y, proba, classes):
    from sklearn.metrics import log_loss

    return log_loss(y, np.clip(proba, 1e-15, 1.0), labels=classes)


_NEEDS_TWO_CLASSES = {"roc_auc", "average_precision"}

#: Built-in metrics by name.
METRICS = {m.name: m for m in [
    Metric("rmse", _rmse, False, "regression", "RMSE"),
    Metric("mae", lambda y, p: np.mean(np.abs(y - p)), False, "regression", "MAE"),
    Metric("mse", lambda y, p: np.mean((y - p) ** 2), False, "regression", "MSE"),
    Metric("r2", _r2, True, "regression", "R²"),
    Metric("spearman", _spearman, True, "regression", "Spearman ρ"),
    Metric("ci", concordance_index, True, "regression", "CI"),
    Metric("roc_auc", _roc_auc, True, "classification", "AUROC"),
    Metric("average_precision", _average_precision, True, "classification", "AUPRC"),
    Metric("accuracy", _accuracy, True, "classification", "accuracy"),
    Metric("balanced_accuracy", _balanced_accuracy, True, "classification", "balanced accuracy"),
    Metric("log_loss", _log_loss, False, "classification", "log loss"),
]}
_ALIASES = {"root_mean_squared_error": "rmse", "mean_absolute_error": "mae", "mean_squared_error": "mse",
            "concordance_index": "ci", "auroc": "roc_auc", "auc": "roc_auc", "auprc": "average_precision"}

#: Metrics reported when ``scoring=None`` (the first one ranks the models).
DEFAULT_SCORING = {"regression": ["rmse", "mae", "r2"],
                   "classification": ["roc_auc", "average_precision", "accuracy"],
                   "multiclass": ["roc_auc", "accuracy", "log_loss"]}


def get_metric(metric, task=None):
    """A :class:`Metric` from its name (``"rmse"``, ``"roc_auc"``, ...) or itself.

    Parameters
    ----------
    metric : str or Metric
        Name of a built-in metric (see :data:`METRICS`) or a :class:`Metric`.
    task : {"regression", "classification"} or None, default=None
        When given, the metric must apply to this task.

    Returns
    -------
    metric : Metric
        The metric named, or ``metric`` itself.
    """
    if isinstance(metric, Metric):
        m = metric
    elif isinstance(metric, str):
        key = _ALIASES.get(metric.lower(), metric.lower())
        if key not in METRICS:
            raise ValueError(f"unknown metric {metric!r}; built-in metrics: {sorted(METRICS)}, "
                             "or pass a sktag.benchmark.Metric")
        m = METRICS[key]
    else:
        raise TypeError(f"scoring entries must be metric names or Metric objects, got {type(metric).__name__}")
    if task is not None and m.task != task:
        raise ValueError(f"metric {m.name!r} is a {m.task} metric, but the task is {task}")
    return m
