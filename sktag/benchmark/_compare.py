"""``compare``: every model on the same folds, with resumable fits."""

from __future__ import annotations

import os
import sys
import time
import warnings

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, clone

from sktag._forward.inputs import as_input, take
from sktag._forward.prefix_store import active_store

from . import _data
from ._metrics import DEFAULT_SCORING, get_metric
from ._models import make_model, uses_llm
from ._registry import DEFAULT_MODELS, LLM_MODELS, MODELS, SMILES_MODELS
from ._result import BenchmarkResult
from ._store import FitStore


def compare(X, y, *, models="default", cv=None, task="auto", scoring=None, n_jobs=None, random_state=None,
            verbose=0, model="smollm2-135m", model_params=None, smiles_column=None, domains=None, groups=None,
            reference=None, error_score=np.nan, checkpoint_dir=None):
    """Cross-validate several models on the same folds and compare them.

    Parameters
    ----------
    X : array-like of str of shape (n_samples,), or DataFrame
        SMILES strings, or a DataFrame with a SMILES column and other string
        columns (e.g. a protein sequence); never modified.
    y : array-like of shape (n_samples,)
        Numeric targets (regression) or class labels (classification).
    models : "default", "all", str, list or dict, default="default"
        Named models (see :data:`sktag.benchmark.MODELS`), ``(name, estimator)``
        pairs, or a dict ``{name: estimator or model name}``.  ``"default"`` is
        :data:`~sktag.benchmark.DEFAULT_MODELS`; models that need SMILES are left
        out when there is no SMILES column.  Estimators are cloned per fold.
    cv : None, int, str, splitter or iterable, default=None
        None or an int ``k``: ``k`` (5) scaffold-grouped folds
        (``GroupKFold`` on :func:`~sktag.model_selection.scaffold_groups`,
        class-stratified when possible) with a SMILES column, else ``KFold`` /
        ``StratifiedKFold``; these always partition the rows.  ``"scaffold:K"``,
        ``"kfold:K"``, ``"stratified:K"``; a scikit-learn splitter (group
        splitters get the scaffold groups unless ``groups`` is given); or an
        iterable of ``(train, test)`` positions.  Every model gets the same folds.
    task : {"auto", "regression", "classification"}, default="auto"
        "auto": classification when ``y`` is not numeric, or has at most 10
        distinct integer values; regression otherwise.
    scoring : str, Metric, list or None, default=None
        Metric names (``"rmse"``, ``"mae"``, ``"r2"``, ``"spearman"``, ``"ci"``,
        ``"roc_auc"``, ``"average_precision"``, ``"accuracy"``,
        ``"balanced_accuracy"``, ``"log_loss"``) or :class:`Metric` objects; the
        first ranks the models.  None: RMSE, MAE, R² or AUROC, AUPRC, accuracy.
    n_jobs : int or None, default=None
        Fits run in parallel processes (joblib); None runs them one after the other.  One after the other, every
        fold and model shares each string's LLM prefix (the prefix store); parallel processes share them only
        through a folder set with :func:`sktag.set_prefix_store` before they start.
    random_state : int or None, default=None
        Seeds the shuffled folds and every named model.
    verbose : int, default=0
        1 shows a progress bar over fits with an estimate of the time left.
    model : str or path, default="smollm2-135m"
        The LLM of the named Tag-LLM and ``LLMEmbedding`` models.
    model_params : dict or None, default=None
        ``{name: {param: value}}`` passed to ``set_params`` of that row's
        estimator, e.g. ``{"tag": {"max_iter": 3}, "rf_morgan_counts": {"model__n_estimators": 100}}``.
    smiles_column : str or None, default=None
        The SMILES column of a DataFrame (default: the column whose domain is
        SMILES).  The classical models see only this column.
    domains : str, dict or None, default=None
        ``domains`` of the LLM models: "SMILES" for one column; a dict
        ``{column: domain}`` for a DataFrame (needed with several columns).
    groups : array-like or None, default=None
        Groups for a group splitter passed as ``cv``.
    reference : str or None, default=None
        Row the paired statistics compare against (default: the best
        classical row).
    error_score : "raise" or np.nan, default=np.nan
        With ``np.nan`` a failed fit scores NaN, with a warning and its error in
        ``folds["error"]`` (it is not kept in ``checkpoint_dir``, so a rerun tries
        it again); with ``"raise"`` the error is re-raised.
    checkpoint_dir : str, Path or None, default=None
        Keep every finished fit in this folder (one JSON file each: scores,
        times, test predictions) and reuse those of an earlier, interrupted
        run with the same data, folds and estimator.

    Returns
    -------
    result : BenchmarkResult
        The per-fold table, the summary, the paired statistics, Markdown and a plot.

    Examples
    --------
    >>> from sktag.benchmark import compare
    >>> from sktag.datasets import load_esol
    >>> from sktag.testing import make_tiny_model
    >>> model = make_tiny_model()  # a tiny random model keeps the example fast
    >>> X, y = load_esol(return_X_y=True)
    >>> res = compare(X[:60], y[:60], models=["tag", "rf_morgan_counts", "dummy"], cv="scaffold:3",
    ...               model=model, model_params={"tag": {"max_iter": 1},
    ...                                          "rf_morgan_counts": {"model__n_estimators": 20}},
    ...               random_state=0)
    >>> res.summary().index.tolist()
    ['tag', 'rf_morgan_counts', 'dummy']
    >>> print(res.to_markdown())  # doctest: +ELLIPSIS
    Task: regression; 60 rows; folds: 3 scaffold-grouped folds ...
    | model | RMSE ↓ | MAE ↓ | R² ↑ | ...
    """
    _check_error_score(error_score)
    X = as_input(X)
    if len(X) != len(y):
        raise ValueError(f"X has {len(X)} rows but y has {len(y)}")
    task, y_arr = _data.resolve_task(y, task)
    smiles_column, domains, has_smiles = _data.resolve_columns(X, smiles_column, domains)
    _data.check_strings(X, domains)
    smiles = None if not has_smiles else (X[smiles_column] if smiles_column is not None else X)
    n_classes = len(np.unique(y_arr)) if task == "classification" else 0
    if task == "classification" and n_classes < 2:
        raise ValueError(f"classification needs at least 2 classes in y, got {n_classes}")
    metrics = _metrics(scoring, task, n_classes)
    notes = []
    estimators = _resolve_models(models, task, model, domains, smiles_column, has_smiles, random_state,
                                 model_params, notes)
    if reference is not None and reference not in estimators:
        raise ValueError(f"reference {reference!r} is not one of the models {list(estimators)}")
    splits, cv_desc, partition = _data.make_splits(cv, X, y_arr, task, smiles, groups=groups,
                                                   random_state=random_state)
    _data.check_splits(splits, y_arr, task, partition=partition)
    notes += _classical_columns_note(X, models, estimators, smiles_column, domains)
    store = FitStore(checkpoint_dir, X, y_arr, task) if checkpoint_dir is not None else None
    jobs = [(name, k) for k in range(len(splits)) for name in estimators]
    records, todo = _resumed(store, jobs, estimators, splits)
    if store is not None and len(todo) < len(jobs):
        notes.append(f"{len(jobs) - len(todo)} of {len(jobs)} fits reused from {store.path}")
    if verbose:
        print(f"{task}, {len(y_arr)} rows, {cv_desc}; {len(estimators)} models: {len(jobs)} fits"
              + (f" ({len(jobs) - len(todo)} reused from {store.path})" if len(todo) < len(jobs) else ""),
              file=sys.stderr, flush=True)
    notes += _fit_sharing_features(todo, records, estimators, X, y_arr, splits, task, n_jobs,
                                   _Progress(jobs, records, verbose), store, error_score)
    ordered = [records[j] for j in jobs]
    return BenchmarkResult(ordered, y_arr, task=task, metrics=metrics, models=list(estimators),
                           llm_models=[n for n, (_, llm) in estimators.items() if llm],
                           descriptions={n: MODELS.get(d) or n for n, d in _sources(models).items()},
                           cv=cv_desc, notes=notes, reference=reference)


