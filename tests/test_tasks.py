"""Task objects (``sktag._fit.tasks``): targets, class labels, weights and closed-form heads."""

import warnings

import numpy as np
import pytest

from conftest import assert_fit_rejects, small_reg
from sktag._fit.tasks import ClassificationTask, RegressionTask

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


# -------------------------------------------------------------- the objects
def test_regression_targets_are_standardised_with_weights():
    task = RegressionTask()
    targets, state = task.fit_targets([1.0, 3.0, 100.0], np.array([1.0, 1.0, 0.0]))
    assert state["y_mean"] == [2.0] and state["y_scale"] == [1.0] and state["y_ndim"] == 1
    np.testing.assert_allclose(targets.ravel(), [-1.0, 1.0, 98.0])
    assert task.n_outputs(state) == 1
    assert task.attributes(state)["n_outputs_"] == 1


def test_neg_log_loss_equals_sklearn_log_loss():
    from sklearn.metrics import log_loss
    from scipy.special import softmax

    rng = np.random.RandomState(0)
    raw, targets, w = rng.normal(size=(7, 3)) * 3, np.array([0, 2, 1, 1, 0, 2, 2]), rng.uniform(0.1, 2, 7)
    expected = -log_loss(targets, softmax(raw, axis=1), sample_weight=w, labels=[0, 1, 2])
    assert ClassificationTask.neg_log_loss(raw, targets, w) == pytest.approx(expected, rel=1e-10)


def test_classification_labels_and_class_weight():
    task = ClassificationTask()
    targets, state = task.fit_targets(["b", "a", "b", "b"], None)
    assert state["classes"] == ["a", "b"] and targets.tolist() == [1, 0, 1, 1]
    np.testing.assert_allclose(task.class_weights(targets, state, "balanced"), [2 / 3, 2.0, 2 / 3, 2 / 3])
    np.testing.assert_allclose(task.class_weights(targets, state, {"a": 3.0}), [1.0, 3.0, 1.0, 1.0])
    with pytest.raises(ValueError, match="not classes"):
        task.class_weights(targets, state, {"c": 1.0})
    with pytest.raises(ValueError, match="not among the classes"):
        task.encode(["c"], state)
    _, declared = task.fit_targets(["a", "a", "b"], None, classes=["a", "b", "c"])
    assert declared["classes"] == ["a", "b", "c"]  # partial_fit declares classes up front


# ================================================================ bad targets
FIT_CASES = [
    # id, estimator, kwargs, X, y, exception, message
    ("y-nan", "reg", {}, ["a", "b", "c"], [1.0, float("nan"), 2.0],
     ValueError, r"y contains NaN or infinity in 1 rows \(rows \[1\]\)"),
    ("y-inf", "reg", {}, ["a", "b", "c"], np.array([1.0, 2.0, -np.inf]),
     ValueError, r"y contains NaN or infinity in 1 rows \(rows \[2\]\)"),
    ("y-nan-clf", "clf", {}, ["a", "b", "c"], np.array([0.0, np.nan, 1.0]),
     ValueError, r"y contains NaN or infinity in 1 rows \(rows \[1\]\)"),
    ("y-none-clf", "clf", {}, ["a", "b", "c"], [0, None, 1],
     ValueError, r"y has missing labels in rows \[1\]"),
    ("y-non-numeric-reg", "reg", {}, ["a", "b"], ["1.5", "x"],
     ValueError, r"y must be numeric for a regressor"),
    ("y-missing", "reg", {}, ["a", "b"], None,
     ValueError, r"TagRegressor requires y to be passed, but the target y is None"),
    ("one-class", "clf", {}, ["a", "b", "c"], ["x", "x", "x"],
     ValueError, r"y has only one class \('x'\); a classifier needs at least two"),
    ("one-sample-clf", "clf", {}, ["a"], [1],
     ValueError, r"y has only one class \(1\); a classifier needs at least two"),
    ("continuous-y-clf", "clf", {}, ["a", "b", "c"], [0.5, 1.25, 2.0],
     ValueError, r"y looks continuous \(non-integer floats\); TagClassifier needs class labels"),
    ("y-2d-clf", "clf", {}, ["a", "b"], [[0, 1], [1, 0]],
     ValueError, r"y must be 1-D for TagClassifier, got shape \(2, 2\)"),
    ("y-overflow", "reg", {}, ["a", "b", "c"], [1e300, -1e300, 0.0],
     ValueError, r"y is too large to standardise \(largest \|y\| = 1e\+300\)"),
]


@pytest.mark.parametrize("case", FIT_CASES, ids=[c[0] for c in FIT_CASES])
def test_fit_rejects_bad_input_without_touching_it(case, tiny_model):
    assert_fit_rejects(case, tiny_model)


def test_one_sample_regression_is_finite(tiny_model):
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # no 0/0 from leave-one-out on one row
        est = small_reg(tiny_model).fit(["CCO"], [3.5])
    assert np.isfinite(est.predict(["CCO", "N"])).all()
    assert est.head_alpha_ == 1.0


def test_the_logistic_head_converges_on_badly_conditioned_features():
    # standardised features whose spectrum falls over five decades, as pooled LLM states' does: lbfgs needs
    # about 510 iterations at C = 10, so 500 (the earlier limit) stopped it short with a ConvergenceWarning
    from sklearn.exceptions import ConvergenceWarning

    rng = np.random.RandomState(0)
    B = rng.randn(100, 600) * np.logspace(0, -5, 100)[:, None]
    Z = rng.randn(300, 100) @ B + 1e-8 * rng.randn(300, 600)
    Z = (Z - Z.mean(0)) / Z.std(0)
    y = (rng.randn(300) > 0).astype(int)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        coef, icpt, penalty = ClassificationTask.closed_form(Z, y, np.ones(300), penalty=0.1)
    assert penalty == pytest.approx(0.1) and np.isfinite(coef).all() and coef.shape == (2, 600)
