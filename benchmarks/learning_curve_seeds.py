"""The seed spread of learning-curve points, and each model's paired gain over a reference model.

    python -m benchmarks.learning_curve_seeds REPORT.json [REPORT.json ...] [--reference llm_embedding_pretrained]
        [--out benchmarks/results]

Each ``REPORT.json`` is a report of ``benchmarks/learning_curve.py``; its seed (``info.seed``: the permutation that
chose the training rows and every model's ``random_state``) labels all its rows.  A point (data set, training size,
model, seed) may appear in several reports only with the same scores; a report whose rows disagree with an earlier
one is refused, as is a report that mixes seeds or was made with another backbone or ``--max-rows-test``.

For every (data set, size, model) the output gives the TDC test metric per seed, its mean and sample standard
deviation over seeds ("seed spread"), and against ``--reference`` on the seeds both ran: the mean paired gain
(positive = better, whatever the metric's direction), its standard error and how many seeds the model won.  "beats
the spread" says whether the mean paired gain exceeds the reference's seed spread: the test of whether a tag
variant adds accuracy.  Writes ``learning_curve_seeds_<stamp>.md`` and ``.csv``.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks.learning_curve import TDC_METRIC  # (the TDC metric's column in a report row)
from sktag.benchmark import get_metric

ROOT = Path(__file__).resolve().parents[1]


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("reports", nargs="+", metavar="REPORT.json", help="learning_curve.py reports (.json)")
    p.add_argument("--reference", default="llm_embedding_pretrained",
                   help="the model every other one is paired with (default: llm_embedding_pretrained)")
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    return p.parse_args(argv)


def load_rows(paths):
    """One row per (dataset, n_train, model, seed) with its TDC score, from learning-curve reports.

    Raises
    ------
    ValueError
        A report without ``info.seed``, whose rows came from another seed, of another backbone or test subsample
        (``--max-rows-test``) than the first report, or that gives a point another score than an earlier report.
    """
    rows, where, first = {}, {}, None
    for path in paths:
        report = json.loads(Path(path).read_text())
        info, name = report.get("info", {}), Path(path).name
        if "seed" not in info:
            raise ValueError(f"{name}: not a learning_curve.py report (no info.seed)")
        seeds = {r["seed"] for r in report["rows"] if r.get("seed") is not None}
        if seeds - {info["seed"]}:
            raise ValueError(f"{name}: its rows come from seeds {sorted(seeds)}, its run from seed {info['seed']}")
        setting = {k: info.get(k) for k in ("backbone", "max_rows_test")}
        first = first or (name, setting)
        if setting != first[1]:
            raise ValueError(f"{name}: made with {setting}, {first[0]} with {first[1]}: not the same points")
        for r in report["rows"]:
            if r["status"] != "ok":
                continue
            metric = get_metric(TDC_METRIC[r["tdc_metric"]])
            score = r.get(metric.name)
            if score is None or not np.isfinite(score):
                continue
            key = (r["dataset"], int(r["n_train"]), r["model"], int(info["seed"]))
            if key in rows and not np.isclose(rows[key]["score"], score, rtol=0, atol=1e-9):
                raise ValueError(f"{name}: {key[2]} on {key[0]}, n = {key[1]}, seed {key[3]} scores {score:.6f}; "
                                 f"{where[key]} gave {rows[key]['score']:.6f}")
            where.setdefault(key, name)
            rows[key] = dict(dataset=key[0], n_train=key[1], model=key[2], seed=key[3], metric=r["tdc_metric"],
                             greater=metric.greater_is_better, score=float(score), fit_seconds=r.get("fit_seconds"))
    if not rows:
        raise ValueError("no fitted rows in " + ", ".join(map(str, paths)))
    return pd.DataFrame(list(rows.values())), where


def summarise(df, reference):
    """Per (dataset, n_train, model): scores by seed, mean, seed spread, and the paired gain over ``reference``."""
    out = []
    for (dataset, n), point in df.groupby(["dataset", "n_train"], sort=False):
        greater = bool(point["greater"].iloc[0])
        ref = point[point["model"] == reference].set_index("seed")["score"]
        ref_sd = float(ref.std(ddof=1)) if len(ref) > 1 else np.nan
        for model, g in point.groupby("model", sort=False):
            s = g.set_index("seed")["score"].sort_index()
            row = dict(dataset=dataset, n_train=n, model=model, metric=g["metric"].iloc[0], seeds=list(s.index),
                       scores=list(s.values), mean=float(s.mean()), spread=float(s.std(ddof=1)) if len(s) > 1
                       else np.nan, fit_seconds=float(g["fit_seconds"].mean()), paired=0, gain=np.nan,
                       gain_se=np.nan, wins=0, reference_spread=ref_sd, beats_spread=False)
            common = s.index.intersection(ref.index)
            if model != reference and len(common):
                gain = (s[common] - ref[common]) * (1 if greater else -1)
                row.update(paired=len(common), gain=float(gain.mean()),
                           gain_se=float(gain.std(ddof=1) / np.sqrt(len(gain))) if len(gain) > 1 else np.nan,
                           wins=int((gain > 0).sum()),
                           beats_spread=bool(len(gain) > 1 and np.isfinite(ref_sd) and gain.mean() > ref_sd))
            out.append(row)
    return pd.DataFrame(out)


def _f(v, digits=3):
    return "–" if v is None or not np.isfinite(v) else f"{v:.{digits}f}"


def markdown(summary, reference, sources):
    md = [f"# Learning-curve points over seeds — {_dt.datetime.now().isoformat(timespec='seconds')}", "",
          "* reports: " + ", ".join(f"`{s}`" for s in sources),
          f"* reference model: `{reference}`; gain = the model's score minus the reference's on the same seed, "
          "signed so that positive is better; ± is its standard error over the paired seeds; spread = the sample "
          "standard deviation over seeds", ""]
    for (dataset, n), g in summary.groupby(["dataset", "n_train"], sort=False):
        seeds = sorted({s for ss in g["seeds"] for s in ss})
        md += [f"## {dataset}, n = {n} (TDC metric {g['metric'].iloc[0]})", "",
               "| model | " + " | ".join(f"seed {s}" for s in seeds) + " | mean | spread | gain over reference "
               "| wins | beats the spread | fit s (mean) |",
               "|---|" + "---:|" * (len(seeds) + 3) + "---:|---|---:|"]
        for r in g.itertuples():
            by_seed = dict(zip(r.seeds, r.scores))
            if r.paired:
                cells = [f"{r.gain:+.3f} ± {_f(r.gain_se)}", f"{r.wins} of {r.paired}",
                         "yes" if r.beats_spread else "no"]
            else:
                cells = ["(reference)" if r.model == reference else "–", "–", "–"]
            md.append(f"| {r.model} | " + " | ".join(_f(by_seed.get(s, np.nan)) for s in seeds)
                      + f" | {_f(r.mean)} | {_f(r.spread)} | " + " | ".join(cells) + f" | {r.fit_seconds:.0f} |")
        md.append("")
    return "\n".join(md)


def main(argv=None):
    args = parse_args(argv)
    df, where = load_rows(args.reports)
    if args.reference not in set(df["model"]):
        models = ", ".join(sorted(set(df["model"])))
        raise SystemExit(f"--reference {args.reference}: no such model in the reports ({models})")
    summary = summarise(df, args.reference)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = out / f"learning_curve_seeds_{_dt.datetime.now().strftime('%Y%m%d-%H%M')}"
    summary.to_csv(stem.with_suffix(".csv"), index=False)
    text = markdown(summary, args.reference, [Path(p).name for p in args.reports])
    stem.with_suffix(".md").write_text(text)
    print(text)
    print(f"wrote {stem}.md (+ .csv)", file=sys.stderr)
    return summary, stem


if __name__ == "__main__":
    main()
