"""A benchmark answer in minutes: the default ``sktag-benchmark`` on 1,000 drug-like molecules, and a tag-length
grid search, with the prefix store and the current defaults against the previous behaviour.

Data: 1,000 molecules drawn at random (seed 0) from the bundled Lipophilicity set (``logD``), written to a CSV
in ``--out``.  Three measurements, one after the other in one process (one heavy job at a time):

* **after** -- the command a user runs, ``sktag-benchmark <csv> --target logD`` (default models, five
  scaffold-grouped folds, seed 0), in a fresh subprocess; wall time, each model's fit and predict seconds, and
  the accuracy table.
* **before, fold 0** -- the first ``--before-folds`` of the same five folds with the previous behaviour: the prefix
  store off and the previous Tag-LLM schedule (``tag_length=10``, ``n_iter_no_change=3``, ``max_iter=10``), the
  other models as they are (``sktag.benchmark.compare``, in this process).  (All five folds
  of the previous behaviour take about an hour on a 2-core AVX2 CPU; the per-fold times are what the two runs
  compare.)
* **grid** -- ``GridSearchCV(TagRegressor(max_iter=2), {"tag_length": [2, 4, 6, 10]})`` with five
  scaffold-grouped folds (``GroupKFold`` on the scaffold groups) on the first ``--grid-rows`` molecules, with the
  prefix store off, then on (a fresh store); wall times, the number of rows run through the prefix pass, and
  whether the two searches' scores are equal.

Usage::

    python -m benchmarks.minutes --threads 2

Writes ``minutes_<date>.{md,json}`` into ``--out`` (and the two benchmark folders under ``--work``).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
OLD_SCHEDULE = dict(tag_length=10, n_iter_no_change=3, max_iter=10)


def write_sample(path, n, seed=0):
    """``n`` random Lipophilicity molecules as a CSV with columns ``smiles`` and ``logD``."""
    import pandas as pd

    from sktag.datasets import load_lipophilicity

    X, y = load_lipophilicity(return_X_y=True)
    keep = np.sort(np.random.RandomState(seed).choice(len(X), n, replace=False))
    pd.DataFrame({"smiles": np.asarray(X, dtype=object)[keep], "logD": np.asarray(y)[keep]}).to_csv(path, index=False)
    return path


def run_cli(csv, out, threads, model, env=None, extra=()):
    """``sktag-benchmark`` in a subprocess: ``(wall seconds, the saved result's JSON)``."""
    cmd = [sys.executable, "-m", "sktag.benchmark", str(csv), "--target", "logD", "--out", str(out), "--restart",
           "--no-plot", "--quiet", "--model", str(model), *extra]
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, env={**os.environ, "OMP_NUM_THREADS": str(threads), **(env or {})},
                   stdout=subprocess.DEVNULL)
    return time.perf_counter() - t0, json.loads((Path(out) / "benchmark.json").read_text())


def per_model(result, folds=None):
    """``{model: {"fit_s", "predict_s", "rmse", "reused", "computed"}}`` summed (times) or averaged (RMSE) over
    ``folds`` (all when None)."""
    out = {}
    for rec in result["folds"]:
        if folds is not None and rec["fold"] not in folds:
            continue
        m = out.setdefault(rec["model"], dict(fit_s=0.0, predict_s=0.0, rmse=[], reused=0, computed=0))
        m["fit_s"] += rec["fit_seconds"] or 0.0
        m["predict_s"] += rec["predict_seconds"] or 0.0
        m["rmse"].append(rec["rmse"])
        m["reused"] += int(rec.get("prefix_reused") or 0)
        m["computed"] += int(rec.get("prefix_computed") or 0)
    for m in out.values():
        m["rmse_sd"] = float(np.std(m["rmse"], ddof=1)) if len(m["rmse"]) > 1 else None
        m["rmse"] = float(np.mean(m["rmse"]))
    return out


def run_before(csv, n_folds, model):
    """The first ``n_folds`` of the command's five folds with the store off and the previous Tag-LLM schedule."""
    import pandas as pd

    from sktag._forward.prefix_store import prefix_store
    from sktag.benchmark import compare
    from sktag.benchmark._data import make_splits

    df = pd.read_csv(csv)
    X, y = df["smiles"].tolist(), df["logD"].to_numpy()
    splits, _, _ = make_splits("scaffold:5", X, y, "regression", X, random_state=0)  # the command's folds
    t0 = time.perf_counter()
    with prefix_store(max_bytes=0):
        result = compare(X, y, cv=splits[:n_folds], random_state=0, model=model, model_params={"tag": OLD_SCHEDULE})
    return dict(seconds=time.perf_counter() - t0, result=json.loads(json.dumps(result.to_dict(), default=str)))


