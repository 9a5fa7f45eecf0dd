"""Bundled data sets: shapes, values, conventions."""

import gzip
from importlib import resources

import numpy as np
import pandas as pd
import pytest
from sklearn.utils import Bunch

from sktag.datasets import (
    TDC_ADMET_NAMES,
    load_bace,
    load_bbbp,
    load_davis,
    load_esol,
    load_lipophilicity,
    load_protein_solubility,
    load_tdc_admet,
)

SIMPLE = [
    # loader, n rows, target name, first SMILES, first target, dtype kind
    (load_esol, 1128, "log_solubility", "OCC3OC(OCC2OC(OC(C#N)c1ccccc1)C(O)C(O)C2O)C(O)C(O)C3O", -0.77, "f"),
    (load_lipophilicity, 4200, "logD", "Cn1c(CN2CCN(CC2)c3ccc(Cl)cc3)nc4ccccc14", 3.54, "f"),
    (load_bbbp, 2039, "p_np", "[Cl].CC(C)NCC(O)COc1cccc2ccccc12", 1, "i"),
    (load_bace, 1513, "Class", "O1CC[C@@H](NC(=O)[C@@H](Cc2cc3cc(ccc3nc2N)-c2ccccc2C)C)CC1(C)C", 1, "i"),
]


@pytest.mark.parametrize("loader,n,tname,first,y0,kind", SIMPLE)
def test_smiles_loaders(loader, n, tname, first, y0, kind):
    b = loader()
    assert isinstance(b, Bunch)
    assert b.data.shape == (n,) and b.data.dtype == object
    assert all(type(s) is str and s == s.strip() and s for s in b.data)
    assert b.data[0] == first and b.target[0] == pytest.approx(y0)
    assert b.target.dtype.kind == kind and b.target.shape == (n,)
    assert b.frame is None
    assert b.target_names == [tname] and b.feature_names == ["smiles"]
    assert f"{n}" in b.DESCR and "Licence" in b.DESCR and "Citation" in b.DESCR
    X, y = loader(return_X_y=True)
    np.testing.assert_array_equal(X, b.data)
    np.testing.assert_array_equal(y, b.target)


@pytest.mark.parametrize("loader,n,tname,first,y0,kind", SIMPLE)
def test_smiles_loaders_as_frame(loader, n, tname, first, y0, kind):
    b = loader(as_frame=True)
    assert isinstance(b.data, pd.Series) and b.data.name == "smiles"
    assert isinstance(b.target, pd.Series) and b.target.name == tname
    assert list(b.frame.columns) == ["smiles", tname] and len(b.frame) == n
    X, y = loader(return_X_y=True, as_frame=True)
    assert X.iloc[0] == first and isinstance(y, pd.Series)


def test_esol_whitespace_stripped_and_ids():
    b = load_esol()
    # Amigdalin's SMILES had trailing whitespace in the MoleculeNet file
    assert b.ids[0] == "Amigdalin" and not b.data[0].endswith(" ")
    assert b.target.min() == pytest.approx(-11.6) and b.target.max() == pytest.approx(1.58)


def test_class_balance_matches_sources():
    assert load_bbbp().target.sum() == 1560
    assert load_bace().target.sum() == 691


def test_no_freesolv_and_size_budget():
    files = list(resources.files("sktag.datasets").joinpath("data").iterdir())
    names = [f.name for f in files]
    assert not any("freesolv" in n.lower() or "sampl" in n.lower() for n in names)
    assert "README.md" in names
    total = sum(f.stat().st_size for f in map(lambda f: __import__("pathlib").Path(str(f)), files))
    assert total < 4 * 1024 * 1024
    for f in files:
        if f.name.endswith(".gz"):
            with f.open("rb") as fh:
                assert fh.read(2) == b"\x1f\x8b"  # really gzip


# ----------------------------------------------------------------- TDC
TDC_SIZES = {
    "caco2_wang": (728, 182, "MAE"), "hia_hou": (461, 117, "AUROC"),
    "pgp_broccatelli": (973, 245, "AUROC"), "bioavailability_ma": (512, 128, "AUROC"),
    "lipophilicity_astrazeneca": (3360, 840, "MAE"), "solubility_aqsoldb": (7985, 1997, "MAE"),
    "bbb_martins": (1624, 406, "AUROC"), "ppbr_az": (2231, 559, "MAE"),
    "vdss_lombardo": (904, 226, "Spearman"), "cyp2c9_veith": (9673, 2419, "AUPRC"),
    "cyp2d6_veith": (10504, 2626, "AUPRC"), "cyp3a4_veith": (9861, 2467, "AUPRC"),
    "cyp2c9_substrate_carbonmangels": (534, 135, "AUPRC"),
    "cyp2d6_substrate_carbonmangels": (532, 135, "AUPRC"),
    "cyp3a4_substrate_carbonmangels": (535, 135, "AUROC"), "half_life_obach": (532, 135, "Spearman"),
    "clearance_hepatocyte_az": (970, 243, "Spearman"), "clearance_microsome_az": (881, 221, "Spearman"),
    "ld50_zhu": (5907, 1478, "MAE"), "herg": (523, 132, "AUROC"), "ames": (5821, 1457, "AUROC"),
    "dili": (379, 96, "AUROC"),
}


def test_tdc_all_22_shipped():
    assert sorted(TDC_ADMET_NAMES) == sorted(TDC_SIZES) and len(TDC_ADMET_NAMES) == 22


