"""Scaffold groups and ScaffoldSplit on real molecules."""

import numpy as np
import pandas as pd
import pytest
pytest.importorskip("rdkit")  # every test here needs RDKit
from rdkit import Chem  # noqa: E402
from rdkit.Chem.Scaffolds import MurckoScaffold  # noqa: E402
from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor
from sklearn.model_selection import GridSearchCV, GroupKFold, cross_val_score
from sklearn.pipeline import make_pipeline

from sktag.datasets import load_bbbp, load_esol
from sktag.domains import InvalidInputError
from sktag.features import MorganFingerprint
from sktag.model_selection import ScaffoldSplit, scaffold_groups


@pytest.fixture(scope="module")
def bbbp():
    return load_bbbp(return_X_y=True)


@pytest.fixture(scope="module")
def bbbp_groups(bbbp):
    return scaffold_groups(bbbp[0])


def test_scaffold_groups_simple():
    smiles = ["c1ccccc1O", "Cc1ccccc1", "CCO", "CCCN", "C1CCCCC1N", "c1ccncc1"]
    g = scaffold_groups(smiles)
    assert g.dtype == np.int64
    assert g.tolist() == [0, 0, 1, 1, 2, 3]  # benzene, acyclic (empty), cyclohexane, pyridine


def test_scaffold_groups_match_rdkit(bbbp, bbbp_groups):
    X, _ = bbbp
    g = bbbp_groups
    assert g.shape == (len(X),)
    scaf = [MurckoScaffold.MurckoScaffoldSmiles(mol=Chem.MolFromSmiles(s)) for s in X[:300]]
    for i in range(300):
        for j in range(i + 1, 300, 7):
            assert (g[i] == g[j]) == (scaf[i] == scaf[j])
    assert len(np.unique(g)) == len(set(MurckoScaffold.MurckoScaffoldSmiles(mol=Chem.MolFromSmiles(s)) for s in X))
    assert np.array_equal(np.unique(g), np.arange(g.max() + 1))


def test_scaffold_groups_chirality():
    smiles = ["C[C@H]1CC[C@@H](C)N1", "C[C@@H]1CC[C@@H](C)N1C1CC1"]
    assert len(set(scaffold_groups(smiles))) == 2
    assert scaffold_groups(["N[C@@H]1CCOC1", "N[C@H]1CCOC1"]).tolist() == [0, 0]


def test_scaffold_groups_accepts_series_and_frame(bbbp):
    X = bbbp[0][:50]
    ref = scaffold_groups(list(X))
    np.testing.assert_array_equal(scaffold_groups(pd.Series(X)), ref)
    np.testing.assert_array_equal(scaffold_groups(pd.DataFrame({"s": X})), ref)


def test_scaffold_groups_invalid_names_rows():
    s = pd.Series(["CCO", "C1CC", "c1ccccc1", "[Na+"], index=["a", "b", "c", "d"], name="mol")
    with pytest.raises(InvalidInputError) as exc:
        scaffold_groups(s)
    msg = str(exc.value)
    assert msg.startswith("2 invalid SMILES strings in column 'mol'")
    assert "row 1 (index 'b'): 'C1CC'" in msg and "row 3 (index 'd'): '[Na+'" in msg


def test_scaffold_groups_with_group_kfold(bbbp, bbbp_groups):
    X, y = bbbp
    for tr, te in GroupKFold(n_splits=3).split(X, y, bbbp_groups):
        assert not set(bbbp_groups[tr]) & set(bbbp_groups[te])


def test_scaffold_split_no_shared_scaffold(bbbp, bbbp_groups):
    X, _ = bbbp
    cv = ScaffoldSplit(n_splits=4, test_size=0.2, random_state=0)
    assert cv.get_n_splits() == 4
    splits = list(cv.split(X))
    assert len(splits) == 4
    n_test = int(np.ceil(0.2 * len(X)))
    tests = []
    for tr, te in splits:
        assert len(tr) + len(te) == len(X)
        assert not set(tr) & set(te)
        assert not set(bbbp_groups[tr]) & set(bbbp_groups[te])
        assert len(te) >= n_test and len(te) < n_test + 50
        tests.append(frozenset(te))
    assert len(set(tests)) == 4  # different derived seeds -> different splits


def test_scaffold_split_reproducible_and_seeded(bbbp):
    X, _ = bbbp
    a = [te for _, te in ScaffoldSplit(3, random_state=1).split(X)]
    b = [te for _, te in ScaffoldSplit(3, random_state=1).split(X)]
    c = [te for _, te in ScaffoldSplit(3, random_state=2).split(X)]
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not np.array_equal(a[0], c[0])


