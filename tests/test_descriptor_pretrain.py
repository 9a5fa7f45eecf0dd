"""DescriptorTagPretrainer: a domain tag trained to make the pooled states predict RDKit descriptors."""

import numpy as np
import pytest
import torch
from sklearn.base import clone

from conftest import tol
from sktag import LLMEmbedding, TagRegressor
from sktag.exceptions import InvalidInputError
from sktag.pretrain import DescriptorTagPretrainer, DomainTagPretrainer

pytest.importorskip("rdkit")

SMILES = ["CCO", "CCCC", "c1ccccc1", "CC(=O)O", "NCCO", "OCCO", "CC(C)O", "c1ccncc1", "CCN(CC)CC",
          "O=C(O)c1ccccc1", "CCCCCCCC", "ClCCl", "OC(=O)CC(=O)O", "c1ccc2ccccc2c1", "CC(C)(C)O", "FC(F)F"] * 2
HELD_OUT = ["CCCO", "c1ccccc1C", "CC(=O)N", "OCCN", "CCCCCl"]


@pytest.fixture
def make_pre(tiny_model):
    def make(**kw):
        params = dict(model=tiny_model, tag_length=3, max_iter=3, batch_size=8, learning_rate_init=5e-2,
                      n_head_rows=24, device="cpu", random_state=0, descriptors=None)
        params.update(kw)
        return DescriptorTagPretrainer(**params)

    return make


@pytest.fixture
def fitted(make_pre):
    return make_pre().fit(SMILES)


def test_fit_learns_the_descriptors(fitted):
    assert list(fitted.tags_) == ["SMILES"] and fitted.tags_.info("SMILES")["kind"] == "domain"
    assert fitted.tags_["SMILES"].shape == (3, fitted.initial_tag_.shape[1])
    assert not torch.equal(fitted.tags_["SMILES"], fitted.initial_tag_)
    assert len(fitted.descriptor_names_) > 20 and "MolWt" in fitted.descriptor_names_
    assert fitted.n_iter_ == 3 and len(fitted.loss_curve_) == 3 and len(fitted.epoch_times_) == 3
    # training lowers the descriptor error on the training strings (and the head follows the tag)
    assert fitted.loss_curve_[-1] < fitted.loss_curve_[0]
    assert fitted.mse(SMILES) < fitted.initial_mse(SMILES)
    assert fitted.score(HELD_OUT) == -fitted.mse(HELD_OUT)
    assert fitted.head_alpha_ > 0


def test_the_tag_is_learned_on_the_features_the_estimators_read(fitted, tiny_model):
    """The pooled states the head regresses on are LLMEmbedding's features with the learned domain tag."""
    backbone = fitted.get_backbone()
    rows, _ = fitted._encode_strings(fitted._check_strings(HELD_OUT), backbone, 3, add_eos=False)
    mine = fitted._features(backbone, rows, np.arange(len(rows)), fitted.tags_["SMILES"], fitted.readout_layers_)
    emb = LLMEmbedding(tiny_model, domain_tags=fitted.tags_, layers=fitted.readout_layers_, device="cpu")
    theirs = emb.fit_transform(HELD_OUT)
    np.testing.assert_allclose(mine, theirs, **tol(fitted.dtype_, scale=float(np.abs(theirs).max())))
    # and they differ from the features without the tag: the tag changes every data-token state
    plain = LLMEmbedding(tiny_model, layers=fitted.readout_layers_, device="cpu").fit_transform(HELD_OUT)
    assert not np.allclose(plain, theirs)


def test_random_state_reproduces_and_clone_is_unfitted(make_pre):
    a, b = make_pre().fit(SMILES), make_pre().fit(SMILES)
    assert torch.equal(a.tags_["SMILES"], b.tags_["SMILES"])
    assert a.loss_curve_ == b.loss_curve_
    c = clone(a)
    assert not hasattr(c, "tags_") and c.get_params() == a.get_params()


def test_failed_fit_leaves_the_fitted_state(fitted):
    before = fitted.tags_["SMILES"].clone()
    names, curve = list(fitted.descriptor_names_), list(fitted.loss_curve_)
    with pytest.raises(InvalidInputError, match="row 1"):
        fitted.fit(["CCO", "not a smiles(", "CCC"])
    assert torch.equal(fitted.tags_["SMILES"], before)
    assert fitted.descriptor_names_ == names and fitted.loss_curve_ == curve


def test_parameters_are_checked(make_pre):
    with pytest.raises(ValueError, match="SMILES domain"):
        make_pre(domain="Protein").fit(["ACDE"])
    with pytest.raises(ValueError, match="n_head_rows"):
        make_pre(n_head_rows=1).fit(SMILES)
    with pytest.raises(ValueError, match="descriptor"):
        make_pre(descriptors=["NoSuchDescriptor"]).fit(SMILES)


def test_descriptor_subset_and_warm_start(make_pre):
    pre = make_pre(descriptors=["MolWt", "TPSA", "NumHDonors"], max_iter=1).fit(SMILES)
    assert pre.descriptor_names_ == ["MolWt", "TPSA", "NumHDonors"]
    first, initial = pre.tags_["SMILES"].clone(), pre.initial_tag_.clone()
    pre.set_params(warm_start=True).fit(SMILES)
    assert pre.n_iter_ == 2 and len(pre.loss_curve_) == 2
    assert torch.equal(pre.initial_tag_, initial) and not torch.equal(pre.tags_["SMILES"], first)


def test_the_baseline_does_not_depend_on_warm_starts(make_pre):
    """``initial_mse`` is the untrained tag's with its own head: a warm start on the same strings keeps it."""
    pre = make_pre(max_iter=2).fit(SMILES)
    baseline, trained = pre.initial_mse(HELD_OUT), pre.mse(HELD_OUT)
    assert trained != baseline
    pre.set_params(warm_start=True).fit(SMILES)
    np.testing.assert_allclose(pre.initial_mse(HELD_OUT), baseline, **tol())  # not re-solved for the continued tag
    assert pre.mse(HELD_OUT) != trained


def test_the_tag_feeds_the_estimators(fitted, tiny_model):
    X, y = SMILES[:16], np.arange(16, dtype=float)
    reg = TagRegressor(tiny_model, domain_tags=fitted.tags_, tag_length=3, max_iter=1, device="cpu",
                       random_state=0).fit(X, y)
    assert torch.equal(reg.tagset()["SMILES"], fitted.tags_["SMILES"])  # frozen
    assert np.isfinite(reg.predict(HELD_OUT)).all()


def test_both_pretrainers_share_one_base():
    """The refactor kept the next-token pretrainer's public surface."""
    for name in ("nll", "initial_nll", "score", "save", "fit"):
        assert callable(getattr(DomainTagPretrainer, name))
    assert "add_eos" in DomainTagPretrainer().get_params()
    assert "add_eos" not in DescriptorTagPretrainer().get_params()