def _check_error_score(error_score):
    """Refuse an ``error_score`` other than "raise" and NaN."""
    if not (isinstance(error_score, str) and error_score == "raise") and not (
            isinstance(error_score, float) and np.isnan(error_score)):
        raise ValueError(f"error_score must be 'raise' or np.nan, got {error_score!r}")


def _classical_columns_note(X, models, estimators, smiles_column, domains):
    """A note, when ``X`` has several columns, that the classical models see only the SMILES column."""
    if smiles_column is None or not isinstance(X, pd.DataFrame) or X.shape[1] <= 1:
        return []
    sources = _sources(models)
    classical = [n for n in estimators if sources.get(n) in SMILES_MODELS and sources.get(n) not in LLM_MODELS]
    if not classical:
        return []
    return [f"the classical models {', '.join(classical)} see only the SMILES column {smiles_column!r}; the LLM "
            f"models see {list(domains)}"]


def _fit_sharing_features(todo, records, estimators, X, y_arr, splits, task, n_jobs, progress, store, error_score):
    """:func:`_fit_all`, and a note on what the prefix store shared.

    What the frozen LLM computes before a function tag is label-free: every fold and every model with the same
    prefix (backbone, domain tags) share one computation of each string's prefix in this process (the process-wide
    prefix store, or the store of an enclosing ``prefix_store()`` context); parallel workers share it through the
    store's folder when one is set (:func:`sktag.set_prefix_store`).
    """
    prefixes = active_store()
    hits, misses = (prefixes.hits, prefixes.misses) if prefixes is not None else (0, 0)
    _fit_all(todo, records, estimators, X, y_arr, splits, task, n_jobs, progress, store, error_score)
    if prefixes is None:
        return []
    hits, misses = prefixes.hits - hits, prefixes.misses - misses
    return [f"LLM prefixes: {misses} rows computed, {hits} reused across folds and models"] if hits else []


