"""Demo: TagRegressor on ESOL versus classical baselines, from one run.

Run with ``python -m sktag.demo``.  Fits a :class:`~sktag.TagRegressor` on
the embedded default model (SmolLM2-135M) on a Bemis-Murcko scaffold split
of the bundled ESOL data set, and prints its test RMSE next to a
mean predictor and Morgan fingerprints + random forest, trained and tested
on the same split.
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m sktag.demo", description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m", help="backbone (default: embedded SmolLM2-135M)")
    parser.add_argument("--n-train", type=int, default=600,
                        help="training molecules taken from the scaffold-split training part (default 600)")
    parser.add_argument("--epochs", type=int, default=None, help="max_iter of the TagRegressor (default: its default)")
    parser.add_argument("--tag-length", type=int, default=None, help="tag_length (default: its default)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    args = parser.parse_args(argv)

    from sklearn.ensemble import RandomForestRegressor
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.metrics import mean_squared_error
    from sklearn.pipeline import make_pipeline

    from sktag import TagRegressor
    from sktag.datasets import load_esol
    from sktag.features import MorganFingerprint
    from sktag.model_selection import ScaffoldSplit

    X, y = load_esol(return_X_y=True)
    train, test = next(ScaffoldSplit(n_splits=1, test_size=0.2, random_state=args.seed).split(X))
    rng = np.random.RandomState(args.seed)
    if args.n_train < len(train):
        train = np.sort(rng.choice(train, args.n_train, replace=False))
    print(f"ESOL (Delaney 2004, MoleculeNet): {len(X)} molecules; scaffold split, "
          f"{len(train)} train / {len(test)} test molecules, seed {args.seed}")

    def rmse(pred):
        return float(np.sqrt(mean_squared_error(y[test], pred)))

    rows = []
    rows.append(("mean of training targets", rmse(np.full(len(test), y[train].mean())), 0.0))

    t = time.perf_counter()
    rf = make_pipeline(MorganFingerprint(radius=2, n_bits=2048),
                       RandomForestRegressor(n_estimators=300, random_state=args.seed, n_jobs=-1))
    rf.fit(X[train], y[train])
    rows.append(("Morgan fingerprint + random forest", rmse(rf.predict(X[test])), time.perf_counter() - t))

    t = time.perf_counter()
    chosen = {k: v for k, v in (("tag_length", args.tag_length), ("max_iter", args.epochs)) if v is not None}
    reg = TagRegressor(model=args.model, domains="SMILES", random_state=args.seed, verbose=0 if args.quiet else 1,
                       **chosen)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        reg.fit(X[train], y[train])
    pred = reg.predict(X[test])
    rows.append((f"TagRegressor ({args.model}, p={reg.tag_length}, {reg.n_iter_} epochs)",
                 rmse(pred), time.perf_counter() - t))

    print()
    print(f"{'model':<52} {'test RMSE':>9} {'seconds':>8}")
    for name, r, s in rows:
        print(f"{name:<52} {r:>9.3f} {s:>8.1f}")
    print("\nRMSE in log10(mol/L). Published MoleculeNet numbers (random split, full data) are on the methodology "
          "page of the benchmark documentation (docs/benchmarks/methodology.md).")
    return rows


if __name__ == "__main__":
    main()
