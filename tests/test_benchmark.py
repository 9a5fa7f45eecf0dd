"""sktag.benchmark.compare, its result object and the paired statistics (tiny models, small data)."""

import copy
import math

import numpy as np
import pandas as pd
import pytest
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.model_selection import GroupKFold
from sklearn.pipeline import make_pipeline

from conftest import esol_sample

from sktag.benchmark import BenchmarkResult, compare, corrected_ttest, get_metric, make_model
from sktag.features import MorganFingerprint
from sktag.hybrid import default_classical_models
from sktag.model_selection import scaffold_groups

FAST = {"tag": {"max_iter": 1}, "rf_morgan_counts": {"model__n_estimators": 10},
        "hybrid": {"classical": default_classical_models("regression", random_state=0, n_estimators=10), "cv": 3}}


@pytest.fixture(scope="module")
def esol30():
    return esol_sample(30)


@pytest.fixture(scope="module")
def davis30():
    from sktag.datasets import load_davis

    d = load_davis(as_frame=True)
    rng = np.random.RandomState(0)
    pos = rng.choice(np.flatnonzero(d.target.to_numpy() > 6), 15, replace=False)
    neg = rng.choice(np.flatnonzero(d.target.to_numpy() <= 5), 15, replace=False)
    idx = np.concatenate([pos, neg])
    X = d.data.iloc[idx].reset_index(drop=True)
    X["target"] = X["target"].str[:30]  # short proteins: the tiny model is character-level
    return X, d.target.to_numpy()[idx]


def test_regression_end_to_end(tiny_model, esol30):
    X, y = esol30
    X_before, y_before = X.copy(), y.copy()
    res = compare(X, y, models="default", cv=3, model=tiny_model, model_params=FAST, random_state=0)
    np.testing.assert_array_equal(X, X_before)  # the caller's data is untouched
    np.testing.assert_array_equal(y, y_before)
    assert isinstance(res, BenchmarkResult) and res.task == "regression"
    assert res.models == ["tag", "llm_embedding_pretrained", "hybrid", "rf_morgan_counts", "hgb_descriptors", "dummy"]
    f = res.folds
    assert len(f) == 18 and f["error"].isna().all(), f["error"].tolist()
    assert any("LLM prefixes:" in n and "reused" in n for n in res.notes)  # hybrid: no second pass
    assert {"rmse", "mae", "r2", "fit_seconds", "predict_seconds", "n_train", "n_test"} <= set(f.columns)
    assert (f["n_train"] + f["n_test"] == 30).all() and (f["fit_seconds"] > 0).all()
    # default folds: a partition into scaffold groups, the same for every model
    pred = res.predictions()
    groups = scaffold_groups(X)
    folds_of = {}
    for name, p in pred.groupby("model", observed=True):
        assert sorted(p["row"]) == list(range(30))
        folds_of[name] = tuple(p.sort_values("row")["fold"])
    assert len(set(folds_of.values())) == 1
    fold = np.array(next(iter(folds_of.values())))
    for g in np.unique(groups):
        assert len(np.unique(fold[groups == g])) == 1  # a scaffold never spans two test folds
    # metrics are those of the stored predictions; the dummy predicts the training mean
    d0 = pred[(pred["model"] == "dummy") & (pred["fold"] == 0)]
    train_mean = y[np.setdiff1d(np.arange(30), d0["row"])].mean()
    np.testing.assert_allclose(d0["y_pred"], train_mean)
    rmse = f.loc[(f["model"] == "dummy") & (f["fold"] == 0), "rmse"].item()
    assert rmse == pytest.approx(math.sqrt(np.mean((y[d0["row"]] - train_mean) ** 2)))
    s = res.summary()
    assert s.loc["dummy", "rmse_mean"] == pytest.approx(f[f["model"] == "dummy"]["rmse"].mean())
    assert s.loc["dummy", "rmse_sd"] == pytest.approx(f[f["model"] == "dummy"]["rmse"].std(ddof=1))
    assert res.reference in ("rf_morgan_counts", "hgb_descriptors")  # the best classical row
    md = res.to_markdown()
    assert "| tag" in md and f"vs {res.reference}" in md and "Nadeau-Bengio" in md
    # reproducible with random_state
    again = compare(X, y, models=["tag", "rf_morgan_counts"], cv=3, model=tiny_model,
                    model_params={k: FAST[k] for k in ("tag", "rf_morgan_counts")}, random_state=0)
    np.testing.assert_allclose(again.folds["rmse"], f[f["model"].isin(["tag", "rf_morgan_counts"])]["rmse"])


