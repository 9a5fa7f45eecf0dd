"""DomainTagPretrainer: Stage-1 next-token pretraining of a domain tag."""

import pickle
import warnings

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.model_selection import cross_val_score

from conftest import tol
from sktag import TagMismatchError, TagSet
from sktag.exceptions import TruncationWarning
from sktag.backbone import load_backbone
from sktag.pretrain import DomainTagPretrainer

SMILES = ["CCO", "CCCC", "c1ccccc1", "CC(=O)O", "NCCO", "OCCO", "CC(C)O", "c1ccncc1", "CCN(CC)CC",
          "O=C(O)c1ccccc1"] * 3
HELD_OUT = ["CCCO", "c1ccccc1C", "CC(=O)N", "OCCN"]

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


@pytest.fixture
def backbone(tiny_model):
    """The backbone the pretrainers below use (the suite's dtype): the same object, the same tokenizer."""
    return load_backbone(tiny_model, dtype="auto", device="cpu")


@pytest.fixture
def make_pre(tiny_model):
    def make(**kw):
        params = dict(model=tiny_model, domain="SMILES", tag_length=3, max_iter=4, batch_size=8,
                      learning_rate_init=5e-2, device="cpu", random_state=0)
        params.update(kw)
        return DomainTagPretrainer(**params)

    return make


@pytest.fixture
def fitted(make_pre):
    return make_pre().fit(SMILES)


def _reference_nll(backbone, strings, tag, eos=None):
    """Per-token NLL computed directly with the Hugging Face model, one string at a time."""
    lm = backbone.model
    total, count = 0.0, 0
    for s in strings:
        canon = s  # plain-text domain in the callers
        ids = backbone.tokenizer(canon, add_special_tokens=False)["input_ids"]
        if eos is not None:
            ids = ids + [eos]
        ids_t = torch.tensor(ids)
        with torch.no_grad():
            emb = lm.get_input_embeddings()(ids_t)
            x = torch.cat([tag.to(emb.dtype), emb], 0).unsqueeze(0)
            logits = lm(inputs_embeds=x).logits[0]
        p = tag.shape[0]
        pred = logits[p - 1:-1]  # last tag position predicts the first token, ...
        total += float(torch.nn.functional.cross_entropy(pred, ids_t, reduction="sum"))
        count += len(ids)
    return total / count


def test_fit_learns_the_tag(fitted, backbone):
    pre = fitted
    assert pre.n_iter_ == 4 and len(pre.loss_curve_) == 4
    assert pre.loss_curve_[-1] < pre.loss_curve_[0]
    assert pre.nll(SMILES) < pre.initial_nll(SMILES)
    assert pre.score(SMILES) == -pre.nll(SMILES)
    assert pre.n_tokens_ == sum(len(s) for s in SMILES)  # character tokenizer, no EOS
    ts = pre.tags_
    assert isinstance(ts, TagSet) and list(ts) == ["SMILES"]
    assert ts.info("SMILES")["kind"] == "domain"
    assert ts["SMILES"].shape == (3, backbone.hidden_size)
    assert ts.backbone == backbone.identity and ts.fingerprint == backbone.fingerprint
    assert not torch.equal(ts["SMILES"], pre.initial_tag_)


def test_initial_tag_is_the_init_rule(fitted, backbone):
    expected = backbone.tag_init().expand(3, -1)
    torch.testing.assert_close(fitted.initial_tag_, expected, rtol=0, atol=0)
    # initial_nll also works before fit, with the same tag
    assert fitted.initial_nll(HELD_OUT) == pytest.approx(
        DomainTagPretrainer(model=fitted.model, tag_length=3, device="cpu").initial_nll(HELD_OUT))


