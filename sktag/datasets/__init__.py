"""Bundled benchmark data sets for SMILES and protein-sequence learning.

All loaders follow scikit-learn's ``load_*`` conventions (a
:class:`~sklearn.utils.Bunch`, ``return_X_y``, ``as_frame``).  The data is
shipped inside the package as gzip-compressed CSV files (no download); see
``sktag/datasets/data/README.md`` for provenance, licences and citations.
FreeSolv is deliberately not shipped (CC BY-NC-SA 4.0).

=============================  =========================  ===============
loader                         input -> target            metric
=============================  =========================  ===============
:func:`load_esol`              SMILES -> log solubility   RMSE
:func:`load_lipophilicity`     SMILES -> logD7.4          RMSE
:func:`load_bbbp`              SMILES -> BBB penetration  ROC-AUC
:func:`load_bace`              SMILES -> BACE-1 inhibitor ROC-AUC
:func:`load_tdc_admet`         SMILES -> 22 ADMET tasks   TDC metric
:func:`load_davis`             SMILES + protein -> pKd    MSE, CI
:func:`load_protein_solubility` protein -> solubility     R^2
=============================  =========================  ===============

:func:`read_molecules` reads your own molecules from SDF, SMILES, CSV/TSV or
Parquet files, naming every record RDKit cannot read.
"""

from ._base import load_bace, load_bbbp, load_esol, load_lipophilicity
from ._files import read_molecules
from ._proteins import load_davis, load_protein_solubility
from ._tdc import TDC_ADMET_NAMES, load_tdc_admet

__all__ = [
    "TDC_ADMET_NAMES",
    "load_bace",
    "load_bbbp",
    "load_davis",
    "load_esol",
    "load_lipophilicity",
    "load_protein_solubility",
    "load_tdc_admet",
    "read_molecules",
]
