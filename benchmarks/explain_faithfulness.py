"""Are the default model's per-atom explanations faithful?  A deletion test on ESOL test molecules.

Usage::

    python -m benchmarks.explain_faithfulness --threads 2   # ~45 min on 2 idle CPU cores (16 of them the fit)

What it does, on the first scaffold split of ``accuracy.py --standard`` (``ScaffoldSplit(n_splits=3,
test_size=0.2, random_state=0)``, fold 0):

1. fits the default ``TagRegressor(random_state=0)`` on the training molecules;
2. chooses the number of integration points by a rule fixed before the run: the smallest of 6, 8, 12 and 16 whose
   median relative completeness gap ``|delta| / |prediction - baseline prediction|`` is at most 5 % on 50 random
   *training* molecules (never test molecules);
3. times ``predict`` and ``explain`` on ``--n-test`` random test molecules (seed 0) in one run;
4. deletion test: for every explained test molecule with at least ``2 k`` atoms not written as the token ``C``,
   puts the reference embedding at the tokens of its ``k`` atoms of largest ``|attribution|`` and, separately, at
   the tokens of ``k`` random atoms and of ``k`` random atoms not written as ``C`` (``--draws`` draws each,
   seeded), and compares the change of the prediction ``|f(masked) - f|`` (paired over molecules: mean difference
   ± SE and the Wilcoxon signed-rank test);
5. draws six explained test molecules (PNG and SVG) and one for the documentation.

Writes ``benchmarks/results/explain_faithfulness_<stamp>.{md,json,png,svg}`` and ``..._one.png``.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import pickle
import sys
import time
from pathlib import Path

import numpy as np

from benchmarks import command

ROOT = Path(__file__).resolve().parents[1]
CANDIDATE_STEPS = (6, 8, 12, 16)
MAX_GAP = 0.05


def split_esol():
    """ESOL and the train/test indices of the first standard scaffold split."""
    from sktag.datasets import load_esol
    from sktag.model_selection import ScaffoldSplit

    X, y = load_esol(return_X_y=True)
    train, test = next(iter(ScaffoldSplit(n_splits=3, test_size=0.2, random_state=0).split(X)))
    return X, y, train, test


def relative_gaps(explanations):
    """``|delta| / |prediction - baseline_prediction|`` of each explanation."""
    return np.array([abs(e.delta) / max(abs(e.prediction - e.baseline_prediction), 1e-12) for e in explanations])


def choose_steps(reg, X_pool):
    """The rule of step 2: ``(chosen n_steps, {n_steps: (median gap, 90th percentile gap, seconds)})``."""
    table = {}
    for n in CANDIDATE_STEPS:
        t0 = time.perf_counter()
        gaps = relative_gaps(reg.explain(X_pool, n_steps=n))
        table[n] = (float(np.median(gaps)), float(np.percentile(gaps, 90)), time.perf_counter() - t0)
        print(f"  n_steps={n}: median gap {table[n][0]:.4f}, 90th pct {table[n][1]:.4f}, {table[n][2]:.1f} s",
              file=sys.stderr, flush=True)
    chosen = next((n for n in CANDIDATE_STEPS if table[n][0] <= MAX_GAP), CANDIDATE_STEPS[-1])
    return chosen, table


def atom_tokens(explanation):
    """For each atom, the indices of the tokens that cover any of its characters."""
    spans = explanation.spans[0]
    return [[t for t, (a, b) in enumerate(spans) if a < end and start < b]
            for start, end in explanation.atom_map().atom_spans]


def deletion_test(reg, X_test, explanations, k, draws, rng):
    """Per molecule: the prediction change masking the top-k atoms, and its means over random k-atom draws.

    Two controls: k random atoms of the molecule, and k random atoms among those that masking can change (an atom
    whose tokens are all the reference token ``C`` is the baseline already).  Molecules with fewer than ``2 k``
    such atoms are left out of both.
    """
    from sktag._explain.attribution import REFERENCE_TOKENS, Integrator
    from sktag._forward.encoding import encode
    from sktag._forward.inputs import as_columns

    bb = reg.get_backbone()
    scalar, _ = reg._explained_output(None, X_test)
    integ = Integrator(bb, reg.module_, reg._fitted_readout(), reg.layout_, reg.isolate_segments_, scalar, 1)
    rows, _ = encode(as_columns(X_test)[0], reg.layout_, bb.tokenizer, canonicalize=reg.canonicalize_)
    out = {"top": [], "any": [], "changeable": [], "tokens": []}
    for i, e in enumerate(explanations):
        weights, cover = np.abs(e.atom_attributions()), atom_tokens(e)
        changeable = np.array([a for a, c in enumerate(cover)
                               if any(e.tokens[0][t] != REFERENCE_TOKENS["smiles"] for t in c)])
        if len(changeable) < 2 * k:
            continue
        token_pos = np.flatnonzero((rows[i].seg == 1) & (rows[i].slot < 0))  # the row position of each token
        size = len(rows[i]) + reg.layout_.function_length
        masks = [np.isin(np.arange(size), token_pos[[t for a in atoms for t in cover[a]]]) for atoms in
                 [np.argsort(-weights, kind="stable")[:k]]
                 + [rng.choice(len(weights), k, replace=False) for _ in range(draws)]
                 + [rng.choice(changeable, k, replace=False) for _ in range(draws)]]
        change = np.abs(integ.masked_outputs(rows, [i] * len(masks), masks) - e.prediction)
        out["top"].append(change[0])
        out["any"].append(change[1:draws + 1].mean())
        out["changeable"].append(change[draws + 1:].mean())
        out["tokens"].append([masks[0].sum(), np.mean([m.sum() for m in masks[1:draws + 1]]),
                              np.mean([m.sum() for m in masks[draws + 1:]])])
    return {key: np.array(v) for key, v in out.items()}


def paired(top, rand):
    """Mean paired difference, its SE, the share of molecules where top > random, and Wilcoxon's p."""
    from scipy.stats import wilcoxon

    d = top - rand
    p = float(wilcoxon(top, rand, alternative="greater").pvalue) if len(d) > 1 else float("nan")
    return {"n": len(d), "top_mean": float(top.mean()), "random_mean": float(rand.mean()), "diff": float(d.mean()),
            "se": float(d.std(ddof=1) / np.sqrt(len(d))), "top_wins": float((d > 0).mean()), "wilcoxon_p": p}


