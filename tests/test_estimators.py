"""Behaviour of TagRegressor and TagClassifier on a tiny random model."""

import pickle
import warnings

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.exceptions import ConvergenceWarning

from conftest import SMILES, Y_CLF, small_clf
from conftest import tol
from sktag import TagClassifier, TagMismatchError, TagRegressor, TagSet
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


def test_no_cache_and_cached_paths_give_same_model(make_reg, length_task):
    X, y = length_task
    a = make_reg(max_iter=2, prefix_cache="auto").fit(X, y)
    b = make_reg(max_iter=2, prefix_cache=False).fit(X, y)
    assert a.prefix_cache_bytes_ > 0 and b.prefix_cache_bytes_ == 0
    assert a.prefix_cache_location_ == "memory" and b.prefix_cache_location_ is None
    np.testing.assert_allclose(a.predict(X), b.predict(X), **tol(scale=np.std(y)))


def test_a_prefix_cache_on_disk_gives_the_model_of_one_in_memory(make_reg, length_task, tmp_path, monkeypatch):
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr("tempfile.tempdir", None)  # gettempdir() reads TMPDIR again
    X, y = length_task
    a = make_reg(max_iter=2, prefix_cache="auto").fit(X, y)
    b = make_reg(max_iter=2, prefix_cache="disk").fit(X, y)
    assert (a.prefix_cache_location_, b.prefix_cache_location_) == ("memory", "disk")
    assert a.prefix_cache_bytes_ == b.prefix_cache_bytes_ > 0
    np.testing.assert_array_equal(a.predict(X), b.predict(X))  # the same numbers, stored elsewhere
    assert list(tmp_path.iterdir()) == []  # the file was removed from the folder at once


def test_auto_prefix_cache_goes_to_disk_beyond_the_memory_budget(make_reg, length_task, monkeypatch):
    from sktag import _cache

    monkeypatch.setattr(_cache, "memory_budget", lambda spec, device: 10)
    X, y = length_task
    assert make_reg(max_iter=1, prefix_cache="auto").fit(X, y).prefix_cache_location_ == "disk"
    assert make_reg(max_iter=1, prefix_cache=1e9).fit(X, y).prefix_cache_location_ is None  # a number: memory only


def test_no_room_for_the_prefix_cache_warns_and_recomputes(make_reg, length_task, monkeypatch):
    from sktag import PerformanceWarning, _cache

    monkeypatch.setattr(_cache, "memory_budget", lambda spec, device: 10)
    monkeypatch.setattr(_cache, "DISK_MARGIN", 2**62)
    X, y = length_task
    with pytest.warns(PerformanceWarning, match="> budget 10 B.*too little.*recomputing the prefixes"):
        a = make_reg(max_iter=2, prefix_cache="auto").fit(X, y)
    b = make_reg(max_iter=2, prefix_cache=False).fit(X, y)
    assert a.prefix_cache_location_ is None and a.prefix_cache_bytes_ == 0
    np.testing.assert_array_equal(a.predict(X), b.predict(X))


def test_a_disk_that_fills_before_the_cache_is_reserved_warns_and_recomputes(make_reg, length_task, tmp_path,
                                                                           monkeypatch):
    import errno

    from sktag import PerformanceWarning, _cache

    def full(fd, nbytes):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr("tempfile.tempdir", None)
    monkeypatch.setattr(_cache, "reserve", full)
    X, y = length_task
    with pytest.warns(PerformanceWarning, match=r"temporary file.*reserving it failed.*No space left.*recomputing"):
        a = make_reg(max_iter=2, prefix_cache="disk").fit(X, y)
    b = make_reg(max_iter=2, prefix_cache=False).fit(X, y)
    assert a.prefix_cache_location_ is None and a.prefix_cache_bytes_ == 0
    assert list(tmp_path.iterdir()) == []  # the half-made file is gone
    np.testing.assert_array_equal(a.predict(X), b.predict(X))


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


def test_verbose_progress_bar(make_reg, length_task, capsys):
    X, y = length_task
    make_reg(max_iter=2, verbose=1).fit(X, y)
    err = capsys.readouterr().err
    assert "fit" in err and "epoch" in err


