"""Defaults that count their cost: tag length, early-stopping patience and ``max_iter`` by inner CV.

Data, as ``choose_defaults.py`` stage B: for ESOL and Lipophilicity (RMSE) and BBBP (AUROC), the molecules in the
training part of all three outer splits (``ScaffoldSplit(n_splits=3, test_size=0.2, random_state=0)``), at most
``--cap`` of them drawn at random (seed 0), and a scaffold-grouped inner ``--inner``-fold CV on them
(``accuracy_data.inner_folds``).  No outer test molecule of any seed is read.

Candidates: ``tag_length`` in {2, 4, 6, 10} x ``n_iter_no_change`` (patience) in {1, 2, 3} x ``max_iter`` in
{2, 5, 10}, every other parameter at its default (``TagRegressor`` / ``TagClassifier``, ``random_state=0``).  For
each tag length and inner fold one fit runs with the widest schedule (patience 3, ``max_iter=10``).  Training is
deterministic and nothing in it depends on the patience or ``max_iter`` (no schedule), so a narrower schedule
follows the same epochs and stops earlier: its stopping epoch and kept epoch follow from the fit's validation
scores (the score before the first epoch is recorded by a callback) by the early-stopping rule (improvement = more
than ``tol`` above the best).  Where the kept epoch is the wide fit's, the narrower candidate's model *is* that
model and its inner-fold score is the wide fit's; where it is not, the candidate is fitted for real (once for all
the schedules that run the same epochs and keep the same one).  Cost of a
candidate: its fit seconds without the prefix pass (the prefix store shares that across candidates and folds),
i.e. the seconds outside the epochs plus the epochs it runs, plus its predict seconds on the inner validation
fold; for a derived candidate the wide fit's epoch times up to its stopping epoch.

**The rule, fixed before the run.**  On each data set, a candidate is *eligible* when its mean inner score is
within one standard error (sd / sqrt(k) over the inner folds) of the best candidate's mean, the standard error
being the best candidate's.  The new default is the cheapest candidate (by its cost summed over the data sets)
eligible on all three data sets; when none is, the defaults stay (``tag_length=10``, patience 3, ``max_iter=10``).

Usage::

    python -m benchmarks.cost_defaults --threads 2

Writes ``cost_defaults_<date>.{md,json}`` into ``--out``; prints one JSON line per fit.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import itertools
import json
import os
import platform
import sys
import time
import warnings
from pathlib import Path

import numpy as np

from benchmarks.accuracy_data import inner_folds
from benchmarks.choose_defaults import KIND, _data, _score

ROOT = Path(__file__).resolve().parents[1]
TAG_LENGTHS = (2, 4, 6, 10)
PATIENCES = (1, 2, 3)
MAX_ITERS = (2, 5, 10)
WIDE = dict(n_iter_no_change=max(PATIENCES), max_iter=max(MAX_ITERS))
DEFAULT = (10, 3, 10)


def schedule(v0, scores, patience, max_iter, tol):
    """``(epochs run, kept epoch)`` of early stopping with ``patience`` and ``max_iter`` on validation ``scores``
    (epochs 1, 2, ...; ``v0`` before the first), as :class:`sktag._fit.training.TrainingLoop` runs it."""
    best, kept, count = v0, 0, 0
    for epoch, score in enumerate(scores[:max_iter], start=1):
        improved = score > best + tol
        if score > best:
            best, kept = score, epoch
        count = 0 if improved else count + 1
        if count >= patience:
            return epoch, kept
    return min(max_iter, len(scores)), kept


def _start_score():
    """A callback that records the validation score of the starting weights (taken before the first epoch)."""
    from sktag import Callback

    class StartScore(Callback):
        v0 = None

        def on_epoch_begin(self, estimator, epoch):
            if epoch == 1:
                self.v0 = float(estimator.fit_state_.history.best_validation_score)

    return StartScore()


def _fit(kind, X, y, tr, va, threads, params, callbacks=None):
    from sktag import TagClassifier, TagRegressor

    Tag = TagRegressor if kind == "regression" else TagClassifier
    load0 = os.getloadavg()[0]
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est = Tag(n_threads=threads, random_state=0, callbacks=callbacks, **params).fit(X[tr], y[tr])
        t1 = time.perf_counter()
        pred = est.predict(X[va]) if kind == "regression" else est.predict_proba(X[va])[:, 1]
    t2 = time.perf_counter()
    return est, dict(score=_score(kind, y[va], pred), fit_seconds=t1 - t0, predict_seconds=t2 - t1,
                     prefix_seconds=est.prefix_time_, epochs=est.n_iter_, best_epoch=est.best_epoch_,
                     epoch_seconds=list(est.epoch_times_), validation_scores=list(est.validation_scores_),
                     load=load0, tol=est.tol)


def run_dataset(name, args):
    """Every candidate's inner-fold scores and costs on data set ``name``."""
    from sktag._forward.prefix_store import prefix_store

    kind = KIND[name]
    X, y = _data(name)
    if args.cap and len(X) > args.cap:
        keep = np.sort(np.random.RandomState(0).choice(len(X), args.cap, replace=False))
        X, y = X[keep], y[keep]
    folds = inner_folds(X, y, kind, args.inner)
    rows = []
    with prefix_store():  # one store per data set: every candidate and fold computes each prefix once
        for t, (i, (tr, va)) in itertools.product(TAG_LENGTHS, enumerate(folds)):
            start = _start_score()
            _, fitted = _fit(kind, X, y, tr, va, args.threads, dict(tag_length=t, **WIDE), [start])
            wide = dict(dataset=name, tag_length=t, fold=i, v0=start.v0, **fitted)
            print(json.dumps(wide), flush=True)
            real_fits = {}  # (epochs run, kept epoch) -> a real fit: schedules that stop alike train alike
            for patience, max_iter in itertools.product(PATIENCES, MAX_ITERS):
                ran, kept, row = _derived(wide, patience, max_iter)
                if row is None:
                    if (ran, kept) not in real_fits:
                        real_fits[ran, kept] = _fit(kind, X, y, tr, va, args.threads,
                                                    dict(tag_length=t, n_iter_no_change=patience, max_iter=max_iter))[1]
                    real = real_fits[ran, kept]
                    assert real["epochs"] == ran and real["best_epoch"] == kept, (real, ran, kept)
                    row = dict(dataset=name, tag_length=t, patience=patience, max_iter=max_iter, fold=i, epochs=ran,
                               kept=kept, n_train=len(tr), n_val=len(va), score=real["score"], derived=False,
                               load=real["load"],
                               cost=real["fit_seconds"] - real["prefix_seconds"] + real["predict_seconds"])
                    print(json.dumps(dict(row, real=True)), flush=True)
                rows.append(row)
    return rows, len(X)


