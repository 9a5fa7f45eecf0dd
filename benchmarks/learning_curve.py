"""Learning curve: the TDC test metric against the number of training labels, LLM models versus classical ones.

For each TDC ADMET data set (default ``solubility_aqsoldb``, regression, TDC metric MAE; ``cyp3a4_veith``, binary,
AUPRC) one permutation of the ``train_val`` rows is drawn with ``--seed``; size *n* trains on its first *n* rows, so
the subsamples are nested, and the official TDC test part is the test set of every point.  The subsample, the seed
(``random_state`` of every model) and the test set are the same for every model (SMILES that RDKit cannot parse are
left out of both parts, for every model; a one-class classification subsample is skipped and reported).  Each (data set, size) is one
``sktag.benchmark.compare`` call with ``cv=[(train, test)]``; finished fits are kept in
``<out>/learning_curve_fits/<dataset>_<n>``, so a stopped run resumes (``--fresh`` refits).  ``--reuse`` adds the
rows of earlier reports (their JSON) for every point this run does not fit, so one report holds a curve whose points
were fitted in several runs or sessions; the report names the files and what came from each (a report of another
seed, backbone or ``--max-rows-test`` is refused: its rows are other points; ``learning_curve_seeds.py`` puts the
reports of several seeds side by side).  Every row records its seed.  LLM models can be
skipped above ``--llm-max-size`` (written in the report).  Writes ``learning_curve_<date>.{csv,json,md,png}`` into
``--out``; the Markdown also says from which size each LLM model beats the best classical model.

Usage::

    python -m benchmarks.learning_curve [--datasets NAME ...] [--sizes 250 1000 4000 all] [--models NAME ...]
        [--seed 0] [--llm-max-size N] [--max-rows-test N] [--domain-tags TAGS.safetensors] [--prefix-cache BYTES]
        [--threads 2] [--model NAME_OR_PATH] [--out DIR] [--fresh] [--reuse EARLIER.json ...]
        [--reg-alpha 0 10] [--reg-deep-layers all 10] [--inner-folds 2]

``tag_deep_reg`` chooses its regularisation on the training rows only: a grid search over the weight decay
(``alpha``) and the tagged decoder blocks (``deep_layers``) of the deep-tag Tag-LLM, scored by the TDC metric in a
scaffold-grouped inner K-fold CV of the point's training rows (stratified for classification; the grid and the rule,
the best mean inner score, the first setting of the grid on a tie, are fixed before the run), then refitted on all
of them.  Early stopping stays on in every setting.  Each setting's inner scores go to the report's notes and to
``tag_deep_reg_search_seed<seed>.json`` beside the kept fits (a record of another grid is not reported as a
kept fit's).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import importlib.util
import json
import shutil
import sys
import time
import warnings
from pathlib import Path

import numpy as np
from sklearn.model_selection import GridSearchCV, ParameterGrid

from benchmarks import command
from benchmarks.accuracy_data import DTAG_MODELS, dtag_model, load_domain_tags, require_domain_tags
from benchmarks.speed_machine import cpu_kind, dtype_reason
from sktag._forward.prefix_store import prefix_store

ROOT = Path(__file__).resolve().parents[1]

DEFAULT_DATASETS = ["solubility_aqsoldb", "cyp3a4_veith"]
DEFAULT_MODELS = ["tag", "llm_embedding", "hgb_descriptors", "rf_morgan_counts"]
#: models of this script beyond sktag.benchmark.MODELS
VARIANTS = {**{k: v[2] for k, v in DTAG_MODELS.items()},
            "tag_deep_reg": "Tag-LLM defaults, tag_depth='deep', weight decay and tagged blocks chosen by inner CV"}
#: where a row's Tag-LLM estimator takes ``prefix_cache``
TAG_PARAM = {"tag": "", "tag_paper": "", "tag_text": "", "tag_deep": "", "tag_dtag": "",
             "tag_pretrained": "estimator__", "stack": "tag__", "tag_deep_reg": "estimator__"}
TDC_METRIC = {"MAE": "mae", "AUROC": "roc_auc", "AUPRC": "average_precision", "Spearman": "spearman"}
TIMES = ["fit_seconds", "predict_seconds", "load_before", "load_after", "resumed", "n_iter", "best_epoch"]
SCORING = {"regression": ["mae", "rmse", "r2"], "classification": ["average_precision", "roc_auc"]}


def parse_args(argv=None):
    from sktag.benchmark import MODELS
    from sktag.datasets import TDC_ADMET_NAMES

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--datasets", nargs="+", default=DEFAULT_DATASETS, choices=[n.lower() for n in TDC_ADMET_NAMES],
                   metavar="NAME", help=f"TDC ADMET sets (default: {' '.join(DEFAULT_DATASETS)})")
    p.add_argument("--sizes", nargs="+", default=["250", "1000", "4000", "all"], help="training sizes, or 'all'")
    p.add_argument("--models", nargs="+", default=DEFAULT_MODELS, choices=[*MODELS, *VARIANTS], metavar="NAME",
                   help=f"any of {' '.join([*MODELS, *VARIANTS])} (default: {' '.join(DEFAULT_MODELS)})")
    p.add_argument("--seed", type=int, default=0, help="the permutation of train_val and every model's random_state")
    p.add_argument("--llm-max-size", type=int, help="skip LLM models above this training size (default: no limit)")
    p.add_argument("--max-size", nargs="+", default=[], metavar="MODEL=N",
                   help="skip one model above a training size (e.g. tag=1000); reported like --llm-max-size")
    p.add_argument("--max-rows-test", type=int, help="subsample the TDC test set (smoke runs; default: all)")
    p.add_argument("--domain-tags", metavar="PATH", help="a TagSet (.safetensors) for tag_dtag, llm_embedding_dtag")
    p.add_argument("--prefix-cache", type=float, help="prefix_cache budget in bytes of the Tag-LLM rows "
                   "(default: the estimators' 'auto', a quarter of the RAM, at most 8 GiB)")
    p.add_argument("--reg-alpha", nargs="+", type=float, default=[0.0, 10.0], metavar="ALPHA",
                   help="tag_deep_reg: the weight decays (alpha) its inner CV chooses from (default: 0 10)")
    p.add_argument("--reg-deep-layers", nargs="+", default=["all", "10"], metavar="SPEC",
                   help="tag_deep_reg: the deep_layers it chooses from, 'all' or k = the last k blocks "
                        "(default: all 10)")
    p.add_argument("--inner-folds", type=int, default=2,
                   help="tag_deep_reg: folds of its scaffold-grouped inner CV on the training rows (default: 2)")
    p.add_argument("--threads", type=int, default=2, help="torch threads (and random-forest jobs)")
    p.add_argument("--model", default="smollm2-135m", help="backbone (a name or a local folder)")
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    p.add_argument("--fresh", action="store_true", help="refit everything (ignore the fits kept in --out)")
    p.add_argument("--reuse", nargs="+", default=[], metavar="JSON",
                   help="earlier reports (same seed, backbone and --max-rows-test) whose rows fill the points this run "
                        "does not fit (later files win)")
    args = p.parse_args(argv)
    bad = [s for s in args.sizes if s != "all" and not (s.isdigit() and int(s) >= 2)]
    if bad:
        p.error(f"--sizes takes integers >= 2 or 'all', got {bad}")
    require_domain_tags(p, args)
    bad = [m for m in args.max_size if "=" not in m or not m.split("=", 1)[1].isdigit()]
    if bad:
        p.error(f"--max-size takes MODEL=N, got {bad}")
    bad = [v for v in args.reg_deep_layers if v != "all" and not (v.isdigit() and int(v) >= 1)]
    if bad:
        p.error(f"--reg-deep-layers takes 'all' or positive integers, got {bad}")
    if args.inner_folds < 2:
        p.error(f"--inner-folds must be at least 2, got {args.inner_folds}")
    return args


def reg_grid(args):
    """The grid of tag_deep_reg, fixed before the run: every weight decay with every choice of tagged blocks."""
    return {"alpha": list(args.reg_alpha), "deep_layers": [v if v == "all" else int(v) for v in args.reg_deep_layers]}


class RecordedSearch(GridSearchCV):
    """``GridSearchCV`` that writes its inner-CV results to ``record`` (JSON) after every fit."""

    def __init__(self, estimator, param_grid, *, scoring=None, n_jobs=None, refit=True, cv=None, verbose=0,
                 pre_dispatch="2*n_jobs", error_score=np.nan, return_train_score=False, record=None):
        super().__init__(estimator, param_grid, scoring=scoring, n_jobs=n_jobs, refit=refit, cv=cv,
                         verbose=verbose, pre_dispatch=pre_dispatch, error_score=error_score,
                         return_train_score=return_train_score)
        self.record = record

    def fit(self, X, y=None, **params):
        super().fit(X, y, **params)
        if self.record is not None:
            Path(self.record).parent.mkdir(parents=True, exist_ok=True)
            Path(self.record).write_text(json.dumps(search_record(self), indent=1, default=str))
        return self


def search_record(search):
    """What the inner CV of a fitted search saw: each setting's fold scores, fit times and the choice."""
    r, k = search.cv_results_, search.n_splits_
    est = search.best_estimator_
    return dict(scoring=search.scoring, n_splits=k, best_params=search.best_params_,
                best_epoch=getattr(est, "best_epoch_", None), settings=[
                    dict(params=r["params"][i], mean=float(r["mean_test_score"][i]), std=float(r["std_test_score"][i]),
                         folds=[float(r[f"split{j}_test_score"][i]) for j in range(k)],
                         mean_fit_seconds=float(r["mean_fit_time"][i]), rank=int(r["rank_test_score"][i]))
                    for i in range(len(r["params"]))])