def test_balanced_puts_big_scaffolds_in_train(bbbp, bbbp_groups):
    X, _ = bbbp
    test_size = 0.1
    n_test = int(np.ceil(test_size * len(X)))  # 204 -> sets > 102 molecules are "big"
    sizes = np.bincount(bbbp_groups)
    big = np.flatnonzero(sizes > n_test / 2)
    assert len(big) == 1  # BBBP: only the benzene scaffold set (137 molecules)
    for tr, te in ScaffoldSplit(5, test_size=test_size, random_state=0).split(X):
        assert set(big) <= set(bbbp_groups[tr])
        assert not set(bbbp_groups[tr]) & set(bbbp_groups[te])


def test_unbalanced_is_deterministic_largest_first(bbbp):
    X, _ = bbbp
    cv = ScaffoldSplit(n_splits=2, balanced=False, random_state=0)
    (tr1, te1), (tr2, te2) = cv.split(X)
    np.testing.assert_array_equal(te1, te2)


def test_precomputed_groups_and_int_test_size(bbbp, bbbp_groups):
    X, _ = bbbp
    a = list(ScaffoldSplit(2, random_state=0).split(X))
    b = list(ScaffoldSplit(2, random_state=0).split(X, groups=bbbp_groups))
    for (tr1, te1), (tr2, te2) in zip(a, b):
        np.testing.assert_array_equal(te1, te2)
    tr, te = next(ScaffoldSplit(1, test_size=100, random_state=0).split(X))
    assert 100 <= len(te) < 150


def test_dataframe_column_selection(bbbp):
    X, y = bbbp
    df = pd.DataFrame({"id": np.arange(len(X)), "smiles": X})
    ref = [te for _, te in ScaffoldSplit(2, random_state=0).split(X)]
    got = [te for _, te in ScaffoldSplit(2, random_state=0, smiles_column="smiles").split(df)]
    assert all(np.array_equal(r, g) for r, g in zip(ref, got))
    with pytest.raises(ValueError, match="single column"):
        next(ScaffoldSplit(2).split(df))
    pl = pytest.importorskip("polars")  # any DataFrame narwhals reads, by column name
    got_pl = [te for _, te in ScaffoldSplit(2, random_state=0, smiles_column="smiles").split(pl.DataFrame({"id": df["id"].to_numpy(), "smiles": list(X)}))]
    assert all(np.array_equal(r, g) for r, g in zip(ref, got_pl))


@pytest.mark.parametrize(
    "params",
    [{"n_splits": 0}, {"n_splits": 2.5}, {"test_size": 0.0}, {"test_size": 1.0},
     {"test_size": 5000}, {"test_size": True}, {"balanced": "yes"}],
)
def test_bad_params(bbbp, params):
    with pytest.raises(ValueError):
        next(ScaffoldSplit(**params).split(bbbp[0]))


def test_single_scaffold_impossible():
    with pytest.raises(ValueError, match="one scaffold"):
        next(ScaffoldSplit(1).split(["CCO", "CCN", "CCC"]))


def test_invalid_smiles_in_split():
    with pytest.raises(InvalidInputError, match="row 1"):
        next(ScaffoldSplit(1).split(["CCO", "C1CC", "c1ccccc1"]))


def test_cross_val_score_and_grid_search():
    X, y = load_esol(return_X_y=True)
    pipe = make_pipeline(MorganFingerprint(n_bits=256), RandomForestRegressor(n_estimators=20, random_state=0))
    cv = ScaffoldSplit(n_splits=2, random_state=0)
    scores = cross_val_score(pipe, X, y, cv=cv, scoring="r2")
    assert scores.shape == (2,) and (scores > 0).all()
    gs = GridSearchCV(pipe, {"morganfingerprint__radius": [1, 2]}, cv=cv).fit(X[:400], y[:400])
    assert gs.best_params_["morganfingerprint__radius"] in (1, 2)
    assert repr(cv).startswith("ScaffoldSplit(")


def test_cross_val_classification(bbbp):
    X, y = bbbp
    pipe = make_pipeline(MorganFingerprint(n_bits=256), RandomForestClassifier(n_estimators=20, random_state=0))
    scores = cross_val_score(pipe, X, y, cv=ScaffoldSplit(2, random_state=0), scoring="roc_auc")
    assert (scores > 0.6).all()