def test_loss_curve_and_convergence_warning(make_reg, length_task):
    X, y = length_task
    with pytest.warns(ConvergenceWarning):
        with warnings.catch_warnings():
            warnings.simplefilter("always", ConvergenceWarning)
            make_reg(max_iter=1, early_stopping=False).fit(X, y)


def test_predict_order_is_preserved(make_reg, length_task):
    X, y = length_task
    reg = make_reg(max_iter=2).fit(X, y)
    full = reg.predict(X)
    perm = np.random.RandomState(0).permutation(len(X))
    np.testing.assert_allclose(reg.predict([X[i] for i in perm]), full[perm], **tol(scale=np.std(y)))
    one_by_one = np.array([reg.predict([x])[0] for x in X[:5]])
    np.testing.assert_allclose(one_by_one, full[:5], **tol(scale=np.std(y)))


def test_isolate_segments_changes_outputs(make_reg):
    df = pd.DataFrame({"a": ["CCO", "CN", "CCCC", "O"] * 5, "b": ["NN", "C", "OO", "CCN"] * 5})
    y = np.arange(20.0)
    a = make_reg(domains={"a": "Text", "b": "Text"}, max_iter=1).fit(df, y)
    b = make_reg(domains={"a": "Text", "b": "Text"}, max_iter=1, isolate_segments=True).fit(df, y)
    assert not np.allclose(a.predict(df), b.predict(df))


@pytest.mark.parametrize("Est", [TagRegressor, TagClassifier])
def test_cuda_device_rejected_without_gpu(Est, tiny_model):
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    est = Est(model=tiny_model, domains="Text", device="cuda")
    with pytest.raises(ValueError, match="CUDA is not available"):
        est.fit(["CC", "CO"], [0, 1])


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_fit_predict_matches_cpu_roughly(tiny_model, length_task):
    X, y = length_task
    kw = dict(model=tiny_model, domains="Text", tag_length=3, max_iter=3, random_state=0)
    gpu = TagRegressor(device="cuda", dtype="float32", **kw).fit(X, y)
    cpu = TagRegressor(device="cpu", **kw).fit(X, y)
    assert gpu.module_.function_tag.device.type == "cuda"
    np.testing.assert_allclose(gpu.predict(X), cpu.predict(X), rtol=1e-2, atol=1e-2)
    bf = TagRegressor(device="cuda", **kw).fit(X, y)  # bf16 autocast
    assert np.isfinite(bf.predict(X)).all()


def test_text_domain_tags_use_the_literal_words(make_reg, length_task):
    X, y = length_task
    reg = make_reg(max_iter=1, domain_tags="text", domains="SMILES").fit(["CCO", "CCN", "CO"] * 4, np.arange(12.0))
    bb = reg.get_backbone()
    ids = bb.tokenizer("SMILES: ", add_special_tokens=False)["input_ids"]
    expected = bb.embeddings.weight[ids].detach()
    assert torch.equal(reg.module_.domain_tags[0].detach().cpu(), expected)


@pytest.mark.parametrize("domain_tags", [None, "text", "pretrained-4"])
def test_layout_slots_match_the_tag_table(make_reg, tiny_model, domain_tags):
    """Domain tags whose length differs from ``tag_length`` (the words of "text", a pretrained tag) still
    sit where the layout says, and the function tag is the table's last ``tag_length`` rows."""
    from sktag import DomainTagPretrainer

    if domain_tags == "pretrained-4":
        domain_tags = DomainTagPretrainer(model=tiny_model, domain="Text", tag_length=4, max_iter=1,
                                          random_state=0).fit(["CC", "CN", "NO"]).tags_
    X = pd.DataFrame({"a": ["CCO", "CCN", "CO"] * 4, "b": ["NN", "C", "OC"] * 4})
    reg = make_reg(max_iter=1, tag_length=3, domains={"a": "Text", "b": "Text"}, domain_tags=domain_tags,
                   early_stopping=False).fit(X, np.arange(12.0))
    layout, table = reg.layout_, reg.module_.tag_table().detach().cpu()
    assert [t.shape[0] for t in reg.module_.domain_tags] == list(layout.tag_lengths)
    assert layout.offsets[-1] == table.shape[0]
    torch.testing.assert_close(table[layout.function_slots], reg.module_.function_tag.detach().cpu())
    torch.testing.assert_close(table[layout.domain_slots("Text")], reg.module_.domain_tags[0].detach().cpu())


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
    assert TagRegressor(**kw).fit(X, y).layout_.tag_lengths == (3,)  # None: tag_length
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