def test_classification_with_string_labels_and_user_estimator(tiny_model, bbbp40):
    from sklearn.metrics import roc_auc_score

    X, y = bbbp40
    labels = np.where(y == 1, "crosses", "blocked")
    models = {"tag": "tag", "dummy": "dummy",
              "logreg": make_pipeline(MorganFingerprint(n_bits=256), LogisticRegression(max_iter=500))}
    res = compare(X, labels, models=models, cv="scaffold:3", model=tiny_model, model_params={"tag": {"max_iter": 1}},
                  random_state=0)
    assert res.task == "classification"
    assert [m.name for m in res.metrics] == ["roc_auc", "average_precision", "accuracy"]
    assert res.llm_models == ["tag"] and res.reference == "logreg"
    f, pred = res.folds, res.predictions()
    assert f["error"].isna().all() and {"proba_blocked", "proba_crosses"} <= set(pred.columns)
    for (name, k), p in pred.groupby(["model", "fold"], observed=True):
        auc = f.loc[(f["model"] == name) & (f["fold"] == k), "roc_auc"].item()
        assert auc == pytest.approx(roc_auc_score(p["y_true"] == "crosses", p["proba_crosses"]))
    assert (f.loc[f["model"] == "dummy", "roc_auc"] == 0.5).all()
    assert "verdict" in res.paired().columns


@pytest.mark.parametrize("task", ["regression", "classification"])
def test_two_columns_drug_and_protein(tiny_model, davis30, task):
    X, y = davis30
    y = y if task == "regression" else (y > 6).astype(int)
    X_before = X.copy()
    res = compare(X, y, models=["tag", "llm_embedding", "hgb_descriptors", "dummy"], task=task, cv=3,
                  model=tiny_model, domains={"drug": "SMILES", "target": "Protein"},
                  model_params={"tag": {"max_iter": 1}}, random_state=0)
    pd.testing.assert_frame_equal(X, X_before)
    assert res.task == task and res.folds["error"].isna().all() and len(res.folds) == 12
    assert any("see only the SMILES column 'drug'" in n for n in res.notes)
    assert "see only the SMILES column 'drug'" in res.to_markdown()
    # scaffold folds of the drug column
    fold = res.predictions().query("model == 'dummy'").sort_values("row")["fold"].to_numpy()
    groups = scaffold_groups(X["drug"])
    assert all(len(np.unique(fold[groups == g])) == 1 for g in np.unique(groups))


def test_corrected_ttest_by_hand():
    a = np.array([0.80, 0.90, 0.70])
    b = np.array([0.75, 0.80, 0.72])
    n_train, n_test = 20, 10
    d = a - b  # 0.05, 0.10, -0.02
    mean = (0.05 + 0.10 - 0.02) / 3
    var = ((0.05 - mean) ** 2 + (0.10 - mean) ** 2 + (-0.02 - mean) ** 2) / 2
    t = mean / math.sqrt((1 / 3 + 10 / 20) * var)
    # Student's t with 2 degrees of freedom: P(|T| > |t|) = 1 - |t| / sqrt(2 + t^2)
    p = 1 - abs(t) / math.sqrt(2 + t * t)
    got = corrected_ttest(a, b, n_train, n_test)
    assert got[0] == pytest.approx(mean) and got[1] == pytest.approx(t) and got[2] == pytest.approx(p)
    assert np.allclose(d, a - b)
    naive_t = mean / math.sqrt(var / 3)
    assert abs(got[1]) < abs(naive_t)  # the correction widens the interval
    # per-fold sizes are averaged; identical scores give no evidence
    assert corrected_ttest(a, a, [20, 20, 20], [10, 10, 10])[2] == 1.0


