"""Deep tags (``sktag._forward.deep``): kinds, shapes and masks of the blocks, how a forward applies them, and the
estimators' deep function and domain tags."""

import pickle

import numpy as np
import pytest
import torch

from conftest import tol
from sktag import TagMismatchError, TagRegressor, TagSet
from sktag._forward.deep import DeepLayers, DeepTable, as_table, block_mask
from sktag._forward.deep import block_shape, check_blocks, check_kind, common_kind
from sktag._forward.deep import deep_domain_blocks, function_tag_applied, resolve_deep_layers, zero_blocks

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


# ------------------------------------------------------------------ kinds, shapes, masks
def test_a_deep_table_keeps_its_kind_and_a_bare_tensor_is_residual():
    blocks = torch.ones(2, 3, 4, requires_grad=True)
    kv = DeepTable(blocks, "kv")
    assert kv.shape == (2, 3, 4)
    assert kv.detach().kind == "kv" and not kv.detach().blocks.requires_grad
    assert kv.to(torch.float64).kind == "kv" and kv.to(torch.float64).blocks.dtype == torch.float64
    assert as_table(None) is None and as_table(kv) is kv
    assert as_table(blocks).kind == "deep" and as_table(blocks).blocks is blocks
    assert check_kind("kv") == "kv"
    with pytest.raises(ValueError, match=r"must be one of \('deep', 'kv'\), got 'prefix'"):
        check_kind("prefix")


def test_block_shapes_follow_the_backbone(backbone):
    n_layers, kv_heads, head_dim = backbone.kv_geometry()
    assert block_shape(backbone) == (len(backbone.decoder_blocks()), backbone.hidden_widths()[1]) == (2, 32)
    assert block_shape(backbone, "kv") == (n_layers, 2 * kv_heads * head_dim)
    zeros = zero_blocks(backbone, 5, "kv")
    assert tuple(zeros.shape) == (n_layers, 5, 2 * kv_heads * head_dim) and not zeros.any()
    check_blocks({"A": DeepTable(zero_blocks(backbone, 3)), "B": None}, backbone)  # fits: no error
    with pytest.raises(TagMismatchError, match=r"deep domain tag \('deep'\) of 'A' has 2 blocks of width 16"):
        check_blocks({"A": DeepTable(torch.zeros(2, 3, 16))}, backbone)


@pytest.mark.parametrize("spec, blocks", [("all", None), (4, None), ([0, 1, 2, 3], None), (2, (2, 3)),
                                          (1, (3,)), ([3, 1], (1, 3)), ([0, -1], (0, 3)), ((-4,), (0,)),
                                          (np.array([2]), (2,))])
def test_deep_layers_name_the_tagged_blocks(spec, blocks):
    """``"all"`` or every block: None; ``k``: the last ``k``; a list: those indices, negative from the end."""
    assert resolve_deep_layers(spec, 4) == blocks


@pytest.mark.parametrize("spec, match", [(5, "asks for the last 5 decoder blocks, but this model has 4"),
                                         ([4], r"block indices \[4\], outside this model's 4 decoder blocks"),
                                         ([1, -3], r"names the decoder blocks \[1\] more than once"),
                                         (0, "deep_layers must be"), ("last", "deep_layers must be"),
                                         ([], "deep_layers must be")])
def test_deep_layers_that_name_no_real_block_are_refused(spec, match):
    with pytest.raises(ValueError, match=match):
        resolve_deep_layers(spec, 4)


def test_the_deep_layers_constraint_checks_the_syntax_only():
    ok = DeepLayers()
    assert ok("all") and ok(1) and ok(99) and ok([0, -7]) and ok(np.array([3]))
    assert not (ok("last") or ok(0) or ok(-1) or ok([]) or ok(["a"]) or ok(None))


def test_block_mask_is_one_at_the_tagged_blocks():
    assert block_mask(None, 3) is None
    mask = block_mask((0, 2), 3)
    assert tuple(mask.shape) == (3, 1, 1) and mask.flatten().tolist() == [1.0, 0.0, 1.0]


def test_the_domain_tags_share_one_kind_of_deep_block():
    z = torch.zeros(2, 1, 4)
    assert common_kind([]) is None and common_kind([None, None]) is None
    assert common_kind([None, DeepTable(z, "kv"), DeepTable(z, "kv")]) == "kv"
    with pytest.raises(ValueError, match=r"mix deep tags of the kinds \['deep', 'kv'\]"):
        common_kind([DeepTable(z, "kv"), DeepTable(z, "deep")])


