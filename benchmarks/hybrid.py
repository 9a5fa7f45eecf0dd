"""What the LLM adds to classical models: the hybrid on the accuracy benchmark's outer splits.

Usage::

    python -m benchmarks.hybrid --threads 2                      # ESOL, BBBP (3 splits), Lipo, Caco2, HIA
    python -m benchmarks.hybrid --datasets esol --seeds 0        # one split
    python -m benchmarks.hybrid --datasets davis                 # drug-target pairs (slow on a CPU)

Splits, seeds and metrics are those of ``accuracy.py --standard``: ESOL and BBBP on three scaffold splits (seeds
0-2), Lipophilicity on one, Caco2 and HIA on the TDC test set, DAVIS on 2,000 training pairs.  Every model has
``random_state=0``; the random forests use ``--threads`` cores.

One ``HybridRegressor`` / ``HybridClassifier`` fit per split gives every row of the report: its base models fitted
on all training rows *are* the single-model rows (``llm_embedding_pretrained``, ``hgb_descriptors``,
``rf_morgan_counts``; same estimators, same seeds), and the blends of other subsets of its base models are refitted
on the same out-of-fold predictions (a fit of the hybrid with that subset would fit the same base models on the same
inner folds).  The frozen LLM's features of a data set are computed once (the prefix store, ``sktag._forward.prefix_store``) and
shared by its splits.

**The design rule, fixed before the run.**  Candidates: the base-model subsets {LLM + HGB + RF, LLM + HGB, LLM + RF,
HGB + RF} × the blends {linear (non-negative weights; logistic for classification), mean}.  Each candidate's blend
is cross-validated on the training rows only: on the hybrid's scaffold-grouped inner folds, fitted on the
out-of-fold predictions of the other inner folds and scored on the held-out one with the data set's metric.  The
choice is the simplest candidate (fewest base models, then mean before linear) whose inner mean is within one
standard error of the best inner mean.  The test split is never looked at to choose.

Writes ``hybrid_<date>.{md,json,csv}`` into ``--out``; each finished split is kept in ``<out>/hybrid_fits`` and a
rerun resumes.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import sys
import time
from pathlib import Path

import numpy as np

from benchmarks import command
from benchmarks.accuracy import MODES, PRIMARY
from benchmarks.accuracy_data import _aa_composition, load

ROOT = Path(__file__).resolve().parents[1]

DATASETS = ["esol", "bbbp", "lipophilicity", "caco2_wang", "hia_hou", "davis"]
SUBSETS = {"llm+hgb+rf": ["llm_embedding", "hgb_descriptors", "rf_morgan_counts"],
           "llm+hgb": ["llm_embedding", "hgb_descriptors"], "llm+rf": ["llm_embedding", "rf_morgan_counts"],
           "hgb+rf": ["hgb_descriptors", "rf_morgan_counts"]}
#: single models: report name -> base model of the hybrid
SINGLE = {"llm_embedding_pretrained": "llm_embedding", "hgb_descriptors": "hgb_descriptors",
          "rf_morgan_counts": "rf_morgan_counts"}
CLASSICAL = ["hgb_descriptors", "rf_morgan_counts"]


def metric_fn(name):
    """``(score(y, pred), greater_is_better)`` of the data set's primary metric."""
    from sklearn.metrics import mean_absolute_error, mean_squared_error, roc_auc_score

    m, greater = PRIMARY[name]
    fn = {"RMSE": lambda a, b: float(np.sqrt(mean_squared_error(a, b))), "MAE": mean_absolute_error,
          "MSE": mean_squared_error, "AUROC": roc_auc_score}[m]
    return fn, greater


