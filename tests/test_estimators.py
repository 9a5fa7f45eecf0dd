"""Behaviour of TagRegressor and TagClassifier on a tiny random model."""

import warnings

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.exceptions import ConvergenceWarning

from conftest import SMILES, Y_CLF, small_clf
from conftest import tol
from sktag import TagClassifier, TagRegressor
from sktag.exceptions import TruncationWarning

# also for the module-scoped fitted estimators of conftest (set up outside ``_quiet``)
pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        yield


def test_regressor_beats_the_mean_on_a_learnable_task(make_reg):
    from conftest import _composition_task

    X, y = _composition_task(300)
    reg = make_reg(max_iter=25, tag_length=4).fit(X[:240], y[:240])
    pred = reg.predict(X[240:])
    mse_model = np.mean((pred - y[240:]) ** 2)
    mse_mean = np.mean((y[:240].mean() - y[240:]) ** 2)
    assert mse_model < 0.6 * mse_mean, (mse_model, mse_mean)
    assert reg.loss_curve_[-1] < reg.loss_curve_[0]
    n_train = 240 - int(np.ceil(0.1 * 240))  # early stopping (the default) holds out 10%
    assert reg.n_iter_ == len(reg.loss_curve_) and reg.t_ == n_train * reg.n_iter_


def test_classifier_beats_chance_with_string_labels(make_clf):
    rng = np.random.RandomState(0)
    X = ["".join(rng.choice(list("CNO"), 6)) if i % 2 else "".join(rng.choice(list("cn"), 6))
         for i in range(160)]
    y = np.where(np.arange(160) % 2, "upper", "lower")
    clf = make_clf(max_iter=15).fit(X[:120], y[:120])
    assert set(clf.classes_) == {"lower", "upper"}
    assert clf.score(X[120:], y[120:]) > 0.8
    proba = clf.predict_proba(X[120:])
    np.testing.assert_allclose(proba.sum(1), 1.0, rtol=1e-6)
    assert clf.decision_function(X[120:]).shape == (40,)
    np.testing.assert_array_equal(clf.predict(X[120:]), clf.classes_[proba.argmax(1)])


def test_multiclass_and_decision_function_shape(make_clf):
    X = ["C" * (i % 3 + 1) + "N" * (i % 5) for i in range(60)]
    y = np.array([i % 3 for i in range(60)])
    clf = make_clf(max_iter=2).fit(X, y)
    assert clf.predict_proba(X).shape == (60, 3)
    assert clf.decision_function(X).shape == (60, 3)
    np.testing.assert_allclose(np.exp(clf.predict_log_proba(X[:5])), clf.predict_proba(X[:5]), rtol=1e-6)


def test_multi_output_regression(make_reg, length_task):
    X, y = length_task
    Y = np.c_[y, -2 * y + 3]
    reg = make_reg(max_iter=3).fit(X, Y)
    assert reg.n_outputs_ == 2 and reg.predict(X).shape == (len(X), 2)
    assert reg.predict(X[:3]).ndim == 2
    reg1 = make_reg(max_iter=1).fit(X, Y[:, :1])
    assert reg1.predict(X).shape == (len(X), 1)


def test_target_standardisation_is_internal(make_reg, length_task):
    X, y = length_task
    reg = make_reg(max_iter=3).fit(X, 1000 + 50 * y)
    np.testing.assert_allclose(reg.y_mean_, [np.mean(1000 + 50 * y)])
    assert abs(np.mean(reg.predict(X)) - np.mean(1000 + 50 * y)) < 100


def test_dataframe_two_domains_feature_names(make_reg):
    df = pd.DataFrame({"ligand": ["CCO", "CCN", "c1ccccc1", "CC(=O)O"] * 5,
                       "target": ["MKT", "MKTAY", "MA", "MKKK"] * 5})
    y = np.arange(20, dtype=float)
    reg = make_reg(domains={"ligand": "SMILES", "target": "Protein"}, max_iter=2).fit(df, y)
    assert reg.n_features_in_ == 2
    assert list(reg.feature_names_in_) == ["ligand", "target"]
    assert reg.domains_ == ["SMILES", "Protein"] and len(reg.module_.domain_tags) == 2
    assert reg.predict(df).shape == (20,)
    # columns of one domain share one tag
    reg2 = make_reg(domains={"ligand": "Text", "target": "Text"}, max_iter=1).fit(df, y)
    assert len(reg2.module_.domain_tags) == 1