def test_domain_tag_depth_picks_the_deep_blocks_of_the_domain_tags(backbone):
    own = DeepTable(torch.ones(2, 3, 32))
    blocks = {"A": own, "B": None}
    lengths = {"A": 3, "B": 5}
    assert deep_domain_blocks(blocks, "auto", backbone, lengths) == blocks
    assert deep_domain_blocks(blocks, "shallow", backbone, lengths) == {"A": None, "B": None}
    deep = deep_domain_blocks(blocks, "deep", backbone, lengths)
    assert deep["A"] is own and deep["B"].kind == "deep" and tuple(deep["B"].shape) == (2, 5, 32)
    assert not deep["B"].blocks.any()  # a shallow tag's block starts at zero
    kv = deep_domain_blocks({"B": None}, "kv", backbone, lengths)
    assert kv["B"].kind == "kv" and tuple(kv["B"].shape) == (2, 5, block_shape(backbone, "kv")[1])
    with pytest.raises(ValueError, match=r"domain_tag_depth='kv', but the domain tags of \['A'\] carry deep "
                                         r"blocks of the kind 'deep'"):
        deep_domain_blocks(blocks, "kv", backbone, lengths)


# ------------------------------------------------------------------ a forward with a deep function tag
def test_a_deep_function_block_changes_only_the_last_positions_and_only_inside_the_context(backbone):
    n_last, L = 2, 7
    x = torch.randn(1, L, backbone.hidden_size, generator=torch.Generator().manual_seed(0))

    def forward():
        with torch.no_grad():
            return backbone.decoder(inputs_embeds=x).last_hidden_state

    plain = forward()
    n_blocks, width = block_shape(backbone)
    with function_tag_applied(backbone, None, n_last):
        torch.testing.assert_close(forward(), plain, rtol=0, atol=0)
    block = torch.randn(n_blocks, n_last, width, generator=torch.Generator().manual_seed(1))
    with function_tag_applied(backbone, block, n_last):
        tagged = forward()
    torch.testing.assert_close(tagged[:, :L - n_last], plain[:, :L - n_last], **tol(torch.float32))  # causal
    assert not torch.allclose(tagged[:, L - n_last:], plain[:, L - n_last:])
    torch.testing.assert_close(forward(), plain, rtol=0, atol=0)  # the hooks are gone
    assert not any(blk._forward_pre_hooks for blk in backbone.decoder_blocks())


# ------------------------------------------------------------------ the estimators' deep tags
def test_deep_function_tag_trains_saves_and_loads(tiny_model, tmp_path, length_task):
    X, y = length_task[0][:40], length_task[1][:40]
    kw = dict(model=tiny_model, domains="Text", tag_length=2, max_iter=2, n_iter_no_change=3, early_stopping=False,
              random_state=0, learning_rate_init=1e-2)
    deep = TagRegressor(tag_depth="deep", **kw).fit(X, y)
    shallow = TagRegressor(**kw).fit(X, y)
    assert deep.tag_depth_ == "deep" and shallow.tag_depth_ == "shallow" and shallow.module_.deep_tag is None
    assert tuple(deep.module_.deep_tag.shape) == (2, 2, 32)  # one [p, d] block per decoder block
    assert deep.module_.deep_tag.abs().sum() > 0  # trained from its zero start
    assert deep.prefix_cache_bytes_ > 0  # still only the function-tag positions per step
    assert not np.allclose(deep.predict(X), shallow.predict(X))
    deep.save_tags(tmp_path / "deep.safetensors", name="Len")
    ts = TagSet.load(tmp_path / "deep.safetensors")
    assert ts.info("Len")["depth"] == 2 and tuple(ts.deep["Len"].shape) == (2, 2, 32)
    back = TagRegressor.from_tags(ts, "Len", model=tiny_model)
    assert back.tag_depth == "deep"
    np.testing.assert_array_equal(back.predict(X), deep.predict(X))
    shallow.save_tags(tmp_path / "shallow.safetensors", name="Len")
    assert TagRegressor.from_tags(tmp_path / "shallow.safetensors", "Len", model=tiny_model).tag_depth_ == "shallow"
    with pytest.raises(TagMismatchError, match="tag_depth='shallow' but 'Len' is a deep tag of depth 2"):
        TagRegressor.from_tags(ts, "Len", model=tiny_model, tag_depth="shallow")
    with pytest.raises(ValueError, match=r"warm_start: tag_depth='shallow' \(fitted: 'deep'\) changed"):
        deep.set_params(warm_start=True, tag_depth="shallow").fit(X, y)
    deep.set_params(tag_depth="deep").fit(X, y)  # a warm start continues the deep tag
    assert deep.n_iter_ == 4