def _resumed(store, jobs, estimators, splits):
    """``(records, todo)``: the fits an earlier run kept in ``store``, and the fits still to run."""
    records, todo = {}, []
    for name, k in jobs:
        rec = store.load(estimators[name][0], splits[k]) if store else None
        if rec is not None:
            records[(name, k)] = dict(rec, model=name, fold=k, resumed=True)
        else:
            todo.append((name, k))
    return records, todo


def _fit_all(todo, records, estimators, X, y_arr, splits, task, n_jobs, progress, store, error_score):
    """Run the fits ``todo`` into ``records``, keeping each finished one in ``store``."""
    try:
        for (name, k), rec in _run(todo, estimators, X, y_arr, splits, task, n_jobs, progress):
            if rec["error"] is not None:
                if error_score == "raise":
                    raise rec.pop("exception")
                warnings.warn(f"{name} failed on fold {k}: {rec['error']}", RuntimeWarning, stacklevel=4)
            elif store is not None:
                store.save(estimators[name][0], splits[k], rec)
            rec.pop("exception", None)
            records[(name, k)] = dict(rec, model=name, fold=k, resumed=False)
            progress.done(name, k, rec)
    finally:
        progress.close()


def _metrics(scoring, task, n_classes):
    if scoring is None:
        scoring = DEFAULT_SCORING["multiclass" if n_classes > 2 else task]
    if isinstance(scoring, str) or not isinstance(scoring, (list, tuple)):
        scoring = [scoring]
    metrics = [get_metric(s, task) for s in scoring]
    if len({m.name for m in metrics}) != len(metrics):
        raise ValueError(f"scoring names a metric twice: {[m.name for m in metrics]}")
    return metrics


