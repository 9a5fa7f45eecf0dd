"""What a fit promises around its edges: failed fits change nothing, weights and class weights mean what they say,
warm starts, partial fits, pickles that travel, readable messages for budgets, devices and invalid rows.
"""

import os
import pickle
import warnings

import numpy as np
import pytest
import torch

from conftest import tol
from sklearn.exceptions import ConvergenceWarning, NotFittedError

from sktag import Callback, DomainTagPretrainer, InvalidInputError, TagClassifier, TagRegressor
from sktag.domains import register_domain

TEXT = ["CC", "CN", "CO", "NN", "OO", "NC", "CCN", "NCO", "OCN", "CCO", "NNO", "OOC"]
Y = np.array([s.count("N") / len(s) for s in TEXT])
LABELS = np.array([1 if "N" in s else 0 for s in TEXT])


def reg(model, **kw):
    params = dict(model=model, domains="Text", tag_length=2, max_iter=2, n_iter_no_change=3, batch_size=4,
                  early_stopping=False, random_state=0, learning_rate_init=1e-2)
    return TagRegressor(**{**params, **kw})


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        yield


# 1 ------------------------------------------------------- failed fits
def test_failed_refit_leaves_the_fitted_estimator_as_it_was(tiny_model):
    est = reg(tiny_model, domains="Protein").fit(["MKV", "ACD", "MKT", "AAA"], [1.0, 2.0, 3.0, 4.0])
    before, state = est.predict(["MKV", "ACD"]), dict(est.__dict__)
    with pytest.raises(InvalidInputError):
        est.fit(["MKV", "MK1", "ACD", "AAA"], [1.0, 2.0, 3.0, 4.0])
    np.testing.assert_array_equal(est.predict(["MKV", "ACD"]), before)
    assert est.module_ is state["module_"] and est.loss_curve_ is state["loss_curve_"]


def test_failed_first_fit_leaves_the_estimator_unfitted(tiny_model):
    est = reg(tiny_model, domains="Protein")
    with pytest.raises(InvalidInputError):
        est.fit(["MKV", "MK1"], [1.0, 2.0])
    with pytest.raises(NotFittedError):
        est.predict(["MKV"])


# 2 ------------------------------------------------------- sample weights
@pytest.mark.parametrize("Est, y", [(TagClassifier, LABELS), (TagRegressor, Y)])
def test_sample_weight_is_a_data_set_weighted_loss_even_with_batch_size_1(tiny_model, Est, y):
    kw = dict(model=tiny_model, domains="Text", tag_length=2, max_iter=2, batch_size=1, early_stopping=False,
              random_state=0, readout="tag", head_init="random", head_update="gradient")
    w = np.where(np.arange(len(TEXT)) % 2 == 0, 0.01, 100.0)
    plain = Est(**kw).fit(TEXT, y)
    weighted = Est(**kw).fit(TEXT, y, sample_weight=w)
    scaled = Est(**kw).fit(TEXT, y, sample_weight=w * 7)  # only relative weights matter
    out = (lambda e: e.predict_proba(TEXT)) if Est is TagClassifier else (lambda e: e.predict(TEXT))
    assert not np.allclose(out(plain), out(weighted))
    np.testing.assert_allclose(out(weighted), out(scaled), **tol(scale=np.std(out(plain))))


def test_class_weight(tiny_model):
    kw = dict(model=tiny_model, domains="Text", tag_length=2, max_iter=1, early_stopping=False, random_state=0)
    y = np.array([0] * 9 + [1] * 3)
    none = TagClassifier(**kw).fit(TEXT, y).predict_proba(TEXT)
    balanced = TagClassifier(class_weight="balanced", **kw).fit(TEXT, y).predict_proba(TEXT)
    as_dict = TagClassifier(class_weight={0: 1.0, 1: 3.0}, **kw).fit(TEXT, y).predict_proba(TEXT)
    assert balanced[:, 1].mean() > none[:, 1].mean()  # the rare class gains
    np.testing.assert_allclose(balanced, as_dict, **tol())  # balanced here is 2/3 : 2
    with pytest.raises(ValueError, match="class_weight names labels"):
        TagClassifier(class_weight={5: 1.0}, **kw).fit(TEXT, y)


