"""HybridRegressor / HybridClassifier: base models blended on scaffold-grouped out-of-fold predictions."""

import pickle
import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV, GroupKFold

from conftest import esol_sample, tol
from sktag import HybridClassifier, HybridRegressor
from sktag.benchmark import compare
from sktag.exceptions import InvalidInputError
from sktag.hybrid import default_classical_models
from sktag.model_selection import scaffold_groups

pytest.importorskip("rdkit")


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        yield


@pytest.fixture(scope="module")
def esol40():
    return esol_sample(40, seed=1)


def small(Est, model, task, **kw):
    """A hybrid with 10-tree forests and 3 inner folds."""
    params = dict(model=model, cv=3, random_state=0,
                  classical=default_classical_models(task, random_state=0, n_estimators=10))
    return Est(**{**params, **kw})


@pytest.fixture
def count_rows(monkeypatch, tiny_model):
    """Rows run through the frozen LLM's prefix passes (the sizes of the batches run), by LLMEmbedding or a Tag-LLM."""
    from sktag import load_backbone
    from sktag._forward import engine

    load_backbone(tiny_model)  # loaded (and its masks checked) before counting
    seen = []
    prefix_pass = engine.prefix_pass

    def counting(backbone, batch, *args, **kwargs):
        seen.append(int(batch.ids.shape[0]))
        return prefix_pass(backbone, batch, *args, **kwargs)

    monkeypatch.setattr(engine, "prefix_pass", counting)
    return seen


def test_regression_blends_with_non_negative_weights(tiny_model, esol40, count_rows):
    X, y = esol40
    X_before = X.copy()
    hyb = small(HybridRegressor, tiny_model, "regression").fit(X[:30], y[:30])
    np.testing.assert_array_equal(X, X_before)
    assert hyb.base_names_ == ["llm_embedding", "hgb_descriptors", "rf_morgan_counts"]
    assert hyb.weights_.shape == (3,) and (hyb.weights_ >= 0).all()
    assert set(hyb.oof_scores_) == {*hyb.base_names_, "blend"} and hyb.oof_predictions_.shape == (30, 3)
    assert sum(count_rows) == 30  # the frozen features of the training rows: once per fit, not once per inner fold
    pred = hyb.predict(X[30:])
    assert sum(count_rows) == 40 and pred.shape == (10,)
    bases = np.stack([hyb.estimators_[n].predict(X[30:]) for n in hyb.base_names_], axis=1)
    np.testing.assert_allclose(pred, bases @ hyb.weights_ + hyb.intercept_, **tol())
    mean = small(HybridRegressor, tiny_model, "regression", blend="mean").fit(X[:30], y[:30])
    np.testing.assert_allclose(mean.predict(X[30:]), bases.mean(axis=1), **tol())


def test_the_blend_is_learned_on_scaffold_grouped_out_of_fold_predictions(tiny_model, esol40):
    X, y = esol40
    hyb = small(HybridRegressor, tiny_model, "regression")
    splits, groups = hyb._inner_splits(X, y)
    assert len(splits) == 3
    for tr, va in splits:
        assert not set(groups[tr]) & set(groups[va])  # no scaffold on both sides
    assert sorted(np.concatenate([va for _, va in splits]).tolist()) == list(range(40))
    hyb.fit(X, y)
    # the out-of-fold prediction of a row comes from a model fitted without its scaffold
    rest = clone(hyb.estimators_["hgb_descriptors"])
    tr, va = splits[0]
    np.testing.assert_allclose(hyb.oof_predictions_[va, 1], rest.fit(X[tr], y[tr]).predict(X[va]), **tol())


def test_classification_and_string_labels(tiny_model, bbbp40):
    X, y = bbbp40
    labels = np.where(y == 1, "permeable", "not")
    clf = small(HybridClassifier, tiny_model, "classification").fit(X, labels)
    assert list(clf.classes_) == ["not", "permeable"] and clf.weights_.shape == (3,)
    proba = clf.predict_proba(X[:5])
    assert proba.shape == (5, 2) and np.allclose(proba.sum(axis=1), 1)
    assert set(clf.predict(X)) <= {"not", "permeable"}
    assert clf.oof_predictions_.shape == (40, 3, 2)
    mean = small(HybridClassifier, tiny_model, "classification", blend="mean").fit(X, labels)
    assert mean.blend_ is None and np.allclose(mean.predict_proba(X[:5]).sum(axis=1), 1)


