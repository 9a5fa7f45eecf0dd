"""Accuracy benchmark: Tag-LLM estimators versus classical baselines, through ``sktag.benchmark.compare``.

Usage::

    python -m benchmarks.accuracy --standard --threads 2  # full training sets, ~2 h on 2 idle CPU cores
    python -m benchmarks.accuracy --quick                 # ~10 min: 100 training molecules per set
    python -m benchmarks.accuracy --medium                # ~1 h: 2 seeds, 120 training molecules
    python -m benchmarks.accuracy --quick --datasets esol bbbp --out /tmp/res
    python -m benchmarks.accuracy --freesolv path/to/freesolv_sampl.csv   # optional FreeSolv
    python -m benchmarks.accuracy --standard --models tag_dtag llm_embedding_dtag --domain-tags tags.safetensors

One ``sktag.benchmark.compare`` call per data set runs every model on the same splits (seed *i* = split *i*; see
benchmarks/README.md); the models are its named models under this script's keys (``tag_default`` = ``tag``,
``hgb_rdkit`` = ``hgb_descriptors``), for DAVIS the classical ones on drug features + amino-acid composition.  The
tag-length study is two more calls: an inner scaffold-grouped CV of the training part (the choice) and the test
split.  Finished fits are kept in ``<out>/accuracy_fits`` (``--fresh`` ignores them): a stopped run resumes.
Writes ``accuracy_<mode>_<date>.{md,json,csv,png}`` (+ ``_taglength.{csv,png}``) into ``--out``.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np

from benchmarks import command
# (choose_defaults.py imports inner_folds from here)
from benchmarks.accuracy_data import (DTAG_MODELS, _aa_composition, dtag_model, inner_folds, load, load_domain_tags,
                                      require_domain_tags)

ROOT = Path(__file__).resolve().parents[1]

_BASE = dict(paper_epochs=3, stack_datasets=[], stack_cv=3, pretrain_iter=1, davis_max_length=128,
             taglen_datasets=["esol"], taglen_cv=2, datasets=["esol", "lipophilicity", "bbbp", "caco2_wang", "hia_hou",
                                                             "davis"])
MODES = {  # standard: full training sets, ~2 h on 2 idle cores; quick ~10 min; medium ~1 h; full: many hours
    "standard": dict(_BASE, seeds=[0, 1, 2], n_train=None, n_test=None, max_iter=None, batch_size=None, rf_trees=500,
                     seeds_by_dataset={d: [0] for d in ["lipophilicity", "caco2_wang", "hia_hou", "davis"]},
                     paper_datasets=["esol", "bbbp", "caco2_wang", "hia_hou"], stack_datasets=["esol"],
                     pretrain_n=None, davis_train=2000, davis_test=500, davis_prefix_cache=12 * 2**30,
                     taglen_lengths=[1, 10, 20]),
    "quick": dict(_BASE, seeds=[0], n_train=100, n_test=100, max_iter=3, batch_size=32, rf_trees=200, pretrain_n=100,
                  davis_train=60, davis_test=60, davis_max_length=96, taglen_lengths=[1, 5, 10]),
    "medium": dict(_BASE, seeds=[0, 1], n_train=120, n_test=100, max_iter=3, batch_size=16, rf_trees=300,
                   pretrain_n=120, davis_train=70, davis_test=70, taglen_lengths=[1, 2, 5, 10, 20]),
    "full": dict(_BASE, seeds=[0, 1, 2], n_train=None, n_test=None, max_iter=None, batch_size=None, rf_trees=500,
                 paper_epochs=10, stack_datasets=["esol", "lipophilicity", "bbbp", "caco2_wang", "hia_hou"], stack_cv=5,
                 pretrain_iter=5, pretrain_n=None, davis_train=3000, davis_test=1000, davis_max_length=512,
                 taglen_datasets=["esol", "caco2_wang"], taglen_lengths=[1, 2, 5, 10, 20], taglen_cv=3),
}
ALL_DATASETS = ["esol", "lipophilicity", "bbbp", "caco2_wang", "hia_hou", "davis", "freesolv"]
#: this script's model keys -> named models of sktag.benchmark
API_NAME = {"tag_default": "tag", "hgb_rdkit": "hgb_descriptors", **{k: k for k in [
    "tag_paper", "tag_deep", "tag_pretrained", "tag_text", "tag_untrained_domain", "llm_embedding",
    "llm_embedding_pretrained", "stack", "rf_morgan", "rf_morgan_counts", "linear_morgan", "dummy"]}}
DEFAULT_MODELS = ["tag_default", "tag_paper", "llm_embedding", "stack", "rf_morgan", "rf_morgan_counts",
                  "linear_morgan", "hgb_rdkit", "dummy"]
PRIMARY = {"esol": ("RMSE", False), "lipophilicity": ("RMSE", False), "freesolv": ("RMSE", False),
           "bbbp": ("AUROC", True), "caco2_wang": ("MAE", False), "hia_hou": ("AUROC", True), "davis": ("MSE", False)}
SECONDARY = {"davis": ("CI", True)}
#: metric names of sktag.benchmark -> this script's column names
COLUMN = {"rmse": "RMSE", "mae": "MAE", "mse": "MSE", "r2": "R2", "ci": "CI", "roc_auc": "AUROC",
          "average_precision": "AUPRC", "accuracy": "accuracy"}
SCORING = {"regression": ["rmse", "mae", "mse", "r2", "ci"], "classification": ["roc_auc", "average_precision",
                                                                                  "accuracy"]}


def compute_metrics(task, y_true, pred):
    """This script's metric columns of ``pred`` (positive-class scores for classification)."""
    from sktag.benchmark import get_metric

    return {COLUMN[m]: get_metric(m)(y_true, pred) for m in SCORING[task]}