def test_paired_statistics_of_a_result_match_a_by_hand_computation(esol30):
    X, y = esol30
    models = {"ridge": make_pipeline(MorganFingerprint(n_bits=128), Ridge()), "dummy": "dummy"}
    res = compare(X, y, models=models, cv=5, random_state=0)
    assert res.reference == "ridge"
    table = res.paired(test="both", n_resamples=300).set_index("model")
    f = res.folds
    d = (f[f["model"] == "dummy"]["rmse"].to_numpy() - f[f["model"] == "ridge"]["rmse"].to_numpy())
    ratio = np.mean(f[f["model"] == "dummy"]["n_test"].to_numpy() / f[f["model"] == "dummy"]["n_train"].to_numpy())
    t = d.mean() / math.sqrt((1 / 5 + ratio) * d.var(ddof=1))
    from scipy import stats

    assert table.loc["dummy", "difference"] == pytest.approx(d.mean())
    assert table.loc["dummy", "t"] == pytest.approx(t)
    assert table.loc["dummy", "p_value"] == pytest.approx(2 * stats.t.sf(abs(t), 4))
    assert table.loc["dummy", "ci_low"] <= table.loc["dummy", "ci_high"]
    # a model identical to the reference: difference 0, bootstrap interval [0, 0], indistinguishable
    same = compare(X, y, models={"a": "dummy", "b": "dummy"}, cv=5, reference="a").paired(test="bootstrap",
                                                                                          n_resamples=50)
    assert same.loc[0, "ci_low"] == same.loc[0, "ci_high"] == 0 and same.loc[0, "verdict"] == "indistinguishable"


class _Perfect(RegressorMixin, BaseEstimator):
    """Predicts the truth (it looks the rows up): strictly better than anything on every row."""

    def __init__(self, table=None):
        self.table = table

    def fit(self, X, y):
        return self

    def predict(self, X):
        return np.array([self.table[s] for s in X])


def test_verdicts_follow_the_metric_direction(esol30):
    X, y = esol30
    res = compare(X, y, models={"perfect": _Perfect(dict(zip(X, y))), "dummy": "dummy"}, cv=5, reference="dummy")
    p = res.paired(test="both", n_resamples=200).set_index("model")
    assert p.loc["perfect", "difference"] < 0 and p.loc["perfect", "verdict"] == "better"  # lower RMSE is better
    assert p.loc["perfect", "ci_high"] < 0
    flipped = res.paired(reference="perfect").set_index("model")
    assert flipped.loc["dummy", "verdict"] == "worse"


_FITS = {"n": 0, "interrupt_at": None}


class _Counting(RegressorMixin, BaseEstimator):
    """Counts its fits in a module global; raises KeyboardInterrupt at fit number ``interrupt_at``."""

    def __init__(self, alpha=1.0):
        self.alpha = alpha

    def fit(self, X, y):
        _FITS["n"] += 1
        if _FITS["n"] == _FITS["interrupt_at"]:
            raise KeyboardInterrupt
        self.mean_ = float(np.mean(y)) * self.alpha
        return self

    def predict(self, X):
        return np.full(len(X), self.mean_)


def test_resume_after_interruption(tmp_path, esol30):
    X, y = esol30
    models = {"a": _Counting(), "b": _Counting(alpha=0.5)}
    _FITS.update(n=0, interrupt_at=4)
    with pytest.raises(KeyboardInterrupt):
        compare(X, y, models=models, cv=3, checkpoint_dir=tmp_path)
    assert len(list((tmp_path / "fits").glob("*.json"))) == 3  # fold 0 (a, b) and fold 1 (a) finished
    _FITS.update(n=0, interrupt_at=None)
    res = compare(X, y, models=models, cv=3, checkpoint_dir=tmp_path)
    assert _FITS["n"] == 3  # only the three unfinished fits ran
    assert res.folds["resumed"].tolist() == [True, True, True, False, False, False]
    fresh = compare(X, y, models=models, cv=3)
    pd.testing.assert_series_equal(res.folds["rmse"], fresh.folds["rmse"])
    assert any("3 of 6 fits reused" in n for n in res.notes)
    # another parameter value, other data or other folds: nothing is reused
    _FITS["n"] = 0
    compare(X, y, models={"a": _Counting(alpha=2.0)}, cv=3, checkpoint_dir=tmp_path)
    compare(X, y + 1, models={"a": _Counting()}, cv=3, checkpoint_dir=tmp_path)
    compare(X, y, models={"a": _Counting()}, cv="kfold:3", checkpoint_dir=tmp_path)
    assert _FITS["n"] == 9