def test_deep_function_tag_trains_saves_and_loads(tiny_model, tmp_path, length_task):
    X, y = length_task[0][:40], length_task[1][:40]
    kw = dict(model=tiny_model, domains="Text", tag_length=2, max_iter=2, early_stopping=False, random_state=0,
              learning_rate_init=1e-2)
    deep = TagRegressor(tag_depth="deep", **kw).fit(X, y)
    shallow = TagRegressor(**kw).fit(X, y)
    assert deep.tag_depth_ == "deep" and shallow.tag_depth_ == "shallow" and shallow.module_.deep_tag is None
    assert tuple(deep.module_.deep_tag.shape) == (2, 2, 32)  # one [p, d] block per decoder block
    assert deep.module_.deep_tag.abs().sum() > 0  # trained from its zero start
    assert deep.prefix_cache_bytes_ > 0  # still only the function-tag positions per step
    assert not np.allclose(deep.predict(X), shallow.predict(X))
    deep.save_tags(tmp_path / "deep.safetensors", name="Len")
    ts = TagSet.load(tmp_path / "deep.safetensors")
    assert ts.info("Len")["depth"] == 2 and tuple(ts.deep["Len"].shape) == (2, 2, 32)
    back = TagRegressor.from_tags(ts, "Len", model=tiny_model)
    assert back.tag_depth == "deep"
    np.testing.assert_array_equal(back.predict(X), deep.predict(X))
    shallow.save_tags(tmp_path / "shallow.safetensors", name="Len")
    assert TagRegressor.from_tags(tmp_path / "shallow.safetensors", "Len", model=tiny_model).tag_depth_ == "shallow"
    with pytest.raises(TagMismatchError, match="tag_depth='shallow' but 'Len' is a deep tag of depth 2"):
        TagRegressor.from_tags(ts, "Len", model=tiny_model, tag_depth="shallow")
    with pytest.raises(ValueError, match=r"warm_start: tag_depth='shallow' \(fitted: 'deep'\) changed"):
        deep.set_params(warm_start=True, tag_depth="shallow").fit(X, y)
    deep.set_params(tag_depth="deep").fit(X, y)  # a warm start continues the deep tag
    assert deep.n_iter_ == 4


