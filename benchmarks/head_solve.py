"""Time of the regression head's closed form: scikit-learn's ``RidgeCV`` against ``sktag._fit.ridge.ridge_gcv``.

The head is solved before training, after every epoch and at the end of a fit, on ``n`` rows of the pooled
readout's features (6,336 for SmolLM2-135M: 10 pooled layers + the tag's state, 576 each).  With more rows than
features ``RidgeCV`` 1.9 forms a ``d x d`` inverse per penalty; ``ridge_gcv`` rotates once into the covariance's
eigenbasis.  Side by side in one process, on the same matrices (random, correlated features like pooled states,
sample weights drawn in (0.5, 1.5)): seconds per solve, the penalty each chose and the largest coefficient
difference.  Writes ``head_solve_<cpu kind>_<date>.{json,md}`` into ``--out``.

Usage::

    python -m benchmarks.head_solve --threads 2                      # n = 3200, 6400, 8000; d = 6336
    python -m benchmarks.head_solve --rows 300 600 --features 200    # smoke run
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import time
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

from benchmarks import command
from benchmarks.speed_machine import cpu_kind

ROOT = Path(__file__).resolve().parents[1]


def features(n, d, rng):
    """``n x d`` features with a decaying spectrum (a few strong directions, like pooled LLM states)."""
    k = min(d, 256)
    basis = rng.randn(k, d) * (1.0 / np.arange(1, k + 1))[:, None]
    return rng.randn(n, k) @ basis + 0.05 * rng.randn(n, d)


def solve_both(n, args):
    """One row of the table: both solvers on the same ``n x d`` problem."""
    from sktag._fit.ridge import _sklearn_ridge_cv, ridge_gcv
    from sktag._fit.tasks import RIDGE_ALPHAS

    rng = np.random.RandomState(args.seed)
    X = features(n, args.features, rng)
    signal = X @ rng.randn(args.features)
    y = signal / signal.std() + rng.randn(n)
    y = ((y - y.mean()) / y.std())[:, None]
    sw = rng.uniform(0.5, 1.5, n)
    load = os.getloadavg()[0]
    t0 = time.perf_counter()
    coef, icpt, alpha = ridge_gcv(X, y, sw, RIDGE_ALPHAS)
    row = dict(n=n, d=args.features, ridge_gcv_s=time.perf_counter() - t0, ridge_gcv_alpha=alpha, load=load,
               path="RidgeCV (Gram mode)" if n <= args.features else "eigenbasis")
    if n <= args.sklearn_max_rows:
        t0 = time.perf_counter()
        c2, i2, a2 = _sklearn_ridge_cv(X, y, sw, RIDGE_ALPHAS)
        row.update(sklearn_s=time.perf_counter() - t0, sklearn_alpha=a2,
                   max_coef_diff=float(np.abs(coef - c2).max()), max_intercept_diff=float(np.abs(icpt - i2).max()))
    row["load_after"] = os.getloadavg()[0]
    print(row, flush=True)
    return row


def main(argv=None):
    from sktag._fit.tasks import RIDGE_ALPHAS

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", nargs="+", type=int, default=[3200, 6400, 8000])
    p.add_argument("--features", type=int, default=6336)
    p.add_argument("--sklearn-max-rows", type=int, default=6400, help="skip RidgeCV above this many rows")
    p.add_argument("--threads", type=int, default=2, help="BLAS threads (threadpoolctl)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    args = p.parse_args(argv)
    kind = cpu_kind()
    with threadpool_limits(args.threads):
        rows = [solve_both(n, args) for n in args.rows]
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M")
    stem = Path(args.out) / f"head_solve_{kind['kind'].lower()}_{stamp}"
    info = dict(command=command(__spec__.name, argv), cpu=kind, threads=args.threads,
                numpy=np.__version__, started=stamp, alphas=len(RIDGE_ALPHAS))
    stem.parent.mkdir(parents=True, exist_ok=True)
    Path(f"{stem}.json").write_text(json.dumps(dict(info=info, rows=rows), indent=1, default=str))
    md = [f"# Head solve — {stamp}", "", f"* command: `{info['command']}`",
          f"* CPU: {kind.get('model', '?')} ({kind['kind']}), {args.threads} BLAS thread(s), float64, numpy "
          f"{np.__version__}; {len(RIDGE_ALPHAS)} penalties", "",
          "| rows | features | sktag path | ridge_gcv s | RidgeCV s | ratio | penalty (sktag / RidgeCV) "
          "| max coef diff | load before / after |", "|---:|---:|---|---:|---:|---:|---|---:|---|"]
    for r in rows:
        sk = r.get("sklearn_s")
        md.append(f"| {r['n']} | {r['d']} | {r['path']} | {r['ridge_gcv_s']:.1f} | "
                  + (f"{sk:.1f} | {sk / r['ridge_gcv_s']:.1f}× | {r['ridge_gcv_alpha']:.3g} / {r['sklearn_alpha']:.3g}"
                     f" | {r['max_coef_diff']:.1e}" if sk is not None else "skipped | | | ")
                  + f" | {r['load']:.2f} / {r['load_after']:.2f} |")
    Path(f"{stem}.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))
    return rows


if __name__ == "__main__":
    main()
