"""Readout and head study: the paper's Tag-LLM against the new defaults and the baselines.

For each data set (ESOL regression, BBBP classification) and split seed ``i``
(fold ``i`` of ``ScaffoldSplit(n_splits=max_seed + 1, test_size=0.2,
random_state=0)``), the embedded default model, on the same split:

* ``TagRegressor`` / ``TagClassifier`` with the defaults (pooled readout,
  closed-form head re-solved each epoch, early stopping that can keep epoch 0);
* optionally the same with another backbone dtype (``--extra-dtype float32``:
  the bf16-on-CPU accuracy check);
* the paper's estimator (``readout="tag", head_init="random",
  head_update="gradient"``, no early stopping) for ``--paper-epochs`` epochs;
* ``LLMEmbedding`` (the default readout's layers) + StandardScaler + RidgeCV / logistic regression;
* Morgan counts + random forest, RDKit descriptors + HistGradientBoosting;
* with ``--stack``: a 5-fold ``StackingRegressor``/``StackingClassifier`` of the
  Tag-LLM and descriptors + HistGB (refits the Tag-LLM 5 more times).

Metrics: test RMSE (ESOL), test AUROC (BBBP).  Usage::

    python -m benchmarks.studies.readout_study --datasets esol bbbp --seeds 0 1 2 --threads 2

Writes ``readout_study_<date>.{md,json}`` into ``--out``.  Machine load
(``os.getloadavg``) is recorded before and after every row.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]


def _models(kind, seed, args):
    from sklearn.ensemble import (HistGradientBoostingClassifier, HistGradientBoostingRegressor,
                                  RandomForestClassifier, RandomForestRegressor, StackingClassifier,
                                  StackingRegressor)
    from sklearn.linear_model import LogisticRegressionCV, RidgeCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from sktag import LLMEmbedding, TagClassifier, TagRegressor
    from sktag.features import MorganFingerprint, RDKitDescriptors

    reg = kind == "regression"
    Tag = TagRegressor if reg else TagClassifier
    common = dict(n_threads=args.threads, random_state=seed)
    forest = (RandomForestRegressor if reg else RandomForestClassifier)(500, n_jobs=args.threads, random_state=seed)
    hgb = (HistGradientBoostingRegressor if reg else HistGradientBoostingClassifier)(random_state=seed)
    linear = RidgeCV(np.logspace(-2, 5, 22)) if reg else LogisticRegressionCV(Cs=np.logspace(-3, 1, 5), max_iter=1000)
    models = {
        "Morgan counts + RF(500)": make_pipeline(MorganFingerprint(counts=True), forest),
        "RDKit descriptors + HistGB": make_pipeline(RDKitDescriptors(), hgb),
        f"LLMEmbedding({LLMEmbedding().layers}) + {'RidgeCV' if reg else 'LogisticRegressionCV'}": make_pipeline(
            LLMEmbedding(), StandardScaler(), linear),
        f"{Tag.__name__} defaults": Tag(**common),
    }
    for dt in args.extra_dtype:
        models[f"{Tag.__name__} defaults, dtype={dt}"] = Tag(dtype=dt, **common)
    if args.paper_epochs:
        models[f"{Tag.__name__} paper (tag readout, random head, {args.paper_epochs} epochs)"] = Tag(
            readout="tag", head_init="random", head_update="gradient", early_stopping=False,
            max_iter=args.paper_epochs, **common)
    if args.stack:
        Stack = StackingRegressor if reg else StackingClassifier
        models[f"Stack: {Tag.__name__} + descriptors/HistGB"] = Stack(
            [("tag", Tag(**common)), ("hgb", make_pipeline(RDKitDescriptors(), hgb))],
            final_estimator=RidgeCV() if reg else None, cv=5)
    return models


def _data(name):
    from sktag.datasets import load_bbbp, load_esol

    X, y = {"esol": load_esol, "bbbp": load_bbbp}[name](return_X_y=True)
    return np.asarray(X, dtype=object), np.asarray(y), "regression" if name == "esol" else "classification"


def _score(kind, est, X, y):
    from sklearn.metrics import roc_auc_score

    if kind == "regression":
        return float(np.sqrt(np.mean((est.predict(X) - y) ** 2)))
    return float(roc_auc_score(y, est.predict_proba(X)[:, 1]))


def rows_for(name, seed, args):
    from sktag import TagClassifier, TagRegressor
    from sktag.model_selection import ScaffoldSplit

    X, y, kind = _data(name)
    tr, te = list(ScaffoldSplit(n_splits=max(args.seeds) + 1, test_size=0.2, random_state=0).split(X))[seed]
    out = []
    for label, est in _models(kind, seed, args).items():
        load0 = os.getloadavg()[0]
        t0 = time.perf_counter()
        est.fit(X[tr], y[tr])
        fit_s = time.perf_counter() - t0
        row = dict(dataset=name, seed=seed, model=label, metric="RMSE" if kind == "regression" else "AUROC",
                   test=_score(kind, est, X[te], y[te]), fit_seconds=fit_s, load_before=load0,
                   load_after=os.getloadavg()[0], n_train=len(tr), n_test=len(te))
        if isinstance(est, (TagRegressor, TagClassifier)):
            row.update(epochs=est.n_iter_, best_epoch=est.best_epoch_, head_alpha=est.head_alpha_,
                       validation_scores=est.validation_scores_, loss_curve=est.loss_curve_,
                       prefix_time=est.prefix_time_, epoch_times=est.epoch_times_)
        print(json.dumps(row), flush=True)
        out.append(row)
    return out


def _table(rows):
    lines = ["| data | model | metric | " + " | ".join(f"seed {s}" for s in sorted({r['seed'] for r in rows}))
             + " | mean ± sd | fit s (mean) | load before/after |", ""]
    seeds = sorted({r["seed"] for r in rows})
    lines[1] = "|---|---|---|" + "---:|" * len(seeds) + "---:|---:|---|"
    for (data, model) in dict.fromkeys((r["dataset"], r["model"]) for r in rows):
        rs = {r["seed"]: r for r in rows if r["dataset"] == data and r["model"] == model}
        vals = np.array([rs[s]["test"] for s in seeds if s in rs])
        cells = " | ".join(f"{rs[s]['test']:.3f}" if s in rs else "" for s in seeds)
        sd = f" ± {vals.std(ddof=1):.3f}" if len(vals) > 1 else ""
        loads = ", ".join(f"{r['load_before']:.1f}/{r['load_after']:.1f}" for r in rs.values())
        metric = next(iter(rs.values()))["metric"]
        lines.append(f"| {data} | {model} | {metric} | {cells} | {vals.mean():.3f}{sd} | "
                     f"{np.mean([r['fit_seconds'] for r in rs.values()]):.0f} | {loads} |")
    return lines


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--datasets", nargs="+", default=["esol", "bbbp"], choices=["esol", "bbbp"])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--extra-dtype", nargs="*", default=[])
    ap.add_argument("--paper-epochs", type=int, default=3, help="0 leaves the paper's estimator out")
    ap.add_argument("--stack", action="store_true")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    args = ap.parse_args(argv)
    import torch

    from sktag.backbone import cpu_supports_bf16

    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    rows = [r for name in args.datasets for s in args.seeds for r in rows_for(name, s, args)]
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    meta = dict(date=stamp, machine=platform.processor() or platform.machine(), cpus=os.cpu_count(),
                threads=args.threads, cpu_bf16=cpu_supports_bf16(), torch=torch.__version__,
                total_seconds=time.perf_counter() - t0, argv=sys.argv[1:])
    (out / f"readout_study_{stamp}.json").write_text(json.dumps(dict(meta=meta, rows=rows), indent=1))
    lines = [f"# Readout study ({stamp})", "",
             f"Scaffold splits (fold = seed of ScaffoldSplit(test_size=0.2, random_state=0)), SmolLM2-135M "
             f"(backbone bfloat16 where the row says nothing else: this CPU has native bf16 = {cpu_supports_bf16()}), "
             f"{args.threads} torch threads, {os.cpu_count()} CPUs, total {meta['total_seconds'] / 60:.0f} min. "
             "RMSE: lower is better; AUROC: higher is better.", "", *_table(rows)]
    (out / f"readout_study_{stamp}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