class _Tagged(_Counting):
    """A model with a TagSet parameter: its repr shows tag names and lengths, never the vectors."""

    def __init__(self, alpha=1.0, domain_tags=None):
        self.alpha = alpha
        self.domain_tags = domain_tags


def test_checkpoint_tells_tagsets_of_the_same_shape_apart(tmp_path, esol30):
    import torch

    from sktag import TagSet

    X, y = esol30
    a, b = (TagSet("m", "f", 4), TagSet("m", "f", 4))
    a.add("SMILES", torch.zeros(2, 4))
    b.add("SMILES", torch.ones(2, 4))
    assert repr(a) == repr(b)
    _FITS.update(n=0, interrupt_at=None)
    compare(X, y, models={"t": _Tagged(domain_tags=a)}, cv=3, checkpoint_dir=tmp_path)
    compare(X, y, models={"t": _Tagged(domain_tags=b)}, cv=3, checkpoint_dir=tmp_path)
    assert _FITS["n"] == 6  # the second tags are not the first: nothing reused
    res = compare(X, y, models={"t": _Tagged(domain_tags=b.copy())}, cv=3, checkpoint_dir=tmp_path)
    assert _FITS["n"] == 6 and res.folds["resumed"].all()  # equal content: reused


def test_cv_options(esol30):
    X, y = esol30
    res = compare(X, y, models="dummy", cv="kfold:4", random_state=1)
    assert "KFold" in res.cv and len(res.folds) == 4
    assert sorted(res.predictions()["row"]) == list(range(30))
    res = compare(X, y, models="dummy", cv=GroupKFold(3))  # a group splitter gets the scaffold groups
    groups = scaffold_groups(X)
    fold = res.predictions().sort_values("row")["fold"].to_numpy()
    assert all(len(np.unique(fold[groups == g])) == 1 for g in np.unique(groups))
    splits = [(np.arange(0, 20), np.arange(20, 30)), (np.arange(10, 30), np.arange(0, 10))]
    res = compare(X, y, models="dummy", cv=splits)
    assert res.folds["n_test"].tolist() == [10, 10] and "2 given" in res.cv
    labels = (y > np.median(y)).astype(int)
    res = compare(list(X), labels, models="dummy", cv=None)  # stratified scaffold folds
    assert res.task == "classification" and "StratifiedGroupKFold" in res.cv


@pytest.mark.parametrize("kwargs, match", [
    (dict(models="nope"), "unknown model 'nope'"),
    (dict(models="dummy", model_params={"tag": {"max_iter": 1}}), "model_params names \\['tag'\\]"),
    (dict(models="dummy", cv=20), "too few rows per fold|scaffold group"),
    (dict(models="dummy", cv="kfold:20"), "too few rows per fold"),
    (dict(models="dummy", cv="leave-one-out"), "not understood"),
    (dict(models="dummy", scoring="roc_auc"), "classification metric"),
    (dict(models="dummy", task="classification"), "lacks class|too few rows"),
])
def test_clear_errors_before_any_fit(esol30, kwargs, match):
    X, y = esol30
    with pytest.raises(ValueError, match=match):
        compare(X, y, **kwargs)