def make_hybrid(name, task, threads):
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import FunctionTransformer

    from sktag.hybrid import HybridClassifier, HybridRegressor, default_classical_models

    classical = default_classical_models(task, random_state=0)
    for _, est in classical:
        if "n_jobs" in est.named_steps["model"].get_params():
            est.set_params(model__n_jobs=threads)
    kw = {}
    if name == "davis":  # as accuracy.py: the drug's features and the protein's amino-acid composition
        classical = [(n, Pipeline([("features", ColumnTransformer([
            ("drug", est.named_steps["features"], ["drug"]),
            ("protein", FunctionTransformer(_aa_composition), ["target"])])), ("model", est.named_steps["model"])]))
            for n, est in classical]
        kw = dict(domains={"drug": "SMILES", "target": "Protein"}, smiles_column="drug")
    Hybrid = HybridClassifier if task == "classification" else HybridRegressor
    hyb = Hybrid(classical=classical, random_state=0, cv=5, **kw)
    if name == "davis":
        hyb.set_params(llm=_davis_llm(task))
    return hyb


def _davis_llm(task):
    from sktag.hybrid import default_llm_model

    est = default_llm_model(task, domains={"drug": "SMILES", "target": "Protein"})
    return est.set_params(embedding__max_length=MODES["standard"]["davis_max_length"])


def blend_fit_predict(task, P_fit, y_fit, P_new, blend):
    """Fit a blend on out-of-fold predictions ``P_fit``; its predictions for ``P_new`` (positive-class
    probability for classification)."""
    from sktag.hybrid import HybridClassifier, HybridRegressor

    if task == "regression":
        est = HybridRegressor(blend="linear" if blend == "linear" else "mean")
    else:
        est = HybridClassifier(blend="logistic" if blend == "linear" else "mean")
    est.__dict__.update(est._fit_blend(P_fit, y_fit, [f"b{j}" for j in range(P_fit.shape[1])]))
    out = est._blend(P_new)  # what predict / predict_proba apply to the base models' outputs
    return out if task == "regression" else out[:, 1]


def run_split(name, X, y, task, train, test, seed, threads, store):
    """Fit the hybrid on ``train``: every model's test predictions and every candidate's inner score."""
    from sktag._forward.prefix_store import prefix_store
    from sktag._forward.inputs import take

    score, greater = metric_fn(name)
    hyb = make_hybrid(name, task, threads)
    t0 = time.perf_counter()
    with prefix_store(store=store):
        hyb.fit(take(X, train), y[train])
        fit_s = time.perf_counter() - t0
        Xte = take(X, test)
        n_out = len(hyb.classes_) if task == "classification" else None
        # the LLM base model is the first, "llm" when it is given as an estimator (DAVIS): one name in the report
        names = ["llm_embedding"] + hyb.base_names_[1:]
        base_te = {r: hyb._base_output(hyb.estimators_[n], Xte, n_out) for r, n in zip(names, hyb.base_names_)}
    targets = hyb._targets(y[train])[0]
    smiles = take(X, train) if name != "davis" else take(X, train)["drug"]
    inner, _ = hyb._inner_splits(smiles, targets)
    idx = {n: j for j, n in enumerate(names)}
    P = hyb.oof_predictions_
    pos = (lambda p: p[..., 1]) if task == "classification" else (lambda p: p)
    out = {"seed": seed, "n_train": int(len(train)), "n_test": int(len(test)), "fit_seconds": fit_s,
           "base_seconds": hyb.fit_times_, "weights": np.asarray(hyb.weights_).tolist(), "test": {}, "inner": {},
           "y_test": y[test].tolist(), "pred": {}}
    for report, base in SINGLE.items():
        out["pred"][report] = pos(base_te[base]).tolist()
    for sub, bases in SUBSETS.items():
        cols = [idx[b] for b in bases]
        P_te = np.stack([base_te[b] for b in bases], axis=1)
        for blend in ("linear", "mean"):
            key = f"{sub}:{blend}"
            out["pred"][key] = blend_fit_predict(task, P[:, cols], targets, P_te, blend).tolist()
            folds = [score(targets[va], blend_fit_predict(task, P[tr][:, cols], targets[tr], P[va][:, cols], blend))
                     for tr, va in inner]
            out["inner"][key] = [float(v) for v in folds]
    out["chosen"] = choose(out["inner"], greater)
    out["pred"]["hybrid_chosen"] = out["pred"][out["chosen"]]
    out["test"] = {k: float(score(y[test], np.asarray(v))) for k, v in out["pred"].items()}
    return out


