"""From what the user passes to lists of raw string columns, with row-naming errors.

The first step of the data path (strings → validation → encoding → engine):
every sktag estimator and featuriser takes ``X`` apart here, so that missing
values, wrong types, DataFrame-likes and error messages are handled once.
"""

from __future__ import annotations

import numbers

import numpy as np

MAX_REPORT = 10


def short_repr(value, limit=60):
    """``repr(value)``, shortened to ``limit`` characters."""
    s = repr(value)
    return s if len(s) <= limit else s[: limit - 3] + "..."


def plain(label):
    """A numpy scalar as the Python value it holds (for messages)."""
    return label.item() if isinstance(label, np.generic) else label


def describe_rows(bad, what, *, row_labels=None, column=None, max_report=MAX_REPORT):
    """``"3 <what> in column 'c': row 0 (index 'a'): detail; ..."``, capped at ``max_report``.

    Parameters
    ----------
    bad : list of (int, str)
        ``(position, detail)`` of each bad row.
    what : str
        What is wrong, in the plural ("missing values").
    row_labels : sequence, optional
        Label of each row (a pandas index) shown next to its position.
    column : object, optional
        Column name shown in the message.
    """
    parts = []
    for pos, detail in bad[:max_report]:
        label = f" (index {plain(row_labels[pos])!r})" if row_labels is not None else ""
        parts.append(f"row {pos}{label}: {detail}")
    more = f"; ... and {len(bad) - max_report} more" if len(bad) > max_report else ""
    where = f" in column {plain(column)!r}" if column is not None else ""
    return f"{len(bad)} {what}{where}: " + "; ".join(parts) + more


def is_missing(value) -> bool:
    """None, float NaN, ``pd.NA`` or ``pd.NaT``."""
    if value is None:
        return True
    if isinstance(value, float) and np.isnan(value):
        return True
    try:
        import pandas as pd
    except ImportError:  # pragma: no cover
        return False
    return value is pd.NA or value is pd.NaT


def check_strings(values, row_labels=None, column=None, *, on_invalid="raise"):
    """Every entry a non-empty ``str``, or (``on_invalid="nan"``) a mask of the entries that are not.

    Returns ``(strings, invalid_mask)``: a new list (the caller's data is
    never modified) and where the missing values (None, NaN, ``pd.NA``),
    non-string values and empty strings are.  With ``on_invalid="raise"``
    any of them raises, naming every bad row (up to a cap): ``ValueError``
    for missing values and empty strings, ``TypeError`` for non-string
    values.  With ``on_invalid="nan"`` nothing raises: the caller gives those
    rows NaN outputs, as it does for strings its domain finds invalid.
    """
    out = [str(v) if isinstance(v, np.str_) else v for v in values]
    invalid = np.zeros(len(out), dtype=bool)
    missing, wrong, empty = [], [], []
    for i, v in enumerate(out):
        if is_missing(v):
            missing.append((i, repr(v)))
        elif not isinstance(v, str):
            wrong.append((i, f"{short_repr(v)} of type {type(v).__name__}"))
        elif not v.strip():
            empty.append((i, short_repr(v)))
        else:
            continue
        invalid[i] = True
    if on_invalid == "nan":
        return out, invalid
    if missing:
        raise ValueError(describe_rows(missing, "missing values (None/NaN)", row_labels=row_labels, column=column)
                         + ". sktag needs a string in every cell (or on_invalid='nan' at predict time); "
                         "an RDKit molecule is read as its SMILES, but None is what RDKit gives for a record "
                         "it cannot read.")
    if wrong:
        raise TypeError(describe_rows(wrong, "non-string values", row_labels=row_labels, column=column)
                        + ". Convert them to str if they are meant as text.")
    if empty:
        raise ValueError(describe_rows(empty, "empty strings", row_labels=row_labels, column=column))
    return out, invalid


def is_molecule(value) -> bool:
    """An RDKit molecule (``rdkit.Chem.Mol`` or a subclass such as ``RWMol``), without importing RDKit."""
    cls = type(value)
    return cls.__module__.startswith("rdkit") and any(c.__name__ == "Mol" for c in cls.__mro__)


