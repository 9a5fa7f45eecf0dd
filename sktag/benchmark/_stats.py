"""Paired statistics of two models scored on the same folds."""

from __future__ import annotations

import numpy as np

__all__ = ["corrected_ttest", "bootstrap_ci"]


def corrected_ttest(a, b, n_train, n_test):
    """Nadeau and Bengio's corrected resampled t-test of paired per-fold scores.

    The folds of a cross-validation share training rows, so their scores are
    correlated and the plain paired t-test is far too confident.  Nadeau and
    Bengio (2003, *Inference for the generalization error*, Machine Learning
    52:239-281) replace the variance factor ``1/J`` of the mean of ``J``
    differences by ``1/J + n_test/n_train``:

    ``t = mean(d) / sqrt((1/J + n_test/n_train) * var(d))``, ``J - 1`` degrees
    of freedom, ``d = a - b`` and ``var`` the sample variance (``ddof=1``).

    Parameters
    ----------
    a, b : array-like of shape (n_folds,)
        Scores of two models on the same folds (the same fold at the same
        position).
    n_train, n_test : float or array-like of shape (n_folds,)
        Training and test rows of the folds (the ratio is averaged over folds).

    Returns
    -------
    mean_difference : float
        ``mean(a - b)``.
    t : float
        The corrected t statistic (``nan`` when the differences have no
        variance and a mean of 0; ``±inf`` when only the variance is 0).
    p_value : float
        Two-sided p-value under Student's t with ``J - 1`` degrees of freedom.
    """
    from scipy import stats

    d = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    ok = np.isfinite(d)
    ratio = np.broadcast_to(np.asarray(n_test, float) / np.asarray(n_train, float), d.shape)[ok]
    d = d[ok]
    J = len(d)
    if J < 2:
        return (float(d.mean()) if J else float("nan")), float("nan"), float("nan")
    mean = float(d.mean())
    var = float(d.var(ddof=1))
    scale = (1.0 / J + float(ratio.mean())) * var
    if scale == 0.0:
        if mean == 0.0:
            return mean, float("nan"), 1.0
        return mean, float(np.sign(mean) * np.inf), 0.0
    t = mean / np.sqrt(scale)
    p = float(2.0 * stats.t.sf(abs(t), df=J - 1))
    return mean, float(t), p


def bootstrap_ci(score_a, score_b, folds, *, n_resamples=2000, confidence=0.95, random_state=None):
    """Percentile bootstrap interval of a paired difference of fold-averaged scores.

    Rows are resampled with replacement *within each test fold* (the same rows
    for both models); each resample scores both models on every fold and takes
    the mean over folds of ``score_a - score_b``.  This captures the sampling
    variation of the test rows, not that of the training sets (the corrected
    t-test accounts for both, approximately).

    Parameters
    ----------
    score_a, score_b : callable
        ``score(fold, rows)`` -> the model's metric on ``rows`` (positions into
        that fold's test rows).
    folds : list of int
        Sizes of the test folds.
    n_resamples : int, default=2000
        Number of bootstrap resamples.
    confidence : float, default=0.95
        Coverage of the interval.
    random_state : int, RandomState or None, default=None
        Seeds the resampling.

    Returns
    -------
    low, high : float
        The interval; NaN when too many resamples are undefined.
    """
    rng = np.random.RandomState(random_state) if not isinstance(random_state, np.random.RandomState) \
        else random_state
    diffs = np.empty(n_resamples)
    for b in range(n_resamples):
        per_fold = []
        for f, n in enumerate(folds):
            rows = rng.randint(0, n, size=n)
            per_fold.append(score_a(f, rows) - score_b(f, rows))
        diffs[b] = np.nanmean(per_fold) if np.isfinite(per_fold).any() else np.nan
    diffs = diffs[np.isfinite(diffs)]
    if len(diffs) < 0.5 * n_resamples:
        return float("nan"), float("nan")
    alpha = (1.0 - confidence) / 2.0
    return float(np.quantile(diffs, alpha)), float(np.quantile(diffs, 1.0 - alpha))


def fmt_p(p):
    """A p-value as the reports write it (``"< 0.001"``, ``"0.042"``, ``"–"`` when undefined)."""
    if not np.isfinite(p):
        return "–"
    return "< 0.001" if p < 0.001 else f"{p:.3f}"
