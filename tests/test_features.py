"""MorganFingerprint and RDKitDescriptors on real molecules."""

import pickle

import numpy as np
import pandas as pd
import pytest
pytest.importorskip("rdkit")  # every test here needs RDKit
from rdkit import Chem  # noqa: E402
from rdkit.Chem import Descriptors, rdFingerprintGenerator  # noqa: E402
from sklearn.base import clone
from sklearn.ensemble import HistGradientBoostingRegressor, RandomForestRegressor
from sklearn.model_selection import KFold, cross_val_score
from sklearn.pipeline import make_pipeline
from threadpoolctl import threadpool_limits

from sktag.datasets import load_bbbp, load_esol, load_tdc_admet
from sktag.domains import InvalidInputError
from sktag.features import MorganFingerprint, RDKitDescriptors


@pytest.fixture(scope="module")
def esol():
    X, y = load_esol(return_X_y=True)
    return X[:300], y[:300]


def test_morgan_matches_rdkit(esol):
    X, _ = esol
    fp = MorganFingerprint(radius=2, n_bits=1024).fit(X)
    out = fp.transform(X)
    assert out.shape == (300, 1024) and out.dtype == np.float64
    gen = rdFingerprintGenerator.GetMorganGenerator(radius=2, fpSize=1024)
    for i in (0, 17, 299):
        ref = gen.GetFingerprintAsNumPy(Chem.MolFromSmiles(X[i]))
        np.testing.assert_array_equal(out[i], ref)
    assert set(np.unique(out)) <= {0.0, 1.0}
    assert fp.n_features_in_ == 1 and fp.n_features_out_ == 1024


def test_morgan_counts_and_chirality():
    X = ["CCCCCCCC", "N[C@@H](C)C(=O)O", "N[C@H](C)C(=O)O"]
    counts = MorganFingerprint(counts=True, n_bits=256).fit_transform(X)
    assert counts.max() > 1
    bits = MorganFingerprint(n_bits=256).fit_transform(X)
    np.testing.assert_array_equal(bits, (counts > 0).astype(float))
    plain = MorganFingerprint(n_bits=2048).fit_transform(X)
    chiral = MorganFingerprint(n_bits=2048, use_chirality=True).fit_transform(X)
    np.testing.assert_array_equal(plain[1], plain[2])  # enantiomers identical
    assert not np.array_equal(chiral[1], chiral[2])


def test_morgan_radius_changes_bits(esol):
    X, _ = esol
    r1 = MorganFingerprint(radius=1).fit_transform(X[:20])
    r3 = MorganFingerprint(radius=3).fit_transform(X[:20])
    assert (r3.sum(1) >= r1.sum(1)).all() and (r3.sum() > r1.sum())


@pytest.mark.parametrize(
    "make",
    [
        lambda s: list(s),
        lambda s: np.asarray(s, dtype=object),
        lambda s: pd.Series(s, name="smiles"),
        lambda s: pd.DataFrame({"smiles": s}),
        lambda s: np.asarray(s, dtype=object).reshape(-1, 1),
        lambda s: np.asarray(s, dtype=str),
    ],
)
def test_input_containers(esol, make):
    X, _ = esol
    ref = MorganFingerprint(n_bits=128).fit_transform(list(X[:10]))
    out = MorganFingerprint(n_bits=128).fit_transform(make(list(X[:10])))
    np.testing.assert_array_equal(out, ref)


def test_bad_shapes():
    with pytest.raises(TypeError, match="single string"):
        MorganFingerprint().fit("CCO")
    with pytest.raises(ValueError, match="single column"):
        MorganFingerprint().fit(pd.DataFrame({"a": ["C"], "b": ["C"]}))
    with pytest.raises(ValueError, match="0 sample"):
        MorganFingerprint().fit([])


def test_feature_names():
    fp = MorganFingerprint(n_bits=16)
    assert fp.get_feature_names_out().tolist() == [f"morgan_{i}" for i in range(16)]
    out = fp.set_output(transform="pandas").fit_transform(pd.DataFrame({"s": ["CCO", "CCN"]}, index=[7, 9]))
    assert list(out.columns)[:2] == ["morgan_0", "morgan_1"] and list(out.index) == [7, 9]


@pytest.mark.parametrize(
    "params",
    [{"radius": -1}, {"radius": 1.5}, {"n_bits": 0}, {"n_bits": True}, {"counts": "yes"},
     {"use_chirality": 1}, {"on_invalid": "ignore"}],
)
def test_morgan_param_validation_in_fit(params):
    est = MorganFingerprint(**params)  # no error at construction
    with pytest.raises(ValueError):
        est.fit(["CCO"])


def test_invalid_raise_names_rows():
    X = pd.Series(["CCO", "C1CC", "c1ccccc1", "C(C"], index=["a", "b", "c", "d"], name="ligand")
    with pytest.raises(InvalidInputError) as exc:
        MorganFingerprint().fit_transform(X)
    msg = str(exc.value)
    assert msg.startswith("2 invalid SMILES strings in column 'ligand'")
    assert "row 1 (index 'b'): 'C1CC' (unclosed ring)" in msg
    assert "row 3 (index 'd')" in msg


