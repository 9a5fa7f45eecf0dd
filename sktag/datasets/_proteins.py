"""Loaders of the bundled protein data sets: DAVIS (drug + protein -> pKd) and protein solubility."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.utils import Bunch

from ._base import _DESCR_FOOTER, _numbers, _read, _strings

__all__ = ["load_davis", "load_protein_solubility"]


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
        The inputs and the targets, without the Bunch.

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
    keep = _davis_rows(folds, fold)
    aff = aff[keep].reset_index(drop=True)
    folds = folds[keep]
    d_idx, p_idx = _davis_positions(aff, drugs, prots)
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
    return _loaded(
        X, y, frame, ["drug", "target"], ["pKd"], _DAVIS_DESCR, return_X_y=return_X_y,
        fold=folds,
        drug_ids=_strings(drugs["drug_id"])[d_idx],
        target_ids=_strings(prots["protein_id"])[p_idx],
        kd_nM=_numbers(aff["kd_nM"]),
        pair_index=_numbers(aff["pair_index"], int),
    )


def _davis_rows(folds, fold):
    """Boolean mask of the pairs whose DeepDTA fold ``fold`` asks for (see :func:`load_davis`)."""
    if fold is None:
        return np.ones(len(folds), dtype=bool)
    if isinstance(fold, str):
        wanted = {"test": [-1], "train": [0, 1, 2, 3, 4]}.get(fold)
    else:
        wanted = np.atleast_1d(np.asarray(fold)).tolist()
        if not wanted or any(isinstance(w, bool) or not isinstance(w, (int, np.integer)) or not -1 <= w <= 4
                             for w in wanted):
            wanted = None
    if wanted is None:
        raise ValueError(f"fold must be None, 'test', 'train' or ints in -1..4, got {fold!r}")
    return np.isin(folds, wanted)


def _davis_positions(aff, drugs, prots):
    """Row positions, in the drug and protein tables, of every pair of ``aff``."""
    # entity tables are stored in index order; check, then gather by position
    if not (np.array_equal(_numbers(drugs["drug_index"], int), np.arange(len(drugs)))
            and np.array_equal(_numbers(prots["protein_index"], int), np.arange(len(prots)))):
        raise RuntimeError("corrupt DAVIS entity tables")  # pragma: no cover
    return _numbers(aff["drug_index"], int), _numbers(aff["protein_index"], int)


def _loaded(X, y, frame, feature_names, target_names, descr, *, return_X_y, **extra):
    """What a loader returns: ``(X, y)``, or the Bunch with the ``extra`` fields."""
    if return_X_y:
        return X, y
    return Bunch(data=X, target=y, frame=frame, feature_names=feature_names, target_names=target_names,
                 **extra, DESCR=descr + _DESCR_FOOTER)


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
        The inputs and the targets, without the Bunch.

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
    return _loaded(X, y, frame, ["sequence"], ["solubility"], _ESOL_PROT_DESCR, return_X_y=return_X_y,
                   ids=_strings(df["gene"]), split=_strings(df["split"]))