def load_dataset(name, seed, max_rows_test=None):
    """The permuted ``train_val`` pool, the test part, the task, the TDC metric and a description of the data."""
    from sktag.datasets import load_tdc_admet

    b = load_tdc_admet(name, split=None)
    X, y, part = np.asarray(b.data, dtype=object), np.asarray(b.target), np.asarray(b.split)
    valid = rdkit_parses(X)
    pool, test = np.flatnonzero((part == "train_val") & valid), np.flatnonzero((part == "test") & valid)
    pool = pool[np.random.RandomState(seed).permutation(len(pool))]
    note = (f"TDC `{name}`: training rows = the first n of one permutation (seed {seed}) of the {len(pool)} "
            f"`train_val` rows; test = the official TDC test part ({len(test)} molecules)")
    if not valid.all():
        bad = {k: int(((part == k) & ~valid).sum()) for k in ("train_val", "test")}
        note += (f"; left out for every model: {bad['train_val']} `train_val` and {bad['test']} test SMILES that "
                 "RDKit cannot parse (the classical featurisers refuse them)")
    if max_rows_test is not None and max_rows_test < len(test):
        test = np.sort(np.random.RandomState(seed).choice(test, max_rows_test, replace=False))
        note += f", **subsampled to {len(test)} (--max-rows-test, seed {seed})**"
    task = "regression" if b.task == "regression" else "classification"
    return dict(X=X[pool], y=y[pool], X_test=X[test], y_test=y[test], task=task, metric=b.metric, note=note,
                scoring=b.scoring)


