"""Molecules from files: SDF, SMILES files and delimited text, with every unreadable record named."""

from __future__ import annotations

import gzip
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = ["read_molecules"]

#: file kinds by suffix (after a ``.gz``)
_KINDS = {".sdf": "sdf", ".sd": "sdf", ".mol": "sdf", ".smi": "smi", ".smiles": "smi", ".csv": "csv",
          ".tsv": "tsv", ".tab": "tsv", ".parquet": "parquet", ".pq": "parquet"}


def read_molecules(path, *, target=None, smiles_column="smiles", sep=None, return_X_y=False,
                   on_invalid="raise"):
    """Read molecules and their properties from an SDF, SMILES, CSV/TSV or Parquet file.

    The kind of file follows from its name: ``.sdf`` / ``.sd`` (RDKit's SD
    reader; the ``> <name>`` fields become columns), ``.smi`` / ``.smiles``
    (a SMILES and an optional name per line), ``.csv``, ``.tsv`` / ``.tab``
    and ``.parquet``; each may be gzip-compressed (``.sdf.gz``).
    Every molecule is checked with RDKit, and a record that cannot be read is
    named by its place in the file, never dropped silently.

    Parameters
    ----------
    path : str or path-like
        The file.
    target : str or None, default=None
        A property (SDF field or column) to return as ``y``: numbers where
        every value is one, else the values as strings (class labels).
        Required with ``return_X_y=True``.
    smiles_column : str, default="smiles"
        The column of SMILES strings in a CSV/TSV/Parquet file; for SDF and
        SMILES files, the name given to the column of their molecules
        (written as canonical SMILES).
    sep : str or None, default=None
        Delimiter of a text file; None infers it from the name (``,`` for
        ``.csv``, a tab for ``.tsv``, whitespace for ``.smi``).
    return_X_y : bool, default=False
        Return ``(X, y)``: the SMILES column as a pandas Series and the
        target as an array.
    on_invalid : {"raise", "warn"}, default="raise"
        What to do with records RDKit cannot read (and, with ``target``,
        records without a value for it): ``"raise"`` a ``ValueError`` naming
        every one of them; ``"warn"``: leave them out with a warning that
        names them (they are also listed in ``frame.attrs["invalid"]``).

    Returns
    -------
    frame : pandas.DataFrame
        One row per molecule: ``smiles_column`` and the file's other fields
        as strings (an SDF record's title is the column ``"name"``).  The
        index is the molecule's place in the file (SDF: record number from 1;
        text files: line number, the header being line 1; Parquet: row from
        0), so a row can be traced back.  Returned when ``return_X_y`` is
        False.
    (X, y) : tuple of pandas.Series and ndarray
        Returned when ``return_X_y`` is True.

    Raises
    ------
    ValueError
        The file is missing or unreadable, a column is missing, or (with
        ``on_invalid="raise"``) a record cannot be read.

    Examples
    --------
    >>> import os
    >>> import tempfile
    >>> from sktag.datasets import read_molecules
    >>> path = os.path.join(tempfile.mkdtemp(), "mols.smi")
    >>> with open(path, "w") as f:
    ...     _ = f.write("CCO ethanol\\nc1ccccc1 benzene\\n")
    >>> read_molecules(path)
          smiles     name
    line
    1        CCO  ethanol
    2   c1ccccc1  benzene
    """
    from sktag._runtime.rdkit import require_rdkit

    require_rdkit("read_molecules")
    if on_invalid not in ("raise", "warn"):
        raise ValueError(f"on_invalid must be 'raise' or 'warn', got {on_invalid!r}")
    if return_X_y and target is None:
        raise ValueError("return_X_y=True needs a target (the property to return as y)")
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: no such file")
    kind = _kind(path)
    if kind == "sdf":
        frame, bad = _read_sdf(path, smiles_column)
    elif kind == "smi":
        frame, bad = _read_smi(path, smiles_column, sep)
    else:
        frame, bad = _read_table(path, kind, smiles_column, sep)
    if target is not None:
        if target not in frame.columns:
            raise ValueError(f"{path}: no property {target!r}; the properties are "
                             f"{[c for c in frame.columns if c != smiles_column]}")
        unreadable = {i for i, _ in bad}
        empty = [(i, f"no value for {target!r}") for i, v in frame[target].items() if i not in unreadable
                 and (v is None or (isinstance(v, float) and np.isnan(v)) or str(v).strip() == "")]
        bad = sorted(bad + empty)
    if bad:
        where = frame.index.name
        shown = "; ".join(f"{where} {i}: {why}" for i, why in bad[:10]) + (" ..." if len(bad) > 10 else "")
        msg = f"{path}: {len(bad)} record(s) that cannot be used: {shown}"
        if on_invalid == "raise":
            raise ValueError(msg + " (on_invalid='warn' leaves them out with a warning)")
        warnings.warn(msg + "; they are left out", UserWarning, stacklevel=2)
        frame = frame.drop(index=[i for i, _ in bad if i in frame.index])
    frame.attrs["invalid"] = [{"record": i, "reason": why} for i, why in bad]
    if not return_X_y:
        return frame
    return frame[smiles_column], _as_target(frame[target])