def test_two_d_array_input_and_list_of_domains(make_reg):
    X = np.array([["CCO", "MK"], ["CCC", "MKA"], ["CN", "MA"], ["CO", "MKK"]] * 5, dtype=object)
    reg = make_reg(domains=["SMILES", "Protein"], max_iter=1).fit(X, np.arange(20.0))
    assert reg.predict(X).shape == (20,)
    assert not hasattr(reg, "feature_names_in_")


def test_domain_tags_frozen_by_default_and_tunable(make_reg, length_task):
    X, y = length_task
    # no early stopping: it may keep epoch 0 (the initial tags) as the best
    reg = make_reg(max_iter=2, early_stopping=False).fit(X, y)
    init = reg.get_backbone().tag_init()
    dom = reg.module_.domain_tags[0].detach().cpu()
    assert torch.equal(dom, init.expand_as(dom))
    func = reg.module_.function_tag.detach().cpu()
    assert not torch.equal(func, init.expand_as(func))  # the function tag trained
    tuned = make_reg(max_iter=2, tune_domain_tags=True, early_stopping=False).fit(X, y)
    assert not torch.equal(tuned.module_.domain_tags[0].detach().cpu(), init.expand_as(dom))


def test_tag_init_is_rescaled_mean_embedding(tiny_model):
    from sktag.backbone import load_backbone

    bb = load_backbone(tiny_model, device="cpu")
    w = bb.embeddings.weight.detach().float()
    v = bb.tag_init()
    cos = torch.nn.functional.cosine_similarity(v, w.mean(0), dim=0)
    assert cos > 0.9999
    torch.testing.assert_close(v.norm(), w.norm(dim=1).mean())


def test_sample_weight_zero_rows_are_ignored(make_reg, length_task):
    X, y = length_task
    y_noisy = y.copy()
    y_noisy[::2] = 1000.0  # garbage on even rows, weight 0
    sw = np.ones(len(y))
    sw[::2] = 0
    a = make_reg(max_iter=3).fit(X, y_noisy, sample_weight=sw)
    np.testing.assert_allclose(a.y_mean_, [y[1::2].mean()])
    # the weighted fit never looks at the garbage: its predictions stay in range
    assert a.predict(X).max() < y.max() + 10
    unweighted = make_reg(max_iter=3).fit(X, y_noisy)
    assert unweighted.predict(X).max() > 100


def test_early_stopping_records_validation_and_keeps_best(make_reg, length_task):
    X, y = length_task
    reg = make_reg(max_iter=8, early_stopping=True, n_iter_no_change=2, validation_fraction=0.2)
    reg.fit(X, y)
    scores = reg.validation_scores_
    assert len(scores) == reg.n_iter_
    # the score before training (epoch 0) competes too but is not in validation_scores_
    if reg.best_epoch_ == 0:
        assert reg.best_validation_score_ >= max(scores)
    else:
        assert reg.best_validation_score_ == max(scores) == scores[reg.best_epoch_ - 1]
    assert reg.t_ == reg.n_iter_ * (len(X) - int(np.ceil(0.2 * len(X))))


def test_warm_start_continues(make_reg, length_task):
    X, y = length_task
    reg = make_reg(max_iter=2, warm_start=True, early_stopping=False).fit(X, y)
    first = reg.module_.function_tag.detach().cpu().clone()
    reg.fit(X, y)
    assert reg.n_iter_ == 4 and len(reg.loss_curve_) == 4
    assert not torch.equal(first, reg.module_.function_tag.detach().cpu())
    cold = make_reg(max_iter=2, early_stopping=False).fit(X, y)
    cold.fit(X, y)
    assert cold.n_iter_ == 2


def test_loss_curve_and_convergence_warning(make_reg, length_task):
    X, y = length_task
    with pytest.warns(ConvergenceWarning):
        with warnings.catch_warnings():
            warnings.simplefilter("always", ConvergenceWarning)
            make_reg(max_iter=1, early_stopping=False).fit(X, y)


def test_isolate_segments_changes_outputs(make_reg):
    df = pd.DataFrame({"a": ["CCO", "CN", "CCCC", "O"] * 5, "b": ["NN", "C", "OO", "CCN"] * 5})
    y = np.arange(20.0)
    a = make_reg(domains={"a": "Text", "b": "Text"}, max_iter=1).fit(df, y)
    b = make_reg(domains={"a": "Text", "b": "Text"}, max_iter=1, isolate_segments=True).fit(df, y)
    assert not np.allclose(a.predict(df), b.predict(df))