def rdkit_parses(smiles):
    """Whether RDKit parses each SMILES (all True without RDKit: then the classical models cannot run anyway)."""
    try:
        from rdkit import Chem, RDLogger
    except ImportError:
        return np.ones(len(smiles), dtype=bool)
    RDLogger.DisableLog("rdApp.*")
    return np.array([Chem.MolFromSmiles(s) is not None for s in smiles])


def resolve_sizes(sizes, n_pool):
    """Sorted distinct sizes (``"all"`` and larger ones become ``n_pool``)."""
    return sorted({min(n_pool, n_pool if s == "all" else int(s)) for s in sizes})


def build_models(keys, task, args, domain_tags, inner_cv=None, record=None, scoring=None):
    """``(models, model_params, llm)`` for ``compare``: named models by name, the variants as estimators.

    ``tag_deep_reg`` is a grid search (:func:`reg_grid`) over the deep-tag Tag-LLM with the splits ``inner_cv`` of
    the training rows, scored by ``scoring`` (the TDC metric's scorer); it writes what it saw to ``record``.
    """
    from sktag.benchmark import LLM_MODELS, make_model
    from sktag.benchmark._models import uses_llm

    models, params = {}, {}
    for k in keys:
        if k == "tag_deep_reg":
            models[k] = RecordedSearch(make_model("tag_deep", task, model=args.model, random_state=args.seed),
                                       reg_grid(args), scoring=scoring, cv=inner_cv, error_score="raise", record=record)
        elif k in DTAG_MODELS:
            models[k] = dtag_model(k, task, domain_tags, model=args.model, random_state=args.seed)
        else:
            models[k] = k
        if args.prefix_cache is not None and k in TAG_PARAM:
            params[k] = {TAG_PARAM[k] + "prefix_cache": int(args.prefix_cache)}
        if k in ("rf_morgan", "rf_morgan_counts"):
            params[k] = {"model__n_jobs": args.threads}
    llm = {k: (k in LLM_MODELS) if isinstance(m, str) else uses_llm(m) for k, m in models.items()}
    return models, params, llm