def frozen_feature_head(kind):
    """StandardScaler + RidgeCV / LogisticRegressionCV: the head of the named model ``llm_embedding``."""
    from sklearn.pipeline import Pipeline

    from sktag.benchmark import make_model

    return Pipeline(make_model("llm_embedding", kind).steps[1:])


def llm_inputs(name):
    """``domains`` and ``smiles_column`` of data set ``name`` (DAVIS: a drug and a protein column)."""
    if name == "davis":
        return {"domains": {"drug": "SMILES", "target": "Protein"}, "smiles_column": "drug"}
    return {"domains": "SMILES", "smiles_column": None}


def models_for(name, kind, keys, cfg, domain_tags=None, backbone="smollm2-135m"):
    """``(models, model_params)`` of ``compare`` for data set ``name``.

    The models of ``DTAG_MODELS`` are estimators with ``domain_tags`` (the TagSet of ``--domain-tags``) on the LLM
    ``backbone``; the others are named models of ``sktag.benchmark`` under this script's keys.
    """
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import FunctionTransformer

    from sktag.benchmark import make_model

    keys = [k for k in keys if (k != "stack" or name in cfg["stack_datasets"])
            and (k != "tag_paper" or name in cfg.get("paper_datasets", [name]))]
    models = {k: dtag_model(k, kind, domain_tags, model=backbone, random_state=0, **llm_inputs(name))
              if k in DTAG_MODELS else API_NAME[k] for k in keys}
    tag = {"max_length": cfg["davis_max_length"] if name == "davis" else 512}
    tag.update({k: cfg[k] for k in ("max_iter", "batch_size") if cfg.get(k)})
    if name == "davis" and cfg.get("davis_prefix_cache"):  # 2,000 pairs of ~210 tokens: ~9 GiB of key/value cache
        tag["prefix_cache"] = cfg["davis_prefix_cache"]
    # every Tag-LLM row gets the data set's settings (DAVIS: max_length 128 and the cache budget), so rows
    # differ only in what their names say
    params = {"tag_default": tag, "tag_deep": tag, "tag_text": tag, "tag_untrained_domain": tag, "tag_dtag": tag,
              "tag_paper": dict(tag, max_iter=cfg["paper_epochs"]),
              "tag_pretrained": {"max_iter": cfg["pretrain_iter"], "max_samples": cfg["pretrain_n"],
                                 **{f"estimator__{k}": v for k, v in tag.items()}},
              "llm_embedding": {"embedding__max_length": tag["max_length"]},
              "llm_embedding_pretrained": {"embedding__max_length": tag["max_length"]},
              "llm_embedding_dtag": {"embedding__max_length": tag["max_length"]},
              "stack": {"cv": cfg["stack_cv"], **{f"tag__{k}": v for k, v in tag.items()}},
              "rf_morgan": {"model__n_estimators": cfg["rf_trees"], "model__n_jobs": 2}}
    params["rf_morgan_counts"] = params["rf_morgan"]
    if name == "davis":  # classical models: the drug's features and the protein's amino-acid composition
        for k in [k for k in keys if k in ("rf_morgan", "rf_morgan_counts", "linear_morgan", "hgb_rdkit")]:
            est = make_model(API_NAME[k], kind, random_state=0)
            both = ColumnTransformer([("drug", est.named_steps["features"], ["drug"]),
                                      ("protein", FunctionTransformer(_aa_composition), ["target"])])
            models[k] = Pipeline([("features", both), ("model", est.named_steps["model"])])
    return models, {k: v for k, v in params.items() if k in models}