def grid(csv, n_rows, threads, model):
    """The tag-length grid search with the prefix store off, then on: timings, prefix rows and scores."""
    import pandas as pd
    from sklearn.model_selection import GridSearchCV, GroupKFold

    from sktag import TagRegressor
    from sktag._forward import engine
    from sktag._forward.prefix_store import prefix_store
    from sktag.model_selection import scaffold_groups

    df = pd.read_csv(csv).iloc[:n_rows]
    X, y = df["smiles"].tolist(), df["logD"].to_numpy()
    groups = scaffold_groups(X)
    rows = []
    real = engine.prefix_pass

    def counting(backbone, batch, *args, **kwargs):
        rows.append(int(batch.ids.shape[0]))
        return real(backbone, batch, *args, **kwargs)

    engine.prefix_pass = counting
    out = {}
    try:
        for label, budget in (("store off", 0), ("store on", None)):
            rows.clear()
            search = GridSearchCV(TagRegressor(model=model, max_iter=2, random_state=0, n_threads=threads),
                                  {"tag_length": [2, 4, 6, 10]}, cv=GroupKFold(5),
                                  scoring="neg_root_mean_squared_error")
            t0 = time.perf_counter()
            with prefix_store(max_bytes=budget), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                search.fit(X, y, groups=groups)
            out[label] = dict(seconds=time.perf_counter() - t0, prefix_rows=int(sum(rows)),
                              mean_test_score=search.cv_results_["mean_test_score"].tolist(),
                              best=search.best_params_)
    finally:
        engine.prefix_pass = real
    out["equal_scores"] = out["store off"]["mean_test_score"] == out["store on"]["mean_test_score"]
    return out


def _before_lines(after, before):
    """The per-model comparison of the folds the previous behaviour ran."""
    b = per_model(before["result"])
    folds = sorted({rec["fold"] for rec in before["result"]["folds"]})
    a0 = per_model(after["result"], folds)
    lines = [f"Before (store off, Tag-LLM tag_length=10, n_iter_no_change=3, max_iter=10): fold(s) {folds} only, "
             f"{before['seconds'] / 60:.1f} min.", "", f"Per model on fold(s) {folds}, seconds (fit + predict):", "",
             "| model | before | after | rows reused / computed (after) |", "|---|---:|---:|---:|"]
    for m in a0:
        if m in b:
            lines.append(f"| {m} | {b[m]['fit_s'] + b[m]['predict_s']:.0f} | {a0[m]['fit_s'] + a0[m]['predict_s']:.0f}"
                         f" | {a0[m]['reused']} / {a0[m]['computed']} |")
    return lines + ["", f"Tag-LLM RMSE on fold(s) {folds}: before {b['tag']['rmse']:.3f}, after "
                        f"{a0['tag']['rmse']:.3f}.", ""]


def report(meta, after, before, grid_out):
    a = per_model(after["result"])
    lines = [f"# A benchmark answer in minutes ({meta['date']})", "",
             f"Command: `python -m benchmarks.minutes {' '.join(meta['argv'])}`; CPU {meta['cpu']}, float32, "
             f"{meta['threads']} torch threads, torch {meta['torch']}.  Data: {meta['n']} random Lipophilicity "
             "molecules (seed 0), five scaffold-grouped folds (seed 0).", "",
             "## The default `sktag-benchmark`", "",
             f"After (prefix store on, current defaults): **{after['seconds'] / 60:.1f} min** for the five folds.", ""]
    if before is not None:
        lines += _before_lines(after, before)
    lines += ["All five folds: RMSE (mean ± sd over folds), seconds (fit + predict, summed) and the rows whose LLM "
              "prefix was reused / computed:", "", "| model | RMSE ↓ | seconds | rows reused / computed |",
              "|---|---:|---:|---:|"]
    for m, s in sorted(a.items(), key=lambda kv: kv[1]["rmse"]):
        lines.append(f"| {m} | {s['rmse']:.3f} ± {s['rmse_sd']:.3f} | {s['fit_s'] + s['predict_s']:.0f} | "
                     f"{s['reused']} / {s['computed']} |")
    lines += ["", f"## Grid search over tag_length (2, 4, 6, 10), five scaffold-grouped folds, {meta['grid_rows']} "
              "molecules, max_iter=2", "", "| | seconds | rows through the prefix pass | best tag_length |",
              "|---|---:|---:|---:|"]
    for label in ("store off", "store on"):
        g = grid_out[label]
        lines.append(f"| {label} | {g['seconds']:.0f} | {g['prefix_rows']} | {g['best']['tag_length']} |")
    lines += ["", f"Mean test scores equal bit for bit with the store on and off: {grid_out['equal_scores']}."]
    return "\n".join(lines) + "\n"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1000, help="molecules in the sample")
    ap.add_argument("--before-folds", type=int, default=1, help="folds of the previous behaviour to run")
    ap.add_argument("--grid-rows", type=int, default=100, help="molecules of the grid search")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--model", default="smollm2-135m", help="the LLM (a local folder for a quick check)")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    ap.add_argument("--work", default="minutes_work", help="folder of the CSV and the benchmark folders")
    args = ap.parse_args(argv)
    import torch

    from sktag.benchmark import environment

    torch.set_num_threads(args.threads)
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    csv = write_sample(work / "lipophilicity_1000.csv", args.n)
    seconds, result = run_cli(csv, work / "after", args.threads, args.model)
    after = dict(seconds=seconds, result=result)
    print(f"after: {seconds / 60:.1f} min", flush=True)
    before = run_before(csv, args.before_folds, args.model) if args.before_folds else None
    if before is not None:
        print(f"before: {before['seconds'] / 60:.1f} min", flush=True)
    grid_out = grid(csv, args.grid_rows, args.threads, args.model)
    env = environment()
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M")
    meta = dict(date=stamp, argv=sys.argv[1:] if argv is None else list(argv), cpu=env.get("cpu"),
                threads=args.threads, torch=torch.__version__, n=args.n, grid_rows=args.grid_rows,
                environment=env)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"minutes_{stamp}.json").write_text(json.dumps(dict(meta=meta, after=after, before=before,
                                                               grid=grid_out), indent=1, default=str))
    text = report(meta, after, before, grid_out)
    (out / f"minutes_{stamp}.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
