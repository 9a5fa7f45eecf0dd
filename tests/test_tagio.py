"""Fitted estimators to and from TagSets (``sktag._fit.tagio``): ``tagset``, ``save_tags`` and ``from_tags``."""

import numpy as np
import pandas as pd
import pytest
import torch

from conftest import assert_same_tagset as _assert_same
from sktag import TagClassifier, TagMismatchError, TagRegressor, TagSet
from sktag._forward.encoding import TagLayout
from sktag.backbone import load_backbone

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


@pytest.fixture
def length_task(length_task):
    X, y = length_task
    return X[:48], y[:48]  # small: fast fits


@pytest.fixture
def reg(make_reg, length_task):
    X, y = length_task
    return make_reg(max_iter=3).fit(X, y)


def test_regressor_round_trip(reg, length_task, tiny_model, tmp_path):
    X, _ = length_task
    ts = reg.tagset("length", description="string length")
    assert list(ts) == ["Text", "length"] and ts.info("length")["description"] == "string length"
    assert ts.info("Text")["kind"] == "domain" and "length" in ts.heads
    path = tmp_path / "reg.safetensors"
    reg.save_tags(path, name="length")
    back = TagRegressor.from_tags(path, function_tag="length", model=tiny_model)
    np.testing.assert_array_equal(back.predict(X), reg.predict(X))
    assert back.tag_length == reg.tag_length and back.n_features_in_ == 1
    assert back.domains_ == ["Text"] and back.column_domains_ == ["Text"]
    assert back.score(X, length_task[1]) == reg.score(X, length_task[1])
    # the name it was loaded under is kept when saving again
    assert list(back.tagset()) == ["Text", "length"]
    _assert_same(back.tagset(), TagSet.load(path))
    # also from an in-memory TagSet
    np.testing.assert_array_equal(
        TagRegressor.from_tags(ts, "length", model=tiny_model).predict(X[:7]), reg.predict(X[:7]))


def test_multioutput_regressor_round_trip(make_reg, length_task, tiny_model, tmp_path):
    X, y = length_task
    Y = np.c_[y, -2 * y + 1]
    reg = make_reg(max_iter=2).fit(X, Y)
    reg.save_tags(tmp_path / "m.safetensors")
    back = TagRegressor.from_tags(tmp_path / "m.safetensors", "TagRegressor", model=tiny_model)
    assert back.predict(X).shape == (len(X), 2)
    np.testing.assert_array_equal(back.predict(X), reg.predict(X))


@pytest.mark.parametrize("labels", ["int", "str"])
def test_classifier_round_trip(make_clf, length_task, tiny_model, tmp_path, labels):
    X, y = length_task
    yc = (y > np.median(y)).astype(int)
    if labels == "str":
        yc = np.array(["short", "long"])[yc]
    clf = make_clf(max_iter=2).fit(X, yc)
    path = tmp_path / "clf.safetensors"
    clf.save_tags(path, name="is_long")
    back = TagClassifier.from_tags(path, function_tag="is_long", model=tiny_model)
    np.testing.assert_array_equal(back.predict_proba(X), clf.predict_proba(X))
    np.testing.assert_array_equal(back.predict(X), clf.predict(X))
    np.testing.assert_array_equal(back.classes_, clf.classes_)
    with pytest.raises(ValueError, match="classification head"):
        TagRegressor.from_tags(path, function_tag="is_long", model=tiny_model)


def test_dataframe_round_trip_keeps_column_names(make_reg, length_task, tiny_model, tmp_path):
    X, y = length_task
    df = pd.DataFrame({"a": X, "b": X[::-1]})
    reg = make_reg(max_iter=2, domains={"a": "Text", "b": "Other"}).fit(df, y)
    reg.save_tags(tmp_path / "df.safetensors")
    back = TagRegressor.from_tags(tmp_path / "df.safetensors", "TagRegressor", model=tiny_model)
    np.testing.assert_array_equal(back.predict(df), reg.predict(df))
    assert list(back.feature_names_in_) == ["a", "b"] and back.domains_ == ["Text", "Other"]
    with pytest.raises(ValueError, match="column names"):
        back.predict(df.rename(columns={"a": "x"}))


def test_array_with_integer_column_keys_round_trip(make_reg, length_task, tiny_model, tmp_path):
    X, y = length_task
    A = np.array([X, X[::-1]], dtype=object).T
    reg = make_reg(max_iter=2, domains={0: "Text", 1: "Other"}).fit(A, y)
    reg.save_tags(tmp_path / "a.safetensors")
    back = TagRegressor.from_tags(tmp_path / "a.safetensors", "TagRegressor", model=tiny_model)
    with __import__("warnings").catch_warnings():
        __import__("warnings").simplefilter("error")  # no "X has no column names" warning
        np.testing.assert_array_equal(back.predict(A), reg.predict(A))