def run_point(name, data, n, keys, args, fits, domain_tags):
    """One ``compare`` call at training size ``n``: rows of the CSV (skipped models included)."""
    from sktag.benchmark import compare

    X = np.concatenate([data["X"][:n], data["X_test"]])
    y = np.concatenate([data["y"][:n], data["y_test"]])
    inner, record = None, fits / f"{name}_{n}" / f"tag_deep_reg_search_seed{args.seed}.json"
    if "tag_deep_reg" in keys:  # scaffold-grouped folds of the n training rows (compare passes them in order)
        from benchmarks.accuracy_data import inner_folds

        if data["scoring"] is None:
            raise ValueError(f"tag_deep_reg scores its inner CV by the TDC metric through a scikit-learn scorer; "
                             f"{name} is scored by {data['metric']}, which has none.")
        inner = inner_folds(data["X"][:n], data["y"][:n], data["task"], args.inner_folds)
    models, params, llm = build_models(keys, data["task"], args, domain_tags, inner, record, data["scoring"])
    scoring = [TDC_METRIC[data["metric"]]] + [m for m in SCORING[data["task"]] if m != TDC_METRIC[data["metric"]]]
    base = dict(dataset=name, task=data["task"], tdc_metric=data["metric"], n_train=n, n_test=len(data["X_test"]),
                seed=args.seed)
    empty = dict.fromkeys([*scoring, *TIMES], np.nan)
    skipped = {}
    if data["task"] == "classification" and len(np.unique(data["y"][:n])) < 2:
        skipped = {k: f"the first {n} training rows hold one class only ({data['y'][0]}); point skipped" for k in keys}
    elif args.llm_max_size is not None and n > args.llm_max_size:
        skipped = {k: f"LLM model skipped: n = {n} > --llm-max-size {args.llm_max_size}" for k in keys if llm[k]}
    caps = dict(item.split("=", 1) for item in args.max_size)
    skipped.update({k: f"skipped: n = {n} > --max-size {k}={caps[k]}" for k in keys
                    if k in caps and k not in skipped and n > int(caps[k])})
    rows = [dict(base, model=k, llm=llm[k], status="skipped", note=why, **empty) for k, why in skipped.items()]
    for k, why in skipped.items():
        print(f"{name}, n = {n}: {k}: {why}", file=sys.stderr, flush=True)
    run = [k for k in keys if k not in skipped]
    if not run:
        return rows
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        res = compare(X, y, models={k: models[k] for k in run}, model_params={k: v for k, v in params.items()
                      if k in run}, cv=[(np.arange(n), np.arange(n, len(X)))], task=data["task"], scoring=scoring,
                      random_state=args.seed, model=args.model, verbose=1, error_score="raise",
                      checkpoint_dir=fits / f"{name}_{n}")
    for r in res.folds.to_dict("records"):
        note = search_note(record, reg_grid(args)) if r["model"] == "tag_deep_reg" else ""
        rows.append(dict(base, model=r["model"], llm=llm[r["model"]], status="ok", note=note,
                         **{m.name: r[m.name] for m in res.metrics},
                         **{c: r[c] for c in TIMES}))
    return rows


