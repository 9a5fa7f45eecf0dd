"""Input checking and encoding of string inputs into tagged token rows."""

from __future__ import annotations

import numbers
import warnings

import numpy as np

from ._engine import EncodedRow

_MAX_REPORT = 10


class TruncationWarning(UserWarning):
    """Some strings were longer than ``max_length`` tokens and were truncated."""


def _describe_rows(bad, row_labels, what, column=None):
    """'row 3 (index 'a'): ...' listing, capped at ``_MAX_REPORT``."""
    parts = []
    for pos, detail in bad[:_MAX_REPORT]:
        label = ""
        if row_labels is not None:
            label = f" (index {row_labels[pos]!r})"
        parts.append(f"row {pos}{label}: {detail}")
    more = f"; ... and {len(bad) - _MAX_REPORT} more" if len(bad) > _MAX_REPORT else ""
    where = f" in column {column!r}" if column is not None else ""
    return f"{len(bad)} {what}{where}: " + "; ".join(parts) + more


def _short(s, n=60):
    s = repr(s)
    return s if len(s) <= n else s[: n - 3] + "..."


def _is_missing(v):
    if v is None:
        return True
    if isinstance(v, float) and np.isnan(v):
        return True
    try:
        import pandas as pd

        return v is pd.NA or v is pd.NaT
    except ImportError:  # pragma: no cover
        return False


def check_strings(values, row_labels=None, column=None):
    """Check a column of raw values: every entry a non-empty ``str``.

    Raises ``ValueError`` for missing values and empty strings and
    ``TypeError`` for non-string values, naming every bad row (up to a cap).
    Returns a new list; the caller's data is not modified.
    """
    out = list(values)
    missing, wrong, empty = [], [], []
    for i, v in enumerate(out):
        if _is_missing(v):
            missing.append((i, repr(v)))
        elif not isinstance(v, str):
            wrong.append((i, f"{_short(v)} of type {type(v).__name__}"))
        elif not v.strip():
            empty.append((i, _short(v)))
    if missing:
        raise ValueError(_describe_rows(missing, row_labels, "missing values (None/NaN)", column)
                         + ". sktag needs a string in every cell.")
    if wrong:
        raise TypeError(_describe_rows(wrong, row_labels, "non-string values", column)
                        + ". Convert them to str if they are meant as text.")
    if empty:
        raise ValueError(_describe_rows(empty, row_labels, "empty strings", column))
    return out


def as_columns(X):
    """Split ``X`` into string columns.

    Returns
    -------
    columns : list of list
        One list of raw values per column.
    names : list or None
        Column names of a DataFrame (``feature_names_in_``), else None.
    row_labels : sequence or None
        The pandas index, for error messages.
    """
    try:
        import pandas as pd
    except ImportError:  # pragma: no cover
        pd = None
    if pd is not None and isinstance(X, pd.DataFrame):
        if X.shape[1] == 0:
            raise ValueError("X has no columns.")
        names = [str(c) for c in X.columns]
        if len(set(names)) != len(names):
            raise ValueError(f"X has duplicate column names: {names}.")
        return [X.iloc[:, j].tolist() for j in range(X.shape[1])], names, list(X.index)
    if pd is not None and isinstance(X, pd.Series):
        return [X.tolist()], None, list(X.index)
    if isinstance(X, str):
        raise TypeError(
            "X must be a sequence of strings (list, array, Series) or a DataFrame of string "
            "columns, not a single string; wrap it in a list."
        )
    if hasattr(X, "__array__") and not isinstance(X, (list, tuple)):
        arr = np.asarray(X, dtype=object)
    else:
        try:
            arr = np.empty(len(X), dtype=object)
            arr[:] = list(X)
        except TypeError as exc:
            raise TypeError(
                f"X must be a sequence of strings or a DataFrame, got {type(X).__name__}."
            ) from exc
        except ValueError:
            arr = np.asarray(list(X), dtype=object)
    if arr.ndim == 1:
        return [arr.tolist()], None, None
    if arr.ndim == 2:
        if arr.shape[1] == 0:
            raise ValueError("X has no columns.")
        return [arr[:, j].tolist() for j in range(arr.shape[1])], None, None
    raise ValueError(f"X must be 1-D or 2-D, got an array with {arr.ndim} dimensions.")