def choose(inner, greater):
    """The rule: the simplest candidate within one standard error of the best inner mean."""
    stats = {k: (np.mean(v), np.std(v, ddof=1) / np.sqrt(len(v))) for k, v in inner.items()}
    best = max(stats, key=lambda k: stats[k][0] if greater else -stats[k][0])
    m, se = stats[best]
    ok = [k for k, (mu, _) in stats.items() if (mu >= m - se if greater else mu <= m + se)]

    def simplicity(k):
        sub, blend = k.split(":")
        return (len(SUBSETS[sub]), blend != "mean", list(SUBSETS).index(sub))

    return min(ok, key=simplicity)


def bootstrap_se(name, y, preds_a, preds_b, n=1000, seed=0):
    """Standard error of metric(a) - metric(b) over test rows resampled with replacement."""
    score, _ = metric_fn(name)
    rng = np.random.RandomState(seed)
    diffs = []
    for _ in range(n):
        i = rng.randint(0, len(y), len(y))
        if len(np.unique(y[i])) < 2 and PRIMARY[name][0] == "AUROC":
            continue
        diffs.append(score(y[i], preds_a[i]) - score(y[i], preds_b[i]))
    return float(np.std(diffs, ddof=1))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--datasets", nargs="+", default=DATASETS[:5], choices=DATASETS)
    p.add_argument("--seeds", nargs="+", type=int, default=None, help="default: as accuracy.py --standard")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    args = p.parse_args(argv)
    import torch

    from sktag._forward.prefix_store import PrefixStore
    from sktag.benchmark import environment

    torch.set_num_threads(args.threads)
    out = Path(args.out)
    (out / "hybrid_fits").mkdir(parents=True, exist_ok=True)
    cfg = MODES["standard"]
    results = {}
    for name in args.datasets:
        seeds = args.seeds or cfg["seeds_by_dataset"].get(name, cfg["seeds"])
        X, y, task, splits, note = load(name, seeds, cfg)
        store = PrefixStore(8 * 2**30)  # the data set's frozen features, shared by its splits
        results[name] = {"note": note, "task": task, "splits": []}
        for seed, (train, test) in zip(seeds, splits):
            f = out / "hybrid_fits" / f"{name}_seed{seed}.json"
            if f.exists():
                rec = json.loads(f.read_text())
            else:
                print(f"{name} seed {seed}: {len(train)} train / {len(test)} test", file=sys.stderr, flush=True)
                rec = run_split(name, X, y, task, train, test, seed, args.threads, store)
                f.write_text(json.dumps(rec, indent=1))
            results[name]["splits"].append(rec)
            print(f"  {name} seed {seed}: chosen {rec['chosen']}; "
                  + ", ".join(f"{k} {v:.3f}" for k, v in rec["test"].items() if ":" not in k or k.startswith(
                      ("llm+hgb+rf:", "hgb+rf:"))), file=sys.stderr, flush=True)
    now = _dt.datetime.now()
    stamp = now.strftime("%Y%m%d-%H%M")
    env = environment()
    kind, dtype = cpu_kind_and_dtype()
    report = render(results, args, env, kind, dtype)
    (out / f"hybrid_{stamp}.md").write_text(report)
    provenance = {"command": run_command(args), "cpu_kind": f"{env.get('cpu')} {kind}", "dtype": dtype,
                  "torch_threads": env.get("torch_threads"), "date": now.isoformat(timespec="seconds")}
    (out / f"hybrid_{stamp}.json").write_text(json.dumps({"results": results, "environment": env, **provenance},
                                                         indent=1, default=str))
    print(report)


def run_command(args):
    """The command line that reproduces the report."""
    return command(__spec__.name, ["--datasets", *args.datasets, "--threads", args.threads])


def cpu_kind_and_dtype():
    """``(kind, dtype)``: whether this CPU has native bfloat16, and the dtype the backbone runs in here."""
    import torch

    from sktag.backbone import cpu_supports_bf16, resolve_dtype

    kind = "with native bfloat16 (AVX512-BF16/AMX)" if cpu_supports_bf16() else "without native bfloat16 (AVX2)"
    return kind, str(resolve_dtype("auto", torch.device("cpu"))).replace("torch.", "")


