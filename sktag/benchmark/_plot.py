"""The plot of a :class:`~sktag.benchmark.BenchmarkResult`, and matplotlib loaded only when a plot is drawn."""

from __future__ import annotations

import numpy as np

from sktag._explain.draw import require_matplotlib


def draw(result, m, ax=None):
    """Per-fold scores (points) and their mean ± sd (bars) of every model of ``result`` for metric ``m``."""
    if ax is None:
        _, ax = pyplot().subplots(figsize=figsize(result))
    s = result.summary()
    ref = result.reference
    for i, name in enumerate(result.models):
        color = "tab:blue" if name in result.llm_models else ("tab:gray" if name == "dummy" else "tab:orange")
        mean, sd = s.loc[name, f"{m.name}_mean"], s.loc[name, f"{m.name}_sd"]
        ax.barh(i, mean, xerr=sd if np.isfinite(sd) else None, color=color, alpha=0.5, capsize=3)
        v = result.folds.loc[result.folds["model"] == name, m.name]
        ax.plot(v, np.full(len(v), i), "o", color=color, markersize=3.5)
    if ref is not None and np.isfinite(s.loc[ref, f"{m.name}_mean"]):
        ax.axvline(s.loc[ref, f"{m.name}_mean"], color="k", lw=0.8, ls="--", label=f"reference: {ref}")
        ax.legend(fontsize=8, loc="best")
    ax.set_yticks(range(len(result.models)))
    ax.set_yticklabels(result.models)
    ax.invert_yaxis()
    ax.set_xlabel(f"{m.label or m.name} ({'higher' if m.greater_is_better else 'lower'} is better); "
                  "points: folds")
    ax.figure.tight_layout()
    return ax


def figsize(result):
    """The figure size for ``result``'s models (one bar each)."""
    return (6.4, 0.45 * len(result.models) + 1.4)


def pyplot(backend=None):
    """``matplotlib.pyplot`` (a script of its own may pick its ``backend``; the library never does)."""
    require_matplotlib("Plots")
    if backend is not None:
        import matplotlib

        matplotlib.use(backend)
    import matplotlib.pyplot as plt

    return plt


def figure_class():
    """``matplotlib.figure.Figure``: a figure drawn and saved without pyplot or a backend switch."""
    return require_matplotlib("Plots")[0]