def test_compose_head_with_another_domain_tag(reg, length_task, tiny_model, tmp_path):
    from sktag.pretrain import DomainTagPretrainer

    X, y = length_task
    pre = DomainTagPretrainer(model=tiny_model, domain="Text", tag_length=3, max_iter=1,
                              learning_rate_init=0.1, device="cpu", random_state=0).fit(X[:40])
    assert not torch.equal(pre.tags_["Text"], reg.tagset()["Text"])
    path = tmp_path / "reg.safetensors"
    reg.save_tags(path)
    for other in (pre.tags_, tmp_path / "dom.safetensors"):
        pre.save(tmp_path / "dom.safetensors")
        est = TagRegressor.from_tags(path, "TagRegressor", domain_tags=other, model=tiny_model)
        assert torch.equal(est.module_.domain_tags[0].detach().cpu(), pre.tags_["Text"])
        pred = est.predict(X)
        assert pred.shape == (len(X),) and np.all(np.isfinite(pred))
        assert not np.allclose(pred, reg.predict(X))
    # warm_start continues training the loaded function tag and head
    before = est.module_.function_tag.detach().cpu().clone()
    est.set_params(warm_start=True, max_iter=1).fit(X, y)
    assert est.n_iter_ == 1 and not torch.equal(before, est.module_.function_tag.detach().cpu())
    assert torch.equal(est.module_.domain_tags[0].detach().cpu(), pre.tags_["Text"])  # still frozen


def test_compose_head_with_another_column_layout(reg, length_task, tiny_model, tmp_path):
    X, _ = length_task
    path = tmp_path / "reg.safetensors"
    reg.save_tags(path)
    est = TagRegressor.from_tags(path, "TagRegressor", domains={"mol": "Text"}, model=tiny_model)
    df = pd.DataFrame({"mol": X})
    np.testing.assert_array_equal(est.predict(df), reg.predict(X))  # same tags, same tokens
    assert list(est.feature_names_in_) == ["mol"]
    with pytest.raises(ValueError, match="column names"):
        est.predict(pd.DataFrame({"smiles": X}))
    # two columns of the same domain, read by the head trained on one
    two = TagRegressor.from_tags(path, "TagRegressor", domains=["Text", "Text"], model=tiny_model)
    pred = two.predict(np.array([X, X[::-1]], dtype=object).T)
    assert pred.shape == (len(X),) and np.all(np.isfinite(pred))


def test_from_tags_errors(reg, tiny_model, other_tiny_model, tmp_path, backbone):
    path = tmp_path / "reg.safetensors"
    reg.save_tags(path)
    with pytest.raises(ValueError, match="no head"):
        TagRegressor.from_tags(path, "nope", model=tiny_model)
    with pytest.raises(ValueError, match="regression head"):
        TagClassifier.from_tags(path, "TagRegressor", model=tiny_model)
    with pytest.raises(ValueError, match="no domain tag"):
        TagRegressor.from_tags(path, "TagRegressor", domains="Protein", model=tiny_model)
    with pytest.raises(TagMismatchError):
        TagRegressor.from_tags(path, "TagRegressor", model=other_tiny_model)
    other = load_backbone(other_tiny_model, dtype="float32", device="cpu")
    foreign = TagSet(other.identity, other.fingerprint, other.hidden_size).add("Text", torch.zeros(2, 32))
    with pytest.raises(TagMismatchError):
        TagRegressor.from_tags(path, "TagRegressor", domain_tags=foreign, model=tiny_model)


def test_tagset_needs_a_fitted_estimator(make_reg):
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        make_reg().tagset()


def test_a_tagset_head_records_how_it_reads_its_features(reg):
    meta = reg.tagset().heads["TagRegressor"]["task"]
    assert meta["task"] == "regression" and meta["readout"] == "pooled"
    assert meta["readout_layers"] == list(reg.readout_layers_) and meta["readout_layers"]
    assert (meta["isolate_segments"], meta["canonicalize"]) == (False, True)
    assert TagLayout.from_dict(meta["layout"]) == reg.layout_
    assert "deep_layers" not in meta  # a shallow function tag


def test_a_head_that_does_not_fit_the_readout_is_refused(reg):
    ts = reg.tagset()
    head = ts.heads["TagRegressor"]
    n = head["weight"].shape[1]
    head["weight"] = head["weight"][:, :-1]
    with pytest.raises(TagMismatchError, match=f"the head of 'TagRegressor' reads {n - 1} features but the "
                                               f"'pooled' readout gives {n}"):
        TagRegressor.from_tags(ts, "TagRegressor")


def test_a_head_saved_without_its_layout_is_refused(reg):
    ts = reg.tagset()
    del ts.heads["TagRegressor"]["task"]["layout"]
    with pytest.raises(ValueError, match="or was saved by an older sktag"):
        TagRegressor.from_tags(ts, "TagRegressor")