def test_errors_on_bad_targets_and_columns(esol30):
    X, y = esol30
    y_nan = y.copy()
    y_nan[3] = np.nan
    with pytest.raises(ValueError, match=r"missing or non-finite value\(s\), at rows \[3\]"):
        compare(X, y_nan, models="dummy")
    frame = pd.DataFrame({"drug": X, "seq": ["MKV"] * 30})
    with pytest.raises(ValueError, match="pass domains"):
        compare(frame, y, models="dummy")
    with pytest.raises(ValueError, match="needs a SMILES column"):
        compare(frame, y, models="rf_morgan", domains={"seq": "Protein"}, smiles_column=None, cv="kfold:3")


def test_failed_fit_scores_nan_or_raises(esol30):
    X, y = esol30
    bad = make_pipeline(MorganFingerprint(), LogisticRegression())  # a classifier on continuous y fails
    with pytest.warns(RuntimeWarning, match="bad failed on fold 0"):
        res = compare(X, y, models={"bad": bad, "dummy": "dummy"}, cv=3)
    assert res.folds.loc[res.folds["model"] == "bad", "rmse"].isna().all()
    assert "Failed fits" in res.to_markdown()
    with pytest.raises(ValueError):
        compare(X, y, models={"bad": bad}, cv=3, error_score="raise")


def test_plot_and_save(tmp_path, esol30):
    pytest.importorskip("matplotlib")
    X, y = esol30
    res = compare(X, y, models=["hgb_descriptors", "dummy"], cv=3)
    ax = res.plot()
    assert [t.get_text() for t in ax.get_yticklabels()] == ["hgb_descriptors", "dummy"]
    paths = res.save(tmp_path, "run")
    assert all(p.exists() for p in paths.values())
    assert "![rmse per model](run.png)" in paths["md"].read_text()
    assert pd.read_csv(paths["csv"]).shape[0] == 6


def test_plot_without_matplotlib_names_the_extra(monkeypatch, tmp_path, esol30):
    import sys

    X, y = esol30
    res = compare(X, y, models="dummy", cv=3)
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(ImportError, match=r"sktag\[bench\]"):
        res.plot()
    with pytest.raises(ImportError, match=r"sktag\[bench\]"):
        res.save(tmp_path)
    paths = res.save(tmp_path, plot=False)  # without the plot no matplotlib is needed
    assert paths["png"] is None and paths["md"].exists()


def test_metrics():
    rmse = get_metric("root_mean_squared_error")
    assert rmse.name == "rmse" and not rmse.greater_is_better
    assert rmse([0.0, 2.0], [1.0, 1.0]) == pytest.approx(1.0)
    assert get_metric("ci")([1, 2, 3], [1, 3, 2]) == pytest.approx(2 / 3)
    auc = get_metric("roc_auc")
    assert auc([0, 1, 1], [0.1, 0.9, 0.8]) == 1.0  # a 1-D positive-class score
    assert math.isnan(auc([1, 1], [0.2, 0.3]))  # undefined on one class
    with pytest.raises(ValueError, match="unknown metric"):
        get_metric("rmsle")
    assert copy.deepcopy(rmse) == rmse


def test_other_named_models_and_llm_detection(tiny_model, esol30):
    from sklearn.linear_model import RidgeCV

    from sktag import LLMEmbedding

    X, y = esol30
    one = {"max_iter": 1}
    models = {"paper": "tag_paper", "stack": "stack", "pretrained": "tag_pretrained", "text": "tag_text",
              "deep": "tag_deep", "mine": make_pipeline(LLMEmbedding(model=tiny_model), RidgeCV()),
              "fp": "linear_morgan"}
    res = compare(X, y, models=models, cv=2, model=tiny_model, random_state=0,
                  model_params={"paper": one, "text": one, "deep": one,
                                "stack": {"cv": 2, "tag__max_iter": 1, "tag__early_stopping": False},
                                "pretrained": {"estimator__max_iter": 1, "max_samples": 8}})
    assert res.folds["error"].isna().all(), res.folds["error"].tolist()
    assert sorted(res.llm_models) == ["deep", "mine", "paper", "pretrained", "stack", "text"]
    assert make_model("tag_deep", "regression").get_params() == dict(
        make_model("tag", "regression").get_params(), tag_depth="deep")  # the default Tag-LLM, deep: nothing else
    assert res.reference == "fp"  # the only classical row
    assert res.descriptions["paper"].startswith("Tag-LLM, paper") and res.descriptions["mine"] == "mine"


