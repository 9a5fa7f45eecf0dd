"""Prediction and ``transform`` (``sktag._fit.inference``): from the fitted state only, columns checked, rows in order."""

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.exceptions import NotFittedError

from conftest import CNO as TEXT
from conftest import LABELS_CNO as LABELS
from conftest import SUITE_DTYPE
from conftest import Y_CNO as Y
from conftest import quick_reg as reg
from conftest import tol
from sktag import TagClassifier

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


@pytest.mark.parametrize("change", [dict(readout_layers=[2]), dict(readout="tag"), dict(readout_layers="all"),
                                    dict(isolate_segments=True), dict(canonicalize=False),
                                    dict(dtype="bfloat16")], ids=str)
def test_parameters_changed_after_fit_do_not_change_predictions(tiny_model, change):
    est = reg(tiny_model, domains={"a": "Text", "b": "SMILES"}, readout_layers=[1])
    X = pd.DataFrame({"a": TEXT, "b": ["OCC", "CCO", "c1ccccc1", "CN", "NC", "CCC"] * 2})
    est.fit(X, Y)
    pred, feats = est.predict(X), est.transform(X)
    meta = est.tagset().heads["TagRegressor"]["task"]
    est.set_params(**change)
    np.testing.assert_array_equal(est.predict(X), pred)
    np.testing.assert_array_equal(est.transform(X), feats)
    assert est.tagset().heads["TagRegressor"]["task"] == meta
    assert (est.readout_, est.readout_layers_, est.isolate_segments_) == ("pooled", [1], False)
    assert est.canonicalize_ is True and est.dtype_ == SUITE_DTYPE


def test_predict_order_is_preserved(make_reg, length_task):
    X, y = length_task
    reg = make_reg(max_iter=2).fit(X, y)
    full = reg.predict(X)
    perm = np.random.RandomState(0).permutation(len(X))
    np.testing.assert_allclose(reg.predict([X[i] for i in perm]), full[perm], **tol(scale=np.std(y)))
    one_by_one = np.array([reg.predict([x])[0] for x in X[:5]])
    np.testing.assert_allclose(one_by_one, full[:5], **tol(scale=np.std(y)))


def test_invalid_rows_are_nan_rows_and_leave_the_others_alone(tiny_model):
    est = reg(tiny_model, on_invalid="nan").fit(TEXT, Y)
    F, pred = est.transform(["CC", "", "CN"]), est.predict(["CC", "", "CN"])
    assert np.isnan(F[1]).all() and np.isnan(pred[1]) and np.isfinite(F[[0, 2]]).all()
    np.testing.assert_allclose(F[[0, 2]], est.transform(["CC", "CN"]), **tol(scale=float(np.abs(F[0]).max())))
    np.testing.assert_allclose(pred[[0, 2]], est.predict(["CC", "CN"]), **tol())


def test_integer_column_labels_are_checked_at_predict(tiny_model):
    X = pd.DataFrame({0: TEXT, 1: TEXT[::-1]})
    est = reg(tiny_model, domains={0: "Text", 1: "Text"}).fit(X, Y)
    assert not hasattr(est, "feature_names_in_")  # scikit-learn keeps only string names there
    with pytest.raises(ValueError, match="differ from those seen in fit"):
        est.predict(X[[1, 0]])
    with pytest.raises(ValueError, match="differ from those seen in fit"):
        est.predict(X.rename(columns={0: 5, 1: 6}))
    np.testing.assert_array_equal(est.predict(X.to_numpy()), est.predict(X))  # no names: by position


def test_predict_checks_the_number_of_columns(tiny_model):
    est = reg(tiny_model).fit(TEXT, Y)
    with pytest.raises(ValueError, match="X has 2 features, but TagRegressor is expecting 1 features as input"):
        est.predict(np.array([TEXT, TEXT], dtype=object).T)


def test_estimators_are_transformers_with_feature_names_and_set_output(tiny_model):
    df = pd.DataFrame({"smiles": TEXT, "other": np.arange(len(TEXT))})
    est = reg(tiny_model, readout_layers=[1, 2])
    names = est.fit(TEXT, Y).get_feature_names_out()
    assert len(names) == est.transform(TEXT).shape[1] == 3 * 32
    assert names[0] == "function_tag_0" and names[32] == "data_L1_mean_0" and names[-1] == "data_L2_mean_31"
    np.testing.assert_array_equal(reg(tiny_model, readout_layers=[1, 2]).fit_transform(TEXT, Y), est.transform(TEXT))
    ct = ColumnTransformer([("tag", reg(tiny_model, readout="tag"), "smiles")]).fit(df, Y)
    assert list(ct.get_feature_names_out()[:2]) == ["tag__function_tag_0", "tag__function_tag_1"]
    out = est.set_output(transform="pandas").transform(TEXT)
    assert isinstance(out, pd.DataFrame) and list(out.columns) == list(names)
    clf = TagClassifier(model=tiny_model, domains="Text", tag_length=2, max_iter=1, early_stopping=False,
                        random_state=0, readout="tag").set_output(transform="pandas")
    assert clf.fit_transform(TEXT, LABELS).shape == (len(TEXT), 32)


def test_feature_names_check_the_input_features_given(tiny_model):
    est = reg(tiny_model, domains={"a": "Text", "b": "Text"}).fit(pd.DataFrame({"a": TEXT, "b": TEXT}), Y)
    names = est.get_feature_names_out()
    np.testing.assert_array_equal(est.get_feature_names_out(["a", "b"]), names)
    for bad in (["b", "a"], ["a"], ["a", "b", "c"]):
        with pytest.raises(ValueError, match=r"input_features .* do not match the 2 input columns seen in fit"):
            est.get_feature_names_out(bad)


def test_an_unfitted_estimator_predicts_nothing(tiny_model):
    est = reg(tiny_model)
    for call in (est.predict, est.transform, est.explain):
        with pytest.raises(NotFittedError):
            call(TEXT)
    with pytest.raises(NotFittedError):
        est.get_feature_names_out()


@pytest.mark.parametrize("kw, match", [(dict(n_steps=0), "n_steps must be a positive int, got 0"),
                                       (dict(batch_size=0), "batch_size must be a positive int, got 0"),
                                       (dict(n_steps=2.5), "n_steps must be a positive int, got 2.5")])
def test_explain_refuses_counts_that_are_not_positive_ints(tiny_model, kw, match):
    est = reg(tiny_model).fit(TEXT, Y)
    with pytest.raises(ValueError, match=match):
        est.explain(TEXT[:2], **kw)