def molecules_as_smiles(values):
    """``values`` with every RDKit molecule written as its canonical SMILES.

    A new list when there is a molecule (the caller's data is never
    modified), else ``values`` itself.  Strings and other values pass
    through unchanged, so a column may mix SMILES strings and molecules;
    ``None`` (what RDKit gives for a record it cannot read) stays a missing
    value, reported by the row checks like any other.
    """
    values = values if isinstance(values, list) else list(values)
    if not any(is_molecule(v) for v in values):
        return values
    from rdkit import Chem

    return [Chem.MolToSmiles(v) if is_molecule(v) else v for v in values]


def _dataframe_columns(X):
    """``(columns, names, row_labels)`` of a pandas or other DataFrame, else None.

    pandas is read directly (its index labels the rows in messages); any
    other eager DataFrame (polars, pyarrow tables, ...) through narwhals.
    """
    try:
        import pandas as pd
    except ImportError:  # pragma: no cover
        pd = None
    if pd is not None and isinstance(X, pd.DataFrame):
        names = list(X.columns)
        return [X.iloc[:, j].tolist() for j in range(X.shape[1])], names, list(X.index)
    if pd is not None and isinstance(X, pd.Series):
        return [X.tolist()], None, list(X.index)
    if isinstance(X, (list, tuple, np.ndarray)):
        return None
    try:
        import narwhals as nw
    except ImportError:  # pragma: no cover
        return None
    df = nw.from_native(X, eager_only=True, allow_series=True, pass_through=True)
    if isinstance(df, nw.DataFrame):
        names = list(df.columns)
        return [df[c].to_list() for c in names], names, None
    if isinstance(df, nw.Series):
        return [df.to_list()], None, None
    return None


def as_columns(X):
    """Split ``X`` into columns of raw values (RDKit molecules as canonical SMILES).

    Parameters
    ----------
    X : sequence of str, ndarray, pandas/polars Series or DataFrame
        The input strings.

    Returns
    -------
    columns : list of list
        One list of raw values per column, in row order.
    names : list or None
        Column names of a DataFrame (as given: str or not), else None.
    row_labels : list or None
        The pandas index, for error messages.
    """
    if isinstance(X, (str, bytes)):
        raise TypeError(
            "X must be a sequence of strings (list, array, Series) or a DataFrame of string "
            "columns, not a single string; wrap it in a list."
        )
    if hasattr(X, "format") and hasattr(X, "tocsr"):  # scipy sparse
        raise TypeError("sktag estimators take strings; a sparse matrix is not supported (sparse data).")
    if isinstance(X, (set, frozenset, dict)) or (
        not hasattr(X, "__len__") and not hasattr(X, "__array__") and not hasattr(X, "__dataframe__")
    ):
        raise TypeError(
            f"X must be an ordered sequence of strings (list, tuple, array, Series) or a DataFrame, "
            f"got {type(X).__name__}: its order against y would be undefined."
        )
    columns, names, labels = _raw_columns(X)
    return [molecules_as_smiles(c) for c in columns], names, labels


def _raw_columns(X):
    """``as_columns`` before the molecules are written as SMILES."""
    frame = _dataframe_columns(X)
    if frame is not None:
        columns, names, labels = frame
        if not columns:
            raise ValueError(f"Found array with 0 feature(s) (shape=({len(X)}, 0)) while a minimum of 1 is "
                             "required.")
        if names is not None and len({str(n) for n in names}) != len(names):
            raise ValueError(f"X has duplicate column names: {names}.")
        return columns, names, labels
    if hasattr(X, "__array__") and not isinstance(X, (list, tuple)):
        arr = np.asarray(X, dtype=object)
    elif len(X) and any(_is_row(r) for r in X):
        return _rows_to_columns(X), None, None
    else:
        arr = np.empty(len(X), dtype=object)
        try:
            arr[:] = list(X)
        except ValueError:
            arr = np.asarray(list(X), dtype=object)
    if arr.ndim == 1:
        return [arr.tolist()], None, None
    if arr.ndim == 2:
        if arr.shape[1] == 0:
            raise ValueError(f"Found array with 0 feature(s) (shape={arr.shape}) while a minimum of 1 is "
                             "required.")
        return [arr[:, j].tolist() for j in range(arr.shape[1])], None, None
    raise ValueError(f"X must be 1-D or 2-D, got an array with {arr.ndim} dimensions.")


def _is_row(value) -> bool:
    """A row of a 2-D input given as a sequence of rows (a list, tuple or 1-D array, not a string)."""
    return isinstance(value, (list, tuple)) or (isinstance(value, np.ndarray) and value.ndim == 1)