def test_one_split_is_not_tested_and_parallel_fits_match(esol30):
    X, y = esol30
    res = compare(X, y, models=["hgb_descriptors", "dummy"], cv=[(np.arange(20), np.arange(20, 30))])
    assert res.paired().loc[0, "verdict"] == "not tested (1 fold)"
    seq = compare(X, y, models=["rf_morgan", "dummy"], cv=3, random_state=0,
                  model_params={"rf_morgan": {"model__n_estimators": 5}})
    par = compare(X, y, models=["rf_morgan", "dummy"], cv=3, random_state=0, n_jobs=2,
                  model_params={"rf_morgan": {"model__n_estimators": 5}})
    pd.testing.assert_frame_equal(seq.folds[["model", "fold", "rmse"]], par.folds[["model", "fold", "rmse"]])


# ---------------------------------------------------------------- interrupts, tasks, failures, plots
class _InterruptAtEpoch:
    """A callback that raises KeyboardInterrupt at the end of epoch ``epoch``, as a Ctrl-C there would."""

    def __init__(self, epoch):
        self.epoch = epoch

    def __getattr__(self, hook):  # every other hook does nothing
        if hook.startswith("on_"):
            return lambda *args: None
        raise AttributeError(hook)

    def on_epoch_end(self, estimator, epoch, history):
        if epoch == self.epoch:
            raise KeyboardInterrupt


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_an_interrupted_tag_llm_fit_is_never_kept(tmp_path, tiny_model, esol30):
    """On its own the estimator keeps its best epoch after Ctrl-C; inside compare the run stops, nothing kept."""
    from sktag import TagRegressor

    X, y = esol30
    interrupted = {"max_iter": 5, "early_stopping": False, "callbacks": [_InterruptAtEpoch(2)]}
    with pytest.warns(UserWarning, match="interrupted after 2 complete epochs"):
        alone = TagRegressor(model=tiny_model, **interrupted).fit(X, y)
    assert alone.n_iter_ == 2
    with pytest.raises(KeyboardInterrupt):
        compare(X, y, models=["dummy", "tag"], cv=3, model=tiny_model, model_params={"tag": interrupted},
                checkpoint_dir=tmp_path)
    assert len(list((tmp_path / "fits").glob("*.json"))) == 1  # dummy on fold 0; the cut-short fit is not kept
    res = compare(X, y, models=["dummy", "tag"], cv=3, model=tiny_model, checkpoint_dir=tmp_path,
                  model_params={"tag": {"max_iter": 2, "early_stopping": False}})
    assert res.folds["resumed"].tolist() == [True, False, False, False, False, False]


@pytest.mark.parametrize("y, task", [(np.tile([0.25, 1.75], 15), "regression"), (np.tile([0, 1], 15),
                                                                                  "classification"),
                                     (np.tile([0.0, 1.0, 2.0], 10), "classification"),
                                     (np.tile(np.arange(11.0), 3)[:30], "regression")])
def test_auto_task_calls_only_text_or_few_integers_a_classification(esol30, y, task):
    X, _ = esol30
    res = compare(X, y, models="dummy", cv="kfold:3")
    assert res.task == task and res.folds["error"].isna().all()


@pytest.mark.parametrize("y", [np.full(30, 0.5), np.ones(30, dtype=int), np.array(["a"] * 30)])
def test_a_constant_target_is_refused_with_a_clear_message(esol30, y):
    X, _ = esol30
    with pytest.raises(ValueError, match="y has one value .* in every row: there is nothing to predict"):
        compare(X, y, models="dummy", cv="kfold:3")