def render(results, args, env, kind, dtype):
    """The report: per data set, every row's test score (mean ± sd over splits) and the paired differences."""
    lines = ["# The hybrid on the accuracy benchmark's outer splits", "",
             f"Command: `{run_command(args)}`"
             f"; CPU: {env.get('cpu')} {kind}, {dtype}; torch threads {env.get('torch_threads')}; the hybrid "
             f"fits took {sum(s['fit_seconds'] for r in results.values() for s in r['splits']) / 60:.0f} min in "
             "all.", ""]
    rows = ["llm_embedding_pretrained", "hgb_descriptors", "rf_morgan_counts", "hgb+rf:linear", "llm+hgb+rf:linear",
            "llm+hgb+rf:mean", "llm+hgb:linear", "llm+rf:linear", "hybrid_chosen"]
    label = {"hgb+rf:linear": "stack_classical (HGB + RF, linear)", "llm+hgb+rf:linear": "hybrid (default)",
             "hybrid_chosen": "hybrid, design chosen by inner CV"}
    lines += ["| data set (metric) | " + " | ".join(label.get(r, r) for r in rows) + " |",
              "|---|" + "---:|" * len(rows)]
    for name, res in results.items():
        metric, greater = PRIMARY[name]
        cells = []
        for r in rows:
            v = np.array([s["test"][r] for s in res["splits"]])
            cells.append(f"{v.mean():.3f}" + (f" ± {v.std(ddof=1):.3f}" if len(v) > 1 else ""))
        lines.append(f"| {name} ({metric}, {'higher' if greater else 'lower'} is better, {len(res['splits'])} "
                     f"split{'s' if len(res['splits']) > 1 else ''}) | " + " | ".join(cells) + " |")
    lines += ["", "Paired differences on the same splits, signed so that positive is better (mean over splits ± "
              "its standard error; on one split the standard error is a bootstrap of the test rows). `>1 SE`: "
              "the difference exceeds one standard error.", "",
              "| data set | best classical | hybrid − best classical | hybrid (inner-CV design) − best classical | "
              "hybrid − stack_classical | LLM features alone − best classical |", "|---|---|---:|---:|---:|---:|"]
    for name, res in results.items():
        lines.append(f"| {name} | " + " | ".join(paired_cells(name, res)) + " |")
    lines += ["", "Choices of the inner-CV rule (per split): " + "; ".join(
        f"{n} " + ", ".join(s["chosen"] for s in r["splits"]) for n, r in results.items()), ""]
    lines += ["Fit time per split (s): " + "; ".join(
        f"{n} " + ", ".join(f"{s['fit_seconds']:.0f}" for s in r["splits"]) for n, r in results.items()), ""]
    return "\n".join(lines) + "\n"


def paired_cells(name, res):
    """The best classical row and the paired differences of the report's table, one cell each."""
    _, greater = PRIMARY[name]
    sign = 1.0 if greater else -1.0
    splits = res["splits"]
    means = {c: np.mean([s["test"][c] for s in splits]) for c in CLASSICAL}
    best = max(means, key=lambda c: sign * means[c])
    cells = [best]
    for a, b in (("llm+hgb+rf:linear", best), ("hybrid_chosen", best), ("llm+hgb+rf:linear", "hgb+rf:linear"),
                 ("llm_embedding_pretrained", best)):
        d = np.array([sign * (s["test"][a] - s["test"][b]) for s in splits])
        if len(d) > 1:
            se = d.std(ddof=1) / np.sqrt(len(d))
        else:
            s = splits[0]
            y = np.asarray(s["y_test"])
            se = bootstrap_se(name, y, np.asarray(s["pred"][a]), np.asarray(s["pred"][b]))
        wins = int((d > 0).sum())
        flag = " (>1 SE)" if abs(d.mean()) > se else ""
        cells.append(f"{d.mean():+.3f} ± {se:.3f}{flag}" + (f", {wins}/{len(d)} splits" if len(d) > 1 else ""))
    return cells


if __name__ == "__main__":
    main()
