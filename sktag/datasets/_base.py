"""Loaders of the bundled benchmark data sets (scikit-learn conventions)."""

from __future__ import annotations

import gzip
from importlib import resources

import numpy as np
import pandas as pd
from sklearn.utils import Bunch

__all__ = [
    "load_esol",
    "load_lipophilicity",
    "load_bbbp",
    "load_bace",
    "load_tdc_admet",
    "TDC_ADMET_NAMES",
    "load_davis",
    "load_protein_solubility",
]

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
    (data, target) : tuple if ``return_X_y`` is True

    Examples
    --------
    >>> from sktag.datasets import load_esol
    >>> X, y = load_esol(return_X_y=True)
    >>> X.shape, y.shape
    ((1128,), (1128,))
    """
    df = _read("esol.csv.gz")
    y = _numbers(df["measured log solubility in mols per litre"])
    return _smiles_bunch(
        df["smiles"], y, "log_solubility", df["Compound ID"],
        descr=_ESOL_DESCR + _DESCR_FOOTER, as_frame=as_frame, return_X_y=return_X_y,
    )


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


def load_lipophilicity(*, return_X_y=False, as_frame=False):
    """Load the AstraZeneca lipophilicity (logD7.4) data set (regression).

    =================   ==========================
    Samples             4200
    Input               SMILES (1 string column)
    Target              logD at pH 7.4
    Metric              RMSE
    =================   ==========================

    Parameters
    ----------
    return_X_y : bool, default=False
        Return ``(data, target)`` instead of a Bunch.
    as_frame : bool, default=False
        Return pandas objects (see :func:`load_esol`).

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        Same fields as :func:`load_esol`; ``ids`` are ChEMBL ids.
    (data, target) : tuple if ``return_X_y`` is True
    """
    df = _read("lipophilicity.csv.gz")
    return _smiles_bunch(
        df["smiles"], _numbers(df["exp"]), "logD", df["CMPD_CHEMBLID"],
        descr=_LIPO_DESCR + _DESCR_FOOTER, as_frame=as_frame, return_X_y=return_X_y,
    )


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


def load_bbbp(*, return_X_y=False, as_frame=False):
    """Load the BBBP blood-brain-barrier penetration data set (binary).

    =================   ==========================
    Samples             2039 (1560 positive)
    Input               SMILES (1 string column)
    Target              ``p_np`` in {0, 1}
    Metric              ROC-AUC (scaffold split)
    =================   ==========================

    Parameters
    ----------
    return_X_y : bool, default=False
        Return ``(data, target)`` instead of a Bunch.
    as_frame : bool, default=False
        Return pandas objects (see :func:`load_esol`).

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        Same fields as :func:`load_esol` (``target`` is int64; ``ids`` is
        None: the file has no compound ids).
    (data, target) : tuple if ``return_X_y`` is True
    """
    df = _read("bbbp.csv.gz")
    return _smiles_bunch(
        df["smiles"], _numbers(df["p_np"], int), "p_np", None,
        descr=_BBBP_DESCR + _DESCR_FOOTER, as_frame=as_frame, return_X_y=return_X_y,
    )


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


def load_bace(*, return_X_y=False, as_frame=False):
    """Load the BACE-1 inhibitor data set (binary classification).

    =================   ==========================
    Samples             1513 (691 positive)
    Input               SMILES (1 string column)
    Target              ``Class`` in {0, 1}
    Metric              ROC-AUC (scaffold split)
    =================   ==========================

    Parameters
    ----------
    return_X_y : bool, default=False
        Return ``(data, target)`` instead of a Bunch.
    as_frame : bool, default=False
        Return pandas objects (see :func:`load_esol`).

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        Same fields as :func:`load_esol` (``target`` is int64, ``ids`` None).
    (data, target) : tuple if ``return_X_y`` is True
    """
    df = _read("bace.csv.gz")
    return _smiles_bunch(
        df["mol"], _numbers(df["Class"], int), "Class", None,
        descr=_BACE_DESCR + _DESCR_FOOTER, as_frame=as_frame, return_X_y=return_X_y,
    )


# ------------------------------------------------------------------- TDC ADMET
# name -> (task, TDC metric, what is predicted, data-set citation)
_TDC = {
    "caco2_wang": ("regression", "MAE", "log Papp (cm/s), Caco-2 permeability", "Wang et al., J. Chem. Inf. Model. 56:763 (2016)"),
    "hia_hou": ("binary", "AUROC", "human intestinal absorption", "Hou et al., J. Chem. Inf. Model. 47:208 (2007)"),
    "pgp_broccatelli": ("binary", "AUROC", "P-glycoprotein inhibition", "Broccatelli et al., J. Med. Chem. 54:1740 (2011)"),
    "bioavailability_ma": ("binary", "AUROC", "oral bioavailability", "Ma et al., J. Pharm. Biomed. Anal. 47:677 (2008)"),
    "lipophilicity_astrazeneca": ("regression", "MAE", "logD7.4", "AstraZeneca ChEMBL deposit CHEMBL3301361"),
    "solubility_aqsoldb": ("regression", "MAE", "log S (mol/L)", "Sorkun et al., Sci. Data 6:143 (2019)"),
    "bbb_martins": ("binary", "AUROC", "blood-brain-barrier penetration", "Martins et al., J. Chem. Inf. Model. 52:1686 (2012)"),
    "ppbr_az": ("regression", "MAE", "plasma protein binding rate (% bound)", "AstraZeneca ChEMBL deposit"),
    "vdss_lombardo": ("regression", "Spearman", "volume of distribution at steady state (L/kg)", "Lombardo & Jing, J. Chem. Inf. Model. 56:2042 (2016)"),
    "cyp2c9_veith": ("binary", "AUPRC", "CYP2C9 inhibition", "Veith et al., Nat. Biotechnol. 27:1050 (2009)"),
    "cyp2d6_veith": ("binary", "AUPRC", "CYP2D6 inhibition", "Veith et al., Nat. Biotechnol. 27:1050 (2009)"),
    "cyp3a4_veith": ("binary", "AUPRC", "CYP3A4 inhibition", "Veith et al., Nat. Biotechnol. 27:1050 (2009)"),
    "cyp2c9_substrate_carbonmangels": ("binary", "AUPRC", "CYP2C9 substrate", "Carbon-Mangels & Hutter, Mol. Inf. 30:885 (2011)"),
    "cyp2d6_substrate_carbonmangels": ("binary", "AUPRC", "CYP2D6 substrate", "Carbon-Mangels & Hutter, Mol. Inf. 30:885 (2011)"),
    "cyp3a4_substrate_carbonmangels": ("binary", "AUROC", "CYP3A4 substrate", "Carbon-Mangels & Hutter, Mol. Inf. 30:885 (2011)"),
    "half_life_obach": ("regression", "Spearman", "half-life (hours)", "Obach et al., Drug Metab. Dispos. 36:1385 (2008)"),
    "clearance_hepatocyte_az": ("regression", "Spearman", "hepatocyte clearance", "AstraZeneca ChEMBL deposit"),
    "clearance_microsome_az": ("regression", "Spearman", "microsome clearance", "AstraZeneca ChEMBL deposit"),
    "ld50_zhu": ("regression", "MAE", "acute toxicity LD50, -log(mol/kg)", "Zhu et al., Chem. Res. Toxicol. 22:1913 (2009)"),
    "herg": ("binary", "AUROC", "hERG blockade", "Wang et al., Mol. Pharm. 13:2855 (2016)"),
    "ames": ("binary", "AUROC", "Ames mutagenicity", "Xu et al., J. Chem. Inf. Model. 52:2840 (2012)"),
    "dili": ("binary", "AUROC", "drug-induced liver injury", "Xu et al., J. Chem. Inf. Model. 55:2085 (2015)"),
}

#: Names accepted by :func:`load_tdc_admet` (the 22 TDC ADMET benchmarks).
TDC_ADMET_NAMES = tuple(_TDC)

_SCORING = {"MAE": "neg_mean_absolute_error", "AUROC": "roc_auc", "AUPRC": "average_precision", "Spearman": None}

# SMILES that RDKit 2026.09 cannot parse, per (name, split): count
_TDC_UNPARSABLE = {("solubility_aqsoldb", "test"): 2}


def _tdc_descr(name, sizes):
    task, metric, what, cite = _TDC[name]
    bad = {s: n for (nm, s), n in _TDC_UNPARSABLE.items() if nm == name}
    rd = (
        "all SMILES parse with RDKit 2026.09"
        if not bad
        else "; ".join(f"{n} SMILES of the {s} split do not parse with RDKit 2026.09 (kept as published)" for s, n in bad.items())
    )
    return f"""\
