"""Small-data check: TagRegressor defaults, max_iter=5, on 300 random ESOL molecules (seeds 0-2).

For each seed, 300 molecules drawn at random are the training set and the other 828 the test set; each seed is one
``sktag.benchmark.compare`` call (``random_state=seed``).  Prints one JSON line per seed (test R², RMSE, fit seconds,
load average, kept epoch) and writes them, with the machine and versions, to
``benchmarks/results/small_esol_<date>.json``.  Finished fits are kept in ``<out>/small_esol_fits``: a stopped run
resumes (``--fresh`` refits).

Usage::

    python -m benchmarks.studies.small_esol [--threads 2] [--seeds 0 1 2] [--out DIR] [--model NAME_OR_PATH]
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import shutil
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2, help="torch threads")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    ap.add_argument("--model", default="smollm2-135m", help="backbone (a name or a local folder)")
    ap.add_argument("--n-train", type=int, default=300, help="training molecules per seed (default 300)")
    ap.add_argument("--max-iter", type=int, default=5, help="epochs (default 5)")
    ap.add_argument("--fresh", action="store_true", help="refit everything (ignore the fits kept in --out)")
    args = ap.parse_args(argv)
    import torch

    from sktag.benchmark import compare, environment
    from sktag.datasets import load_esol

    torch.set_num_threads(args.threads)
    X, y = load_esol(return_X_y=True)
    out = Path(args.out)
    fits = out / "small_esol_fits"
    if args.fresh and fits.exists():
        shutil.rmtree(fits)
    rows = []
    for seed in args.seeds:
        idx = np.random.RandomState(seed).permutation(len(X))
        split = (idx[:args.n_train], idx[args.n_train:])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = compare(X, y, models="tag", model=args.model, model_params={"tag": {"max_iter": args.max_iter}},
                          cv=[split], scoring=["r2", "rmse"], random_state=seed, checkpoint_dir=fits,
                          error_score="raise")
        r = res.folds.iloc[0]
        row = dict(seed=seed, n_train=int(r.n_train), n_test=int(r.n_test), r2=float(r.r2), rmse=float(r.rmse),
                   seconds=float(r.fit_seconds), predict_seconds=float(r.predict_seconds), load_before=r.load_before,
                   load_after=r.load_after, epochs=_int(r.n_iter), best_epoch=_int(r.best_epoch),
                   resumed=bool(r.resumed))
        print(json.dumps(row, default=str), flush=True)
        rows.append(row)
    print(f"mean test R² {np.mean([r['r2'] for r in rows]):.3f}")
    out.mkdir(parents=True, exist_ok=True)
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M")
    meta = dict(date=stamp, threads=args.threads, model=args.model, max_iter=args.max_iter, **environment())
    (out / f"small_esol_{stamp}.json").write_text(json.dumps(dict(meta=meta, rows=rows), indent=1, default=str))


def _int(v):
    import pandas as pd

    return None if pd.isna(v) else int(v)


if __name__ == "__main__":
    main()