def run_dataset(name, args, cfg, out, keys, info, domain_tags=None):
    """One ``compare`` call: rows of this script's JSON/CSV, the result, and the tag-length rows."""
    import pandas as pd

    from sktag.benchmark import compare

    seeds = cfg.get("seeds_by_dataset", {}).get(name, cfg["seeds"])
    X, y, kind, splits, note = load(name, seeds, cfg, args.freesolv)
    info["notes"][name] = note
    models, params = models_for(name, kind, keys, cfg, domain_tags, args.model)
    metric = {v: k for k, v in COLUMN.items()}[PRIMARY[name][0]]
    scoring = [metric] + [m for m in SCORING[kind] if m != metric]
    common = dict(task=kind, scoring=scoring, model=args.model, random_state=0, verbose=1, checkpoint_dir=out,
                  **llm_inputs(name))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        res = compare(X, y, models=models, model_params=params, cv=splits, **common)
        trows = []
        if name in info["taglen_datasets"]:
            lengths = cfg["taglen_lengths"]
            grid = {f"tag_length={p}": "tag" for p in lengths}
            tag = models_for(name, kind, ["tag_default"], cfg)[1]["tag_default"]
            gp = {f"tag_length={p}": dict(tag, tag_length=p) for p in lengths}
            tr = splits[0][0]
            X_tr = X.iloc[tr] if hasattr(X, "iloc") else X[tr]
            inner = compare(X_tr, y[tr], models=grid, model_params=gp,
                            cv=inner_folds(X_tr, y[tr], kind, cfg["taglen_cv"]), **common).summary()
            test = compare(X, y, models=grid, model_params=gp, cv=splits[:1], **common).folds.set_index("model")
            pick = inner[f"{metric}_mean"].idxmax() if PRIMARY[name][1] else inner[f"{metric}_mean"].idxmin()
            trows = [{"dataset": name, "seed": seeds[0], "tag_length": p, "metric": COLUMN[metric],
                      "cv_" + COLUMN[metric]: inner.loc[g, f"{metric}_mean"], "cv_std": inner.loc[g, f"{metric}_sd"],
                      "test_" + COLUMN[metric]: test.loc[g, metric], "chosen": g == pick} for g, p in zip(grid, lengths)]
    rows = []
    for r in res.folds.itertuples():
        row = {"dataset": name, "seed": seeds[r.fold], "model": r.model, "n_train": r.n_train, "n_test": r.n_test,
               "fit_s": r.fit_seconds, "predict_s": r.predict_seconds, "load_before": r.load_before,
               "load_after": r.load_after, "resumed": r.resumed,
               **{k: None if pd.isna(getattr(r, k)) else int(getattr(r, k)) for k in ("n_iter", "best_epoch")}}
        rows.append(dict(row, **{COLUMN[m.name]: getattr(r, m.name) for m in res.metrics},
                         error=None if pd.isna(r.error) else r.error))
    return rows, res, trows


def _fmt(v):
    v = [x for x in v if x is not None and np.isfinite(x)]
    return "–" if not v else f"{v[0]:.3f}" if len(v) == 1 else f"{np.mean(v):.3f} ± {np.std(v):.3f}"


