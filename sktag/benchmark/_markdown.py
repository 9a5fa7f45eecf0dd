"""The Markdown report of a :class:`~sktag.benchmark.BenchmarkResult`: the table, the method, notes and failures."""

from __future__ import annotations

import numpy as np

from ._registry import OWN_BASELINES
from ._stats import fmt_p

_T_TEST = "Nadeau-Bengio corrected resampled t-test on the per-fold differences, two-sided, α = 0.05"
_BOOTSTRAP = "paired bootstrap of the test rows within folds, 95% percentile interval"
_STAT_COLUMNS = {"corrected_t": ["p"], "bootstrap": ["95% CI"], "both": ["p", "95% CI"]}


def report(result, *, test, digits, n_rows, reference_given):
    """The text of ``result.to_markdown(test=test, digits=digits)``, for ``n_rows`` rows of data."""
    ref = result.reference
    paired = result.paired(test=test).set_index("model") if ref is not None and len(result.models) > 1 else None
    n = int(result.folds["fold"].max()) + 1 if len(result.folds) else 0
    out = [f"Task: {result.task}; {n_rows} rows; folds: {result.cv}. "
           f"Mean ± sd over {n} fold{'s' if n != 1 else ''}.", ""]
    out += _table(result, paired, _STAT_COLUMNS[test], digits)
    if paired is not None:
        how = {"corrected_t": _T_TEST, "bootstrap": _BOOTSTRAP,
               "both": f"{_T_TEST} (decides the verdict); {_BOOTSTRAP}"}[test]
        chosen = "chosen by the caller" if reference_given else "the best classical row"
        out += ["", f"Paired statistics against {ref} ({chosen}): {how}. Δ is the model's mean over folds "
                    "minus the reference's."]
    out += _own_baseline_lines(result, test, digits)
    out += [""] + [f"* {note}" for note in result.notes] if result.notes else []
    errors = result.folds[result.folds["error"].notna()]
    if len(errors):
        out += ["", "Failed fits:"] + [f"* {r.model} fold {r.fold}: `{r.error}`" for r in errors.itertuples()]
    return "\n".join(out) + "\n"


def _table(result, paired, stat_cols, digits):
    """The table's lines: a row per model, its scores (the best in bold), time and the paired statistics."""
    s = result.summary()
    best = {}
    for m in result.metrics:
        col = s[f"{m.name}_mean"].dropna()
        if not col.empty:
            best[m.name] = col.idxmax() if m.greater_is_better else col.idxmin()
    head = ["model"] + [m.display for m in result.metrics] + ["fit + predict s"]
    if paired is not None:
        head += [f"Δ{result.primary.label or result.primary.name} vs {result.reference}", *stat_cols, "verdict"]
    lines = ["| " + " | ".join(head) + " |", "|---|" + "---:|" * (len(head) - 1)]
    for name in result.models:
        description = result.descriptions.get(name, name)
        cells = [f"{name}" + (f": {result.descriptions[name]}" if description != name else "")]
        for m in result.metrics:
            c = _mean_sd(s.loc[name, f"{m.name}_mean"], s.loc[name, f"{m.name}_sd"], digits)
            cells.append(f"**{c}**" if best.get(m.name) == name else c)
        t = s.loc[name, "fit_seconds_mean"] + s.loc[name, "predict_seconds_mean"]
        cells.append("–" if not np.isfinite(t) else f"{t:.1f}")
        if paired is not None:
            cells += _paired_cells(paired, name, result.reference, stat_cols, digits)
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _mean_sd(mean, sd, digits):
    if not np.isfinite(mean):
        return "–"
    return f"{mean:.{digits}f}" if not np.isfinite(sd) else f"{mean:.{digits}f} ± {sd:.{digits}f}"


def _paired_cells(paired, name, ref, stat_cols, digits):
    """The cells of the paired statistics of row ``name`` against ``ref``."""
    if name == ref:
        return ["reference"] + [""] * (len(stat_cols) + 1)
    r = paired.loc[name]
    cells = [f"{r['difference']:+.{digits}f}" if np.isfinite(r["difference"]) else "–"]
    if "p" in stat_cols:
        cells.append(fmt_p(r["p_value"]))
    if "95% CI" in stat_cols:
        cells.append(f"[{r['ci_low']:+.{digits}f}, {r['ci_high']:+.{digits}f}]" if np.isfinite(r["ci_low"]) else "–")
    return cells + [r["verdict"]]


def _own_baseline_lines(result, test, digits):
    """Each model against its own baseline (:data:`~sktag.benchmark._registry.OWN_BASELINES`), where both ran."""
    own = result.own_baselines(test=test)
    if not len(own):
        return []
    out = ["", "Each model against its own baseline (same folds, same test):"]
    for r in own.itertuples():
        diff = f"{r.difference:+.{digits}f}" if np.isfinite(r.difference) else "–"
        stat = f", p {fmt_p(r.p_value)}" if "p_value" in own.columns else ""
        out.append(f"* {r.model} against {r.reference} ({OWN_BASELINES[(r.model, r.reference)]}): "
                   f"Δ{result.primary.label or result.primary.name} {diff}{stat}: {r.verdict}")
    return out