def search_note(record, grid):
    """One line on tag_deep_reg's inner CV (from its record): the chosen setting and every setting's mean ± sd.

    A record whose settings are not ``grid``'s (a fit kept from a run with another grid, whose record a later run
    overwrote) is not reported as this one's.
    """
    if not Path(record).exists():
        return "inner CV record missing"
    rec = json.loads(Path(record).read_text())
    want = sorted(_setting(params) for params in ParameterGrid(grid))
    if sorted(_setting(s["params"]) for s in rec["settings"]) != want:
        return f"inner CV record {Path(record).name} is of another grid than this run's"
    sign = -1.0 if str(rec["scoring"]).startswith("neg_") else 1.0
    cells = [f"{_setting(s['params'])}: {sign * s['mean']:.3f} ± {s['std']:.3f}" for s in rec["settings"]]
    return (f"inner {rec['n_splits']}-fold CV chose {_setting(rec['best_params'])} (kept epoch {rec['best_epoch']} "
            f"in the refit); {'; '.join(cells)}")


def _setting(params):
    return ", ".join(f"{k}={v}" for k, v in sorted(params.items()))


def crossings(df, metric, greater):
    """``({LLM model: text}, best classical per size)``: from which size each LLM model beats the best classical one.

    The crossing is the smallest size *n* such that the LLM model is better than the best classical model (dummy
    excluded) of the same size at *n* and at every larger size where both ran.
    """
    ok = df[df["status"] == "ok"].dropna(subset=[metric])
    classical = ok[~ok["llm"].astype(bool) & (ok["model"] != "dummy")]
    llm_models = list(dict.fromkeys(df.loc[df["llm"].astype(bool), "model"]))
    if classical.empty:
        return {m: "no classical model was run" for m in llm_models}, ""
    idx = classical.groupby("n_train")[metric].idxmax() if greater else classical.groupby("n_train")[metric].idxmin()
    best = classical.loc[idx].set_index("n_train")
    out = {}
    for m in llm_models:
        s = ok[ok["model"] == m].set_index("n_train")[metric].reindex(best.index).dropna()
        better = (s > best.loc[s.index, metric]) if greater else (s < best.loc[s.index, metric])
        if better.empty:
            out[m] = "not run at any size where a classical model ran"
            continue
        start = None
        for n in reversed(list(better.index)):
            if not better[n]:
                break
            start = n
        if start is not None:
            out[m] = f"better from n = {start} on (sizes compared: {', '.join(map(str, better.index))})"
        else:
            only = [str(n) for n in better.index if better[n]]
            out[m] = "never in the sizes run" + (f" (better only at n = {', '.join(only)})" if only else "")
    return out, ", ".join(f"n = {n}: {r['model']} {r[metric]:.3f}" for n, r in best.iterrows())


def table(df, metric, greater, with_seconds, n_all):
    """Markdown: rows = models, columns = sizes; the best value per size in bold."""
    sizes = sorted(df["n_train"].unique())
    lines = ["| model | " + " | ".join(f"n = {n}" + (" (all)" if n == n_all else "") for n in sizes) + " |",
             "|---|" + "---:|" * len(sizes)]
    ok = df[df["status"] == "ok"]
    best = {n: (g[metric].max() if greater else g[metric].min()) for n, g in ok.groupby("n_train")}
    for m in dict.fromkeys(df["model"]):
        cells = []
        for n in sizes:
            r = df[(df["model"] == m) & (df["n_train"] == n)]
            if r.empty:
                cells.append("")
            elif r.iloc[0]["status"] != "ok":
                cells.append("skipped")
            else:
                v, t = r.iloc[0][metric], r.iloc[0]["fit_seconds"]
                c = "–" if not np.isfinite(v) else f"**{v:.3f}**" if v == best[n] else f"{v:.3f}"
                cells.append(c + (f" ({t:.{0 if t >= 10 else 1}f} s)" if with_seconds else ""))
        lines.append(f"| {m} | " + " | ".join(cells) + " |")
    return lines


