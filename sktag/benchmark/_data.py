"""Inputs of :func:`sktag.benchmark.compare`: task, columns and cross-validation folds."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

#: fewest test rows a fold may have
MIN_TEST_ROWS = 2


def resolve_task(y, task):
    """``"regression"`` or ``"classification"``, and ``y`` as an array."""
    y_arr = np.asarray(y)
    if y_arr.ndim != 1:
        raise ValueError(f"y must be 1-D, got shape {y_arr.shape}")
    if task not in ("auto", "regression", "classification"):
        raise ValueError(f"task must be 'auto', 'regression' or 'classification', got {task!r}")
    numeric = y_arr.dtype.kind in "iuf"
    if task == "auto":
        if not numeric:
            task = "classification"
        else:
            # class labels are text, or a few integers: 0.25/1.75 is a (coarse) measurement, not two classes
            values = np.unique(y_arr[np.isfinite(y_arr.astype(float))])
            integral = np.all(values == np.round(values))
            task = "classification" if integral and len(values) <= 10 else "regression"
    if task == "regression":
        if not numeric:
            try:
                y_arr = y_arr.astype(float)
            except (TypeError, ValueError):
                bad = [i for i, v in enumerate(y_arr) if not _is_number(v)][:5]
                raise ValueError("regression needs a numeric y; not numbers: "
                                 + ", ".join(f"row {i} ({y_arr[i]!r})" for i in bad)) from None
        y_arr = y_arr.astype(float)
        bad = np.flatnonzero(~np.isfinite(y_arr))
    else:
        bad = np.flatnonzero(pd.isna(y_arr))
    if len(bad):
        raise ValueError(f"y has {len(bad)} missing or non-finite value(s), at rows {bad[:10].tolist()}"
                         f"{' ...' if len(bad) > 10 else ''}; drop those rows first")
    if len(y_arr) and len(pd.unique(y_arr)) == 1:
        raise ValueError(f"y has one value ({y_arr[0]!r}) in every row: there is nothing to predict or to "
                         "compare models on")
    return task, y_arr


def _is_number(v):
    try:
        float(v)
        return True
    except (TypeError, ValueError):
        return False


def resolve_columns(X, smiles_column, domains):
    """The SMILES column (None for 1-D ``X``) and the ``domains`` of the LLM models."""
    if not isinstance(X, pd.DataFrame):
        if smiles_column is not None:
            raise ValueError(f"smiles_column={smiles_column!r} needs a DataFrame X; X is one column")
        domains = "SMILES" if domains is None else domains
        if not isinstance(domains, str):
            raise ValueError(f"X is one column, so domains must be a string, got {domains!r}")
        return (None, domains, domains.lower() == "smiles")
    cols = list(X.columns)
    if domains is None:
        if smiles_column is None and len(cols) == 1:
            smiles_column = cols[0]
        if smiles_column is None or len(cols) > 1:
            raise ValueError(f"X has columns {cols}: pass domains={{column: domain}}, e.g. "
                             f"{{{cols[0]!r}: 'SMILES'" + (f", {cols[1]!r}: 'Protein'" if len(cols) > 1 else "")
                             + "}")
        domains = {smiles_column: "SMILES"}
    if not isinstance(domains, dict):
        raise ValueError(f"X is a DataFrame, so domains must be a dict {{column: domain}}, got {domains!r}")
    missing = [c for c in domains if c not in cols]
    if missing:
        raise ValueError(f"domains names column(s) {missing} that X does not have (columns: {cols})")
    if smiles_column is None:
        found = [c for c, d in domains.items() if str(d).lower() == "smiles"]
        smiles_column = found[0] if found else None
    elif smiles_column not in cols:
        raise ValueError(f"smiles_column {smiles_column!r} is not a column of X (columns: {cols})")
    return smiles_column, dict(domains), smiles_column is not None


def check_strings(X, domains):
    """Validate every input column for its domain once, before any fit.

    What every model would refuse on every fold (an unparsable SMILES, say)
    is reported once, naming its rows, whatever the folds are: an
    :class:`~sktag.exceptions.InvalidInputError`.
    """
    from sktag.domains import validate_strings

    if isinstance(X, pd.DataFrame):
        for column, domain in domains.items():
            validate_strings(list(X[column]), domain, row_labels=list(X.index), column=column, canonicalize=False)
    else:
        validate_strings(list(X), domains, row_labels=list(X.index) if isinstance(X, pd.Series) else None,
                         canonicalize=False)


_CV_SPEC = re.compile(r"^(scaffold|kfold|stratified|random|group)(?::(\d+))?$")


def make_splits(cv, X, y, task, smiles, *, groups=None, random_state=None):
    """``(splits, description, partition_required)`` of the requested cross-validation.

    ``cv``: None (5 folds of the default kind), an int (folds of the default
    kind), ``"scaffold:K"``, ``"kfold:K"``, ``"stratified:K"``, a splitter
    with ``split(X, y, groups)``, or an iterable of ``(train, test)`` positions.
    """
    named = _named_cv(cv, y, task, smiles)
    if named is not None:
        splits, desc = _named_splits(*named, y, task, smiles, random_state)
        return [(np.asarray(a), np.asarray(b)) for a, b in splits], desc, True
    if hasattr(cv, "split"):
        if groups is None and "group" in type(cv).__name__.lower():
            if smiles is None:
                raise ValueError(f"{type(cv).__name__} needs groups=...; there is no SMILES column to group by "
                                 "scaffold")
            from sktag.model_selection import scaffold_groups

            groups = scaffold_groups(smiles)
        splits = list(cv.split(X, y, groups))
        return [(np.asarray(a), np.asarray(b)) for a, b in splits], f"{cv!r}", False
    try:
        splits = [(np.asarray(a, dtype=int), np.asarray(b, dtype=int)) for a, b in cv]
    except (TypeError, ValueError):
        raise TypeError("cv must be None, an int, a string such as 'scaffold:5', a splitter or "
                        f"an iterable of (train, test) index arrays; got {type(cv).__name__}") from None
    return splits, f"{len(splits)} given train/test splits", False


def _named_cv(cv, y, task, smiles):
    """``(kind, k)`` of a ``cv`` given as None, a number of folds or a string; None for any other ``cv``."""
    if cv is None or isinstance(cv, (int, np.integer)) and not isinstance(cv, bool):
        k = 5 if cv is None else int(cv)
        kind = ("scaffold" if smiles is not None
                else "stratified" if task == "classification" and k >= 2 and _min_class(y) >= k else "kfold")
    elif isinstance(cv, str):
        m = _CV_SPEC.match(cv.strip().lower())
        if not m:
            raise ValueError(f"cv {cv!r} is not understood; use 'scaffold:5', 'kfold:5', 'stratified:5' or an int")
        kind, k = m.group(1), int(m.group(2) or 5)
        kind = {"random": "kfold", "group": "scaffold"}.get(kind, kind)
        if kind == "scaffold" and smiles is None:
            raise ValueError("scaffold folds need a SMILES column (smiles_column=...)")
    else:
        return None
    if k < 2:
        raise ValueError(f"cross-validation needs at least 2 folds, got {k}")
    return kind, k


def _named_splits(kind, k, y, task, smiles, random_state):
    """``(splits, description)`` of ``k`` folds of ``kind``: "scaffold", "stratified" or "kfold"."""
    from sklearn.model_selection import GroupKFold, KFold, StratifiedGroupKFold, StratifiedKFold

    clf = task == "classification"
    if kind == "scaffold":
        from sktag.model_selection import scaffold_groups

        g = scaffold_groups(smiles)
        n_groups = len(np.unique(g))
        if n_groups < k:
            raise ValueError(f"{len(y)} rows in {n_groups} Bemis-Murcko scaffold group(s): {k} scaffold folds "
                             f"need at least {k} groups; use fewer folds or more data")
        if clf and _min_class(y) >= k:
            splitter = StratifiedGroupKFold(k, shuffle=True, random_state=random_state)
            desc = f"{k} scaffold-grouped folds, class-stratified (StratifiedGroupKFold on scaffold_groups)"
        else:
            splitter = GroupKFold(k)
            desc = f"{k} scaffold-grouped folds (GroupKFold on scaffold_groups; each scaffold in one fold)"
        return list(splitter.split(np.zeros(len(y)), y, g)), desc
    if kind == "stratified":
        if not clf:
            raise ValueError("stratified folds need a classification task")
        splits = list(StratifiedKFold(k, shuffle=True, random_state=random_state).split(np.zeros(len(y)), y))
        return splits, f"{k} class-stratified random folds (StratifiedKFold, shuffled)"
    splits = list(KFold(k, shuffle=True, random_state=random_state).split(np.zeros(len(y))))
    return splits, f"{k} random folds (KFold, shuffled)"


def _min_class(y):
    return np.unique(y, return_counts=True)[1].min()


def check_splits(splits, y, task, *, partition):
    """Raise one clear error when the folds cannot give a sound benchmark."""
    n = len(y)
    if not splits:
        raise ValueError("cv gave no splits")
    seen = np.zeros(n, dtype=int)
    for k, (tr, te) in enumerate(splits):
        for name, idx in (("train", tr), ("test", te)):
            if idx.size and (idx.min() < 0 or idx.max() >= n):
                raise ValueError(f"fold {k}: {name} indices outside 0..{n - 1}")
        if np.intersect1d(tr, te).size:
            raise ValueError(f"fold {k}: train and test share rows")
        if len(te) < MIN_TEST_ROWS or len(tr) < 2:
            raise ValueError(f"too few rows per fold: fold {k} has {len(tr)} training and {len(te)} test rows "
                             f"(at least 2 and {MIN_TEST_ROWS} needed) out of {n}; use fewer folds or more data")
        if task == "classification":
            classes = np.unique(y)
            missing = np.setdiff1d(classes, np.unique(y[tr]))
            if missing.size:
                raise ValueError(f"too few rows per fold: training part of fold {k} lacks class(es) "
                                 f"{missing.tolist()} ({n} rows; class counts "
                                 f"{dict(zip(*[a.tolist() for a in np.unique(y, return_counts=True)]))}); "
                                 "use fewer folds or more data")
        seen[te] += 1
    if partition and not np.all(seen == 1):
        raise AssertionError("internal error: the default folds are not a partition")
