"""RDKit molecules as inputs: read as their canonical SMILES wherever a SMILES column is accepted."""

import numpy as np
import pandas as pd
import pytest

from conftest import esol_sample
from sktag import HybridRegressor, LLMEmbedding, TagRegressor
from sktag._forward.inputs import as_columns, as_input, is_molecule, molecules_as_smiles
from sktag.benchmark import compare
from sktag.features import MorganFingerprint, RDKitDescriptors
from sktag.hybrid import default_classical_models
from sktag.model_selection import ScaffoldSplit, scaffold_groups
from sktag.pretrain import DomainTagPretrainer

Chem = pytest.importorskip("rdkit.Chem")
pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


@pytest.fixture(scope="module")
def esol30():
    X, y = esol_sample(30, seed=2)
    smiles = [Chem.MolToSmiles(Chem.MolFromSmiles(s)) for s in X]  # what a molecule is read as
    return smiles, [Chem.MolFromSmiles(s) for s in X], np.asarray(y)


def test_molecules_are_recognised_without_touching_the_caller_data(esol30):
    smiles, mols, _ = esol30
    rw = Chem.RWMol(mols[0])
    assert is_molecule(mols[0]) and is_molecule(rw)
    assert not any(is_molecule(v) for v in ["CCO", None, 1.0, np.str_("C")])
    given = [mols[0], "CCO", None, rw]
    out = molecules_as_smiles(given)
    assert out == [smiles[0], "CCO", None, smiles[0]]
    assert is_molecule(given[0]) and given[2] is None  # the caller's list is unchanged
    plain = ["CCO", "c1ccccc1"]
    assert molecules_as_smiles(plain) is plain  # no copy without molecules
    frame = pd.DataFrame({"mol": [mols[0], mols[1]], "target": ["MKV", "MKT"]}, index=[7, 3])
    columns, names, labels = as_columns(frame)
    assert columns == [smiles[:2], ["MKV", "MKT"]] and names == ["mol", "target"] and labels == [7, 3]
    converted = as_input(frame)
    assert converted["mol"].tolist() == smiles[:2] and is_molecule(frame["mol"].iloc[0])
    assert as_input(np.array(mols[:2], dtype=object)).tolist() == smiles[:2]
    assert as_input(pd.Series(mols[:2], index=[5, 6], name="m")).index.tolist() == [5, 6]


def test_molecules_and_strings_give_identical_predictions_and_features(tiny_model, esol30):
    smiles, mols, y = esol30
    mixed = [m if i % 2 else s for i, (s, m) in enumerate(zip(smiles, mols))]
    reg = TagRegressor(model=tiny_model, max_iter=2, random_state=0)
    from_strings = reg.fit(smiles, y).predict(smiles)
    frame = pd.DataFrame({"ROMol": mols})  # as rdkit.Chem.PandasTools gives them
    from_mols = TagRegressor(model=tiny_model, max_iter=2, random_state=0).fit(frame, y).predict(frame)
    np.testing.assert_array_equal(from_mols, from_strings)
    np.testing.assert_array_equal(reg.predict(mixed), from_strings)
    emb = LLMEmbedding(model=tiny_model, domains="SMILES")
    np.testing.assert_array_equal(emb.fit_transform(mols), emb.fit_transform(smiles))
    for featuriser in (RDKitDescriptors(), MorganFingerprint()):
        np.testing.assert_array_equal(featuriser.fit_transform(np.array(mols, dtype=object)),
                                      featuriser.fit_transform(smiles))
    np.testing.assert_array_equal(scaffold_groups(mols), scaffold_groups(smiles))
    split = ScaffoldSplit(n_splits=2, random_state=0)
    for (a, b), (c, d) in zip(split.split(mols), split.split(smiles)):
        np.testing.assert_array_equal(a, c)
        np.testing.assert_array_equal(b, d)
    pre = DomainTagPretrainer(model=tiny_model, max_iter=1, random_state=0)
    np.testing.assert_array_equal(pre.fit(mols).tags_["SMILES"].numpy(),
                                  DomainTagPretrainer(model=tiny_model, max_iter=1, random_state=0)
                                  .fit(smiles).tags_["SMILES"].numpy())


def test_hybrid_and_compare_take_molecules(tiny_model, esol30):
    smiles, mols, y = esol30
    classical = default_classical_models("regression", random_state=0, n_estimators=10)
    hyb = HybridRegressor(model=tiny_model, cv=3, random_state=0, classical=classical)
    np.testing.assert_array_equal(hyb.fit(mols, y).predict(mols), hyb.fit(smiles, y).predict(smiles))
    res_m = compare(pd.DataFrame({"ROMol": mols}), y, models=["rf_morgan_counts", "dummy"], cv=2, random_state=0,
                    domains={"ROMol": "SMILES"})
    res_s = compare(pd.DataFrame({"ROMol": smiles}), y, models=["rf_morgan_counts", "dummy"], cv=2,
                    random_state=0, domains={"ROMol": "SMILES"})
    scores = ["model", "fold", *(m.name for m in res_s.metrics)]
    pd.testing.assert_frame_equal(res_m.folds[scores], res_s.folds[scores])


def test_a_molecule_rdkit_could_not_read_is_a_missing_row(tiny_model, esol30):
    smiles, mols, y = esol30
    bad = pd.Series(mols[:4] + [None], index=list("abcde"))
    msg = r"1 missing values \(None/NaN\): row 4 \(index 'e'\): None.*None is what RDKit gives"
    with pytest.raises(ValueError, match=msg):
        TagRegressor(model=tiny_model, max_iter=1).fit(bad, y[:5])
    reg = TagRegressor(model=tiny_model, max_iter=1, random_state=0, on_invalid="nan").fit(smiles, y)
    out = reg.predict(bad)
    assert np.isnan(out[4]) and np.isfinite(out[:4]).all()