@pytest.mark.parametrize("scoring", ["accuracy", "loss"])
def test_classifier_scoring_is_the_early_stopping_score(tiny_model, scoring):
    """best_validation_score_ is the chosen score of the kept state on the held-out rows."""
    from sklearn.metrics import accuracy_score, log_loss
    from sklearn.utils import check_random_state

    X = TEXT * 2
    y = np.array([0, 1, 1, 0, 1, 0, 0, 1, 1, 0, 1, 0] * 2)
    # head_update="gradient": no final closed-form refit, so predict_proba is what validation saw
    est = TagClassifier(model=tiny_model, domains="Text", tag_length=2, max_iter=2, head_update="gradient",
                        validation_fraction=0.25, scoring=scoring, random_state=0).fit(X, y)
    _, val = est._split(len(X), y, np.ones(len(X)), check_random_state(0), False)
    proba = est.predict_proba([X[i] for i in val])
    expected = (-log_loss(y[val], proba, labels=[0, 1]) if scoring == "loss"
                else accuracy_score(y[val], proba.argmax(axis=1)))
    assert est.best_validation_score_ == pytest.approx(expected, abs=1e-5)
    assert max(est.validation_scores_) <= (0 if scoring == "loss" else 1)
    with pytest.raises(ValueError, match="scoring"):
        TagClassifier(model=tiny_model, domains="Text", scoring="auc").fit(X, y)


# 3 ------------------------------------------------------- custom domains travel
def only_cn(s, canonicalize):
    """A custom validator (module level: pickled by reference, as a user's would be)."""
    if set(s) - set("CN"):
        raise ValueError("only C and N")
    return s


def test_custom_domain_validator_travels_with_the_pickle(tiny_model):
    register_domain("CNonly", only_cn, overwrite=True)
    try:
        est = reg(tiny_model, domains="CNonly").fit(["CC", "CN", "NN", "NC"], [1.0, 2.0, 3.0, 4.0])
        blob = pickle.dumps(est)
        # the process that unpickles knows the name as another (permissive) domain
        register_domain("CNonly", lambda s, canonicalize: s, overwrite=True)
        back = pickle.loads(blob)
        with pytest.raises(InvalidInputError, match="only C and N"):
            back.predict(["CO"])
    finally:
        register_domain("CNonly", lambda s, canonicalize: s, overwrite=True)


# 4 ------------------------------------------------------- pretrained domain tags
def test_pretrained_domain_tags_match_case_insensitively_and_missing_ones_are_refused(tiny_model):
    pre = DomainTagPretrainer(model=tiny_model, domain="TEXT", tag_length=2, max_iter=1, random_state=0)
    pre.fit(TEXT)
    est = reg(tiny_model, domains="text", domain_tags=pre.tags_).fit(TEXT, Y)
    assert torch.equal(est.module_.domain_tags[0].detach().cpu(), pre.tags_["TEXT"])
    with pytest.raises(ValueError, match=r"no domain tag for the domain\(s\) \['Other'\].*holds the domain tags \['TEXT'\]"):
        reg(tiny_model, domains="Other", domain_tags=pre.tags_).fit(TEXT, Y)


# 5 ------------------------------------------------------- warm start
def test_warm_start_then_early_stopping_and_changed_tag_length(tiny_model):
    est = reg(tiny_model).fit(TEXT, Y)
    est.set_params(warm_start=True, early_stopping=True, validation_fraction=0.25).fit(TEXT, Y)
    assert est.n_iter_ == 4 and len(est.loss_curve_) == 4 and len(est.validation_scores_) == 2
    est.set_params(tag_length=3)
    with pytest.raises(ValueError, match="tag_length is now 3 but the fitted function tag has 2 vectors"):
        est.fit(TEXT, Y)


# 8 ------------------------------------------------------- convergence warning
def test_convergence_warning_says_the_loss_rose(tiny_model):
    class Rising(Callback):  # make the last epoch's loss the highest, whatever training did
        def on_epoch_end(self, estimator, epoch, history):
            if epoch == 2:
                history.loss_curve[-1] = history.loss_curve[0] * 10

    with pytest.warns(ConvergenceWarning, match="rose in the last epoch.*weights of the last epoch are kept"):
        warnings.simplefilter("always", ConvergenceWarning)
        reg(tiny_model, callbacks=[Rising()]).fit(TEXT, Y)