def test_deep_layers_keep_the_deep_tag_to_the_chosen_blocks(tiny_model, tmp_path, length_task):
    """``deep_layers``: blocks left out get no gradient and stay zero (cached and full path); naming every block
    is today's deep tag bit for bit; the choice is saved, loaded and checked; bad specs name the problem."""
    X, y = length_task[0][:40], length_task[1][:40]
    kw = dict(model=tiny_model, domains="Text", tag_length=2, max_iter=2, early_stopping=False, random_state=0,
              learning_rate_init=1e-2, tag_depth="deep")
    every = TagRegressor(**kw).fit(X, y)
    assert every.deep_layers_ == (0, 1) and every.module_.deep_mask is None
    for same in (2, [0, 1], [-1, 0]):  # every block of the 2-block model: no mask, the same fit
        other = TagRegressor(deep_layers=same, **kw).fit(X, y)
        assert other.module_.deep_mask is None
        np.testing.assert_array_equal(other.predict(X), every.predict(X))
    last = TagRegressor(deep_layers=1, **kw).fit(X, y)
    assert last.deep_layers_ == (1,)
    assert torch.count_nonzero(last.module_.deep_tag[0]) == 0 and last.module_.deep_tag[1].abs().sum() > 0
    assert not np.allclose(last.predict(X), every.predict(X))
    tuned = TagRegressor(deep_layers=[0], tune_domain_tags=True, max_iter=1, early_stopping=False,
                         **{k: v for k, v in kw.items() if k not in ("max_iter", "early_stopping")}).fit(X, y)
    assert torch.count_nonzero(tuned.module_.deep_tag[1]) == 0 and tuned.module_.deep_tag[0].abs().sum() > 0
    assert TagRegressor(deep_layers=1, **{**kw, "tag_depth": "shallow"}).fit(X, y).deep_layers_ is None  # ignored
    last.save_tags(tmp_path / "last.safetensors", name="Len")
    back = TagRegressor.from_tags(tmp_path / "last.safetensors", "Len", model=tiny_model)
    assert back.deep_layers == [1] and back.deep_layers_ == (1,)
    np.testing.assert_array_equal(back.predict(X), last.predict(X))
    with pytest.raises(TagMismatchError, match=r"deep_layers=\[0\] leaves out the decoder blocks \[1\], where the "
                                               r"deep tag 'Len' has learned values"):
        TagRegressor.from_tags(tmp_path / "last.safetensors", "Len", model=tiny_model, deep_layers=[0])
    with pytest.raises(ValueError, match=r"warm_start: deep_layers=\(0, 1\) \(fitted: \(1,\)\) changed"):
        last.set_params(warm_start=True, deep_layers="all").fit(X, y)
    for bad, msg in [(3, "deep_layers=3 asks for the last 3 decoder blocks, but this model has 2"),
                     ([0, 2], r"deep_layers holds the block indices \[2\], outside this model's 2 decoder blocks"),
                     ([1, -1], r"deep_layers names the decoder blocks \[1\] more than once"),
                     (0, "'deep_layers' parameter of TagRegressor must be 'all', a positive int"),
                     ("last", "'deep_layers' parameter of TagRegressor must be 'all', a positive int")]:
        est = TagRegressor(deep_layers=bad, **kw)
        with pytest.raises(ValueError, match=msg):
            est.fit(X, y)
        assert not hasattr(est, "module_")  # a failed fit leaves nothing behind


@pytest.mark.parametrize("kind", ["deep", "kv"])
def test_tuned_deep_domain_tags_move_the_features_and_the_head_follows(make_reg, length_task, kind):
    """``domain_tag_depth="deep"`` or ``"kv"`` + ``tune_domain_tags``: the blocks train, the pooled features move,
    and the closed-form head's standardisation is re-set from the moved features (mean over the training rows)."""
    from sktag._forward.deep import block_shape

    X, y = length_task
    frozen = make_reg(max_iter=2, domain_tag_depth=kind, early_stopping=False).fit(X, y)
    assert frozen.domain_tag_depth_ == kind
    assert not frozen.module_.domain_deep[0].detach().any()  # frozen: the zero start, the shallow tag's model
    shallow = make_reg(max_iter=2, early_stopping=False).fit(X, y)
    assert shallow.domain_tag_depth_ == "shallow" and shallow.module_.domain_deep is None
    np.testing.assert_array_equal(frozen.predict(X), shallow.predict(X))

    tuned = make_reg(max_iter=2, domain_tag_depth=kind, tune_domain_tags=True, early_stopping=False,
                     learning_rate_init=5e-2).fit(X, y)
    block = tuned.module_.domain_deep[0].detach()
    n_layers, width = block_shape(tuned.get_backbone(), kind)
    assert block.shape == (n_layers, 10, width)  # a new domain tag: 10 vectors
    assert block.abs().sum() > 0
    F_tuned, F_start = tuned.transform(X), shallow.transform(X)
    d = tuned.get_backbone().hidden_size  # the function tag's own state comes first, then the pooled states
    assert not np.allclose(F_tuned[:, d:], F_start[:, d:], **tol())  # the data-token states moved
    mean, scale = tuned.module_.head.mean.cpu().numpy(), tuned.module_.head.scale.cpu().numpy()
    np.testing.assert_allclose(mean, F_tuned.mean(axis=0), **tol(scale=float(np.abs(F_tuned).max())))
    stale = shallow.module_.head.mean.cpu().numpy()  # the start's standardisation does not fit them
    assert np.abs(stale - F_tuned.mean(axis=0)).max() > 10 * np.abs(mean - F_tuned.mean(axis=0)).max()
    np.testing.assert_allclose(scale, F_tuned.std(axis=0), **tol(scale=float(np.abs(F_tuned).max())))