@pytest.mark.parametrize("name", sorted(TDC_SIZES))
def test_tdc_sizes_metrics_and_disjoint(name):
    n_tv, n_te, metric = TDC_SIZES[name]
    tv = load_tdc_admet(name)  # default split: train_val
    te = load_tdc_admet(name.upper(), split="test")
    assert len(tv.data) == n_tv and len(te.data) == n_te
    assert tv.metric == te.metric == metric and tv.name == name
    assert (tv.split == "train_val").all() and (te.split == "test").all()
    assert not set(tv.data) & set(te.data)  # official split: no shared SMILES
    if metric in ("AUROC", "AUPRC"):
        assert tv.task == "binary" and tv.target.dtype.kind == "i"
        assert set(np.unique(tv.target)) == {0, 1}
    else:
        assert tv.task == "regression" and tv.target.dtype.kind == "f"
    assert all(s == s.strip() for s in tv.ids)


def test_tdc_split_none_concatenates():
    b = load_tdc_admet("Caco2_Wang", split=None, as_frame=True)
    assert len(b.data) == 910 and list(b.frame.columns) == ["smiles", "Y", "split"]
    assert (b.split[:728] == "train_val").all() and (b.split[728:] == "test").all()
    te = load_tdc_admet("caco2_wang", split="test")
    np.testing.assert_array_equal(b.data[728:].to_numpy(), te.data)
    assert b.scoring == "neg_mean_absolute_error"
    assert te.data[0].startswith("O=C(O)C[C@@H](c1cnc2ccccc2c1)") and te.target[0] == pytest.approx(-5.69)
    assert te.ids[0] == "I-II"
    X, y = load_tdc_admet("caco2_wang", split=None, return_X_y=True)
    assert X.shape == y.shape == (910,)


def test_tdc_bad_arguments():
    with pytest.raises(ValueError, match="valid names are: .*caco2_wang.*dili"):
        load_tdc_admet("caco2")
    with pytest.raises(ValueError, match="split"):
        load_tdc_admet("caco2_wang", split="train")


# ----------------------------------------------------------------- DAVIS
def test_davis_long_table():
    b = load_davis()
    assert b.data.shape == (30056, 2) and b.data.dtype == object
    assert b.feature_names == ["drug", "target"] and b.target_names == ["pKd"]
    assert b.target.min() == pytest.approx(5.0) and b.target.max() == pytest.approx(10.8, abs=0.05)
    assert (b.target == 5.0).sum() == 20931
    np.testing.assert_allclose(b.target, -np.log10(b.kd_nM / 1e9), atol=1e-5)
    assert len(set(b.data[:, 0])) == 68 and len(set(b.target_ids)) == 442
    # some mutant / variant kinases share a sequence in DeepDTA's file
    assert len(set(b.data[:, 1])) == 379
    assert b.data[0, 0] == "CC1=C2C=C(C=CC2=NN1)C3=CC(=CN=C3)OCC(CC4=CC=CC=C4)N"
    assert b.target_ids[0] == "AAK1" and b.data[0, 1].startswith("MKKFFDSRREQ")
    assert b.target[0] == pytest.approx(7.366532)
    assert dict(zip(*np.unique(b.fold, return_counts=True))) == {-1: 5010, 0: 5010, 1: 5009, 2: 5009, 3: 5009, 4: 5009}
    np.testing.assert_array_equal(b.pair_index, np.arange(30056))


def test_davis_folds_and_frame():
    X, y = load_davis(return_X_y=True, fold="test")
    assert X.shape == (5010, 2) and y.shape == (5010,)
    tr = load_davis(fold="train")
    assert len(tr.data) == 25046 and (tr.fold >= 0).all()
    assert len(load_davis(fold=[0, 1]).data) == 10019
    f = load_davis(as_frame=True, fold=-1)
    assert list(f.data.columns) == ["drug", "target"]
    assert list(f.frame.columns) == ["drug", "target", "pKd", "deepdta_fold"]
    assert (f.frame.deepdta_fold == -1).all()
    for bad in ("valid", 5, [True], []):
        with pytest.raises(ValueError, match="fold"):
            load_davis(fold=bad)


# ----------------------------------------------------------------- eSOL
def test_protein_solubility():
    tr = load_protein_solubility()
    te = load_protein_solubility(split="test")
    assert tr.data.shape == (2364,) and te.data.shape == (783,)
    assert te.ids[0] == "acpS" and te.target[0] == pytest.approx(0.84)
    assert te.data[0].startswith("MAILGLGTDIVEIARIEAV")
    assert 0 <= tr.target.min() and tr.target.max() <= 1
    lengths = [len(s) for s in np.concatenate([tr.data, te.data])]
    assert min(lengths) == 29 and max(lengths) == 1367
    both = load_protein_solubility(split=None, as_frame=True)
    assert len(both.frame) == 3147 and list(both.frame.columns) == ["sequence", "solubility", "split"]
    X, y = load_protein_solubility(split="test", return_X_y=True)
    assert X.dtype == object and y.shape == (783,)
    with pytest.raises(ValueError):
        load_protein_solubility(split="valid")


def test_gzip_files_are_clean_csv():
    ref = resources.files("sktag.datasets").joinpath("data", "esol.csv.gz")
    with ref.open("rb") as fh:
        text = gzip.decompress(fh.read()).decode()
    header = text.splitlines()[0]
    assert header == "Compound ID,measured log solubility in mols per litre,smiles"
    assert len(text.splitlines()) == 1129