def _derived(wide, patience, max_iter):
    """``(epochs run, kept epoch, row)`` of a candidate schedule on the widest fit ``wide``; ``row`` is None when the
    candidate keeps another epoch than the widest fit (then it is fitted for real)."""
    ran, kept = schedule(wide["v0"], wide["validation_scores"], patience, max_iter, wide["tol"])
    if kept != wide["best_epoch"]:
        return ran, kept, None
    overhead = wide["fit_seconds"] - wide["prefix_seconds"] - sum(wide["epoch_seconds"])
    return ran, kept, dict(dataset=wide["dataset"], tag_length=wide["tag_length"], patience=patience,
                           max_iter=max_iter, fold=wide["fold"], epochs=ran, kept=kept, score=wide["score"],
                           derived=True, load=wide["load"],
                           cost=overhead + sum(wide["epoch_seconds"][:ran]) + wide["predict_seconds"])


def rows_from_log(lines):
    """The candidates' rows rebuilt from the JSON lines a run printed (a run stopped early, or to check one)."""
    printed = [json.loads(ln) for ln in lines if ln.startswith("{")]
    real = {(r["dataset"], r["tag_length"], r["fold"], r["patience"], r["max_iter"]): r for r in printed
            if r.get("real")}
    rows = []
    for wide in (r for r in printed if "v0" in r):
        for patience, max_iter in itertools.product(PATIENCES, MAX_ITERS):
            _, _, row = _derived(wide, patience, max_iter)
            key = (wide["dataset"], wide["tag_length"], wide["fold"], patience, max_iter)
            if row is None and key in real:
                row = {k: v for k, v in real[key].items() if k != "real"}
            if row is not None:
                rows.append(row)
    return rows


def summarise(rows, datasets, inner):
    """Per data set and candidate: mean and standard error of the score, mean cost; eligibility and the choice."""
    out = {}
    for name in datasets:
        greater = KIND[name] == "classification"
        cands = {}
        for r in rows:
            if r["dataset"] == name:
                cands.setdefault((r["tag_length"], r["patience"], r["max_iter"]), []).append(r)
        stats = {c: dict(mean=float(np.mean([r["score"] for r in rs])),
                         se=float(np.std([r["score"] for r in rs], ddof=1) / np.sqrt(len(rs))),
                         cost=float(np.mean([r["cost"] for r in rs])), epochs=float(np.mean([r["epochs"] for r in rs])))
                 for c, rs in cands.items()}
        best = (max if greater else min)(stats, key=lambda c: stats[c]["mean"])
        for c, s in stats.items():
            s["eligible"] = abs(s["mean"] - stats[best]["mean"]) <= stats[best]["se"]
        out[name] = dict(stats=stats, best=best)
    common = set.intersection(*({c for c, s in out[n]["stats"].items() if s["eligible"]} for n in datasets))
    total = {c: sum(out[n]["stats"][c]["cost"] for n in datasets) for c in out[datasets[0]]["stats"]}
    choice = min(common, key=lambda c: (total[c], c)) if common else DEFAULT
    return out, total, choice


