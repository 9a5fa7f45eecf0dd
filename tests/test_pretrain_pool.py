"""benchmarks.pretrain_pool: the unlabeled pool leaves out every evaluated and every TDC test molecule."""

import pytest

pytest.importorskip("rdkit")


@pytest.fixture
def pool_module():
    from benchmarks import pretrain_pool

    return pretrain_pool


def test_pool_excludes_evaluated_and_test_molecules(pool_module, monkeypatch):
    import sktag.datasets as ds

    evaluated = {"load_esol": ["OCC"], "load_bbbp": ["c1ccccc1"], "load_lipophilicity": ["CCN"]}
    for name, smiles in evaluated.items():
        monkeypatch.setattr(ds, name, lambda return_X_y=True, s=smiles: (s, [0.0] * len(s)))
    parts = {("a", "train_val"): ["CCO", "CCCC", "C1=CC=CC=C1", "CCCl"], ("a", "test"): ["CCCCO"],
             ("b", "train_val"): ["CCCCO", "NCCN", "CCCC"], ("b", "test"): ["NCCN"]}
    monkeypatch.setattr(ds, "TDC_ADMET_NAMES", ("a", "b"))
    monkeypatch.setattr(ds, "load_tdc_admet", lambda name, split, return_X_y=True: (parts[name, split], None))
    pool, n_excluded = pool_module.unlabeled_pool()
    # ESOL's "OCC" is ethanol (CCO), BBBP's benzene is the Kekulé "C1=CC=CC=C1": canonical forms are compared;
    # "CCCCO" and "NCCN" are TDC test molecules, even where another set lists them for training
    assert pool == ["CCCC", "CCCl"]
    assert n_excluded == 5