def _sources(models):
    """``{row name: named model, or None for an estimator object}``."""
    if isinstance(models, dict):
        return {n: (v if isinstance(v, str) else None) for n, v in models.items()}
    if isinstance(models, str):
        return {m: m for m in MODELS} if models in ("default", "all") else {models: models}
    return {(m if isinstance(m, str) else m[0]): (m if isinstance(m, str) else None) for m in models}


def _resolve_models(models, task, model, domains, smiles_column, has_smiles, random_state, model_params, notes):
    """``{row name: (unfitted estimator, uses an LLM)}``."""
    if isinstance(models, str) and models in ("default", "all"):
        names = DEFAULT_MODELS if models == "default" else list(MODELS)
        dropped = [n for n in names if n in SMILES_MODELS and not has_smiles]
        if dropped:
            notes.append(f"no SMILES column: left out {', '.join(dropped)}")
        items = [(n, n) for n in names if n not in dropped]
    elif isinstance(models, str):
        items = [(models, models)]
    elif isinstance(models, dict):
        items = list(models.items())
    else:
        items = [(m, m) if isinstance(m, str) else tuple(m) for m in models]
    if not items:
        raise ValueError("no models to compare")
    names = [n for n, _ in items]
    if len(set(names)) != len(names):
        raise ValueError(f"model names must be unique, got {names}")
    unknown = sorted(set(model_params or {}) - set(names))
    if unknown:
        raise ValueError(f"model_params names {unknown}, which are not among the models {names}")
    out = {}
    for name, spec in items:
        if isinstance(spec, str):
            if spec in SMILES_MODELS and not has_smiles:
                raise ValueError(f"model {name!r} ({spec}) needs a SMILES column; pass smiles_column=... "
                                 "or domains with a 'SMILES' column")
            est = make_model(spec, task, model=model, domains=domains, smiles_column=smiles_column,
                             random_state=random_state)
            llm = spec in LLM_MODELS
        elif hasattr(spec, "fit"):
            est = clone(spec) if isinstance(spec, BaseEstimator) or hasattr(spec, "get_params") else spec
            llm = uses_llm(est)
        else:
            raise TypeError(f"model {name!r} must be a model name or an estimator, got {type(spec).__name__}")
        if model_params and name in model_params:
            est.set_params(**model_params[name])
        out[name] = (est, llm)
    return out


def _fit_one(est, X, y, train, test, task):
    """Fit a clone of ``est`` on ``train``, predict ``test``: a record (never raises except on interrupt).

    A Ctrl-C is never turned into a finished fit: inside
    :func:`~sktag._fit.training.interrupts_abort` a Tag-LLM cut short raises
    instead of keeping its best epoch, so the fit is neither scored nor kept.
    """
    from sktag._fit.training import interrupts_abort

    rec = dict(n_train=int(len(train)), n_test=int(len(test)), test=test.tolist(), load_before=_load())
    est = clone(est) if hasattr(est, "get_params") else est
    prefixes = active_store()
    counts = (prefixes.hits, prefixes.misses) if prefixes is not None else (0, 0)
    try:
        t0 = time.perf_counter()
        with interrupts_abort():
            est.fit(take(X, train), y[train])
        t1 = time.perf_counter()
        pred, classes = _predict(est, take(X, test), task, y[train])
        rec.update(fit_seconds=t1 - t0, predict_seconds=time.perf_counter() - t1, error=None,
                   pred=np.asarray(pred, dtype=float).tolist(),
                   classes=None if classes is None else np.asarray(classes).tolist())
    except Exception as exc:  # error_score decides what happens
        rec.update(fit_seconds=np.nan, predict_seconds=np.nan, error=f"{type(exc).__name__}: {exc}", pred=None,
                   classes=None, exception=exc)
    rec["load_after"] = _load()
    if prefixes is not None:  # rows whose LLM prefix this fit and its predict took from the store, and computed
        rec["prefix_reused"], rec["prefix_computed"] = prefixes.hits - counts[0], prefixes.misses - counts[1]
    final = est.steps[-1][1] if hasattr(est, "steps") else est
    for attr in ("n_iter_", "best_epoch_"):
        v = getattr(final, attr, None)
        rec[attr.rstrip("_")] = int(v) if isinstance(v, (int, np.integer)) else None
    return rec