def _rows_to_columns(X):
    """Columns of ``X`` given as rows (``[["CCO", "MKT"], ...]``), read as scikit-learn reads them.

    Every row must be a sequence of the same length; a row that is not (a
    bare string among rows, or a row of another length) is named.
    """
    rows = list(X)
    not_rows = [(i, short_repr(r)) for i, r in enumerate(rows) if not _is_row(r)]
    if not_rows:
        raise ValueError(describe_rows(not_rows, "rows that are not sequences of cells")
                         + ". X given as a list of rows needs a list (or tuple) of cells in every row.")
    width = len(rows[0])
    ragged = [(i, f"{len(r)} cells") for i, r in enumerate(rows) if len(r) != width]
    if ragged:
        raise ValueError(describe_rows(ragged, f"rows whose length differs from row 0 ({width} cells)")
                         + ". Every row must have one cell per column.")
    if width == 0:
        raise ValueError(f"Found array with 0 feature(s) (shape=({len(rows)}, 0)) while a minimum of 1 is "
                         "required.")
    return [[r[j] for r in rows] for j in range(width)]


def column_of_strings(X, *, what="X", column=None):
    """One column of raw values from 1-D input or a (chosen column of a) 2-D input.

    Returns ``(values, row_labels, name)``.  Used by single-column
    transformers such as the SMILES featurisers.
    """
    columns, names, labels = as_columns(X)
    series_name = _series_name(X)
    if column is not None:
        if names is not None:
            matches = [j for j, n in enumerate(names) if n == column or str(n) == str(column)]
            if not matches:
                raise ValueError(f"column {column!r} not found in {what}; columns are {list(names)}")
            j = matches[0]
        else:
            if not isinstance(column, numbers.Integral) or not 0 <= column < len(columns):
                raise ValueError(
                    f"with an array {what}, the column must be an integer position below "
                    f"{len(columns)}, got {column!r}"
                )
            j = int(column)
    elif len(columns) == 1:
        j = 0
    else:
        shown = f" {list(names)}" if names is not None else ""
        raise ValueError(f"{what} must be 1-D or have a single column, got {len(columns)} columns{shown}")
    values = columns[j]
    if len(values) == 0:
        raise ValueError("Found array with 0 sample(s) (shape=(0,)) while a minimum of 1 is required.")
    values = [v.item() if isinstance(v, np.generic) and not isinstance(v, np.str_) else v for v in values]
    values = [str(v) if isinstance(v, np.str_) else v for v in values]
    return values, labels, (names[j] if names is not None else series_name)


def _series_name(X):
    """The name of a pandas (or other) Series, else None (it names the column in messages)."""
    try:
        import pandas as pd
    except ImportError:  # pragma: no cover
        pd = None
    if pd is not None and isinstance(X, pd.Series):
        return X.name
    if isinstance(X, (list, tuple, np.ndarray)) or pd is not None and isinstance(X, pd.DataFrame):
        return None
    try:
        import narwhals as nw
    except ImportError:  # pragma: no cover
        return None
    s = nw.from_native(X, eager_only=True, series_only=True, pass_through=True)
    return s.name if isinstance(s, nw.Series) else None


def check_fitted_columns(estimator, X):
    """Split ``X`` and check its columns against those ``estimator`` was fitted on: ``(columns, row_labels)``.

    The one check of ``predict``, ``transform`` and ``explain`` of every
    fitted sktag estimator (it reads ``n_features_in_``, ``layout_`` and
    ``feature_names_in_``).  Columns are matched by the names ``fit`` saw,
    whatever their type: a different number, order or other names are
    refused; a DataFrame-fitted estimator given unnamed columns warns and
    matches them by position.
    """
    columns, names, labels = as_columns(X)
    name = type(estimator).__name__
    if len(columns) != estimator.n_features_in_:
        raise ValueError(f"X has {len(columns)} features, but {name} is expecting {estimator.n_features_in_} "
                         "features as input.")
    fitted = estimator.layout_.feature_names
    if fitted is not None and names is not None and [str(n) for n in names] != [str(n) for n in fitted]:
        raise ValueError(f"The column names of X {list(names)} differ from those seen in fit {list(fitted)}; "
                         "pass the same columns in the same order.")
    if fitted is not None and names is None and hasattr(estimator, "feature_names_in_"):
        import warnings

        from .._runtime.report import user_stacklevel

        warnings.warn(f"X has no column names, but this {name} was fitted with a DataFrame; columns are matched "
                      "by position.", UserWarning, stacklevel=user_stacklevel())
    if len(columns[0]) == 0:
        raise ValueError("Found array with 0 sample(s) (shape=(0,)) while a minimum of 1 is required.")
    return columns, labels