def test_text_domain_tags_use_the_literal_words(make_reg, length_task):
    X, y = length_task
    reg = make_reg(max_iter=1, domain_tags="text", domains="SMILES").fit(["CCO", "CCN", "CO"] * 4, np.arange(12.0))
    bb = reg.get_backbone()
    ids = bb.tokenizer("SMILES: ", add_special_tokens=False)["input_ids"]
    expected = bb.embeddings.weight[ids].detach()
    assert torch.equal(reg.module_.domain_tags[0].detach().cpu(), expected)


def test_warm_start_refuses_other_domains(make_reg):
    df = pd.DataFrame({"a": ["CCO", "CN", "CO", "CC"] * 3})
    reg = make_reg(max_iter=1, warm_start=True, domains={"a": "Text"}).fit(df, np.arange(12.0))
    reg.set_params(domains={"a": "Other"})
    with pytest.raises(ValueError, match="warm_start"):
        reg.fit(df, np.arange(12.0))


# ---------------------------------------------- invalid rows and extreme input
def test_on_invalid_nan_classifier(tiny_model):
    clf = small_clf(tiny_model, domains="SMILES", on_invalid="nan").fit(SMILES[:8], Y_CLF)
    X = ["CCO", "C1CC", "CN"]
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # no 'All-NaN slice' noise
        proba = clf.predict_proba(X)
        log_proba = clf.predict_log_proba(X)
        # a label array has no missing value: predict (and so score) refuse, naming the rows
        with pytest.raises(ValueError, match=r"1 rows of X are invalid \(rows \[1\]\)"):
            clf.predict(X)
        with pytest.raises(ValueError, match=r"rows \[1\]"):
            clf.score(X, [0, 1, 0])
        labels = clf.predict(["CCO", "CN"])
    np.testing.assert_array_equal(np.isnan(log_proba).any(axis=1), [False, True, False])
    assert labels[0] in clf.classes_ and labels[1] in clf.classes_
    np.testing.assert_array_equal(labels, clf.classes_[proba[[0, 2]].argmax(axis=1)])
    assert proba.shape == (3, 2)
    np.testing.assert_array_equal(np.isnan(proba).any(axis=1), [False, True, False])
    np.testing.assert_allclose(proba[[0, 2]].sum(axis=1), 1.0)

def test_predict_is_finite_for_valid_input(smiles_reg, text_clf):
    X = ["C" * 700, "CCO", "c1ccc2ccccc2c1", "[Na+].[Cl-]", "C"]
    with pytest.warns(TruncationWarning):
        pred = smiles_reg.predict(X)
    assert pred.shape == (5,) and np.isfinite(pred).all()
    with pytest.warns(TruncationWarning, match="1 of 4 rows"):
        proba = text_clf.predict_proba(["a", "x" * 600, "?!", "é"])
    assert np.isfinite(proba).all()
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)


def test_domain_tag_length_zero_is_the_data_alone(tiny_model, tmp_path):
    from sktag import LLMEmbedding

    X = ["CCO", "CCN", "c1ccccc1", "CO", "CN", "CCC", "OCC", "NCC"]
    y = np.arange(len(X), dtype=float)
    kw = dict(model=tiny_model, domains="Text", tag_length=3, max_iter=1, early_stopping=False, random_state=0,
              readout_layers=[1, 2])
    assert TagRegressor(**kw).fit(X, y).layout_.tag_lengths == (10,)  # None: 10 vectors, whatever tag_length is
    assert TagRegressor(domain_tag_length=2, **kw).fit(X, y).layout_.tag_lengths == (2,)
    reg = TagRegressor(domain_tag_length=0, **kw).fit(X, y)
    assert reg.layout_.tag_lengths == (0,) and reg.module_.domain_tags[0].shape[0] == 0
    # no tag before the data: the pooled data-token states are the frozen model's own
    emb = LLMEmbedding(model=tiny_model, domains="Text", layers=[1, 2]).fit_transform(X)
    np.testing.assert_allclose(reg.transform(X)[:, 32:], emb, **tol())
    reg.save_tags(tmp_path / "t.safetensors", name="F")
    back = TagRegressor.from_tags(tmp_path / "t.safetensors", "F", model=tiny_model)
    assert back.domain_tag_length == 0 and back.layout_.tag_lengths == (0,)
    np.testing.assert_array_equal(back.predict(X), reg.predict(X))
    with pytest.raises(ValueError, match="'domain_tag_length' parameter of TagRegressor must be an int in the "
                                         r"range \[0, inf\] or None"):
        TagRegressor(domain_tag_length=-1, **kw).fit(X, y)