def _predict(est, X_test, task, y_train):
    if task == "regression":
        return est.predict(X_test), None
    classes = getattr(est, "classes_", None)
    if classes is None:
        classes = np.unique(y_train)
    if hasattr(est, "predict_proba"):
        return est.predict_proba(X_test), classes
    if hasattr(est, "decision_function"):
        s = np.asarray(est.decision_function(X_test), dtype=float)
        if s.ndim == 1:
            p = 1.0 / (1.0 + np.exp(-s))
            return np.column_stack([1 - p, p]), classes
        e = np.exp(s - s.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True), classes
    pred = np.asarray(est.predict(X_test))
    return (pred[:, None] == np.asarray(classes)[None, :]).astype(float), classes


def _load():
    try:
        return round(os.getloadavg()[0], 2)
    except (OSError, AttributeError):
        return None


def _run(todo, estimators, X, y, splits, task, n_jobs, progress):
    """Yield ``((name, fold), record)`` as fits finish."""
    if not n_jobs or n_jobs == 1 or len(todo) < 2:
        for name, k in todo:
            progress.start(name, k)
            yield (name, k), _fit_one(estimators[name][0], X, y, *splits[k], task)
        return
    from joblib import Parallel, delayed

    par = Parallel(n_jobs=n_jobs, return_as="generator_unordered")
    out = par(delayed(lambda j: (j, _fit_one(estimators[j[0]][0], X, y, *splits[j[1]], task)))(j) for j in todo)
    yield from out


class _Progress:
    """A tqdm bar over fits with a time-left estimate from each model's finished fits."""

    def __init__(self, jobs, records, verbose):
        self.jobs, self.left = jobs, [j for j in jobs if j not in records]
        self.times = {}
        self.bar = None
        if verbose:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=len(jobs), initial=len(jobs) - len(self.left), unit="fit", desc="benchmark",
                            dynamic_ncols=True, bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt} [{elapsed}{postfix}]")

    def eta(self):
        known = [t for ts in self.times.values() for t in ts]
        if not known:
            return "ETA ?"
        mean_all = float(np.mean(known))
        s = sum(np.mean(self.times[n]) if n in self.times else mean_all for n, _ in self.left)
        return f"ETA {time.strftime('%H:%M:%S', time.gmtime(s)) if s < 86400 else f'{s / 3600:.0f} h'}"

    def start(self, name, k):
        if self.bar is not None:
            self.bar.set_postfix_str(f"{name} fold {k}, {self.eta()}", refresh=True)

    def done(self, name, k, rec):
        if (name, k) in self.left:
            self.left.remove((name, k))
        if rec.get("error") is None:
            self.times.setdefault(name, []).append(rec["fit_seconds"] + rec["predict_seconds"])
        if self.bar is not None:
            if rec.get("prefix_reused"):
                self.bar.write(f"{name} fold {k}: {rec['prefix_reused']} rows reused stored LLM prefixes, "
                               f"{rec.get('prefix_computed', 0)} computed ({rec['fit_seconds']:.0f} s fit, "
                               f"{rec['predict_seconds']:.0f} s predict)", file=sys.stderr)
            self.bar.update(1)
            self.bar.set_postfix_str(self.eta() if self.left else "done", refresh=True)

    def close(self):
        if self.bar is not None:
            self.bar.close()