@pytest.mark.parametrize("kind", ["deep", "kv"])
def test_deep_domain_tags_round_trip_through_a_tagset(make_reg, length_task, tmp_path, kind):
    from sktag import TagRegressor, TagSet
    from sktag._forward.deep import block_shape

    X, y = length_task
    reg = make_reg(max_iter=1, domain_tag_depth=kind, tune_domain_tags=True, early_stopping=False,
                   learning_rate_init=5e-2).fit(X, y)
    reg.save_tags(tmp_path / "t.safetensors")
    ts = TagSet.load(tmp_path / "t.safetensors")
    assert ts.info("Text")["depth"] == block_shape(reg.get_backbone(), kind)[0] and "deep" in repr(ts)
    assert ts.deep_kind("Text") == kind and ts.deep_kind("TagRegressor") is None
    torch.testing.assert_close(ts.deep["Text"], reg.module_.domain_deep[0].detach().cpu(), rtol=0, atol=0)
    back = TagRegressor.from_tags(ts, "TagRegressor")  # the device reg is on ("auto"): bit-equal predictions
    assert back.domain_tag_depth_ == kind
    np.testing.assert_array_equal(back.predict(X), reg.predict(X))
    flat = TagRegressor.from_tags(ts, "TagRegressor", domain_tag_depth="shallow")
    assert flat.domain_tag_depth_ == "shallow" and not np.allclose(flat.predict(X), reg.predict(X))


def test_a_deep_domain_tag_keeps_its_kind(make_reg, length_task):
    """A tag's deep blocks are never read as the other kind: ``domain_tag_depth`` of the other kind is refused
    (before anything is fitted), ``"auto"`` keeps the kind, and domain tags of two kinds cannot be mixed."""
    from sktag import TagRegressor

    X, y = length_task
    reg = make_reg(max_iter=1, domain_tag_depth="kv", tune_domain_tags=True, early_stopping=False,
                   learning_rate_init=5e-2).fit(X, y)
    back = pickle.loads(pickle.dumps(reg))  # the kind travels with the fitted module
    assert back.domain_tag_depth_ == "kv" and back.module_.deep_table().kind == "kv"
    np.testing.assert_array_equal(back.predict(X), reg.predict(X))
    ts = reg.tagset()
    kw = dict(model=reg.model, domains="Text", tag_length=3, max_iter=1, early_stopping=False, device="cpu",
              random_state=0)
    assert TagRegressor(domain_tags=ts, **kw).fit(X, y).domain_tag_depth_ == "kv"
    refused = TagRegressor(domain_tags=ts, domain_tag_depth="deep", **kw)
    with pytest.raises(ValueError, match=r"domain_tag_depth='deep', but the domain tags of \['Text'\] carry deep "
                                         r"blocks of the kind 'kv'"):
        refused.fit(X, y)
    assert not hasattr(refused, "module_")
    residual = make_reg(max_iter=1, domain_tag_depth="deep", tune_domain_tags=True, early_stopping=False,
                        learning_rate_init=5e-2).fit(X, y).tagset()
    both = ts.copy()
    both.add("Other", residual["Text"], kind="domain").add_deep("Other", residual.deep["Text"], kind="deep")
    with pytest.raises(ValueError, match=r"mix deep tags of the kinds \['deep', 'kv'\]"):
        TagRegressor(domain_tags=both, **{**kw, "domains": ["Text", "Other"]}).fit(np.c_[X, X], y)
