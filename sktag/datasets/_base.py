"""Loaders of the bundled MoleculeNet sets, and the helpers every loader shares (scikit-learn conventions).

The TDC ADMET loader is in :mod:`sktag.datasets._tdc`, the protein sets (DAVIS, protein solubility) in
:mod:`sktag.datasets._proteins`.
"""

from __future__ import annotations

import gzip
from importlib import resources

import numpy as np
import pandas as pd
from sklearn.utils import Bunch

__all__ = ["load_esol", "load_lipophilicity", "load_bbbp", "load_bace"]

_DATA = "data"


def _read(filename):
    """Read a bundled gzip CSV; every field as a stripped string."""
    ref = resources.files(__package__).joinpath(_DATA, filename)
    with ref.open("rb") as raw, gzip.open(raw, "rt", encoding="utf-8", newline="") as fh:
        df = pd.read_csv(fh, dtype=str, keep_default_na=False)
    for col in df.columns:
        df[col] = df[col].str.strip()
    return df


def _strings(series):
    """1-D object ndarray of Python str."""
    return np.asarray(series.tolist(), dtype=object)


def _numbers(series, kind=float):
    values = pd.to_numeric(series, errors="raise").to_numpy(dtype=np.float64)
    if kind is int:
        as_int = values.astype(np.int64)
        if not np.array_equal(as_int, values):  # pragma: no cover - data check
            raise ValueError(f"non-integer labels in {series.name}")
        return as_int
    return values


def _smiles_bunch(smiles, target, target_name, ids, *, descr, as_frame, return_X_y, extra=None):
    """Assemble the Bunch / (X, y) of a single-target SMILES data set."""
    X = _strings(smiles)
    y = target
    frame = None
    if as_frame:
        X = pd.Series(X, name="smiles", dtype=object)
        y = pd.Series(target, name=target_name)
        frame = pd.concat([X, y], axis=1)
    if return_X_y:
        return X, y
    bunch = Bunch(
        data=X,
        target=y,
        frame=frame,
        target_names=[target_name],
        feature_names=["smiles"],
        ids=_strings(ids) if ids is not None else None,
        DESCR=descr,
    )
    if extra:
        bunch.update(extra)
    return bunch


_DESCR_FOOTER = (
    "\nAll string fields are stripped of surrounding whitespace; rows are kept "
    "as published (none dropped or reordered).\n"
)

#: Docstring text the loaders share, by the ``{slot}`` that stands for it.
_DOC_SLOTS = {
    "{parameters}": """Parameters
    ----------
    return_X_y : bool, default=False
        Return ``(data, target)`` instead of a Bunch.
    as_frame : bool, default=False
        Return pandas objects (see :func:`load_esol`).""",
    "{tuple_return}": """(data, target) : tuple if ``return_X_y`` is True
        The inputs and the targets, without the Bunch.""",
}


def _fill_doc(func):
    """Replace the ``{slot}`` markers of ``func``'s docstring by the shared text."""
    if func.__doc__:  # None under python -OO
        for slot, text in _DOC_SLOTS.items():
            func.__doc__ = func.__doc__.replace(slot, text)
    return func


#: The bundled MoleculeNet sets: file, SMILES column, target column and name, target type, ids column.
_MOLECULENET = {
    "esol": ("esol.csv.gz", "smiles", "measured log solubility in mols per litre", "log_solubility", float,
             "Compound ID"),
    "lipophilicity": ("lipophilicity.csv.gz", "smiles", "exp", "logD", float, "CMPD_CHEMBLID"),
    "bbbp": ("bbbp.csv.gz", "smiles", "p_np", "p_np", int, None),
    "bace": ("bace.csv.gz", "mol", "Class", "Class", int, None),
}


def _load_moleculenet(name, descr, *, return_X_y, as_frame):
    """Read the bundled MoleculeNet set ``name`` into a Bunch or ``(X, y)``."""
    filename, smiles_col, target_col, target_name, kind, ids_col = _MOLECULENET[name]
    df = _read(filename)
    return _smiles_bunch(
        df[smiles_col], _numbers(df[target_col], kind), target_name,
        None if ids_col is None else df[ids_col],
        descr=descr + _DESCR_FOOTER, as_frame=as_frame, return_X_y=return_X_y,
    )


