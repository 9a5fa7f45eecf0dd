"""Loader of the bundled TDC ADMET benchmark group (official train_val / test parts)."""

from __future__ import annotations

import pandas as pd

from ._base import _DESCR_FOOTER, _numbers, _read, _smiles_bunch, _strings

__all__ = ["load_tdc_admet", "TDC_ADMET_NAMES"]


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
        The inputs and the targets, without the Bunch.

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