def test_deep_layers_keep_the_deep_tag_to_the_chosen_blocks(tiny_model, tmp_path, length_task):
    """``deep_layers``: blocks left out get no gradient and stay zero (cached and full path); naming every block
    is today's deep tag bit for bit; the choice is saved, loaded and checked; bad specs name the problem."""
    X, y = length_task[0][:40], length_task[1][:40]
    kw = dict(model=tiny_model, domains="Text", tag_length=2, max_iter=2, early_stopping=False, random_state=0,
              learning_rate_init=1e-2, tag_depth="deep")
    every = TagRegressor(**kw).fit(X, y)
    assert every.deep_layers_ == (0, 1) and every.module_.deep_mask is None
    for same in (2, [0, 1], [-1, 0]):  # every block of the 2-block model: no mask, the same fit
        other = TagRegressor(deep_layers=same, **kw).fit(X, y)
        assert other.module_.deep_mask is None
        np.testing.assert_array_equal(other.predict(X), every.predict(X))
    last = TagRegressor(deep_layers=1, **kw).fit(X, y)
    assert last.deep_layers_ == (1,)
    assert torch.count_nonzero(last.module_.deep_tag[0]) == 0 and last.module_.deep_tag[1].abs().sum() > 0
    assert not np.allclose(last.predict(X), every.predict(X))
    tuned = TagRegressor(deep_layers=[0], tune_domain_tags=True, max_iter=1, early_stopping=False,
                         **{k: v for k, v in kw.items() if k not in ("max_iter", "early_stopping")}).fit(X, y)
    assert torch.count_nonzero(tuned.module_.deep_tag[1]) == 0 and tuned.module_.deep_tag[0].abs().sum() > 0
    assert TagRegressor(deep_layers=1, **{**kw, "tag_depth": "shallow"}).fit(X, y).deep_layers_ is None  # ignored
    last.save_tags(tmp_path / "last.safetensors", name="Len")
    back = TagRegressor.from_tags(tmp_path / "last.safetensors", "Len", model=tiny_model)
    assert back.deep_layers == [1] and back.deep_layers_ == (1,)
    np.testing.assert_array_equal(back.predict(X), last.predict(X))
    with pytest.raises(TagMismatchError, match=r"deep_layers=\[0\] leaves out the decoder blocks \[1\], where the "
                                               r"deep tag 'Len' has learned values"):
        TagRegressor.from_tags(tmp_path / "last.safetensors", "Len", model=tiny_model, deep_layers=[0])
    with pytest.raises(ValueError, match=r"warm_start: deep_layers=\(0, 1\) \(fitted: \(1,\)\) changed"):
        last.set_params(warm_start=True, deep_layers="all").fit(X, y)
    for bad, msg in [(3, "deep_layers=3 asks for the last 3 decoder blocks, but this model has 2"),
                     ([0, 2], r"deep_layers holds the block indices \[2\], outside this model's 2 decoder blocks"),
                     ([1, -1], r"deep_layers names the decoder blocks \[1\] more than once"),
                     (0, "'deep_layers' parameter of TagRegressor must be 'all', a positive int"),
                     ("last", "'deep_layers' parameter of TagRegressor must be 'all', a positive int")]:
        est = TagRegressor(deep_layers=bad, **kw)
        with pytest.raises(ValueError, match=msg):
            est.fit(X, y)
        assert not hasattr(est, "module_")  # a failed fit leaves nothing behind


@pytest.mark.parametrize("kind", ["deep", "kv"])
def test_tuned_deep_domain_tags_move_the_features_and_the_head_follows(make_reg, length_task, kind):
    """``domain_tag_depth="deep"`` or ``"kv"`` + ``tune_domain_tags``: the blocks train, the pooled features move,
    and the closed-form head's standardisation is re-set from the moved features (mean over the training rows)."""
    from sktag._deep import block_shape

    X, y = length_task
    frozen = make_reg(max_iter=2, domain_tag_depth=kind, early_stopping=False).fit(X, y)
    assert frozen.domain_tag_depth_ == kind
    assert not frozen.module_.domain_deep[0].detach().any()  # frozen: the zero start, the shallow tag's model
    shallow = make_reg(max_iter=2, early_stopping=False).fit(X, y)
    assert shallow.domain_tag_depth_ == "shallow" and shallow.module_.domain_deep is None
    np.testing.assert_array_equal(frozen.predict(X), shallow.predict(X))

    tuned = make_reg(max_iter=2, domain_tag_depth=kind, tune_domain_tags=True, early_stopping=False,
                     learning_rate_init=5e-2).fit(X, y)
    block = tuned.module_.domain_deep[0].detach()
    n_layers, width = block_shape(tuned.get_backbone(), kind)
    assert block.shape == (n_layers, 3, width)
    assert block.abs().sum() > 0
    F_tuned, F_start = tuned.transform(X), shallow.transform(X)
    d = tuned.get_backbone().hidden_size  # the function tag's own state comes first, then the pooled states
    assert not np.allclose(F_tuned[:, d:], F_start[:, d:], **tol())  # the data-token states moved
    mean, scale = tuned.module_.head.mean.cpu().numpy(), tuned.module_.head.scale.cpu().numpy()
    np.testing.assert_allclose(mean, F_tuned.mean(axis=0), **tol(scale=float(np.abs(F_tuned).max())))
    stale = shallow.module_.head.mean.cpu().numpy()  # the start's standardisation does not fit them
    assert np.abs(stale - F_tuned.mean(axis=0)).max() > 10 * np.abs(mean - F_tuned.mean(axis=0)).max()
    np.testing.assert_allclose(scale, F_tuned.std(axis=0), **tol(scale=float(np.abs(F_tuned).max())))