TDC ADMET benchmark: {name}
{'-' * (21 + len(name))}

**Task**: {'binary classification' if task == 'binary' else 'regression'} ({what}).
{sizes['train_val']} train_val + {sizes['test']} test molecules (official TDC ADMET
Benchmark Group test set: a fixed scaffold split).  TDC metric: **{metric}**
(``bunch.metric``).  TDC protocol: train on ``train_val`` (TDC splits it
into train/valid with its scaffold split, fractions 0.875/0.125, seeds 1..5)
and report mean +- std of the test metric over the 5 seeds.

**Source**: Therapeutics Data Commons ``admet_group`` files (copy from
ScottCoffin/AutoQSAR @ a766a0af : data/admet_group/{name}/{{train_val,test}}.csv).
Columns: ``Drug_ID`` (-> ``ids``), ``Drug`` (SMILES), ``Y`` (target).
Leading/trailing spaces of some ``Drug_ID`` values are stripped.

**Licence**: CC BY 4.0 as stated on the TDC website (TDC code MIT).

**RDKit check**: {rd}.

**Citation**: K. Huang et al., "Therapeutics Data Commons: machine learning
datasets and tasks for drug discovery and development", NeurIPS Datasets and
Benchmarks (2021), arXiv:2102.09548; data set: {cite}.
"""


def load_tdc_admet(name, *, split="train_val", return_X_y=False, as_frame=False):
    """Load one of the 22 TDC ADMET benchmark data sets with its test split.

    Parameters
    ----------
    name : str
        Benchmark name, case-insensitive, e.g. ``"caco2_wang"`` or
        ``"Caco2_Wang"``; see :data:`TDC_ADMET_NAMES`.
    split : {"train_val", "test"} or None, default="train_val"
        Which part of TDC's official split to return.  ``None`` returns both,
        concatenated (``train_val`` rows first, then ``test``), with the
        ``split`` array (and a ``"split"`` column in ``frame``) holding
        ``"train_val"`` or ``"test"`` for every row.  Use e.g.
        ``sklearn.model_selection.PredefinedSplit(np.where(b.split == "test", 0, -1))``.
    return_X_y : bool, default=False
        Return ``(data, target)`` instead of a Bunch.
    as_frame : bool, default=False
        ``data`` is a :class:`pandas.Series` named ``"smiles"``, ``target`` a
        Series named ``"Y"``, ``frame`` a DataFrame with both.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        ``data`` (SMILES), ``target`` (float for regression, int64 for binary
        tasks), ``frame``, ``target_names`` (``["Y"]``), ``feature_names``
        (``["smiles"]``), ``ids`` (TDC ``Drug_ID``), ``split`` (per-row part
        name), ``name``, ``task`` (``"regression"`` or ``"binary"``),
        ``metric`` (the TDC metric: ``"MAE"``, ``"AUROC"``, ``"AUPRC"`` or
        ``"Spearman"``), ``scoring`` (matching scikit-learn scorer name, or
        None for Spearman: use :func:`scipy.stats.spearmanr`) and ``DESCR``.
    (data, target) : tuple if ``return_X_y`` is True

    Raises
    ------
    ValueError
        For an unknown ``name`` (the message lists the valid names) or
        ``split``.

    Examples
    --------
    >>> from sktag.datasets import load_tdc_admet
    >>> b = load_tdc_admet("caco2_wang", split="test")
    >>> len(b.data), b.metric
    (182, 'MAE')
    """
    if not isinstance(name, str) or name.strip().lower() not in _TDC:
        raise ValueError(
            f"unknown TDC ADMET data set {name!r}; valid names are: " + ", ".join(TDC_ADMET_NAMES)
        )
    key = name.strip().lower()
    if split not in ("train_val", "test", None):
        raise ValueError(f"split must be 'train_val', 'test' or None, got {split!r}")
    task, metric, _, _ = _TDC[key]
    parts = ["train_val", "test"] if split is None else [split]
    frames = []
    for part in parts:
        df = _read(f"tdc_{key}_{part}.csv.gz")
        df["split"] = part
        frames.append(df)
    df = pd.concat(frames, ignore_index=True)
    y = _numbers(df["Y"], int if task == "binary" else float)
    bunch = _smiles_bunch(
        df["Drug"], y, "Y", df["Drug_ID"],
        descr=_tdc_descr(key, _TDC_SIZES[key]) + _DESCR_FOOTER, as_frame=as_frame,
        return_X_y=return_X_y,
    )
    if return_X_y:
        return bunch
    bunch.split = _strings(df["split"])
    if as_frame and split is None:
        bunch.frame["split"] = df["split"].to_numpy(dtype=object)
    bunch.update(name=key, task=task, metric=metric, scoring=_SCORING[metric])
    return bunch


_TDC_SIZES = {
    "caco2_wang": (728, 182), "hia_hou": (461, 117), "pgp_broccatelli": (973, 245),
    "bioavailability_ma": (512, 128), "lipophilicity_astrazeneca": (3360, 840),
    "solubility_aqsoldb": (7985, 1997), "bbb_martins": (1624, 406), "ppbr_az": (2231, 559),
    "vdss_lombardo": (904, 226), "cyp2c9_veith": (9673, 2419), "cyp2d6_veith": (10504, 2626),
    "cyp3a4_veith": (9861, 2467), "cyp2c9_substrate_carbonmangels": (534, 135),
    "cyp2d6_substrate_carbonmangels": (532, 135), "cyp3a4_substrate_carbonmangels": (535, 135),
    "half_life_obach": (532, 135), "clearance_hepatocyte_az": (970, 243),
    "clearance_microsome_az": (881, 221), "ld50_zhu": (5907, 1478), "herg": (523, 132),
    "ames": (5821, 1457), "dili": (379, 96),
}
_TDC_SIZES = {k: {"train_val": a, "test": b} for k, (a, b) in _TDC_SIZES.items()}


# ------------------------------------------------------------------- DAVIS
_DAVIS_DESCR = """\
DAVIS kinase binding affinity (drug-target interaction)
-------------------------------------------------------