# 10 ------------------------------------------------------ parameters
def test_verbose_true_and_float_prefix_cache_are_accepted(tiny_model, capsys):
    est = reg(tiny_model, verbose=True, prefix_cache=2e9).fit(TEXT, Y)
    est.predict(TEXT)
    err = capsys.readouterr().err
    assert "fit" in err and "predict" in err  # progress bars, predict's included (defect 13)
    assert est.prefix_cache_bytes_ > 0


def test_tiny_prefix_cache_budget_message_is_readable(tiny_model, capsys):
    reg(tiny_model, verbose=1, prefix_cache=10).fit(TEXT, Y)
    assert "> budget 10 B" in capsys.readouterr().out


def test_unavailable_device_is_a_clear_error(tiny_model):
    if torch.backends.mps.is_available():  # pragma: no cover - Apple machines
        pytest.skip("MPS is available here")
    with pytest.raises(ValueError, match="device='mps' was requested but MPS is not available"):
        reg(tiny_model, device="mps").fit(TEXT, Y)


def test_nan_rows_at_predict_with_on_invalid_nan(tiny_model):
    est = reg(tiny_model, domains="Protein", on_invalid="nan").fit(["MKV", "ACD", "MKT", "AAA"], [1.0, 2, 3, 4])
    pred = est.predict(["MKV", None, float("nan"), "MK1"])
    assert np.isfinite(pred[0]) and np.isnan(pred[1:]).all()


# 11, 12 -------------------------------------------------- model paths
def test_relative_model_path_still_loads_after_unpickling_elsewhere(tiny_model, tmp_path, monkeypatch):
    monkeypatch.chdir(os.path.dirname(tiny_model))
    est = reg(os.path.basename(tiny_model)).fit(TEXT, Y)
    blob = pickle.dumps(est)
    monkeypatch.chdir(tmp_path)
    back = pickle.loads(blob)
    np.testing.assert_array_equal(back.predict(TEXT), est.predict(TEXT))


def test_from_tags_defaults_to_the_tagsets_backbone(tiny_model, tmp_path):
    est = reg(tiny_model).fit(TEXT, Y)
    est.save_tags(tmp_path / "t.safetensors", name="N")
    back = TagRegressor.from_tags(tmp_path / "t.safetensors", "N")  # no model=: the TagSet's
    assert back.backbone_identity_ == est.backbone_identity_
    np.testing.assert_allclose(back.predict(TEXT), est.predict(TEXT), rtol=1e-5, atol=1e-6)


# partial_fit ---------------------------------------------------------------
def test_partial_fit(tiny_model):
    est = reg(tiny_model)
    est.partial_fit(TEXT[:6], Y[:6]).partial_fit(TEXT[6:], Y[6:])
    assert est.n_iter_ == 2 and est.predict(TEXT).shape == (len(TEXT),)
    clf = TagClassifier(model=tiny_model, domains="Text", tag_length=2, random_state=0)
    with pytest.raises(ValueError, match="classes must be passed on the first call"):
        clf.partial_fit(TEXT, LABELS)
    clf.partial_fit(TEXT[:6], ["a"] * 6, classes=["a", "b"]).partial_fit(TEXT[6:], ["b"] * 6)
    assert list(clf.classes_) == ["a", "b"] and clf.n_iter_ == 2


def test_refit_on_another_model_is_a_fresh_fit(tiny_model, other_tiny_model):
    est = reg(tiny_model).fit(TEXT, Y)
    est.set_params(model=other_tiny_model)
    with pytest.raises(ValueError, match="now loads a different model"):
        est.predict(TEXT)  # fitted on the first model: never silently applied to another
    est.fit(TEXT, Y)  # but a fresh fit may use any model
    assert est.backbone_identity_ != reg(tiny_model).fit(TEXT, Y).backbone_identity_
    with pytest.raises(ValueError, match="now loads a different model"):
        est.set_params(model=tiny_model, warm_start=True).fit(TEXT, Y)  # a warm start may not