def summary_table(rows, datasets, keys):
    """Markdown: models x data sets, mean ± std (ddof=0) over seeds; best per column in bold."""
    from sktag.benchmark import MODELS

    cols = [(d, m, hi) for d in datasets for m, hi in [PRIMARY[d]] + ([SECONDARY[d]] if d in SECONDARY else [])]
    lines = ["| model | " + " | ".join(f"{d} {m} {'↑' if hi else '↓'}" for d, m, hi in cols) + " |",
             "|" + "---|" * (len(cols) + 1)]
    val = {(k, d, m): [r[m] for r in rows if r["model"] == k and r["dataset"] == d and r["error"] is None]
           for k in keys for d, m, _ in cols}
    best = {}
    for d, m, hi in cols:
        means = {k: np.mean(val[(k, d, m)]) for k in keys if val[(k, d, m)]}
        best[(d, m)] = (max if hi else min)(means, key=means.get) if means else None
    for k in [k for k in keys if any(r["model"] == k for r in rows)]:
        cells = [f"**{_fmt(val[(k, d, m)])}**" if best[(d, m)] == k else _fmt(val[(k, d, m)]) for d, m, _ in cols]
        text = DTAG_MODELS[k][2] if k in DTAG_MODELS else MODELS[API_NAME[k]]
        lines.append(f"| {text} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    g = p.add_mutually_exclusive_group()
    for mode, text in [("standard", "full training sets, seeds 0-2 for ESOL and BBBP: ~2 h on 2 idle cores"),
                       ("quick", "~10 min: 1 seed, 100 training molecules, 3 epochs"),
                       ("medium", "~1 h: 2 seeds, 120 training molecules, 3 epochs of batch 16")]:
        g.add_argument(f"--{mode}", action="store_const", dest="mode", const=mode, help=text)
    p.set_defaults(mode="full")
    p.add_argument("--datasets", nargs="+", choices=ALL_DATASETS, help="default: all of the mode")
    p.add_argument("--models", nargs="+", choices=[*API_NAME, *DTAG_MODELS],
                   help=f"default: {' '.join(DEFAULT_MODELS)}")
    p.add_argument("--domain-tags", metavar="PATH",
                   help="a TagSet (.safetensors) for the models " + " and ".join(DTAG_MODELS))
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results"), help="output directory")
    p.add_argument("--model", default="smollm2-135m", help="backbone of the Tag-LLM estimators")
    p.add_argument("--freesolv", metavar="PATH", help="optional FreeSolv CSV (columns smiles, expt; not shipped)")
    p.add_argument("--threads", type=int, help="torch threads (default: 1 when the cores are busy, else all)")
    p.add_argument("--no-taglen", action="store_true", help="skip the tag-length study")
    p.add_argument("--taglen-datasets", nargs="+", choices=ALL_DATASETS, help="data sets of the tag-length study")
    p.add_argument("--fresh", action="store_true", help="refit everything (ignore the fits kept in --out)")
    for name in ["n-train", "n-test", "max-iter", "davis-train", "davis-test", "davis-max-length", "pretrain-iter",
                 "pretrain-n", "rf-trees", "taglen-cv", "batch-size"]:  # hidden overrides for smoke runs
        p.add_argument(f"--{name}", type=int, help=argparse.SUPPRESS)
    p.add_argument("--seeds", type=int, nargs="+", help=argparse.SUPPRESS)
    p.add_argument("--taglen-lengths", type=int, nargs="+", help=argparse.SUPPRESS)
    p.add_argument("--stack-datasets", nargs="*", choices=ALL_DATASETS, help=argparse.SUPPRESS)
    p.add_argument("--tag", default="", help=argparse.SUPPRESS)  # extra file-name suffix
    args = p.parse_args(argv)
    require_domain_tags(p, args)
    return args


def main(argv=None):
    import matplotlib

    matplotlib.use("Agg")  # checked before any fit: the plots need the bench extra
    import pandas as pd
    import torch

    from sktag.benchmark import environment

    args = parse_args(argv)
    cores = len(os.sched_getaffinity(0))
    torch.set_num_threads(args.threads or (1 if os.getloadavg()[0] >= 0.75 * cores else cores))
    cfg = dict(MODES[args.mode])
    cfg.update({k: v for k, v in vars(args).items() if k in cfg and v is not None})
    datasets = list(args.datasets or cfg["datasets"])
    datasets += ["freesolv"] if args.freesolv and "freesolv" not in datasets else []
    if "freesolv" in datasets and not args.freesolv:
        sys.exit("--datasets freesolv needs --freesolv PATH (FreeSolv is not shipped: CC BY-NC-SA 4.0)")
    keys = args.models or DEFAULT_MODELS
    out = Path(args.out)
    fits = out / "accuracy_fits"
    if args.fresh and fits.exists():
        import shutil

        shutil.rmtree(fits)
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M")
    stem = f"accuracy_{args.mode}_{stamp}{('_' + args.tag) if args.tag else ''}"
    info = {"mode": args.mode, "started": _dt.datetime.now().isoformat(timespec="seconds"),
            "command": command(__spec__.name, argv), "machine": environment(),
            "config": cfg, "datasets": datasets, "models": keys,
            "backbone": args.model, "notes": {}, "taglen_datasets": [] if args.no_taglen else
            (args.taglen_datasets or cfg["taglen_datasets"])}
    domain_tags = None
    if args.domain_tags:
        domain_tags, info["domain_tags"] = load_domain_tags(args.domain_tags)
    t0 = time.perf_counter()
    rows, trows, results = [], [], {}
    out.mkdir(parents=True, exist_ok=True)
    for d in datasets:
        r, results[d], t = run_dataset(d, args, cfg, fits, keys, info, domain_tags)
        rows += r
        trows += t
        info["wall_s"] = time.perf_counter() - t0
        (out / f"{stem}.json").write_text(json.dumps({"info": info, "results": rows, "tag_length": trows},
                                                     indent=1, default=str))
    pd.DataFrame(rows).to_csv(out / f"{stem}.csv", index=False)
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(results), figsize=(4.2 * len(results) + 1, 4.2), squeeze=False)
    for ax, (d, res) in zip(axes[0], results.items()):
        res.plot(ax=ax)
        ax.set_title(d, fontsize=9)
    fig.savefig(out / f"{stem}.png", dpi=120)
    md = [f"# Accuracy benchmark — {args.mode} mode, {info['started']}", "", f"* command: `{info['command']}`",
          f"* machine: {json.dumps({k: v for k, v in info['machine'].items() if k != 'versions'})}",
          f"* backbone: `{args.model}`; versions: " + ", ".join(f"{k} {v}" for k, v in info["machine"]["versions"].items()),
          f"* wall time: {info['wall_s'] / 60:.1f} min; the load average before and after every fit is in the JSON/CSV",
          *([f"* {info['domain_tags']}"] if domain_tags is not None else []),
          "", "## Test metric (mean ± std over seeds; best per column in bold)", "",
          summary_table(rows, datasets, keys), ""]
    for d, res in results.items():
        md += [f"## {d}", "", f"Split: {info['notes'][d]}", "", res.to_markdown()]
    if trows:
        tdf = pd.DataFrame(trows)
        tdf.to_csv(out / f"{stem}_taglength.csv", index=False)
        md += ["## Tag-length study (Tag-LLM defaults)", "", "Inner scaffold-grouped CV on the training part of "
               "the first seed (the choice), then every length on the test split.", "", tdf.to_string(index=False)]
        fig, ax = plt.subplots(figsize=(5.5, 4))
        for (d, m), g in tdf.groupby(["dataset", "metric"]):
            ax.plot(g["tag_length"], g["test_" + m], "o-", label=f"{d}: test {m}")
            ax.plot(g["tag_length"], g["cv_" + m], "s--", label=f"{d}: inner CV {m}")
        ax.set(xscale="log", xlabel="tag_length", title="Tag length study")
        ax.legend(fontsize=8)
        fig.savefig(out / f"{stem}_taglength.png", dpi=120)
    md += ["", f"![results]({stem}.png)", "", "Published reference numbers (not re-run here): benchmarks/README.md.", ""]
    (out / f"{stem}.md").write_text("\n".join(md))
    print("\n".join(md))
    print(f"\nwrote {out / (stem + '.md')} (+ .json, .csv, .png)", file=sys.stderr)
    return rows, trows


if __name__ == "__main__":
    main()