def test_invalid_nan_rows(capfd):
    X = ["CCO", "C1CC", None, "c1ccccc1"]
    out = MorganFingerprint(n_bits=64, on_invalid="nan").fit_transform(X)
    assert np.isnan(out[1]).all() and np.isnan(out[2]).all()
    assert np.isfinite(out[[0, 3]]).all()
    d = RDKitDescriptors(descriptors=["MolWt"], on_invalid="nan").fit_transform(X)
    assert np.isnan(d[1, 0]) and d[0, 0] == pytest.approx(46.07, abs=0.01)
    assert capfd.readouterr().err == ""


def test_real_invalid_tdc_smiles():
    X = load_tdc_admet("solubility_aqsoldb", split="test").data[1155:1165]
    with pytest.raises(InvalidInputError, match="row 4.*\n.*row 5"):
        MorganFingerprint().fit_transform(X)
    out = MorganFingerprint(on_invalid="nan").fit_transform(X)
    assert np.isnan(out).all(axis=1).tolist() == [i in (4, 5) for i in range(10)]


def test_tags():
    tags = MorganFingerprint().__sklearn_tags__()
    assert tags.input_tags.string and not tags.input_tags.two_d_array
    assert RDKitDescriptors().__sklearn_tags__().input_tags.string


def test_transform_without_fit_and_no_init_work():
    fp = MorganFingerprint(n_bits=32)
    assert fp.transform(["CCO"]).shape == (1, 32)
    assert vars(MorganFingerprint(n_bits=-5))["n_bits"] == -5


def test_clone_pickle(esol):
    X, _ = esol
    for est in (MorganFingerprint(n_bits=64, counts=True), RDKitDescriptors(descriptors=["TPSA", "MolLogP"])):
        fitted = est.fit(X[:5])
        ref = fitted.transform(X[:5])
        np.testing.assert_array_equal(pickle.loads(pickle.dumps(fitted)).transform(X[:5]), ref)
        c = clone(fitted)
        assert c.get_params() == est.get_params()
        np.testing.assert_array_equal(c.fit_transform(X[:5]), ref)


def test_pipeline_cross_val_score(esol):
    X, y = esol
    pipe = make_pipeline(MorganFingerprint(n_bits=512), RandomForestRegressor(n_estimators=30, random_state=0))
    scores = cross_val_score(pipe, X, y, cv=KFold(3, shuffle=True, random_state=0), scoring="r2")
    assert scores.shape == (3,) and scores.mean() > 0.2


def test_descriptors_match_rdkit(esol):
    X, _ = esol
    d = RDKitDescriptors().fit(X[:20])
    names = d.get_feature_names_out().tolist()
    assert names == [n for n, _ in Descriptors._descList]
    out = d.transform(X[:20])
    assert out.shape == (20, len(names)) and d.n_features_out_ == len(names)
    j = names.index("MolWt")
    assert out[3, j] == pytest.approx(Descriptors.MolWt(Chem.MolFromSmiles(X[3])))


def test_descriptor_subset_and_validation():
    d = RDKitDescriptors(descriptors=["TPSA", "MolWt"])
    assert d.fit_transform(["CCO"]).round(2).tolist() == [[20.23, 46.07]]
    assert d.get_feature_names_out().tolist() == ["TPSA", "MolWt"]
    for bad in (["NoSuchDescriptor"], [], "MolWt", ["MolWt", "MolWt"]):
        with pytest.raises(ValueError):
            RDKitDescriptors(descriptors=bad).fit(["CCO"])
    with pytest.raises(ValueError):
        RDKitDescriptors(on_invalid="drop").fit(["CCO"])


def test_descriptors_non_finite_become_nan():
    # BBBP row 921 (132 heavy atoms): Ipc is ~6.5e39, beyond float32's range.
    X = load_bbbp(return_X_y=True)[0][[0, 921]]
    raw = Descriptors.Ipc(Chem.MolFromSmiles(X[1]))
    assert np.finfo(np.float32).max < raw < np.inf
    out = RDKitDescriptors(descriptors=["Ipc", "MolWt"]).fit_transform(X)
    assert np.isfinite(out[0]).all()
    assert np.isnan(out[1, 0]) and np.isfinite(out[1, 1])
    # float32-safe: a tree model (which casts to float32) accepts the output
    RandomForestRegressor(n_estimators=2, random_state=0).fit(out, [0.0, 1.0])


def test_descriptors_with_hist_gradient_boosting(esol):
    X, y = esol
    pipe = make_pipeline(RDKitDescriptors(), HistGradientBoostingRegressor(max_iter=50, random_state=0))
    # one OpenMP thread: with torch loaded in the same process, sklearn's OpenMP
    # pool can oversubscribe badly on small machines
    with threadpool_limits(1):
        pipe.fit(X[:200], y[:200])
    assert np.corrcoef(pipe.predict(X[200:]), y[200:])[0, 1] > 0.7