def _kind(path):
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes = suffixes[:-1]
    kind = _KINDS.get(suffixes[-1]) if suffixes else None
    if kind is None:
        raise ValueError(f"{path}: unknown kind of file; expected one of {sorted(_KINDS)} (optionally .gz)")
    return kind


def _open(path):
    return gzip.open(path, "rb") if path.suffix.lower() == ".gz" else open(path, "rb")


def _read_sdf(path, smiles_column):
    """Every SD record: its canonical SMILES, title and fields; the records RDKit cannot read."""
    from rdkit import Chem

    from sktag._runtime.rdkit import rdkit_quiet

    rows, index, bad = [], [], []
    try:
        with _open(path) as fh, rdkit_quiet():
            for i, mol in enumerate(Chem.ForwardSDMolSupplier(fh), start=1):
                index.append(i)
                if mol is None:
                    bad.append((i, "RDKit cannot read this record"))
                    rows.append({smiles_column: None})
                    continue
                props = {k: str(v) for k, v in mol.GetPropsAsDict(includePrivate=False).items()}
                title = mol.GetProp("_Name") if mol.HasProp("_Name") else ""
                rows.append({smiles_column: Chem.MolToSmiles(mol), "name": title, **props})
    except OSError as exc:
        raise ValueError(f"{path} is not a readable SD file: {exc}") from None
    if not rows:
        raise ValueError(f"{path}: no molecule records")
    frame = pd.DataFrame(rows, index=pd.Index(index, name="record"))
    return frame, bad


def _read_smi(path, smiles_column, sep):
    """A SMILES and an optional name per line (a header line naming a SMILES column is skipped)."""
    with _open(path) as fh:
        lines = fh.read().decode("utf-8").splitlines()
    rows, index, first = [], [], True
    for n, line in enumerate(lines, start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        parts = line.strip().split(sep, 1) if sep else line.split(None, 1)
        header = first and parts[0].strip().lower() in ("smiles", "smi", smiles_column.lower())
        first = False
        if header:
            continue
        rows.append({smiles_column: parts[0].strip(), "name": parts[1].strip() if len(parts) > 1 else ""})
        index.append(n)
    if not rows:
        raise ValueError(f"{path}: no SMILES lines")
    frame = pd.DataFrame(rows, index=pd.Index(index, name="line"))
    return frame, _unparsable(frame[smiles_column])


def _read_table(path, kind, smiles_column, sep):
    """A CSV/TSV/Parquet file with a SMILES column; rows named by their line (header = line 1)."""
    try:
        if kind == "parquet":
            frame = pd.read_parquet(path)
            frame.index = pd.RangeIndex(len(frame), name="row")
        else:
            sep = sep or ("\t" if kind == "tsv" else ",")
            frame = pd.read_csv(path, sep=sep, dtype=str, keep_default_na=False)
            frame.index = pd.RangeIndex(2, len(frame) + 2, name="line")
    except Exception as exc:
        raise ValueError(f"{path} is not a readable {kind.upper()} file: {exc}") from None
    if smiles_column not in frame.columns:
        raise ValueError(f"{path}: no column {smiles_column!r}; the columns are {list(frame.columns)} "
                         "(smiles_column names the SMILES column)")
    return frame, _unparsable(frame[smiles_column])


def _unparsable(smiles):
    """``[(index, reason)]`` of the SMILES that RDKit cannot parse (missing ones included)."""
    from sktag._runtime.rdkit import parse_smiles, rdkit_quiet

    bad = []
    with rdkit_quiet():
        for i, s in smiles.items():
            if not isinstance(s, str) or not s.strip():
                bad.append((i, "no SMILES"))
                continue
            mol, reason = parse_smiles(s)
            if mol is None:
                bad.append((i, f"{s!r}: {reason}"))
    return bad


def _as_target(values):
    """Numbers where every value is one, else the values as strings."""
    num = pd.to_numeric(values, errors="coerce")
    if num.notna().all():
        return num.to_numpy(dtype=float)
    return values.astype(str).str.strip().to_numpy(dtype=object)
