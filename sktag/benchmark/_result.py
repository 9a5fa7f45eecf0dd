"""``BenchmarkResult``: per-fold scores, summary, paired statistics, Markdown and plots."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from . import _plot
from ._markdown import report
from ._registry import OWN_BASELINES
from ._stats import bootstrap_ci, corrected_ttest

_COLUMNS = ["model", "fold", "n_train", "n_test", "fit_seconds", "predict_seconds", "n_iter", "best_epoch",
            "prefix_reused", "prefix_computed", "load_before", "load_after", "resumed", "error"]


class BenchmarkResult:
    """What :func:`sktag.benchmark.compare` returns.

    Parameters
    ----------
    records : list of dict
        One record per (model, fold): scores, times and test predictions.
    y : array-like of shape (n_samples,)
        The targets the folds were scored on.
    task : str
        ``"regression"``, ``"classification"`` or ``"multiclass"``.
    metrics : list of Metric
        The metrics; the first ranks the models.
    models : list of str
        Row names, in the order given.
    llm_models : list of str
        Rows that run a language model.
    descriptions : dict
        A description of each row.
    cv : str
        Description of the folds.
    notes : list of str
        What the reader of a table should know.
    reference : str or None, default=None
        The row the paired statistics compare against (default: the best
        classical row).

    Attributes
    ----------
    folds : DataFrame
        One row per (model, fold): the metrics, ``n_train``, ``n_test``,
        ``fit_seconds``, ``predict_seconds``, ``n_iter`` / ``best_epoch`` (Tag-LLM
        estimators), ``prefix_reused`` / ``prefix_computed`` (rows whose LLM prefix
        the fit and its predictions took from the prefix store, and computed), the 1-minute system load before and after the fit, ``resumed``
        (reused from the checkpoint folder) and ``error`` (None unless it failed).
    task : str
    metrics : list of Metric
        The first one ranks the models.
    models : list of str
        Row names, in the order given.
    llm_models : list of str
        Rows that run a language model; the others are "classical".
    cv : str
        Description of the folds.
    notes : list of str
        What the reader of a table should know (columns used, reused fits, ...).
    environment : dict
        Machine (CPU, cores, system load, torch threads, GPU) and package versions.
    """

    def __init__(self, records, y, *, task, metrics, models, llm_models, descriptions, cv, notes, reference=None):
        self.task, self.metrics, self.models = task, metrics, models
        self.llm_models, self.descriptions, self.cv, self.notes = llm_models, descriptions, cv, notes
        self._records, self._y = records, np.asarray(y)
        from ._env import environment

        self.environment = environment()
        rows = []
        for rec in records:
            row = {c: rec.get(c) for c in _COLUMNS}
            for m in metrics:
                row[m.name] = self._safe_score(rec, m) if rec.get("pred") is not None else np.nan
            rows.append(row)
        self.folds = pd.DataFrame(rows, columns=_COLUMNS[:4] + [m.name for m in metrics] + _COLUMNS[4:])
        self.folds["model"] = pd.Categorical(self.folds["model"], categories=models)
        self.folds["error"] = pd.Series([rec.get("error") for rec in records], dtype=object)  # None or the message
        for c in ("n_iter", "best_epoch"):
            self.folds[c] = self.folds[c].astype("Int64")  # None where the estimator has no such attribute
        if reference is not None and reference not in models:
            raise ValueError(f"reference {reference!r} is not one of the models {models}")
        self._reference = reference

    # ------------------------------------------------------------------ scores
    def _safe_score(self, rec, metric):
        try:
            return self._score(rec, metric)
        except Exception as exc:  # a metric undefined on these predictions must not lose the other results
            warnings.warn(f"{metric.name} of {rec['model']} on fold {rec['fold']} is NaN: {type(exc).__name__}: "
                          f"{exc}", RuntimeWarning, stacklevel=3)
            return np.nan

    def _score(self, rec, metric, rows=None):
        test = np.asarray(rec["test"])
        pred = np.asarray(rec["pred"], dtype=float)
        if rows is not None:
            test, pred = test[rows], pred[rows]
        return metric(self._y[test], pred, rec.get("classes"))

    def predictions(self):
        """The test predictions of every fit, one row per (model, fold, test row).

        Returns
        -------
        predictions : DataFrame
            Columns ``model``, ``fold``, ``row`` (position in ``X``), ``y_true`` and
            ``y_pred`` (regression) or ``proba_<class>`` per class (classification).
        """
        frames = []
        for rec in self._records:
            if rec.get("pred") is None:
                continue
            test = np.asarray(rec["test"])
            df = pd.DataFrame({"model": rec["model"], "fold": rec["fold"], "row": test, "y_true": self._y[test]})
            pred = np.asarray(rec["pred"], dtype=float)
            if self.task == "regression":
                df["y_pred"] = pred
            else:
                for j, c in enumerate(rec["classes"]):
                    df[f"proba_{c}"] = pred[:, j]
            frames.append(df)
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()

    @property
    def primary(self):
        """The metric that ranks the models (the first of ``scoring``)."""
        return self.metrics[0]

    def _metric(self, metric):
        if metric is None:
            return self.primary
        for m in self.metrics:
            if m.name == metric or getattr(metric, "name", None) == m.name:
                return m
        raise ValueError(f"metric {metric!r} was not computed; computed: {[m.name for m in self.metrics]}")

    def _means(self, metric):
        return self.folds.groupby("model", observed=False)[metric.name].mean()

    @property
    def reference(self):
        """The row of the paired statistics: given, else the best classical row (else the best row)."""
        if self._reference is not None:
            return self._reference
        means = self._means(self.primary).dropna()
        classical = [m for m in means.index if m not in self.llm_models and m != "dummy"]
        pool = means[classical] if classical else means
        if pool.empty:
            return None
        return pool.idxmax() if self.primary.greater_is_better else pool.idxmin()

    def summary(self):
        """Mean and standard deviation over folds of every metric and of the fit time.

        Returns
        -------
        summary : DataFrame
            Index: model; columns ``<metric>_mean``, ``<metric>_sd`` (``ddof=1``),
            ``fit_seconds_mean``, ``predict_seconds_mean``, ``n_folds`` (folds
            that succeeded).
        """
        g = self.folds.groupby("model", observed=False)
        out = pd.DataFrame(index=pd.Index(self.models, name="model"))
        for m in self.metrics:
            out[f"{m.name}_mean"] = g[m.name].mean()
            out[f"{m.name}_sd"] = g[m.name].std(ddof=1)
        out["fit_seconds_mean"] = g["fit_seconds"].mean()
        out["predict_seconds_mean"] = g["predict_seconds"].mean()
        out["n_folds"] = g[self.primary.name].count()
        return out

    def paired(self, reference=None, metric=None, *, test="corrected_t", alpha=0.05, n_resamples=2000,
               random_state=0):
        """Every model against ``reference`` on the same folds.

        Parameters
        ----------
        reference : str or None, default=None
            Default: :attr:`reference` (the best classical row).
        metric : str or None, default=None
            Default: the primary metric.
        test : {"corrected_t", "bootstrap", "both"}, default="corrected_t"
            ``"corrected_t"``: Nadeau and Bengio's corrected resampled t-test on the
            per-fold differences (:func:`~sktag.benchmark.corrected_ttest`);
            ``"bootstrap"``: a paired percentile bootstrap interval of the
            difference, rows resampled within the test folds
            (:func:`~sktag.benchmark.bootstrap_ci`); ``"both"`` reports both and
            decides by the t-test.
        alpha : float, default=0.05
            Significance level of the decision.
        n_resamples : int, default=2000
            Bootstrap resamples (``test="bootstrap"`` or ``"both"``).
        random_state : int or None, default=0
            Seeds the bootstrap.

        Returns
        -------
        table : DataFrame
            One row per other model: ``difference`` (mean over folds of model
            minus reference), ``t``, ``p_value`` and/or ``ci_low``, ``ci_high``,
            ``n_folds`` and ``verdict`` ("better", "worse" or
            "indistinguishable" than the reference, in the metric's direction;
            "not tested (1 fold)" for the t-test on a single split; "not tested
            (failed on every fold)" and the like when no fold has both scores).
        """
        if test not in ("corrected_t", "bootstrap", "both"):
            raise ValueError(f"test must be 'corrected_t', 'bootstrap' or 'both', got {test!r}")
        m = self._metric(metric)
        ref = reference or self.reference
        if ref not in self.models:
            raise ValueError(f"reference {ref!r} is not one of the models {self.models}")
        f = self.folds
        a_ref = f[f["model"] == ref].set_index("fold")
        rows = []
        for name in self.models:
            if name == ref:
                continue
            a = f[f["model"] == name].set_index("fold")
            common = a.index.intersection(a_ref.index)
            row = {"model": name, "reference": ref, "metric": m.name}
            diff, t, p = corrected_ttest(a.loc[common, m.name], a_ref.loc[common, m.name],
                                         a.loc[common, "n_train"], a.loc[common, "n_test"])
            n_ok = int(np.isfinite(a.loc[common, m.name].to_numpy() - a_ref.loc[common, m.name].to_numpy()).sum())
            row.update(difference=diff, n_folds=n_ok)
            if test in ("corrected_t", "both"):
                row.update(t=t, p_value=p)
            if test in ("bootstrap", "both"):
                row["ci_low"], row["ci_high"] = self._bootstrap(name, ref, m, n_resamples, 1 - alpha, random_state)
            if test == "bootstrap":
                lo, hi = row["ci_low"], row["ci_high"]
                significant = np.isfinite(lo) and (lo > 0 or hi < 0)
            else:
                significant = np.isfinite(p) and p < alpha
            better = (diff > 0) == m.greater_is_better
            row["verdict"] = (("better" if better else "worse") if significant else "indistinguishable"
                              ) if row["n_folds"] >= 2 or test == "bootstrap" else "not tested (1 fold)"
            if n_ok == 0:  # nothing to compare: say why
                row["verdict"] = ("not tested (failed on every fold)" if len(a) and a["error"].notna().all()
                                  else "not tested (the reference failed on every fold)"
                                  if len(a_ref) and a_ref["error"].notna().all()
                                  else f"not tested (no fold with a finite {m.name})")
            rows.append(row)
        return pd.DataFrame(rows)

    def _bootstrap(self, name, ref, metric, n_resamples, confidence, random_state):
        recs = {(r["model"], r["fold"]): r for r in self._records}
        folds = sorted(k for (n, k) in recs if n == name and recs[(n, k)].get("pred") is not None
                       and recs.get((ref, k), {}).get("pred") is not None)
        if not folds:
            return float("nan"), float("nan")
        a = [recs[(name, k)] for k in folds]
        b = [recs[(ref, k)] for k in folds]
        if any(x["test"] != y["test"] for x, y in zip(a, b)):
            raise ValueError("the bootstrap needs the same test rows for both models")
        return bootstrap_ci(lambda i, rows: self._score(a[i], metric, rows),
                            lambda i, rows: self._score(b[i], metric, rows),
                            [len(r["test"]) for r in a], n_resamples=n_resamples, confidence=confidence,
                            random_state=random_state)

    # ------------------------------------------------------------------ output
    def to_markdown(self, *, test="corrected_t", digits=3):
        """Write a Markdown report: mean ± sd per metric (best in bold), fit time and the paired statistics.

        Parameters
        ----------
        test : {"corrected_t", "bootstrap", "both"}, default="corrected_t"
            The paired statistics reported (see :meth:`paired`).
        digits : int, default=3
            Decimals of the scores.

        Returns
        -------
        str
            The report.
        """
        return report(self, test=test, digits=digits, n_rows=len(self._y), reference_given=self._reference is not None)

    def own_baselines(self, *, test="corrected_t"):
        """Compare each model with its own baseline, where both rows ran.

        The Tag-LLM (``tag``) against the frozen features with the same
        domain tag (``llm_embedding_pretrained``), and the hybrids against the
        same blend of the classical models alone (``stack_classical``): what
        the trained tag, and the LLM in the blend, add.  See
        :data:`OWN_BASELINES`.

        Parameters
        ----------
        test : {"corrected_t", "bootstrap", "both"}, default="corrected_t"
            The paired statistics reported (see :meth:`paired`).

        Returns
        -------
        table : DataFrame
            The rows of :meth:`paired` for those pairs (empty when none ran).
        """
        rows = []
        for (name, ref) in OWN_BASELINES:
            if name in self.models and ref in self.models:
                rows.append(self.paired(reference=ref, test=test).set_index("model").loc[[name]].reset_index())
        return pd.concat(rows, ignore_index=True) if rows else pd.DataFrame()

    def plot(self, metric=None, ax=None):
        """Per-fold scores (points) and their mean ± sd (bars) of every model.

        Needs matplotlib (``pip install 'sktag[bench]'``).

        Parameters
        ----------
        metric : str or None, default=None
            Default: the primary metric.
        ax : matplotlib Axes or None, default=None
            Drawn into a new figure when None.

        Returns
        -------
        ax : matplotlib Axes
            The axes drawn into.
        """
        return _plot.draw(self, self._metric(metric), ax)

    def to_dict(self):
        """JSON-ready dict: task, folds, metrics, notes, environment, per-fold rows, summary, paired statistics."""
        s = self.summary().reset_index()
        p = self.paired() if self.reference is not None and len(self.models) > 1 else pd.DataFrame()
        return {"task": self.task, "cv": self.cv, "metrics": [m.name for m in self.metrics],
                "reference": self.reference, "notes": self.notes, "descriptions": self.descriptions,
                "environment": self.environment,
                "folds": _records(self.folds.astype({"model": str})), "summary": _records(s),
                "paired": _records(p), "own_baselines": _records(self.own_baselines())}

    def save(self, directory, stem="benchmark", *, plot=True, test="corrected_t"):
        """Write ``<stem>.md``, ``.csv`` (per fold), ``.json`` and, with ``plot``, ``.png`` into ``directory``.

        Parameters
        ----------
        directory : str or path-like
            The folder (created if needed).
        stem : str, default="benchmark"
            The file names' stem.
        plot : bool, default=True
            Also draw :meth:`plot` into ``<stem>.png`` (needs matplotlib).
        test : {"corrected_t", "bootstrap", "both"}, default="corrected_t"
            The paired statistics reported (see :meth:`paired`).

        Returns
        -------
        paths : dict
            ``{"md": Path, "csv": Path, "json": Path, "png": Path or None}``.
        """
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        paths = {k: d / f"{stem}.{k}" for k in ("md", "csv", "json", "png")}
        self.folds.to_csv(paths["csv"], index=False)
        paths["json"].write_text(json.dumps(self.to_dict(), indent=1, default=str))
        md = self.to_markdown(test=test)
        if plot:
            # a figure of its own, outside pyplot: the caller's backend and open figures stay as they were
            fig = _plot.figure_class()(figsize=_plot.figsize(self))
            self.plot(ax=fig.add_subplot())
            fig.savefig(paths["png"], dpi=120)
            md += f"\n![{self.primary.name} per model]({paths['png'].name})\n"
        else:
            paths["png"] = None
        paths["md"].write_text(md)
        return paths

    def __repr__(self):
        return (f"BenchmarkResult(task={self.task!r}, models={self.models}, folds={self.folds['fold'].nunique()}, "
                f"metrics={[m.name for m in self.metrics]})")


def _records(df):
    return json.loads(df.to_json(orient="records")) if len(df) else []