@pytest.mark.parametrize("which", ["initial", "learned"])
def test_nll_matches_an_independent_computation(fitted, backbone, which):
    """Loss on segment tokens only, first one predicted from the last tag position,
    with the real pretrained embeddings and LM head; padding has no effect."""
    strings = ["CCO", "c1ccccc1O", "N", "CC(=O)Oc1ccccc1C(=O)O"]  # different lengths -> padding
    pre = clone(fitted).set_params(domain="Text")
    tag = fitted.initial_tag_ if which == "initial" else fitted.tags_["SMILES"]
    expected = _reference_nll(backbone, strings, tag)
    got = pre._mean_nll(strings, tag)
    assert got == pytest.approx(expected, rel=tol()["rtol"])
    assert pre._mean_nll(strings, tag, batch_size=1) == pytest.approx(expected, rel=tol()["rtol"])


def test_backbone_is_frozen_and_its_real_embeddings_are_used(make_pre, backbone):
    emb = backbone.embeddings.weight
    before = {n: p.detach().clone() for n, p in backbone.model.named_parameters()}
    pre = make_pre().fit(SMILES)
    for n, p in backbone.model.named_parameters():
        assert torch.equal(p, before[n]), n
        assert not p.requires_grad
    base = pre.nll(HELD_OUT)
    # the loss depends on the actual embedding matrix (not a re-initialised copy)
    saved = emb.detach().clone()
    try:
        with torch.no_grad():
            emb.add_(0.5 * torch.randn(emb.shape, generator=torch.Generator().manual_seed(0)))
        perturbed = pre.nll(HELD_OUT)
    finally:
        with torch.no_grad():
            emb.copy_(saved)
    assert abs(perturbed - base) > 1e-3
    assert pre.nll(HELD_OUT) == base
    assert torch.equal(emb, before["model.embed_tokens.weight"])


def test_reproducible_with_random_state(make_pre):
    a = make_pre(max_iter=2).fit(SMILES)
    b = make_pre(max_iter=2).fit(SMILES)
    assert torch.equal(a.tags_["SMILES"], b.tags_["SMILES"])
    assert a.loss_curve_ == b.loss_curve_
    c = make_pre(max_iter=2, random_state=1).fit(SMILES)
    assert not torch.equal(a.tags_["SMILES"], c.tags_["SMILES"])


def test_warm_start_continues(make_pre):
    pre = make_pre(max_iter=2, warm_start=True).fit(SMILES)
    first = pre.tags_["SMILES"].clone()
    pre.fit(SMILES)
    assert pre.n_iter_ == 4 and len(pre.loss_curve_) == 4
    assert not torch.equal(first, pre.tags_["SMILES"])
    pre.set_params(tag_length=5)
    with pytest.raises(ValueError, match="warm_start"):
        pre.fit(SMILES)


def test_eos_is_a_target_unless_truncated(make_pre, backbone):
    tok = backbone.tokenizer
    assert tok.eos_token_id is None
    tok.eos_token = "$"  # any single token: the shared tiny tokenizer gets an EOS for this test
    try:
        eos = tok.eos_token_id
        pre = make_pre(domain="Text", max_iter=1).fit(SMILES)
        assert pre.n_tokens_ == sum(len(s) + 1 for s in SMILES)
        assert pre.nll(HELD_OUT) == pytest.approx(
            _reference_nll(backbone, HELD_OUT, pre.tags_["Text"], eos=eos), rel=tol()["rtol"])
        assert make_pre(domain="Text", max_iter=1, add_eos=False).fit(SMILES).n_tokens_ == sum(
            len(s) for s in SMILES)
        with pytest.warns(TruncationWarning):
            pre = make_pre(domain="Text", max_iter=1, max_length=4).fit(["CCCCCC", "CCCC", "CO"])
        # truncated: 4 tokens, no EOS; exactly 4 tokens: 4 + EOS; short: 2 + EOS
        assert pre.n_tokens_ == 4 + 5 + 3
    finally:
        tok.eos_token = None
    assert tok.eos_token_id is None


def test_truncation_raise(make_pre):
    with pytest.raises(ValueError, match="max_length"):
        make_pre(max_length=3, truncation="raise").fit(SMILES)