def pictures(explanations, y_test, out, stamp):
    """A grid of six explained test molecules (PNG and SVG) and one molecule alone (PNG)."""
    from sktag.explain import draw_attributions

    pick = list(range(min(6, len(explanations))))
    legends = [f"predicted {explanations[i].prediction:.2f}, measured {y_test[i]:.2f}" for i in pick]
    args = ([explanations[i].strings[0] for i in pick], [explanations[i].atom_attributions() for i in pick])
    title = "contribution to predicted log solubility"
    for suffix in ("png", "svg"):
        draw_attributions(*args, path=out / f"explain_faithfulness_{stamp}.{suffix}", n_cols=3, legends=legends,
                          size=(340, 280), title=title)
    one = max(pick, key=lambda i: len(args[1][i]))  # the largest of the six
    draw_attributions(args[0][one], args[1][one], legends=[legends[one]],
                      path=out / f"explain_faithfulness_{stamp}_one.png", size=(480, 360), title=title)


def render(rec):
    """The Markdown report."""
    m = rec["machine"]
    lines = ["# Faithfulness of the default model's per-atom explanations (ESOL)", "",
             f"Command: `{rec['command']}`; CPU: {m['cpu']} ({m['kind']}), {m['dtype']}, torch threads "
             f"{m['threads']}.", "",
             f"Model: the default `TagRegressor(random_state=0)` fitted on {rec['n_train']} ESOL training molecules "
             f"(scaffold split 80/20, fold 0 of `ScaffoldSplit(n_splits=3, test_size=0.2, random_state=0)`) in "
             f"{rec['fit_seconds']:.0f} s; test RMSE {rec['test_rmse']:.3f} on {rec['n_test_all']} test molecules.",
             "", "## Integration points", "",
             f"Rule, fixed before the run: the smallest of {list(CANDIDATE_STEPS)} whose median relative "
             f"completeness gap is at most {MAX_GAP:.0%} on 50 random training molecules. Chosen: "
             f"**{rec['n_steps']}**" + (f" (the choice of `{rec['steps_from']}`, same model and molecules)"
                                        if rec.get("steps_from") else "") + ".", "", "| n_steps | median gap | 90th percentile | seconds (50 molecules) |",
             "|---:|---:|---:|---:|"]
    lines += [f"| {n} | {g:.4f} | {p:.4f} | {s:.1f} |" for n, (g, p, s) in rec["steps"].items()]
    t = rec["timing"]
    lines += ["", "## Cost", "",
              f"{t['n']} test molecules: `predict` {t['predict']:.1f} s, `explain(n_steps={rec['n_steps']})` "
              f"{t['explain']:.1f} s: **{t['explain'] / t['predict']:.1f} prediction passes' worth**. Completeness "
              f"gap on them: median {t['median_gap']:.4f}.", "", "## Deletion test", "",
              "Change of the prediction (log mol/L) when the tokens of the k atoms of largest |attribution| take the "
              "baseline's reference embedding (a carbon `C`), against two controls: k random atoms, and k random "
              "atoms among those not written as the token `C` (masking a `C` token changes nothing: it is the "
              f"baseline already). {rec['draws']} draws per molecule and control, mean; paired over the test "
              "molecules with at least 2k atoms not written as `C`; one-sided Wilcoxon signed-rank tests.", "",
              "| k | molecules | top-k change | random k atoms | difference ± SE | top > random | Wilcoxon p | "
              "random k non-`C` atoms | difference ± SE | top > random | Wilcoxon p | masked tokens (top / random / "
              "non-`C`) |", "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for k, r in rec["deletion"].items():
        a, c, t = r["any"], r["changeable"], r["tokens"]
        lines.append(f"| {k} | {a['n']} | {a['top_mean']:.3f} | {a['random_mean']:.3f} | {a['diff']:+.3f} ± "
                     f"{a['se']:.3f} | {a['top_wins']:.0%} | {a['wilcoxon_p']:.2g} | {c['random_mean']:.3f} | "
                     f"{c['diff']:+.3f} ± {c['se']:.3f} | {c['top_wins']:.0%} | {c['wilcoxon_p']:.2g} | "
                     f"{t[0]:.1f} / {t[1]:.1f} / {t[2]:.1f} |")
    lines += ["", f"Pictures: `{rec['pictures'][0]}` (six test molecules, PNG and SVG) and `{rec['pictures'][1]}`.",
              "Red atoms raise the predicted solubility above that of the carbon-chain baseline, blue atoms lower it; "
              "an atom written as the reference token `C` itself has no attribution by construction.", ""]
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    parser.add_argument("--n-test", type=int, default=100, help="test molecules explained (default 100)")
    parser.add_argument("--draws", type=int, default=10, help="random k-atom draws per molecule (default 10)")
    parser.add_argument("--max-iter", type=int, default=None, help="cap on the fit's epochs (default: the default)")
    parser.add_argument("--model", default="smollm2-135m", help="the language model (default: the embedded one)")
    parser.add_argument("--n-train", type=int, default=None, help="cap on the training molecules (default: all)")
    parser.add_argument("--fitted", type=Path, default=None,
                        help="pickle of the fitted model: loaded when it exists (with the fit's time and score), "
                             "else written after the fit")
    parser.add_argument("--reuse", type=Path, default=None,
                        help="an earlier report (.json) of the same model whose choice of integration points (step 2) "
                             "is taken instead of choosing again")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = parser.parse_args(argv)

    import torch
    from sklearn.metrics import mean_squared_error

    from sktag import TagRegressor
    from sktag.backbone import cpu_supports_bf16

    torch.set_num_threads(args.threads)
    X, y, train, test = split_esol()
    if args.n_train is not None:
        train = np.sort(np.random.default_rng(1000).choice(train, min(args.n_train, len(train)), replace=False))
    params = {} if args.max_iter is None else {"max_iter": args.max_iter}
    if args.fitted is not None and args.fitted.exists():
        with open(args.fitted, "rb") as fh:
            reg, fit_seconds, rmse = pickle.load(fh)
    else:
        reg = TagRegressor(model=args.model, random_state=0, n_threads=args.threads, **params)
        t0 = time.perf_counter()
        reg.fit(X[train], y[train])
        fit_seconds = time.perf_counter() - t0
        rmse = float(np.sqrt(mean_squared_error(y[test], reg.predict(X[test]))))
        if args.fitted is not None:
            with open(args.fitted, "wb") as fh:
                pickle.dump((reg, fit_seconds, rmse), fh)
    print(f"fit {fit_seconds:.0f} s, test RMSE {rmse:.3f}", file=sys.stderr, flush=True)

    rng = np.random.default_rng(0)
    pool = X[np.sort(rng.choice(train, 50, replace=False))]
    if args.reuse is not None:
        earlier = json.loads(args.reuse.read_text())
        n_steps, steps = int(earlier["n_steps"]), {int(n): v for n, v in earlier["steps"].items()}
    else:
        n_steps, steps = choose_steps(reg, pool)
    sub = np.sort(rng.choice(test, min(args.n_test, len(test)), replace=False))
    t0 = time.perf_counter()
    reg.predict(X[sub])
    t_predict = time.perf_counter() - t0
    t0 = time.perf_counter()
    explanations = reg.explain(X[sub], n_steps=n_steps)
    t_explain = time.perf_counter() - t0

    deletion = {}
    for k in (1, 3, 5):
        res = deletion_test(reg, X[sub], explanations, k, args.draws, np.random.default_rng(k))
        deletion[k] = {"any": paired(res["top"], res["any"]), "changeable": paired(res["top"], res["changeable"]),
                       "tokens": res["tokens"].mean(axis=0).tolist()}
        print(f"  k={k}: {deletion[k]}", file=sys.stderr, flush=True)

    now = _dt.datetime.now()
    stamp = now.strftime("%Y%m%d-%H%M")
    args.out.mkdir(parents=True, exist_ok=True)
    rec = {"command": command(__spec__.name, argv), "date": now.isoformat(timespec="seconds"),
           "machine": {"cpu": _cpu_name(), "kind": "AVX512-BF16/AMX" if cpu_supports_bf16() else "AVX2 only",
                       "dtype": str(reg.get_backbone().dtype).replace("torch.", ""), "threads": args.threads},
           "n_train": len(train), "n_test_all": len(test), "fit_seconds": fit_seconds, "test_rmse": rmse,
           "n_steps": n_steps, "steps": steps, "draws": args.draws,
           "steps_from": None if args.reuse is None else args.reuse.name,
           "timing": {"n": len(sub), "predict": t_predict, "explain": t_explain,
                      "median_gap": float(np.median(relative_gaps(explanations)))},
           "deletion": deletion,
           "pictures": [f"explain_faithfulness_{stamp}.png", f"explain_faithfulness_{stamp}_one.png"],
           "explained": [{"smiles": e.strings[0], "prediction": e.prediction, "baseline": e.baseline_prediction,
                          "atoms": e.atom_attributions().tolist(), "domain_tag": e.domain_tag_effects[0],
                          "function_tag": e.function_tag_effect} for e in explanations]}
    (args.out / f"explain_faithfulness_{stamp}.json").write_text(json.dumps(rec, indent=1, default=float))
    report = render(rec)
    (args.out / f"explain_faithfulness_{stamp}.md").write_text(report)
    pictures(explanations, y[sub], args.out, stamp)
    print(report)


def _cpu_name():
    from sktag.benchmark._env import environment

    return environment().get("cpu")


if __name__ == "__main__":
    main()
