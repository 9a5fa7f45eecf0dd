"""Readout and head study on ESOL: the paper's Tag-LLM against the new defaults and baselines.

One scaffold split (``ScaffoldSplit(n_splits=..., test_size=0.2)``, fold ``i``
for seed ``i``), the embedded default model, and on the same split:

* ``TagRegressor`` with the defaults (pooled readout, closed-form head,
  head re-solved each epoch, early stopping that can keep epoch 0);
* the paper's estimator (``readout="tag", head_init="random",
  head_update="gradient"``) for ``--paper-epochs`` epochs;
* ``LLMEmbedding`` (same layers) + StandardScaler + RidgeCV;
* Morgan counts + random forest, RDKit descriptors + HistGradientBoosting;
* a stack of the Tag-LLM and descriptors + HistGB (``StackingRegressor``,
  5-fold, only with ``--stack``: it refits the Tag-LLM 5 more times).

Usage::

    python benchmarks/readout_study.py --seeds 0 --threads 2 --out benchmarks/results

Writes ``readout_study_<date>.{md,json}``.  Machine load (``os.getloadavg``)
is recorded before and after every row.
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

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def rmse(a, b):
    return float(np.sqrt(np.mean((np.asarray(a) - np.asarray(b)) ** 2)))


def rows_for_seed(seed, args):
    from sklearn.ensemble import HistGradientBoostingRegressor, RandomForestRegressor, StackingRegressor
    from sklearn.linear_model import RidgeCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from sktag import LLMEmbedding, TagRegressor
    from sktag.datasets import load_esol
    from sktag.features import MorganFingerprint, RDKitDescriptors
    from sktag.model_selection import ScaffoldSplit

    X, y = load_esol(return_X_y=True)
    X = np.asarray(X, dtype=object)
    tr, te = list(ScaffoldSplit(n_splits=max(args.seeds) + 1, test_size=0.2, random_state=0).split(X))[seed]
    Xtr, Xte, ytr, yte = X[tr], X[te], y[tr], y[te]
    common = dict(dtype=args.dtype, n_threads=args.threads, random_state=seed)
    models = {
        "Morgan counts + RF(500)": make_pipeline(MorganFingerprint(counts=True),
                                                 RandomForestRegressor(500, n_jobs=args.threads, random_state=seed)),
        "RDKit descriptors + HistGB": make_pipeline(RDKitDescriptors(),
                                                    HistGradientBoostingRegressor(random_state=seed)),
        "LLMEmbedding(spread5) + RidgeCV": make_pipeline(LLMEmbedding(dtype=args.dtype),
                                                         StandardScaler(), RidgeCV(np.logspace(-2, 5, 22))),
        "TagRegressor defaults": TagRegressor(**common),
        f"TagRegressor paper (tag readout, random head, {args.paper_epochs} epochs)": TagRegressor(
            readout="tag", head_init="random", head_update="gradient", early_stopping=False,
            max_iter=args.paper_epochs, **common),
    }
    if args.stack:
        models["Stack: TagRegressor + descriptors/HistGB"] = StackingRegressor(
            [("tag", TagRegressor(**common)),
             ("hgb", make_pipeline(RDKitDescriptors(), HistGradientBoostingRegressor(random_state=seed)))],
            final_estimator=RidgeCV(), cv=5)
    out = []
    for name, est in models.items():
        load0 = os.getloadavg()[0]
        t0 = time.perf_counter()
        est.fit(Xtr, ytr)
        pred = est.predict(Xte)
        secs = time.perf_counter() - t0
        row = dict(seed=seed, model=name, test_rmse=rmse(yte, pred), train_rmse=rmse(ytr, est.predict(Xtr))
                   if not name.startswith("Stack") else None, seconds=secs, load_before=load0,
                   load_after=os.getloadavg()[0], n_train=len(tr), n_test=len(te))
        if isinstance(est, TagRegressor):
            row.update(epochs=est.n_iter_, best_epoch=est.best_epoch_, head_alpha=est.head_alpha_,
                       validation_scores=est.validation_scores_, loss_curve=est.loss_curve_,
                       prefix_time=est.prefix_time_, epoch_times=est.epoch_times_)
        print(json.dumps(row), flush=True)
        out.append(row)
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--dtype", default="auto")
    ap.add_argument("--paper-epochs", type=int, default=3)
    ap.add_argument("--stack", action="store_true")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    args = ap.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    rows = [r for s in args.seeds for r in rows_for_seed(s, args)]
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    meta = dict(date=stamp, machine=platform.processor() or platform.machine(), cpus=os.cpu_count(),
                threads=args.threads, dtype=args.dtype, torch=torch.__version__)
    (out / f"readout_study_{stamp}.json").write_text(json.dumps(dict(meta=meta, rows=rows), indent=1))
    lines = [f"# ESOL readout study ({stamp})", "",
             f"Scaffold split (ScaffoldSplit test_size=0.2, fold = seed), SmolLM2-135M, dtype={args.dtype}, "
             f"{args.threads} torch threads, {os.cpu_count()} CPUs.", "",
             "| seed | model | test RMSE | train RMSE | seconds | load (1-min avg) before/after | epochs (best) |",
             "|---|---|---:|---:|---:|---|---|"]
    for r in rows:
        tr = "" if r["train_rmse"] is None else f"{r['train_rmse']:.3f}"
        ep = f"{r['epochs']} ({r['best_epoch']})" if "epochs" in r else ""
        lines.append(f"| {r['seed']} | {r['model']} | {r['test_rmse']:.3f} | {tr} | {r['seconds']:.0f} | "
                     f"{r['load_before']:.1f}/{r['load_after']:.1f} | {ep} |")
    (out / f"readout_study_{stamp}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