def test_pretrained_tag_is_used_frozen_by_the_regressor(fitted, make_reg, tmp_path):
    X = SMILES
    y = np.array([len(s) for s in X], dtype=float)
    tag = fitted.tags_["SMILES"]
    path = tmp_path / "smiles.safetensors"
    fitted.save(path)
    for source in (fitted.tags_, path, str(path)):
        reg = make_reg(domains="SMILES", domain_tags=source, max_iter=2).fit(X, y)
        assert torch.equal(reg.module_.domain_tags[0].detach().cpu(), tag)
        assert not reg.module_.domain_tags[0].requires_grad
        assert torch.equal(reg.tagset()["SMILES"], tag)
    # without the pretrained tag the regressor starts from the init rule instead
    plain = make_reg(domains="SMILES", max_iter=1, domain_tag_length=fitted.initial_tag_.shape[0]).fit(X, y)
    assert torch.equal(plain.module_.domain_tags[0].detach().cpu(), fitted.initial_tag_)


def test_tag_from_another_backbone_is_rejected(fitted, make_reg, other_tiny_model):
    reg = make_reg(model=other_tiny_model, domains="SMILES", domain_tags=fitted.tags_, max_iter=1)
    with pytest.raises(TagMismatchError):
        reg.fit(SMILES, np.arange(len(SMILES), dtype=float))


def test_pickle_does_not_contain_the_backbone(fitted):
    fitted.nll(HELD_OUT)  # make sure the backbone is attached
    assert "_backbone" in fitted.__dict__
    data = pickle.dumps(fitted)
    assert len(data) < 50_000
    back = pickle.loads(data)
    assert "_backbone" not in back.__dict__
    assert back.nll(HELD_OUT) == fitted.nll(HELD_OUT)
    assert torch.equal(back.tags_["SMILES"], fitted.tags_["SMILES"])


def test_sklearn_conventions(tiny_model, make_pre):
    pre = DomainTagPretrainer(model="no/such/model/anywhere", tag_length=0, max_iter=-1)  # no work in __init__
    assert pre.get_params()["tag_length"] == 0
    c = clone(make_pre())
    assert c.get_params() == make_pre().get_params()
    scores = cross_val_score(make_pre(max_iter=1), SMILES, cv=2)
    assert scores.shape == (2,) and np.all(scores < 0)


@pytest.mark.parametrize("params, match", [
    ({"tag_length": 0}, "tag_length"),
    ({"max_iter": 1.5}, "max_iter"),
    ({"batch_size": True}, "batch_size"),
    ({"learning_rate_init": 0.0}, "learning_rate_init"),
    ({"alpha": -1.0}, "alpha"),
    ({"domain": ""}, "domain"),
    ({"truncation": "cut"}, "truncation"),
    ({"add_eos": "yes"}, "add_eos"),
    ({"dtype": "int8"}, "dtype"),
    ({"device": "tpu9"}, "device"),
])
def test_invalid_params_raise_in_fit(make_pre, params, match):
    with pytest.raises(ValueError, match=match):
        make_pre(**params).fit(SMILES)


def test_input_validation(make_pre):
    from sktag.domains import InvalidInputError

    pre = make_pre(max_iter=1)
    with pytest.raises(InvalidInputError):
        pre.fit(["CCO", "C1CC"])  # unclosed ring
    with pytest.raises(TypeError):
        pre.fit("CCO")
    with pytest.raises(ValueError, match="missing"):
        pre.fit(["CCO", None])
    with pytest.raises(ValueError, match="1-D"):
        pre.fit(np.array([["CCO", "CC"], ["N", "O"]], dtype=object))
    with pytest.raises(ValueError, match="0 sample"):
        pre.fit([])
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        pre.nll(["CCO"])


def test_smiles_are_canonicalised(make_pre):
    a = make_pre(max_iter=1).fit(["OCC", "C(C)O"])
    b = make_pre(max_iter=1).fit(["CCO", "CCO"])
    assert torch.equal(a.tags_["SMILES"], b.tags_["SMILES"])


def test_verbose_progress(make_pre, capsys):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        make_pre(max_iter=1, verbose=2).fit(SMILES[:6])
    err = capsys.readouterr().err
    assert "pretrain <SMILES>" in err


