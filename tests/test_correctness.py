"""Regression tests of the correctness holes found in 0.2 (issue 20), numbered as there.

Each test failed on 0.2.0 and states the behaviour that replaced the defect.  The sliding-window
masks (item 7) are tested on every windowed family in ``test_architectures.py``; the tolerances
derived from the dtype (the first item) live in ``conftest.tol``; predictions from the fitted state,
column labels checked at predict and the estimators as transformers (items 1, 2 and 8) are tested
with prediction itself, in ``test_inference.py``.
"""

import warnings

import numpy as np
import pandas as pd
import pytest
import sklearn
import torch

from conftest import CNO as TEXT
from conftest import LABELS_CNO as LABELS
from conftest import Y_CNO as Y
from conftest import quick_reg as reg
from conftest import tol
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV, KFold, cross_validate

from sktag import DomainTagPretrainer, LLMEmbedding, TagClassifier, TagRegressor, TagSet, load_backbone
from sktag.exceptions import TruncationWarning

FRAME = pd.DataFrame({"a": TEXT, "b": TEXT[::-1]})


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        yield


# 1 ------------------------------------------- predictions come from the fitted state
def test_warm_start_refuses_a_changed_structure(tiny_model):
    est = reg(tiny_model, readout_layers=[1]).fit(TEXT, Y)
    with pytest.raises(ValueError, match=r"warm_start: readout_layers=\[2\] \(fitted: \[1\]\) changed"):
        est.set_params(warm_start=True, readout_layers=[2]).fit(TEXT, Y)
    assert est.n_iter_ == 1  # left as it was


def test_llm_embedding_transforms_with_its_fitted_pooling_and_isolation(tiny_model):
    emb = LLMEmbedding(model=tiny_model, domains="Text", layers=[1]).fit(FRAME)
    ref = emb.transform(FRAME)
    emb.set_params(pooling="last", isolate_segments=True, dtype="bfloat16")
    np.testing.assert_array_equal(emb.transform(FRAME), ref)
    assert emb.get_feature_names_out()[0].endswith("_mean_0")


# 3 ------------------------------------------- metadata routing on
@pytest.mark.parametrize("routing", [False, True], ids=["routing-off", "routing-on"])
def test_estimators_work_with_metadata_routing(tiny_model, routing):
    with sklearn.config_context(enable_metadata_routing=routing):
        clf = TagClassifier(model=tiny_model, domains="Text", tag_length=2, max_iter=1, early_stopping=False,
                            random_state=0).fit(TEXT * 2, np.r_[LABELS, LABELS])
        assert clf.predict(TEXT).shape == (len(TEXT),) and clf.score(TEXT, LABELS) >= 0
        clf.set_params(warm_start=True).fit(TEXT, LABELS, sample_weight=np.ones(len(TEXT)))
        r = reg(tiny_model).fit(TEXT, Y, sample_weight=np.linspace(0.5, 1.5, len(TEXT)))
        r.partial_fit(TEXT, Y)
        r = reg(tiny_model)
        if routing:  # a meta-estimator routes sample_weight only where it is requested
            r = r.set_fit_request(sample_weight=True).set_score_request(sample_weight=False)
        res = cross_validate(r, TEXT, Y, cv=KFold(2), params={"sample_weight": np.ones(len(TEXT))})
        assert len(res["test_score"]) == 2
        search = GridSearchCV(r, {"tag_length": [1, 2]}, cv=KFold(2))
        search.fit(TEXT, Y, sample_weight=np.ones(len(TEXT)))
        assert search.best_params_["tag_length"] in (1, 2)


# 4 ------------------------------------------- a list of rows is rows x columns
def test_list_of_rows_is_read_as_a_2d_array(tiny_model):
    rows = [["CCO", "MKTAYIAK"], ["CCN", "MKV"], ["c1ccccc1", "ACDE"], ["CO", "GGGG"], ["CN", "WYWY"],
            ["CCC", "KLMN"]]
    y = np.arange(6.0)
    kw = dict(domains=["SMILES", "Protein"])
    a = reg(tiny_model, **kw).fit(rows, y)
    b = reg(tiny_model, **kw).fit(np.array(rows, dtype=object), y)
    assert a.n_features_in_ == 2 and a.column_domains_ == ["SMILES", "Protein"]
    np.testing.assert_array_equal(a.predict(rows), b.predict(np.array(rows, dtype=object)))
    np.testing.assert_array_equal(a.predict([tuple(r) for r in rows]), a.predict(rows))
    with pytest.raises(ValueError, match=r"1 rows whose length differs from row 0 \(2 cells\): row 2: 1 cells"):
        a.predict([["CCO", "MKV"], ["CCN", "MKV"], ["CO"]])
    with pytest.raises(ValueError, match=r"1 rows that are not sequences of cells: row 1: 'CCN'"):
        a.predict([["CCO", "MKV"], "CCN"])
    emb = LLMEmbedding(model=tiny_model, domains=["SMILES", "Protein"], layers=[1])
    assert emb.fit_transform(rows).shape == (6, 2 * 32)


