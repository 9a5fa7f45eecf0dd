"""The scikit-learn estimator contract, item by item.

``check_estimator`` skips estimators whose input is strings, so the
data-free common checks are called directly.
"""

import pickle
import warnings

import joblib
import numpy as np
import pandas as pd
import pytest
import sklearn
from sklearn.base import BaseEstimator, clone, is_classifier, is_regressor
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.model_selection import GridSearchCV, KFold, cross_val_score, cross_validate
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import FunctionTransformer
from sklearn.utils import estimator_checks as ec

from conftest import TEXT, Y_CLF, DATA_FREE_CHECKS
from sktag import TagClassifier, TagRegressor

ESTIMATORS = [TagRegressor, TagClassifier]


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        yield


@pytest.mark.parametrize("Est", ESTIMATORS)
@pytest.mark.parametrize(
    "check",
    [getattr(ec, name) for name in DATA_FREE_CHECKS],
    ids=lambda c: getattr(c, "__name__", str(c)),
)
def test_sklearn_common_checks(Est, check):
    check(Est.__name__, Est())


@pytest.mark.parametrize("Est", ESTIMATORS)
def test_mixins_left_base_estimator_rightmost(Est):
    mro_bases = Est.__bases__
    assert mro_bases[-1] is BaseEstimator
    assert is_regressor(Est()) or is_classifier(Est())


@pytest.mark.parametrize("Est", ESTIMATORS)
def test_init_does_no_work_or_validation(Est, monkeypatch):
    import sktag.backbone as bb

    monkeypatch.setattr(bb, "load_backbone", lambda *a, **k: pytest.fail("loaded in __init__"))
    est = Est(model="no/such/model", tag_length=-5, device="tpu", dtype="int3")
    assert est.tag_length == -5 and est.device == "tpu"


@pytest.mark.parametrize("Est", ESTIMATORS)
def test_tags_declare_string_input(Est):
    tags = Est().__sklearn_tags__()
    assert tags.input_tags.string
    assert tags.input_tags.one_d_array


def test_clone_shares_the_backbone_and_copies_no_weights(make_reg, length_task):
    X, y = length_task
    reg = make_reg(max_iter=1).fit(X, y)
    c = clone(reg)
    assert not hasattr(c, "module_") and not hasattr(c, "_backbone")
    c.fit(X, y)
    assert c._backbone is reg._backbone  # one process-wide copy


@pytest.mark.parametrize("Est, method", [
    *[(TagRegressor, m) for m in ("predict", "transform", "tagset", "score")],
    *[(TagClassifier, m) for m in ("predict", "predict_proba", "predict_log_proba", "decision_function",
                                   "transform", "tagset", "score")],
])
def test_not_fitted(tiny_model, Est, method):
    est = Est(model=tiny_model, domains="Text")
    args = {"tagset": (), "score": (TEXT, Y_CLF)}.get(method, (TEXT,))
    with pytest.raises(NotFittedError, match=f"This {Est.__name__} instance is not fitted yet"):
        getattr(est, method)(*args)


def test_score_is_r2_and_accuracy(make_reg, make_clf, length_task):
    from sklearn.metrics import accuracy_score, r2_score

    X, y = length_task
    reg = make_reg(max_iter=2).fit(X, y)
    assert reg.score(X, y) == pytest.approx(r2_score(y, reg.predict(X)))
    lab = np.where(y > 8, "a", "b")
    clf = make_clf(max_iter=2).fit(X, lab)
    assert clf.score(X, lab) == pytest.approx(accuracy_score(lab, clf.predict(X)))


def test_pipeline_and_cross_val_score(make_reg, length_task):
    X, y = length_task
    pipe = make_pipeline(FunctionTransformer(lambda s: [x.upper() for x in s]), make_reg(max_iter=1))
    scores = cross_val_score(pipe, X, y, cv=KFold(3, shuffle=True, random_state=0))
    assert scores.shape == (3,) and np.all(np.isfinite(scores))


def test_grid_search_over_tag_length_and_learning_rate(make_reg, length_task):
    X, y = length_task
    gs = GridSearchCV(make_reg(max_iter=1), {"tag_length": [1, 2], "learning_rate_init": [1e-3, 1e-2]}, cv=2)
    gs.fit(X, y)
    assert set(gs.best_params_) == {"tag_length", "learning_rate_init"}
    assert gs.best_estimator_.module_.function_tag.shape[0] == gs.best_params_["tag_length"]
    assert np.isfinite(gs.cv_results_["mean_test_score"]).all()


@pytest.mark.parametrize("dump", ["pickle", "joblib"])
def test_pickle_and_joblib_round_trips(make_reg, make_clf, length_task, dump, tmp_path):
    X, y = length_task
    reg = make_reg(max_iter=2).fit(X, y)
    clf = make_clf(max_iter=2).fit(X, np.where(y > 8, "long", "short"))
    for est, method in ((reg, "predict"), (clf, "predict_proba")):
        if dump == "pickle":
            blob = pickle.dumps(est)
            back = pickle.loads(blob)
            assert len(blob) < 200_000
        else:
            path = tmp_path / "est.joblib"
            joblib.dump(est, path)
            back = joblib.load(path)
        np.testing.assert_array_equal(getattr(back, method)(X), getattr(est, method)(X))


def test_unpickling_refuses_a_different_backbone(make_reg, length_task, other_tiny_model):
    X, y = length_task
    reg = make_reg(max_iter=1).fit(X, y)
    state = pickle.loads(pickle.dumps(reg))
    state.set_params(model=other_tiny_model)
    with pytest.raises(ValueError, match="different model"):
        state.predict(X)


def test_feature_names_in_for_dataframes(make_reg):
    df = pd.DataFrame({"smiles": ["CCO", "CCN", "CO", "CN"] * 4})
    reg = make_reg(max_iter=1, domains={"smiles": "Text"}).fit(df, np.arange(16.0))
    assert list(reg.feature_names_in_) == ["smiles"] and reg.n_features_in_ == 1
    renamed = df.rename(columns={"smiles": "other"})
    with pytest.raises(ValueError, match="column names"):
        reg.predict(renamed)


def test_metadata_routing_of_sample_weight(make_reg, length_task):
    X, y = length_task
    sw = np.ones(len(y))
    sw[::3] = 0.0
    with sklearn.config_context(enable_metadata_routing=True):
        est = make_reg(max_iter=1).set_fit_request(sample_weight=True).set_score_request(sample_weight=True)
        res = cross_validate(est, X, y, cv=2, params={"sample_weight": sw})
        assert np.isfinite(res["test_score"]).all()
        pipe = Pipeline([("m", make_reg(max_iter=1).set_fit_request(sample_weight=True))])
        pipe.fit(X, y, sample_weight=sw)
        assert pipe.named_steps["m"].y_mean_[0] == pytest.approx(np.average(y, weights=sw))