def report(meta, rows):
    datasets = meta["datasets"]
    out, total, choice = summarise(rows, datasets, meta["inner"])
    metric = {n: "AUROC ↑" if KIND[n] == "classification" else "RMSE ↓" for n in datasets}
    lines = [f"# Defaults that count their cost ({meta['date']})", "",
             f"Command: `python -m benchmarks.cost_defaults {' '.join(meta['argv'])}`; {meta['machine']}, "
             f"{meta['threads']} torch threads, float32, torch {meta['torch']}"
             + (f"; total {meta['total_seconds'] / 60:.0f} min" if meta.get("total_seconds") else "")
             + ".  Molecules in the training part of all three outer splits only "
             f"({', '.join(f'{n} {k}' for n, k in meta['n_rows'].items())}), scaffold-grouped inner "
             f"{meta['inner']}-fold CV.  Cells: mean inner score ± standard error; cost = seconds per fit without the "
             "prefix pass, plus predicting the inner validation fold; ✓ = within one standard error of the best on "
             "that data set.", "",
             "| tag_length | patience | max_iter | " + " | ".join(f"{n} {metric[n]}" for n in datasets)
             + " | epochs run (mean) | cost, s (sum over sets) |",
             "|---:|---:|---:|" + "---:|" * len(datasets) + "---:|---:|"]
    for c in sorted(total):
        cells = []
        for n in datasets:
            s = out[n]["stats"][c]
            cells.append(f"{s['mean']:.3f} ± {s['se']:.3f}{' ✓' if s['eligible'] else ''}"
                         f"{' (best)' if c == out[n]['best'] else ''}")
        epochs = np.mean([out[n]["stats"][c]["epochs"] for n in datasets])
        mark = lambda v: f"**{v}**" if c == choice else str(v)  # noqa: E731
        lines.append(f"| {mark(c[0])} | {mark(c[1])} | {mark(c[2])} | " + " | ".join(cells)
                     + f" | {epochs:.1f} | {total[c]:.0f} |")
    n_real = sum(1 for r in rows if not r["derived"])
    lines += ["", f"Candidates derived from the widest fit's epochs: {len(rows) - n_real} of {len(rows)} (fold, "
              f"candidate) pairs; fitted for real: {n_real}.", "",
              f"**Choice by the rule:** tag_length={choice[0]}, n_iter_no_change={choice[1]}, max_iter={choice[2]} "
              f"(cost {total[choice]:.0f} s against {total[DEFAULT]:.0f} s for tag_length=10, n_iter_no_change=3, "
              f"max_iter=10: {total[DEFAULT] / total[choice]:.1f}x less)."]
    return "\n".join(lines) + "\n"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--datasets", nargs="+", default=["esol", "bbbp", "lipophilicity"], choices=list(KIND))
    ap.add_argument("--inner", type=int, default=3, help="inner folds")
    ap.add_argument("--cap", type=int, default=500, help="molecules per data set (0: all)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    ap.add_argument("--render", metavar="JSON", help="rewrite the Markdown report of an earlier run's JSON")
    ap.add_argument("--from-log", metavar="LOG", help="write the report of the JSON lines a run printed (the data "
                    "sets it finished)")
    args = ap.parse_args(argv)
    if args.from_log:
        return _report_from_log(args)
    if args.render:
        saved = json.loads(Path(args.render).read_text())
        Path(args.render).with_suffix(".md").write_text(report(saved["meta"], saved["rows"]))
        print(Path(args.render).with_suffix(".md").read_text())
        return
    import torch

    from sktag.benchmark import environment

    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    rows, n_rows = [], {}
    for name in args.datasets:
        got, n_rows[name] = run_dataset(name, args)
        rows += got
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M")
    env = environment()
    meta = dict(date=stamp, machine=env.get("cpu") or platform.processor() or platform.machine(),
                threads=args.threads, torch=torch.__version__, total_seconds=time.perf_counter() - t0,
                argv=sys.argv[1:] if argv is None else list(argv), datasets=args.datasets, inner=args.inner,
                n_rows=n_rows, environment=env)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"cost_defaults_{stamp}.json").write_text(json.dumps(dict(meta=meta, rows=rows), indent=1, default=str))
    text = report(meta, rows)
    (out / f"cost_defaults_{stamp}.md").write_text(text)
    print(text)


def _report_from_log(args):
    import torch

    from sktag.benchmark import environment

    rows = rows_from_log(Path(args.from_log).read_text().splitlines())
    done = [n for n in args.datasets if any(r["dataset"] == n for r in rows)]
    complete = [n for n in done if len({(r["tag_length"], r["fold"]) for r in rows if r["dataset"] == n})
                == len(TAG_LENGTHS) * args.inner]
    rows = [r for r in rows if r["dataset"] in complete]
    env = environment()
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M")
    meta = dict(date=stamp, machine=env.get("cpu"), threads=args.threads, torch=torch.__version__,
                total_seconds=None, argv=[f"--cap {args.cap}", f"--inner {args.inner}",
                                                                   "(report of the fits it finished)"],
                datasets=complete, inner=args.inner, n_rows={n: args.cap for n in complete}, environment=env)
    out = Path(args.out)
    (out / f"cost_defaults_{stamp}.json").write_text(json.dumps(dict(meta=meta, rows=rows), indent=1, default=str))
    text = report(meta, rows)
    (out / f"cost_defaults_{stamp}.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