# 5 ------------------------------------------- the model's positions
@pytest.mark.parametrize("arch", ["gpt2", "llama"])
def test_tags_past_the_models_positions_are_refused_at_fit(arch, tmp_path):
    from sktag.testing import make_tiny_model

    path = make_tiny_model(tmp_path, architecture=arch)  # 1,024 positions
    est = reg(path, tag_length=600, domain_tag_length=600, domain_tags=None)  # 600 (domain) + 600 (function) > 1,024
    with pytest.raises(ValueError, match=r"tags take 1200 positions .* at most 1024 positions"):
        est.fit(TEXT, Y)
    assert not hasattr(est, "module_")
    bb = load_backbone(path, dtype="float32", device="cpu")
    long_tag = TagSet(bb.identity, bb.fingerprint, bb.hidden_size)
    long_tag.add("Text", torch.zeros(1024, bb.hidden_size), kind="domain")
    emb = LLMEmbedding(model=path, domains="Text", domain_tags=long_tag)
    with pytest.raises(ValueError, match="tags take 1024 positions .* at most 1024 positions"):
        emb.fit(["x"])
    assert not hasattr(emb, "layers_")
    long = ["C" * 40, "N" * 10]
    with pytest.warns(TruncationWarning, match=r"longer than 24 tokens \(the model takes 1024 positions and the "
                                               r"tags take 1000\)"):
        fitted = reg(path, tag_length=500, domain_tag_length=500).fit(long, [1.0, 2.0])  # 1000 tag positions leave 24
    with pytest.warns(TruncationWarning, match="24 tokens"):
        assert np.isfinite(fitted.predict(["C" * 100])).all()  # no IndexError past the positions
    with pytest.raises(ValueError, match=r"longer than 24 tokens.*Shorten the strings or the tags"):
        reg(path, tag_length=500, domain_tag_length=500, truncation="raise").fit(long, [1.0, 2.0])
    pre = DomainTagPretrainer(model=path, domain="Text", tag_length=1020, max_iter=1, random_state=0)
    with pytest.warns(TruncationWarning, match="longer than 4 tokens"):  # a 1,020-vector tag leaves 4
        pre.fit(["CCCCCC", "NN"])  # (the tiny tokenizer has no EOS token to count)
    assert pre.n_tokens_ == 4 + 2


# 6 ------------------------------------------- every invalid cell is NaN under on_invalid="nan"
def test_on_invalid_nan_covers_empty_and_non_string_cells(tiny_model):
    from sktag.features import MorganFingerprint

    X = ["CCO", "", 3, None, "   ", "C1CC", "CN"]
    est = reg(tiny_model, domains="SMILES").fit(["CCO", "CCN", "CO", "CN"], [1.0, 2.0, 3.0, 4.0])
    with pytest.raises(ValueError, match="empty strings"):
        est.predict(X[:2])  # "raise" (the default) still raises
    pred = est.set_params(on_invalid="nan").predict(X)
    assert np.isnan(pred).tolist() == [False, True, True, True, True, True, False]
    emb = LLMEmbedding(model=tiny_model, layers=[1], on_invalid="nan").fit(["CCO"])
    assert np.isnan(emb.transform(X)).all(axis=1).tolist() == np.isnan(pred).tolist()
    pytest.importorskip("rdkit")
    fp = MorganFingerprint(on_invalid="nan").fit_transform(X)  # the featurisers agree, row by row
    assert np.isnan(fp).all(axis=1).tolist() == np.isnan(pred).tolist()


# 9 ------------------------------------------- thread control everywhere
def test_llm_embedding_and_pretrainer_scoring_honour_n_threads(tiny_model, monkeypatch):
    from sktag._forward import engine as _engine

    seen = []
    real = _engine._forward

    def spy(*args, **kwargs):
        seen.append(torch.get_num_threads())
        return real(*args, **kwargs)

    monkeypatch.setattr(_engine, "_forward", spy)
    old = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        LLMEmbedding(model=tiny_model, domains="Text", layers=[1], n_threads=1).fit_transform(TEXT)
        pre = DomainTagPretrainer(model=tiny_model, domain="Text", tag_length=2, max_iter=1, n_threads=1,
                                  random_state=0).fit(TEXT)
        seen.clear()
        pre.nll(TEXT), pre.score(TEXT), pre.initial_nll(TEXT)
        assert torch.get_num_threads() == 2  # restored
    finally:
        torch.set_num_threads(old)
    assert seen and set(seen) == {1}


# 10 ------------------------------------------- zero-weight rows are absent rows
@pytest.mark.parametrize("Est", [TagRegressor, TagClassifier])
def test_zero_weight_rows_are_absent_rows_with_early_stopping(tiny_model, length_task, Est):
    X, y = length_task
    y = y if Est is TagRegressor else (y > np.median(y)).astype(int)
    kw = dict(model=tiny_model, domains="Text", tag_length=2, max_iter=2, random_state=0, early_stopping=True)
    if Est is TagClassifier:
        kw["class_weight"] = "balanced"
    extra = ["NNNN", "C", "OOOOOOO"] * 4
    X_more = X[:50] + extra + X[50:]
    y_more = np.r_[y[:50], (y[:12] if Est is TagRegressor else 1 - y[:12]), y[50:]]
    w = np.r_[np.ones(50), np.zeros(12), np.ones(len(X) - 50)]
    without = Est(**kw).fit(X, y)
    with_zeros = Est(**kw).fit(X_more, y_more, sample_weight=w)
    out = (lambda e: e.predict_proba(X)) if Est is TagClassifier else (lambda e: e.predict(X))
    np.testing.assert_allclose(out(with_zeros), out(without), **tol(scale=np.std(y)))
    assert with_zeros.best_epoch_ == without.best_epoch_


# 11 ------------------------------------------- messages and docs
def test_messages_and_docs(tiny_model):
    with pytest.raises(ValueError, match=r"'random_state' parameter of TagRegressor must be an int in the range "
                                         r"\[0, 2\*\*32\) or a numpy RandomState or None\. Got 'x'"):
        reg(tiny_model, random_state="x").fit(TEXT, Y)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        reg(tiny_model, max_iter=2).fit(["CC"], [1.0])
    assert not any("0 -> 0" in str(w.message) for w in caught)
    for cls in (LLMEmbedding, DomainTagPretrainer):
        assert "float32 on CPU" not in " ".join(cls.__doc__.split()) and "AVX512-BF16" in cls.__doc__