def markdown(df, info):
    from sktag.benchmark import get_metric

    env = info["environment"]
    md = [f"# Learning curve — {info['started']}", "", f"* command: `{info['command']}`",
          f"* machine: {env['cpu']} ({env['cpu_kind']['kind']}), {env.get('usable_cores')} usable cores, torch "
          f"{env['versions']['torch']}, {env['torch_threads']} thread(s), backbone `{info['backbone']}` in "
          f"{env['dtype']} on {env['device']}; load average (1 min) before / after the fits: "
          + _range(df, "load_before") + " / " + _range(df, "load_after"),
          f"* seed {info['seed']} (the permutation and every model's `random_state`); sizes {' '.join(info['sizes'])}; "
          f"wall time {info['wall_s'] / 60:.1f} min", *[f"* {n}" for n in info["notes"]]]
    reused = int(df["resumed"].eq(True).sum())
    if reused:
        md.append(f"* {reused} of {int(df['status'].eq('ok').sum())} fits reused from `learning_curve_fits/` (their "
                  "times and load averages are those of the run that made them)")
    md.append("")
    for name, g in df.groupby("dataset", sort=False):
        d = info["datasets"][name]
        tdc = get_metric(TDC_METRIC[d["metric"]])
        md += [f"## {name} ({d['task']}; TDC metric {d['metric']}, {'higher' if tdc.greater_is_better else 'lower'}"
               " is better)", "", f"Data: {d['note']}. Same training rows, seed and test set for every model.", "",
               f"TDC metric {d['metric']} (fit seconds):", ""] + table(g, tdc.name, tdc.greater_is_better, True,
                                                                        d["n_train_val"])
        for m in [m for m in SCORING[d["task"]] if m != tdc.name]:
            mm = get_metric(m)
            md += ["", f"{mm.display}:", ""] + table(g, m, mm.greater_is_better, False, d["n_train_val"])
        cross, best = crossings(g, tdc.name, tdc.greater_is_better)
        md += ["", f"Where the curves cross ({d['metric']}; against the best classical model at each size"
               + (f": {best}" if best else "") + "):", ""] + [f"* {m}: {t}" for m, t in cross.items()]
        noted = g[(g["status"] == "ok") & g["note"].fillna("").astype(bool)]
        if len(noted):
            md += ["", "Notes:", ""] + [f"* {r.model}, n = {r.n_train}: {r.note}" for r in noted.itertuples()]
        skips = g[g["status"] != "ok"]
        if len(skips):
            md += ["", "Skipped:", ""] + [f"* {r.model}, n = {r.n_train}: {r.note}" for r in skips.itertuples()]
        md.append("")
    return "\n".join(md + ([f"![learning curves]({info['stem']}.png)", ""] if info["png"] else []))


def _range(df, col):
    v = df[col].dropna().astype(float)
    return "–" if v.empty else f"{v.min():.2f}–{v.max():.2f}"