def test_a_model_that_fails_on_every_fold_says_so(esol30):
    X, y = esol30
    bad = make_pipeline(MorganFingerprint(), LogisticRegression())  # a classifier on continuous y fails
    with pytest.warns(RuntimeWarning):
        res = compare(X, y, models={"bad": bad, "dummy": "dummy"}, cv=3, reference="dummy")
    row = res.paired().set_index("model").loc["bad"]
    assert row["verdict"] == "not tested (failed on every fold)" and row["n_folds"] == 0
    with pytest.warns(RuntimeWarning):
        res = compare(X, y, models={"bad": bad, "dummy": "dummy"}, cv=3, reference="bad")
    assert res.paired().loc[0, "verdict"] == "not tested (the reference failed on every fold)"


def test_an_invalid_smiles_is_refused_once_before_any_fit_with_any_folds(esol30):
    from sktag.exceptions import InvalidInputError

    X, y = esol30
    X = X.copy()
    X[4] = "C1CC"
    for cv in ("kfold:3", 3):
        _FITS.update(n=0, interrupt_at=None)
        with pytest.raises(InvalidInputError, match="C1CC"):
            compare(X, y, models={"a": _Counting()}, cv=cv)
        assert _FITS["n"] == 0
    frame = pd.DataFrame({"drug": esol30[0], "seq": ["MKV"] * 29 + ["MK1"]}, index=[f"r{i}" for i in range(30)])
    with pytest.raises(InvalidInputError, match="r29"):  # the row label, in the protein column
        compare(frame, y, models={"a": _Counting()}, domains={"drug": "SMILES", "seq": "Protein"}, cv="kfold:3")


def test_save_leaves_the_callers_matplotlib_backend_and_figures(tmp_path, esol30):
    matplotlib = pytest.importorskip("matplotlib")
    import matplotlib.pyplot as plt

    X, y = esol30
    res = compare(X, y, models=["dummy", "hgb_descriptors"], cv=3)
    before = matplotlib.get_backend()
    try:
        matplotlib.use("svg")  # the caller's choice, not Agg
        fig = plt.figure()
        open_figures = plt.get_fignums()
        paths = res.save(tmp_path)
        assert matplotlib.get_backend() == "svg" and plt.get_fignums() == open_figures
        assert paths["png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        plt.close(fig)
    finally:
        matplotlib.use(before)


def test_tag_pretrained_pretrains_a_tag_for_every_input_domain(tiny_model, davis30):
    X, y = davis30
    res = compare(X, y, models=["tag_pretrained", "dummy"], cv=2, model=tiny_model,
                  domains={"drug": "SMILES", "target": "Protein"},
                  model_params={"tag_pretrained": {"estimator__max_iter": 1, "max_samples": 8}}, random_state=0)
    assert res.folds["error"].isna().all(), res.folds["error"].tolist()
    est = make_model("tag_pretrained", "regression", model=tiny_model, domains={"drug": "SMILES", "target": "Protein"},
                     smiles_column="drug", random_state=0).set_params(estimator__max_iter=1, max_samples=8)
    est.fit(X, y)
    assert sorted(est.pretrainers_) == ["Protein", "SMILES"] and sorted(est.tags_) == ["Protein", "SMILES"]
    assert est.pretrainers_["Protein"].n_tokens_ > 0 and len(est.predict(X)) == len(y)


def test_checkpoint_refits_when_the_model_folder_holds_new_weights(tmp_path, esol30):
    import time

    from sklearn.linear_model import RidgeCV

    from sktag import LLMEmbedding
    from sktag.testing import make_tiny_model

    X, y = esol30
    folder = str(make_tiny_model(tmp_path / "llm", seed=0))
    models = {"emb": make_pipeline(LLMEmbedding(model=folder, domains="SMILES"), RidgeCV())}
    first = compare(X, y, models=models, cv=2, checkpoint_dir=tmp_path / "out")
    assert compare(X, y, models=models, cv=2, checkpoint_dir=tmp_path / "out").folds["resumed"].all()  # reused
    time.sleep(0.01)
    make_tiny_model(tmp_path / "llm", seed=1)  # new weights under the same path
    again = compare(X, y, models=models, cv=2, checkpoint_dir=tmp_path / "out")
    assert not again.folds["resumed"].any()
    assert not np.allclose(again.folds["rmse"], first.folds["rmse"])