**Task**: regression on (drug, protein) pairs: predict pKd = -log10(Kd / 1e9)
(Kd in nM) from the drug SMILES and the kinase amino-acid sequence.
30056 pairs = 68 drugs x 442 kinases (all measured).  20931 pairs sit at the
assay floor Kd = 10000 nM (pKd = 5).  Conventional metrics: MSE and the
concordance index (CI) on the DeepDTA "setting 1" test fold.

``data`` has two string columns: ``"drug"`` (SMILES) and ``"target"``
(protein sequence).  ``fold`` holds the DeepDTA fold of every pair: -1 =
official test fold (5010 pairs), 0..4 = the five training folds used for
cross-validation (use ``PredefinedSplit(fold)`` on the train rows).
``drug_ids`` (PubChem CID) and ``target_ids`` (kinase / mutant names) allow
cold-drug / cold-target splits (e.g. ``GroupKFold``).  Note: the 442 kinase
entries have only 379 distinct sequences (DeepDTA's file gives several
mutant / phosphorylation variants the same sequence), so group by the
sequence itself for a strict cold-target split.

**Source**: DeepDTA repository (hkmztrk/DeepDTA @ a546a843 : data/davis/
ligands_can.txt, proteins.txt, the Kd matrix and folds/*.txt), converted
losslessly to three tables (drugs, proteins, affinity pairs with
``pair_index`` in DeepDTA's row-major ``np.where(~isnan(Y))`` order, so the
folds apply unchanged).  The long pair table is built at load time.

**Licence**: TDC lists DAVIS as "Not Specified. CC BY 4.0"; the DeepDTA
repository has no LICENSE file.

**RDKit check**: all 68 drug SMILES parse with RDKit 2026.09; the protein
sequences use the 20 standard letters plus ``X``.

**Citation**: M. I. Davis et al., "Comprehensive analysis of kinase
inhibitor selectivity", Nat. Biotechnol. 29:1046 (2011); H. Öztürk,
A. Özgür, E. Ozkirimli, "DeepDTA: deep drug-target binding affinity
prediction", Bioinformatics 34:i821 (2018).
"""


def load_davis(*, return_X_y=False, as_frame=False, fold=None):
    """Load the DAVIS kinase drug-target binding-affinity data set.

    =================   ===========================================
    Samples             30056 (drug, kinase) pairs
    Input               2 string columns: ``drug`` (SMILES),
                        ``target`` (protein sequence)
    Target              pKd (5.0 - 10.8)
    Metric              MSE, concordance index (DeepDTA test fold)
    =================   ===========================================

    Parameters
    ----------
    return_X_y : bool, default=False
        Return ``(data, target)`` instead of a Bunch.
    as_frame : bool, default=False
        ``data`` is a DataFrame with columns ``drug`` and ``target``,
        ``target`` a Series named ``"pKd"`` and ``frame`` a DataFrame with
        columns ``drug``, ``target``, ``pKd`` and ``deepdta_fold``.
    fold : None, "test", "train", int or list of int, default=None
        Which DeepDTA pairs to return: ``None`` all, ``"test"`` (or ``-1``)
        the official test fold, ``"train"`` the five training folds 0..4,
        an int in -1..4 or a list of them for those folds.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        ``data`` (object ndarray of shape (n, 2), columns ``drug``,
        ``target``; or DataFrame), ``target`` (pKd, float), ``frame``,
        ``feature_names`` (``["drug", "target"]``), ``target_names``
        (``["pKd"]``), ``fold`` (DeepDTA fold per pair), ``drug_ids``,
        ``target_ids``, ``kd_nM``, ``pair_index`` and ``DESCR``.
    (data, target) : tuple if ``return_X_y`` is True

    Examples
    --------
    >>> from sktag.datasets import load_davis
    >>> X, y = load_davis(return_X_y=True, fold="test")
    >>> X.shape
    (5010, 2)
    """
    aff = _read("davis_affinity.csv.gz")
    drugs = _read("davis_drugs.csv.gz")
    prots = _read("davis_proteins.csv.gz")
    folds = _numbers(aff["deepdta_fold"], int)
    if fold is None:
        keep = np.ones(len(aff), dtype=bool)
    else:
        if isinstance(fold, str):
            if fold == "test":
                wanted = [-1]
            elif fold == "train":
                wanted = [0, 1, 2, 3, 4]
            else:
                raise ValueError(f"fold must be None, 'test', 'train' or ints in -1..4, got {fold!r}")
        else:
            wanted = np.atleast_1d(np.asarray(fold)).tolist()
            if not wanted or any(isinstance(w, bool) or not isinstance(w, (int, np.integer)) or not -1 <= w <= 4 for w in wanted):
                raise ValueError(f"fold must be None, 'test', 'train' or ints in -1..4, got {fold!r}")
        keep = np.isin(folds, wanted)
    aff = aff[keep].reset_index(drop=True)
    folds = folds[keep]

    d_idx = _numbers(aff["drug_index"], int)
    p_idx = _numbers(aff["protein_index"], int)
    # entity tables are stored in index order; check, then gather by position
    if not (np.array_equal(_numbers(drugs["drug_index"], int), np.arange(len(drugs)))
            and np.array_equal(_numbers(prots["protein_index"], int), np.arange(len(prots)))):
        raise RuntimeError("corrupt DAVIS entity tables")  # pragma: no cover
    smiles = _strings(drugs["smiles"])[d_idx]
    seqs = _strings(prots["sequence"])[p_idx]
    X = np.empty((len(aff), 2), dtype=object)
    X[:, 0] = smiles
    X[:, 1] = seqs
    y = _numbers(aff["pKd"])
    frame = None
    if as_frame:
        X = pd.DataFrame({"drug": pd.Series(smiles, dtype=object),
                          "target": pd.Series(seqs, dtype=object)})
        y = pd.Series(y, name="pKd")
        frame = X.assign(pKd=y, deepdta_fold=folds)
    if return_X_y:
        return X, y
    return Bunch(
        data=X,
        target=y,
        frame=frame,
        feature_names=["drug", "target"],
        target_names=["pKd"],
        fold=folds,
        drug_ids=_strings(drugs["drug_id"])[d_idx],
        target_ids=_strings(prots["protein_id"])[p_idx],
        kd_nM=_numbers(aff["kd_nM"]),
        pair_index=_numbers(aff["pair_index"], int),
        DESCR=_DAVIS_DESCR + _DESCR_FOOTER,
    )


# ------------------------------------------------------------------- eSOL
_ESOL_PROT_DESCR = """\
eSOL protein solubility (GraphSol split)
----------------------------------------

**Task**: regression from a protein sequence: predict the solubility (0-1,
fraction soluble in an E. coli cell-free expression system) of E. coli
proteins.  2364 train + 783 test sequences (29-1367 residues; train
46-1367, test 29-1259),
fixed train/test split of GraphSol.  Conventional metric: R^2 on the test
split (also RMSE).  ``ids`` holds the gene names.

**Source**: jcchan23/GraphSol @ 43be8f6e : Data/eSol_train.csv and
Data/eSol_test.csv.

**Licence**: GraphSol repository MIT; no separate data licence stated.

**Check**: every sequence uses only the 20 standard amino-acid letters.

**Citation**: T. Niwa et al., "Bimodal protein solubility distribution
revealed by an aggregation analysis of the entire ensemble of Escherichia
coli proteins", PNAS 106:4201 (2009); X. Han, X. Wang, K. Zhou, Bioinformatics
35:4640 (2019); J. Chen et al., "Structure-aware protein solubility
prediction from sequence through graph convolutional network and predicted
contact map" (GraphSol), J. Cheminform. 13:7 (2021).
"""


def load_protein_solubility(*, split="train", return_X_y=False, as_frame=False):
    """Load the eSOL protein-solubility data set (GraphSol train/test split).

    =================   ==================================
    Samples             2364 train + 783 test
    Input               protein sequence (1 string column)
    Target              solubility in [0, 1]
    Metric              R^2 on the test split
    =================   ==================================

    Parameters
    ----------
    split : {"train", "test"} or None, default="train"
        Which part to return.  ``None`` returns both, concatenated (train
        first), with a per-row ``split`` array (and ``"split"`` column in
        ``frame``).
    return_X_y : bool, default=False
        Return ``(data, target)`` instead of a Bunch.
    as_frame : bool, default=False
        ``data`` is a :class:`pandas.Series` named ``"sequence"``, ``target``
        a Series named ``"solubility"``, ``frame`` a DataFrame with both.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        ``data`` (1-D object ndarray of sequences, or Series), ``target``
        (float), ``frame``, ``feature_names`` (``["sequence"]``),
        ``target_names`` (``["solubility"]``), ``ids`` (gene names),
        ``split`` and ``DESCR``.
    (data, target) : tuple if ``return_X_y`` is True

    Examples
    --------
    >>> from sktag.datasets import load_protein_solubility
    >>> X_test, y_test = load_protein_solubility(split="test", return_X_y=True)
    >>> X_test.shape
    (783,)
    """
    if split not in ("train", "test", None):
        raise ValueError(f"split must be 'train', 'test' or None, got {split!r}")
    frames = []
    for part in ("train", "test"):
        if split is None or split == part:
            df = _read(f"protein_solubility_{part}.csv.gz")
            df["split"] = part
            frames.append(df)
    df = pd.concat(frames, ignore_index=True)
    X = _strings(df["sequence"])
    y = _numbers(df["solubility"])
    frame = None
    if as_frame:
        X = pd.Series(X, name="sequence", dtype=object)
        y = pd.Series(y, name="solubility")
        frame = pd.concat([X, y], axis=1)
        if split is None:
            frame["split"] = df["split"].to_numpy(dtype=object)
    if return_X_y:
        return X, y
    return Bunch(
        data=X,
        target=y,
        frame=frame,
        feature_names=["sequence"],
        target_names=["solubility"],
        ids=_strings(df["gene"]),
        split=_strings(df["split"]),
        DESCR=_ESOL_PROT_DESCR + _DESCR_FOOTER,
    )