def plot(df, info, path):
    """One panel per data set: the TDC metric against the number of training labels (log x), a line per model."""
    from sktag.benchmark import get_metric
    from sktag.benchmark._plot import pyplot as _pyplot

    plt = _pyplot(backend="Agg")
    names = list(dict.fromkeys(df["dataset"]))
    fig, axes = plt.subplots(1, len(names), figsize=(5 * len(names), 4), squeeze=False)
    for ax, name in zip(axes[0], names):
        d = info["datasets"][name]
        g = df[(df["dataset"] == name) & (df["status"] == "ok")]
        for m, gm in g.groupby("model", sort=False):
            gm = gm.sort_values("n_train")
            style = dict(ls="-", marker="o") if gm["llm"].iloc[0] else dict(ls="--", marker="s")
            ax.plot(gm["n_train"], gm[TDC_METRIC[d["metric"]]], label=m, color="gray" if m == "dummy" else None,
                    **style)
        arrow = "↑" if get_metric(TDC_METRIC[d["metric"]]).greater_is_better else "↓"
        ax.set(xscale="log", xlabel="training labels (log scale)", ylabel=f"test {d['metric']} {arrow}", title=name)
        ax.set_xticks(d["sizes"], [str(n) for n in d["sizes"]])
        ax.minorticks_off()
        if ax.lines:
            ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def environment_info(threads):
    import torch

    from sktag._runtime.device import resolve_dtype
    from sktag.backbone import cpu_supports_bf16
    from sktag.benchmark import environment

    device = "cuda" if torch.cuda.is_available() else "cpu"
    dtype = resolve_dtype("auto", torch.device(device))
    return dict(environment(), cpu_kind=cpu_kind(), torch_threads=threads, device=device,
                dtype=str(dtype).replace("torch.", ""),
                dtype_reason=dtype_reason("auto", dtype, device, cpu_supports_bf16()))


def load_reused(paths, args):
    """``(rows, datasets, files)`` of earlier reports: one row per (data set, size, model) and one description per
    data set, later files winning; ``files`` describes each file (its command and machine) by name.

    Raises
    ------
    ValueError
        A report of another seed, backbone or ``--max-rows-test`` than this run's: its rows are other training
        rows, another model or another test set, and this run's report would present them as its own.
    """
    rows, datasets, files = {}, {}, {}
    here = dict(seed=args.seed, backbone=args.model, max_rows_test=args.max_rows_test)
    for path in paths:
        report, name = json.loads(Path(path).read_text()), Path(path).name
        made = {k: report["info"].get(k) for k in here}
        off = [f"{k} {made[k]!r} (this run: {here[k]!r})" for k in here if made[k] != here[k]]
        if not off:  # rows it reused itself carry their seed (older reports have none)
            seeds = {r.get("seed", args.seed) for r in report["rows"]} - {args.seed}
            off = [f"rows of seed {s}" for s in sorted(seeds)]
        if off:
            raise ValueError(f"--reuse {path}: made with {', '.join(off)}; its rows would stand in this run's report "
                             "as this run's")
        for r in report["rows"]:
            rows[(r["dataset"], r["n_train"], r["model"])] = dict(r, reused_from=name)
        datasets.update(report["info"]["datasets"])
        env = report["info"]["environment"]
        files[name] = (f"`{report['info']['command']}`; {env['cpu']} ({env['cpu_kind']['kind']}), "
                       f"{env['torch_threads']} thread(s), {env['dtype']}")
    return rows, datasets, files


def with_reused(rows, reused, info):
    """This run's ``rows`` and the reused rows of the points it did not fit; the notes say which came from where."""
    done = {(r["dataset"], r["n_train"], r["model"]) for r in rows}
    extra = [r for k, r in reused.items() if k not in done]
    for name, d in info["reused_datasets"].items():
        here = info["datasets"].setdefault(name, {**d, "sizes": []})
        here["sizes"] = sorted(set(here["sizes"]) | {r["n_train"] for r in extra if r["dataset"] == name})
    info["notes"] = [n for n in info["notes"] if not n.startswith("rows reused from ")]
    by_file = {}
    for r in extra:
        by_file.setdefault(r["reused_from"], []).append(f"{r['model']} n = {r['n_train']}")
    for name, about in info["reused_files"].items():
        if name in by_file:
            info["notes"].append(f"rows reused from {name} ({about}): {', '.join(by_file[name])}")
    return [{k: v for k, v in r.items() if k != "reused_from"} for r in extra] + rows