def resolve_domains(domains, n_columns, names):
    """Domain name of each column, from the ``domains`` parameter."""
    if isinstance(domains, str):
        if not domains.strip():
            raise ValueError("domains must be a non-empty name such as 'SMILES'.")
        return [domains] * n_columns
    if isinstance(domains, dict):
        keys = list(domains)
        if names is not None:
            missing = [n for n in names if n not in domains]
            extra = [k for k in keys if k not in names]
            if missing or extra:
                raise ValueError(
                    f"domains must name every column of X exactly: columns {names}, "
                    f"missing {missing}, unknown {extra}."
                )
            out = [domains[n] for n in names]
        else:
            if sorted(keys, key=str) != list(range(n_columns)):
                raise ValueError(
                    f"X is an array with {n_columns} columns: domains must be a dict with keys "
                    f"0..{n_columns - 1}, a list of {n_columns} names or a single name; got keys {keys}."
                )
            out = [domains[j] for j in range(n_columns)]
    elif isinstance(domains, (list, tuple)):
        if len(domains) != n_columns:
            raise ValueError(f"domains has {len(domains)} names but X has {n_columns} columns.")
        out = list(domains)
    else:
        raise ValueError(
            f"domains must be a name, a list of names or a dict column -> name, got {domains!r}."
        )
    for d in out:
        if not isinstance(d, str) or not d.strip():
            raise ValueError(f"every domain must be a non-empty string, got {d!r}.")
    return out


def validate_columns(columns, domains, names, row_labels, *, canonicalize, errors):
    """Domain validation / normalisation of each column.

    Returns the normalised columns and a boolean mask of valid rows.
    """
    from .domains import validate_strings

    n = len(columns[0])
    ok = np.ones(n, dtype=bool)
    out = []
    for j, (col, dom) in enumerate(zip(columns, domains)):
        colname = names[j] if names is not None else (j if len(columns) > 1 else None)
        col = check_strings(col, row_labels, colname)
        norm, valid = validate_strings(
            col, dom, row_labels=row_labels, column=colname, canonicalize=canonicalize, errors=errors
        )
        out.append(list(norm))
        ok &= np.asarray(valid, dtype=bool)
    return out, ok


def tokenize_columns(tokenizer, columns, max_length, truncation):
    """Token ids of every cell (no special tokens), truncated to ``max_length``."""
    tokenized = []
    n_long = 0
    rows_long = np.zeros(len(columns[0]), dtype=bool)
    for col in columns:
        ids = tokenizer(list(col), add_special_tokens=False)["input_ids"]
        lengths = np.fromiter((len(t) for t in ids), dtype=np.int64, count=len(ids))
        too_long = lengths > max_length
        if too_long.any():
            if truncation == "raise":
                bad = np.flatnonzero(too_long)
                raise ValueError(
                    f"{len(bad)} strings are longer than max_length={max_length} tokens "
                    f"(rows {bad[:_MAX_REPORT].tolist()}{' ...' if len(bad) > _MAX_REPORT else ''}; "
                    f"longest {int(lengths.max())} tokens). Raise max_length or set truncation='warn'."
                )
            rows_long |= too_long
            ids = [t[:max_length] for t in ids]
        tokenized.append(ids)
    n_long = int(rows_long.sum())
    if n_long:
        warnings.warn(
            f"{n_long} of {len(rows_long)} rows had strings longer than max_length={max_length} "
            "tokens and were truncated.",
            TruncationWarning,
            stacklevel=3,
        )
    return tokenized


def encode_rows(tokenized, column_tags, tag_offsets, tag_lengths, bos_id=None):
    """Assemble :class:`EncodedRow` objects (everything before the function tag).

    Parameters
    ----------
    tokenized : list (columns) of list (rows) of token id lists
    column_tags : list of int
        Index of the domain tag of each column.
    tag_offsets, tag_lengths : sequences indexed by tag
        Where each tag's vectors start in the tag table, and how many.
    """
    n_rows = len(tokenized[0])
    rows = []
    tag_slots = {t: np.arange(tag_offsets[t], tag_offsets[t] + tag_lengths[t]) for t in set(column_tags)}
    for i in range(n_rows):
        ids, slot, seg = [], [], []
        if bos_id is not None:
            ids.append(np.array([bos_id]))
            slot.append(np.array([-1]))
            seg.append(np.array([0]))
        for j, t in enumerate(column_tags):
            toks = np.asarray(tokenized[j][i], dtype=np.int64)
            s = tag_slots[t]
            ids.append(np.zeros(len(s), dtype=np.int64))
            slot.append(s)
            ids.append(toks)
            slot.append(np.full(len(toks), -1, dtype=np.int64))
            seg.append(np.full(len(s) + len(toks), j + 1, dtype=np.int64))
        rows.append(EncodedRow(np.concatenate(ids), np.concatenate(slot), np.concatenate(seg)))
    return rows


def check_sample_weight_like(sample_weight, n):
    """Validate ``sample_weight``: finite, non-negative, not all zero."""
    if sample_weight is None:
        return np.ones(n, dtype=np.float64)
    if isinstance(sample_weight, numbers.Number):
        sw = np.full(n, float(sample_weight))
    else:
        sw = np.asarray(sample_weight, dtype=np.float64)
        if sw.ndim != 1 or sw.shape[0] != n:
            raise ValueError(f"sample_weight must have shape ({n},), got {sw.shape}.")
    if not np.all(np.isfinite(sw)):
        raise ValueError("sample_weight contains NaN or infinity.")
    if np.any(sw < 0):
        raise ValueError("sample_weight must be non-negative.")
    if sw.sum() <= 0:
        raise ValueError("sample_weight sums to zero.")
    return sw