def test_domain_learning_rate_is_the_domain_tags_own(make_reg, length_task):
    """``domain_learning_rate`` sets the step of the tuned domain tags only; the function tag keeps its own."""
    X, y = length_task
    kw = dict(max_iter=1, tune_domain_tags=True, domain_tag_depth="deep", early_stopping=False)
    base = make_reg(**kw).fit(X, y)
    tiny_step = make_reg(domain_learning_rate=1e-9, **kw).fit(X, y)
    init = base.get_backbone().tag_init()
    moved = lambda r: float((r.module_.domain_tags[0].detach().cpu() - init).abs().max())  # noqa: E731
    assert moved(tiny_step) < 1e-6 < moved(base)
    assert float(tiny_step.module_.domain_deep[0].detach().abs().max()) < 1e-6
    assert not torch.equal(tiny_step.module_.function_tag.detach().cpu(), init.expand(3, -1))
    with pytest.raises(ValueError, match="domain_learning_rate"):
        make_reg(domain_learning_rate=0.0).fit(X, y)


# ------------------------------------------------ partial_fit and warm starts after an early-stopping fit
@pytest.mark.parametrize("Est, y", [(TagRegressor, np.linspace(-1.0, 2.0, 24)), (TagClassifier, np.tile([0, 1], 12))],
                         ids=["TagRegressor", "TagClassifier"])
def test_partial_fit_after_a_default_fit_trains_one_more_epoch(tiny_model, Est, y):
    """``fit`` holds out validation rows (early stopping, the default); ``partial_fit`` then holds out none."""
    X = SMILES * 2
    est = Est(model=tiny_model, domains="SMILES", tag_length=2, max_iter=2, n_iter_no_change=3, device="cpu",
              random_state=0).fit(X, y)
    assert est.early_stopping and len(est.validation_scores_) == 2
    est.partial_fit(X, y)
    assert est.n_iter_ == 3 and len(est.loss_curve_) == 3
    assert len(est.validation_scores_) == 2  # the validated epochs stay on record; the new one is not validated
    assert est._history.early_stopping is False  # the history says what the last epochs were


def test_warm_start_without_early_stopping_after_an_early_stopping_fit(tiny_model):
    from sktag import Callback

    class Watch(Callback):
        def on_train_begin(self, estimator):
            h = estimator.fit_state_.history
            self.seen = (h.early_stopping, h.no_improvement_count)

    X, y = SMILES * 2, np.linspace(-1.0, 2.0, 24)
    est = TagRegressor(model=tiny_model, domains="SMILES", tag_length=2, max_iter=2, n_iter_no_change=10,
                       device="cpu", random_state=0).fit(X, y)
    est._history.no_improvement_count = 9  # a validation-score patience almost used up
    watch = Watch()
    est.set_params(warm_start=True, early_stopping=False, callbacks=[watch]).fit(X, y)
    assert watch.seen == (False, 0)  # the patience counts training losses from here, not validation scores
    assert est.n_iter_ == 4 and est.t_ == 2 * 21 + 2 * 24  # the second run trained on every row


def test_warm_start_refuses_changed_domain_tags(tiny_model):
    from sktag import DomainTagPretrainer

    X, y = SMILES, np.linspace(-1.0, 2.0, len(SMILES))
    other = DomainTagPretrainer(model=tiny_model, tag_length=2, max_iter=1, device="cpu").fit(X).tags_
    est = TagRegressor(model=tiny_model, domains="SMILES", tag_length=2, max_iter=1, early_stopping=False,
                       device="cpu").fit(X, y)
    est.set_params(warm_start=True).fit(X, y)  # the same domain tags: continues
    est.partial_fit(X, y)
    tags = est.module_.domain_tags[0].detach().clone()
    for change in (dict(domain_tags=other), dict(domain_tags=None, domain_tag_length=3)):
        with pytest.raises(ValueError, match=r"warm_start: domain_tags \(other domain tags than those the fit "
                                             r"started from\) changed since the fit"):
            est.set_params(**change).fit(X, y)
        with pytest.raises(ValueError, match="domain_tags"):
            est.partial_fit(X, y)
        est.set_params(domain_tags="pretrained", domain_tag_length=None)
    assert est.n_iter_ == 3 and torch.equal(est.module_.domain_tags[0], tags)  # left as it was