# ------------------------------------------------------------------- MoleculeNet
_ESOL_DESCR = """\
ESOL (Delaney) aqueous solubility
---------------------------------

**Task**: regression. Predict the measured aqueous solubility, log10(mol/L),
from the SMILES.  1128 molecules, 1 target (``log_solubility``).
Conventional metric: RMSE (MoleculeNet: random 80/10/10 split).

**Source**: MoleculeNet ``delaney-processed.csv`` as distributed with
DeepChem/MoleculeNet (copy from ScottCoffin/AutoQSAR @ a766a0af :
data/moleculenet/delaney-processed.csv; identical to chemprop's
data/delaney.csv, where the target column is misleadingly named ``logp``).
Only the columns ``Compound ID`` (-> ``ids``), the measured solubility and
``smiles`` are bundled.  212 SMILES had trailing whitespace in the original
file; it is stripped.

**Licence**: DeepChem/MoleculeNet distribution (MIT-licensed repositories);
the original data is the supporting information of Delaney (2004); no data
licence is stated.

**RDKit check**: all 1128 SMILES parse with RDKit 2026.09.

**Citation**: J. S. Delaney, "ESOL: estimating aqueous solubility directly
from molecular structure", J. Chem. Inf. Comput. Sci. 44:1000 (2004);
Z. Wu et al., "MoleculeNet: a benchmark for molecular machine learning",
Chem. Sci. 9:513 (2018).
"""


@_fill_doc
def load_esol(*, return_X_y=False, as_frame=False):
    """Load the ESOL (Delaney) aqueous-solubility data set (regression).

    =================   ==========================
    Samples             1128
    Input               SMILES (1 string column)
    Target              log10 solubility (mol/L)
    Metric              RMSE
    =================   ==========================

    Parameters
    ----------
    return_X_y : bool, default=False
        Return ``(data, target)`` instead of a Bunch.
    as_frame : bool, default=False
        ``data`` is a :class:`pandas.Series` named ``"smiles"``, ``target`` a
        Series and ``frame`` a DataFrame with both.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        ``data`` (1-D object ndarray of SMILES str, or Series), ``target``
        (float ndarray or Series), ``frame`` (DataFrame or None),
        ``target_names``, ``feature_names`` (``["smiles"]``), ``ids``
        (compound names) and ``DESCR``.
    {tuple_return}

    Examples
    --------
    >>> from sktag.datasets import load_esol
    >>> X, y = load_esol(return_X_y=True)
    >>> X.shape, y.shape
    ((1128,), (1128,))
    """
    return _load_moleculenet("esol", _ESOL_DESCR, return_X_y=return_X_y, as_frame=as_frame)


_LIPO_DESCR = """\
Lipophilicity (AstraZeneca)
---------------------------

**Task**: regression. Predict the octanol/water distribution coefficient at
pH 7.4 (logD7.4) from the SMILES.  4200 molecules, 1 target (``logD``).
Conventional metric: RMSE (MoleculeNet: random split).  The same molecules
with TDC's official scaffold test split are in
``load_tdc_admet("lipophilicity_astrazeneca")`` (metric MAE).

**Source**: MoleculeNet ``Lipophilicity.csv`` (copy from
ScottCoffin/AutoQSAR @ a766a0af : data/moleculenet/Lipophilicity.csv;
identical to chemprop's data/lipo.csv).  ``ids`` holds the ChEMBL ids.

**Licence**: TDC lists Lipophilicity_AstraZeneca as "Not Specified. CC BY
4.0"; the source is ChEMBL deposition CHEMBL3301361 (ChEMBL is CC BY-SA 3.0).

**RDKit check**: all 4200 SMILES parse with RDKit 2026.09.

**Citation**: AstraZeneca, ChEMBL deposited data set CHEMBL3301361 (2015);
Z. Wu et al., Chem. Sci. 9:513 (2018).
"""