def test_two_columns_drug_and_protein(tiny_model, esol40):
    X, y = esol40
    frame = pd.DataFrame({"drug": X, "seq": ["MKVLA", "GGHW"] * 20})
    hyb = small(HybridRegressor, tiny_model, "regression", domains={"drug": "SMILES", "seq": "Protein"},
                classical=default_classical_models("regression", smiles_column="drug", n_estimators=10))
    hyb.fit(frame, y)
    assert hyb.n_features_in_ == 2 and hyb.predict(frame.iloc[:4]).shape == (4,)
    assert hyb.estimators_["llm_embedding"].steps[0][1].n_features_in_ == 2  # the LLM reads both columns
    with pytest.raises(ValueError, match="say which holds the SMILES"):
        small(HybridRegressor, tiny_model, "regression", domains=["SMILES", "Protein"]).fit(frame, y)


def test_clone_pickle_and_grid_search(tiny_model, esol40):
    X, y = esol40
    hyb = small(HybridRegressor, tiny_model, "regression")
    assert clone(hyb).get_params()["blend"] == "auto"
    fitted = clone(hyb).fit(X[:30], y[:30])
    again = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_array_equal(again.predict(X[30:]), fitted.predict(X[30:]))
    search = GridSearchCV(hyb, {"blend": ["linear", "mean"]}, cv=GroupKFold(2), scoring="neg_root_mean_squared_error")
    search.fit(X, y, groups=scaffold_groups(X))
    assert search.best_params_["blend"] in ("linear", "mean") and len(search.cv_results_["mean_test_score"]) == 2


def test_the_control_and_errors(tiny_model, esol40):
    X, y = esol40
    control = small(HybridRegressor, tiny_model, "regression", llm=None).fit(X, y)
    assert control.base_names_ == ["hgb_descriptors", "rf_morgan_counts"]
    with pytest.raises(ValueError, match="at least two base models"):
        HybridRegressor(llm=None, classical=None).fit(X, y)
    with pytest.raises(ValueError, match="blend must be"):
        small(HybridRegressor, tiny_model, "regression", blend="logistic").fit(X, y)
    with pytest.raises(ValueError, match="scaffold-grouped inner folds need at least 50"):
        small(HybridRegressor, tiny_model, "regression", cv=50).fit(X, y)
    bad = X.copy()
    bad[7] = "C1CC"
    fitted = small(HybridRegressor, tiny_model, "regression").fit(X[:30], y[:30])
    weights = fitted.weights_.copy()
    with pytest.raises(InvalidInputError, match="C1CC"):
        fitted.fit(bad, y)
    np.testing.assert_array_equal(fitted.weights_, weights)  # a failed fit leaves the estimator as it was


def test_compare_shares_the_frozen_features_and_reports_own_baselines(tiny_model, esol40, count_rows):
    X, y = esol40
    forests = {"classical": default_classical_models("regression", random_state=0, n_estimators=10), "cv": 3}
    res = compare(X, y, models=["llm_embedding_pretrained", "hybrid", "stack_classical", "dummy"], cv=2,
                  model=tiny_model, random_state=0, model_params={"hybrid": forests, "stack_classical": forests})
    assert res.folds["error"].isna().all(), res.folds["error"].tolist()
    assert sum(count_rows) == 40  # each string once, whatever the folds and the rows that use it
    assert any("40 rows computed" in n for n in res.notes), res.notes
    own = res.own_baselines()
    assert own[["model", "reference"]].values.tolist() == [["hybrid", "stack_classical"]]
    assert "hybrid against stack_classical (the LLM's share of the blend" in res.to_markdown()
    assert "stack_classical" not in res.llm_models and "hybrid" in res.llm_models


def test_compare_calls_share_the_prefix_store(tiny_model, esol40, count_rows):
    from sktag._forward.prefix_store import active_store, prefix_store

    X, y = esol40
    split = lambda n: [(np.arange(n), np.arange(30, 40))]  # noqa: E731  nested training rows, one test set
    store = active_store()  # each test has a store of its own (conftest)
    first = compare(X, y, models=["llm_embedding_pretrained"], cv=split(10), model=tiny_model, random_state=0)
    second = compare(X, y, models=["llm_embedding_pretrained"], cv=split(30), model=tiny_model, random_state=0)
    assert sum(count_rows) == 40  # 10 + 10 test rows in the first call, the 20 new training rows in the second
    assert store.misses == 40 and store.hits == 20
    assert any("20 rows computed, 20 reused" in n for n in second.notes), second.notes
    assert second.folds[["prefix_reused", "prefix_computed"]].values.tolist() == [[20, 20]]
    assert not any("reused" in n for n in first.notes), first.notes
    # with the store off every call computes its rows
    count_rows.clear()
    with prefix_store(max_bytes=0):
        off = compare(X, y, models=["llm_embedding_pretrained"], cv=split(10), model=tiny_model, random_state=0)
    assert sum(count_rows) == 20
    np.testing.assert_array_equal(off.folds["rmse"], first.folds["rmse"])