@pytest.mark.parametrize("kind", ["deep", "kv"])
def test_deep_domain_tags_round_trip_through_a_tagset(make_reg, length_task, tmp_path, kind):
    from sktag import TagRegressor, TagSet
    from sktag._deep import block_shape

    X, y = length_task
    reg = make_reg(max_iter=1, domain_tag_depth=kind, tune_domain_tags=True, early_stopping=False,
                   learning_rate_init=5e-2).fit(X, y)
    reg.save_tags(tmp_path / "t.safetensors")
    ts = TagSet.load(tmp_path / "t.safetensors")
    assert ts.info("Text")["depth"] == block_shape(reg.get_backbone(), kind)[0] and "deep" in repr(ts)
    assert ts.deep_kind("Text") == kind and ts.deep_kind("TagRegressor") is None
    torch.testing.assert_close(ts.deep["Text"], reg.module_.domain_deep[0].detach().cpu(), rtol=0, atol=0)
    back = TagRegressor.from_tags(ts, "TagRegressor")  # the device reg is on ("auto"): bit-equal predictions
    assert back.domain_tag_depth_ == kind
    np.testing.assert_array_equal(back.predict(X), reg.predict(X))
    flat = TagRegressor.from_tags(ts, "TagRegressor", domain_tag_depth="shallow")
    assert flat.domain_tag_depth_ == "shallow" and not np.allclose(flat.predict(X), reg.predict(X))


def test_a_deep_module_pickled_without_a_kind_reads_as_residual(make_reg, length_task):
    """A TagModule pickled by sktag 0.3 records no kind of deep block: it is the residual kind, and a warm
    start from it keeps going."""
    X, y = length_task
    reg = make_reg(max_iter=1, domain_tag_depth="deep", tune_domain_tags=True, early_stopping=False).fit(X, y)
    del reg.module_._deep_kind  # as 0.3 wrote it
    reg = pickle.loads(pickle.dumps(reg))
    assert reg.module_.deep_table().kind == "deep" and reg.tagset().deep_kind("Text") == "deep"
    reg.set_params(warm_start=True).fit(X, y)
    assert reg.domain_tag_depth_ == "deep" and reg.n_iter_ == 2


def test_a_deep_domain_tag_keeps_its_kind(make_reg, length_task):
    """A tag's deep blocks are never read as the other kind: ``domain_tag_depth`` of the other kind is refused
    (before anything is fitted), ``"auto"`` keeps the kind, and domain tags of two kinds cannot be mixed."""
    from sktag import TagRegressor

    X, y = length_task
    reg = make_reg(max_iter=1, domain_tag_depth="kv", tune_domain_tags=True, early_stopping=False,
                   learning_rate_init=5e-2).fit(X, y)
    back = pickle.loads(pickle.dumps(reg))  # the kind travels with the fitted module
    assert back.domain_tag_depth_ == "kv" and back.module_.deep_table().kind == "kv"
    np.testing.assert_array_equal(back.predict(X), reg.predict(X))
    ts = reg.tagset()
    kw = dict(model=reg.model, domains="Text", tag_length=3, max_iter=1, early_stopping=False, device="cpu",
              random_state=0)
    assert TagRegressor(domain_tags=ts, **kw).fit(X, y).domain_tag_depth_ == "kv"
    refused = TagRegressor(domain_tags=ts, domain_tag_depth="deep", **kw)
    with pytest.raises(ValueError, match=r"domain_tag_depth='deep', but the domain tags of \['Text'\] carry deep "
                                         r"blocks of the kind 'kv'"):
        refused.fit(X, y)
    assert not hasattr(refused, "module_")
    residual = make_reg(max_iter=1, domain_tag_depth="deep", tune_domain_tags=True, early_stopping=False,
                        learning_rate_init=5e-2).fit(X, y).tagset()
    both = ts.copy()
    both.add("Other", residual["Text"], kind="domain").add_deep("Other", residual.deep["Text"], kind="deep")
    with pytest.raises(ValueError, match=r"mix deep tags of the kinds \['deep', 'kv'\]"):
        TagRegressor(domain_tags=both, **{**kw, "domains": ["Text", "Other"]}).fit(np.c_[X, X], y)


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
    est = Est(model=tiny_model, domains="SMILES", tag_length=2, max_iter=2, device="cpu", random_state=0).fit(X, y)
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