def resolve_domains(domains, n_columns, names):
    """Domain name of each column, from the ``domains`` parameter.

    A dict maps column names (or positions ``0..n-1`` for an array) to
    domains; its keys match a column when they are equal or print the same
    (so ``{0: ...}`` matches a DataFrame column ``0`` and JSON's ``"0"``).
    """
    if isinstance(domains, str):
        out = [domains] * n_columns
    elif isinstance(domains, dict):
        keys = list(domains)
        if names is None:
            names_ = list(range(n_columns))
        else:
            names_ = list(names)
        lookup = {str(k): k for k in keys}
        missing = [n for n in names_ if str(n) not in lookup]
        extra = [k for k in keys if str(k) not in {str(n) for n in names_}]
        if missing or extra:
            what = (f"columns {names_}" if names is not None
                    else f"an array with {n_columns} columns (keys 0..{n_columns - 1})")
            raise ValueError(
                f"domains must name every column of X exactly: X has {what}; missing {missing}, "
                f"unknown {extra}."
            )
        out = [domains[lookup[str(n)]] for n in names_]
    elif isinstance(domains, (list, tuple)):
        if len(domains) != n_columns:
            raise ValueError(f"domains has {len(domains)} names but X has {n_columns} columns.")
        out = list(domains)
    else:
        raise ValueError(f"domains must be a name, a list of names or a dict column -> name, got {domains!r}.")
    for d in out:
        if not isinstance(d, str) or not d.strip():
            raise ValueError(f"every domain must be a non-empty string, got {d!r}.")
        if "/" in d:
            raise ValueError(f"domain names may not contain '/' (they name tags in a TagSet file), got {d!r}.")
    return out


def check_sample_weight(sample_weight, n):
    """Finite, non-negative weights of shape ``(n,)``, not all zero (float64 copy)."""
    if sample_weight is None:
        return np.ones(n, dtype=np.float64)
    if isinstance(sample_weight, numbers.Number):
        sw = np.full(n, float(sample_weight))
    else:
        sw = np.array(sample_weight, dtype=np.float64)
        if sw.ndim != 1 or sw.shape[0] != n:
            raise ValueError(f"sample_weight must have shape ({n},), got {sw.shape}.")
    if not np.all(np.isfinite(sw)):
        raise ValueError("sample_weight contains NaN or infinity.")
    if np.any(sw < 0):
        raise ValueError("sample_weight must be non-negative.")
    if sw.sum() <= 0:
        raise ValueError("sample_weight sums to zero.")
    return sw


def as_input(X):
    """``X`` as a pandas DataFrame or a 1-D object array, RDKit molecules as canonical SMILES.

    The caller's object is not modified (a copy is made where a molecule is
    written as SMILES).
    """
    import pandas as pd

    if isinstance(X, pd.Series):
        values = X.tolist()
        smiles = molecules_as_smiles(values)
        return X if smiles is values else pd.Series(smiles, index=X.index, name=X.name, dtype=object)
    if isinstance(X, pd.DataFrame):
        out = X
        for c in X.columns:
            values = X[c].tolist() if X[c].dtype == object else []
            smiles = molecules_as_smiles(values)
            if smiles is not values:
                out = X.copy() if out is X else out  # the caller's frame is never modified
                out[c] = pd.Series(smiles, index=X.index, dtype=object)
        return out
    if hasattr(X, "columns") and not isinstance(X, np.ndarray):  # polars, pyarrow, ...: through narwhals
        import narwhals as nw

        return as_input(nw.from_native(X, eager_only=True).to_pandas())
    if isinstance(X, (set, frozenset, dict)):
        raise TypeError(f"X must be a sequence of strings or a DataFrame, got {type(X).__name__}")
    arr = np.asarray(X, dtype=object)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim == 2:
        return as_input(pd.DataFrame(arr))
    if arr.ndim != 1:
        raise ValueError(f"X must be 1-D (strings) or 2-D (columns), got shape {arr.shape}")
    out = np.empty(len(arr), dtype=object)
    out[:] = molecules_as_smiles(arr.tolist())
    return out


def take(X, idx):
    """Rows ``idx`` (positions) of ``X`` (a DataFrame, a Series or an array)."""
    return X.iloc[idx] if hasattr(X, "iloc") else X[idx]