@_fill_doc
def load_lipophilicity(*, return_X_y=False, as_frame=False):
    """Load the AstraZeneca lipophilicity (logD7.4) data set (regression).

    =================   ==========================
    Samples             4200
    Input               SMILES (1 string column)
    Target              logD at pH 7.4
    Metric              RMSE
    =================   ==========================

    {parameters}

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        Same fields as :func:`load_esol`; ``ids`` are ChEMBL ids.
    {tuple_return}
    """
    return _load_moleculenet("lipophilicity", _LIPO_DESCR, return_X_y=return_X_y, as_frame=as_frame)


_BBBP_DESCR = """\
BBBP blood-brain-barrier penetration
------------------------------------

**Task**: binary classification. 1 = the compound penetrates the blood-brain
barrier.  2039 molecules, 1560 positive, 1 target (``p_np``).
Conventional metric: ROC-AUC (MoleculeNet: scaffold 80/10/10 split, see
:class:`sktag.model_selection.ScaffoldSplit`).

**Source**: MoleculeNet BBBP as shipped by chemprop (chemprop/chemprop @
a68ade20 : data/bbbp.csv).  The same data, minus 9 rows, is TDC's
BBB_Martins (``load_tdc_admet("bbb_martins")``).

**Licence**: no data licence stated; the chemprop repository is MIT; TDC
lists BBB_Martins as CC BY 4.0.

**RDKit check**: the file is known to hold a few SMILES that older RDKit
releases reject (valence errors).  With RDKit 2026.09 all 2039 parse.  The
loader keeps every row as published: check with
``sktag.domains.validate_strings(X, "SMILES", errors="nan")`` on your RDKit
version.

**Citation**: I. F. Martins et al., "A Bayesian approach to in silico
blood-brain barrier penetration modeling", J. Chem. Inf. Model. 52:1686
(2012); Z. Wu et al., Chem. Sci. 9:513 (2018).
"""


@_fill_doc
def load_bbbp(*, return_X_y=False, as_frame=False):
    """Load the BBBP blood-brain-barrier penetration data set (binary).

    =================   ==========================
    Samples             2039 (1560 positive)
    Input               SMILES (1 string column)
    Target              ``p_np`` in {0, 1}
    Metric              ROC-AUC (scaffold split)
    =================   ==========================

    Every row is kept as published, also the few SMILES that older RDKit
    releases reject: ``sktag.domains.validate_strings(X, "SMILES",
    errors="nan")`` checks them on your RDKit version.

    {parameters}

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        Same fields as :func:`load_esol` (``target`` is int64; ``ids`` is
        None: the file has no compound ids).
    {tuple_return}
    """
    return _load_moleculenet("bbbp", _BBBP_DESCR, return_X_y=return_X_y, as_frame=as_frame)


_BACE_DESCR = """\
BACE beta-secretase 1 inhibitors
--------------------------------

**Task**: binary classification. 1 = inhibitor of human BACE-1.
1513 molecules, 691 positive, 1 target (``Class``).
Conventional metric: ROC-AUC (MoleculeNet: scaffold split).

**Source**: MoleculeNet BACE as shipped by chemprop (chemprop/chemprop @
f814b63e : data/bace.csv; SMILES column ``mol``).

**Licence**: no data licence stated; the chemprop repository is MIT.

**RDKit check**: all 1513 SMILES parse with RDKit 2026.09.

**Citation**: G. Subramanian et al., "Computational modeling of
beta-secretase 1 (BACE-1) inhibitors using ligand based approaches",
J. Chem. Inf. Model. 56:1936 (2016); Z. Wu et al., Chem. Sci. 9:513 (2018).
"""


@_fill_doc
def load_bace(*, return_X_y=False, as_frame=False):
    """Load the BACE-1 inhibitor data set (binary classification).

    =================   ==========================
    Samples             1513 (691 positive)
    Input               SMILES (1 string column)
    Target              ``Class``: 1 = inhibitor, 0 = non-inhibitor
    Metric              ROC-AUC (scaffold split)
    =================   ==========================

    {parameters}

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        Same fields as :func:`load_esol` (``target`` is int64, ``ids`` None).
    {tuple_return}
    """
    return _load_moleculenet("bace", _BACE_DESCR, return_X_y=return_X_y, as_frame=as_frame)