@pytest.mark.parametrize("kind", ["deep", "kv"])
def test_deep_domain_tag_pretraining(make_pre, tiny_model, tmp_path, kind):
    """``tag_depth="deep"`` or ``"kv"``: the blocks learn, NLL uses them, and the estimators and LLMEmbedding
    take them, of their kind."""
    from sktag import LLMEmbedding, TagRegressor
    from sktag._forward.deep import DeepTable, block_shape

    pre = make_pre(tag_depth=kind).fit(SMILES)
    bb = pre.get_backbone()
    block = pre.tags_.deep["SMILES"]
    assert pre.tags_.deep_kind("SMILES") == kind
    assert block.shape == (block_shape(bb, kind)[0], 3, block_shape(bb, kind)[1]) and block.abs().sum() > 0
    assert pre.loss_curve_[-1] < pre.loss_curve_[0]
    tag = pre.tags_["SMILES"]
    assert pre.nll(HELD_OUT) == pre._mean_nll(HELD_OUT, tag, DeepTable(block, kind))
    assert pre.nll(HELD_OUT) != pytest.approx(pre._mean_nll(HELD_OUT, tag), rel=1e-3)  # the blocks count
    assert pre.initial_nll(HELD_OUT) == make_pre().initial_nll(HELD_OUT)  # zero blocks: the shallow start
    assert pre.nll(SMILES) < pre.initial_nll(SMILES)
    assert "SMILES" not in make_pre(max_iter=1).fit(SMILES).tags_.deep

    pre.save(tmp_path / "deep.safetensors")
    ts = TagSet.load(tmp_path / "deep.safetensors")
    assert torch.equal(ts.deep["SMILES"], block) and ts.info("SMILES")["depth"] == block.shape[0]
    assert ts.deep_kind("SMILES") == kind
    X, y = SMILES[:20], np.arange(20.0)
    kw = dict(model=tiny_model, tag_length=2, max_iter=1, device="cpu", random_state=0, early_stopping=False)
    reg = TagRegressor(domain_tags=ts, **kw).fit(X, y)
    assert reg.domain_tag_depth_ == kind and torch.equal(reg.tagset().deep["SMILES"], block)
    assert reg.tagset().deep_kind("SMILES") == kind
    flat = TagRegressor(domain_tags=ts, domain_tag_depth="shallow", **kw).fit(X, y)
    assert flat.domain_tag_depth_ == "shallow" and "SMILES" not in flat.tagset().deep
    assert not np.allclose(reg.transform(X), flat.transform(X))
    emb = LLMEmbedding(tiny_model, domain_tags=ts, device="cpu").fit(X)
    assert emb.deep_table_.shape == block.shape and emb.domain_tag_depth_ == kind
    shallow_ts = TagSet(ts.backbone, ts.fingerprint, ts.hidden_size).add("SMILES", tag, kind="domain")
    plain = LLMEmbedding(tiny_model, domain_tags=shallow_ts, device="cpu").fit(X)
    assert plain.deep_table_ is None and plain.domain_tag_depth_ == "shallow" and not np.allclose(emb.transform(X), plain.transform(X))


def test_deep_warm_start_refuses_a_change_of_depth(make_pre):
    pre = make_pre(tag_depth="deep", max_iter=1, warm_start=True).fit(SMILES)
    before = pre.tags_.deep["SMILES"].clone()
    pre.fit(SMILES)  # continues the blocks too
    assert not torch.equal(pre.tags_.deep["SMILES"], before)
    fitted = pre.tags_.deep["SMILES"].clone()
    for other in ("shallow", "kv"):
        pre.set_params(tag_depth=other)
        with pytest.raises(ValueError, match="tag_depth changed"):
            pre.fit(SMILES)
        assert torch.equal(pre.tags_.deep["SMILES"], fitted)  # a failed fit leaves the fitted tag as it was
        assert pre.tags_.deep_kind("SMILES") == "deep"