def write_outputs(rows, info, paths):
    """The tidy table (CSV), the JSON (rows + run information), the Markdown and the plot; returns the table."""
    import pandas as pd

    df = pd.DataFrame(rows)
    head = ["dataset", "task", "tdc_metric", "n_train", "n_test", "model", "llm", "status", "note"]
    metrics = [c for c in df.columns if c in TDC_METRIC.values() or c in ("rmse", "r2")]
    df = df[head + metrics + [c for c in df.columns if c not in head + metrics]]
    df.to_csv(paths["csv"], index=False)
    records = json.loads(df.to_json(orient="records"))  # NaN -> null
    paths["json"].write_text(json.dumps(dict(info=info, rows=records), indent=1, default=str))
    paths["md"].write_text(markdown(df, info))
    if info["png"]:
        plot(df, info, paths["png"])
    return df


def main(argv=None):
    import torch

    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    fits = out / "learning_curve_fits"
    if args.fresh and fits.exists():
        shutil.rmtree(fits)
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M")
    stem = f"learning_curve_{stamp}"
    have_png = importlib.util.find_spec("matplotlib") is not None
    notes = [] if have_png else ["no plot: matplotlib is not installed (pip install 'sktag[bench]')"]
    for note in notes:
        print(note, file=sys.stderr)
    domain_tags = None
    if args.domain_tags:  # loaded once; compare's checkpoint key includes the tags' content, so kept fits follow it
        domain_tags, note = load_domain_tags(args.domain_tags)
        notes.append(note)
    if args.llm_max_size is not None:
        notes.append(f"LLM models run only up to n = {args.llm_max_size} (--llm-max-size)")
    for item in args.max_size:
        notes.append(f"{item.split('=', 1)[0]} runs only up to n = {item.split('=', 1)[1]} (--max-size)")
    if args.max_rows_test is not None:
        notes.append(f"test sets subsampled to at most {args.max_rows_test} molecules (--max-rows-test): smoke run")
    if args.prefix_cache is not None:
        notes.append(f"Tag-LLM rows with prefix_cache={int(args.prefix_cache)}")
    notes.append("the frozen LLM's features of a data set are computed once and shared by its points (nested "
                 "subsamples, one test set): an LLM row's times at a point omit the rows computed at an earlier one")
    reused, reused_datasets, reused_files = load_reused(args.reuse, args)
    info = dict(started=_dt.datetime.now().isoformat(timespec="seconds"), stem=stem, png=have_png,
                command=command(__spec__.name, argv),
                backbone=args.model, seed=args.seed, sizes=args.sizes, models=args.models, notes=notes,
                llm_max_size=args.llm_max_size, max_rows_test=args.max_rows_test, domain_tags=args.domain_tags,
                environment=environment_info(args.threads), datasets={}, reused_datasets=reused_datasets,
                reused_files=reused_files)
    out.mkdir(parents=True, exist_ok=True)
    t0, rows, paths = time.perf_counter(), [], {k: out / f"{stem}.{k}" for k in ("csv", "json", "md", "png")}
    for name in args.datasets:
        data = load_dataset(name, args.seed, args.max_rows_test)
        sizes = resolve_sizes(args.sizes, len(data["X"]))
        info["datasets"][name] = dict(task=data["task"], metric=data["metric"], note=data["note"], sizes=sizes,
                                      n_train_val=len(data["X"]), n_test=len(data["X_test"]))
        # the frozen LLM's label-free features of a data set are computed once and shared by its points (the
        # subsamples are nested and the test set is the same), so an LLM row's fit and predict times at a point
        # may include features computed at an earlier one
        with prefix_store(max_bytes=4 * 2**30):
            for n in sizes:  # every file is rewritten after every point
                rows += run_point(name, data, n, args.models, args, fits, domain_tags)
                info["wall_s"] = time.perf_counter() - t0
                df = write_outputs(with_reused(rows, reused, info), info, paths)
    print(paths["md"].read_text())
    print(f"wrote {paths['md']} (+ .csv, .json{', .png' if have_png else ''})", file=sys.stderr)
    return df, paths


if __name__ == "__main__":
    main()
