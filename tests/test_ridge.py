"""sktag._fit.ridge: the regression head's closed form equals scikit-learn's RidgeCV, on both sides of n = d."""

import numpy as np
import pytest
from sklearn.linear_model import RidgeCV

from sktag._fit.ridge import ridge_gcv
from sktag._fit.tasks import RIDGE_ALPHAS


def _problem(n, d, k, seed=0):
    rng = np.random.RandomState(seed)
    X = rng.randn(n, d) @ rng.randn(d, d) * 0.3 + rng.randn(d)
    Y = X @ rng.randn(d, k) / np.sqrt(d) + rng.randn(n, k)
    sw = rng.uniform(0.2, 2.0, n)
    sw[:3] = 0.0  # rows of weight zero take no part
    return X, Y, sw / sw.mean()


@pytest.mark.parametrize("n, d, k, one_d", [(400, 30, 1, False), (400, 30, 1, True), (400, 30, 3, False),
                                             (200, 150, 2, False), (60, 150, 1, False), (60, 150, 1, True)])
def test_ridge_gcv_equals_ridge_cv(n, d, k, one_d):
    X, Y, sw = _problem(n, d, k)
    y = Y[:, 0] if one_d else Y
    ref = RidgeCV(alphas=RIDGE_ALPHAS).fit(X, y, sample_weight=sw)
    coef, intercept, alpha = ridge_gcv(X, y, sw, RIDGE_ALPHAS)
    assert alpha == ref.alpha_
    assert coef.shape == (k, d) and intercept.shape == (k,)
    np.testing.assert_allclose(coef, np.atleast_2d(ref.coef_), rtol=1e-7, atol=1e-10)
    np.testing.assert_allclose(intercept, np.atleast_1d(ref.intercept_), rtol=1e-7, atol=1e-10)


def test_ridge_gcv_chooses_the_penalty_the_data_need():
    # with many rows and little noise a small penalty wins; with pure noise the largest
    X, Y, sw = _problem(500, 20, 1, seed=1)
    signal = X @ np.random.RandomState(2).randn(20)
    assert ridge_gcv(X, signal + 0.01 * Y[:, 0], sw, RIDGE_ALPHAS)[2] == RIDGE_ALPHAS[0]
    assert ridge_gcv(X, np.random.RandomState(3).randn(500), sw, RIDGE_ALPHAS)[2] == RIDGE_ALPHAS[-1]
