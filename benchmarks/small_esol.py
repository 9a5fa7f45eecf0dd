"""Small-data check: TagRegressor defaults, max_iter=5, on 300 random ESOL molecules (seeds 0-2).

For each seed, 300 molecules drawn at random are the training set and the other 828 the test set.  Prints
one JSON line per seed (test R², seconds, load average, kept epoch) and writes them, with the machine and
versions, to ``benchmarks/results/small_esol_<date>.json``.

Usage::

    python benchmarks/small_esol.py [--threads 2] [--out DIR]
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2, help="torch threads")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    args = ap.parse_args(argv)
    import torch

    from sktag import TagRegressor
    from sktag.datasets import load_esol

    torch.set_num_threads(args.threads)
    X, y = load_esol(return_X_y=True)
    X = np.asarray(X, dtype=object)
    rows = []
    for seed in args.seeds:
        idx = np.random.RandomState(seed).permutation(len(X))
        tr, te = idx[:300], idx[300:]
        load = os.getloadavg()[0]
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            est = TagRegressor(domains="SMILES", max_iter=5, random_state=seed).fit(X[tr], y[tr])
        row = dict(seed=seed, n_train=len(tr), n_test=len(te), r2=float(est.score(X[te], y[te])),
                   seconds=time.perf_counter() - t0, load_before=load, load_after=os.getloadavg()[0],
                   epochs=est.n_iter_, best_epoch=est.best_epoch_)
        print(json.dumps(row), flush=True)
        rows.append(row)
    print(f"mean test R² {np.mean([r['r2'] for r in rows]):.3f}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M")
    meta = dict(date=stamp, machine=platform.processor() or platform.machine(), cpus=os.cpu_count(),
                threads=args.threads, torch=torch.__version__)
    (out / f"small_esol_{stamp}.json").write_text(json.dumps(dict(meta=meta, rows=rows), indent=1))


if __name__ == "__main__":
    main()
