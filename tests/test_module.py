"""The trainable part of an estimator (``sktag._forward.module``): the tag table, deep blocks and the standardised head."""

import pickle

import numpy as np
import pandas as pd
import pytest
import torch

from sktag._forward.deep import DeepTable
from sktag._forward.module import Head, TagModule

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

D = 8


def _tags(*lengths, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(n, D, generator=g) for n in lengths]


# ------------------------------------------------------------------ the head
def test_head_is_a_linear_layer_on_standardised_features():
    head = Head(3, 2)
    W, b = torch.tensor([[1.0, 2.0, 3.0], [0.5, 0.0, -1.0]]), torch.tensor([0.25, -4.0])
    head.set_weights(W, b)
    mean, scale = np.array([1.0, -1.0, 2.0]), np.array([2.0, 0.5, 4.0])
    head.set_standardization(mean, scale)
    x = torch.tensor([[3.0, 0.0, 6.0], [1.0, -1.0, 2.0]])
    expected = ((x - torch.tensor(mean, dtype=torch.float32)) / torch.tensor(scale, dtype=torch.float32)) @ W.T + b
    torch.testing.assert_close(head(x), expected)
    torch.testing.assert_close(head(x[1:])[0], b)  # the mean row gives the bias


def test_head_standardisation_is_the_weighted_one_and_keeps_constant_features_unscaled():
    head = Head(2, 1)
    F = np.array([[1.0, 5.0], [3.0, 5.0], [100.0, 5.0]])
    head.standardize(F, np.array([1.0, 1.0, 0.0]))  # the third row has no weight
    np.testing.assert_allclose(head.mean.numpy(), [2.0, 5.0])
    np.testing.assert_allclose(head.scale.numpy(), [1.0, 1.0])  # a constant feature: scale 1, not 0
    head.set_standardization(np.zeros(2), np.array([1e-9, 3.0]))
    np.testing.assert_allclose(head.scale.numpy(), [1.0, 3.0])


def test_head_outputs_are_nan_outside_the_rows_asked_for():
    head = Head(2, 2)
    head.set_weights(torch.eye(2), torch.zeros(2))
    F = np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
    out = head.outputs(F, [2, 0])
    assert out.dtype == np.float64
    np.testing.assert_allclose(out[[0, 2]], F[[0, 2]])
    assert np.isnan(out[1]).all()
    assert np.isnan(head.outputs(F, [])).all()


# ------------------------------------------------------------------ tags
def test_tag_table_is_the_domain_tags_then_the_function_tag_and_only_the_function_tag_trains():
    doms, func = _tags(2, 3), _tags(4, seed=1)[0]
    m = TagModule(doms, func, n_features=5, n_outputs=1)
    assert torch.equal(m.tag_table(), torch.cat([*doms, func]))
    assert [t.requires_grad for t in m.domain_tags] == [False, False] and m.function_tag.requires_grad
    assert not m.tunes_domain_tags()
    doms[0].add_(1.0)  # the module holds copies
    assert not torch.equal(m.domain_tags[0], doms[0])
    tuned = TagModule(_tags(2, 3), func, 5, 1, tune_domain_tags=True)
    assert tuned.tunes_domain_tags() and all(t.requires_grad for t in tuned.domain_tags)


def test_a_shallow_function_tag_has_no_deep_block():
    m = TagModule(_tags(2), _tags(3)[0], 4, 1)
    assert m.deep_tag is None and m.deep_mask is None
    assert m.function_deep() is None and m.tagged_blocks() is None and m.deep_table() is None


def test_a_deep_function_tag_starts_at_zero_in_every_block():
    m = TagModule(_tags(2), _tags(3)[0], 4, 1, deep_shape=(4, 6))
    assert tuple(m.deep_tag.shape) == (4, 3, 6) and not m.deep_tag.any()
    assert m.deep_mask is None and m.tagged_blocks() == (0, 1, 2, 3)
    assert m.function_deep() is m.deep_tag


def test_deep_layers_mask_the_blocks_left_out():
    m = TagModule(_tags(2), _tags(3)[0], 4, 1, deep_shape=(4, 6), deep_layers=(1, 3))
    assert m.tagged_blocks() == (1, 3)
    with torch.no_grad():
        m.deep_tag.fill_(2.0)
    deep = m.function_deep()
    assert not deep[[0, 2]].any() and (deep[[1, 3]] == 2.0).all()
    deep.sum().backward()
    assert not m.deep_tag.grad[[0, 2]].any() and (m.deep_tag.grad[[1, 3]] == 1.0).all()


def test_deep_domain_tags_are_side_by_side_with_their_kind():
    """A domain without a deep block gets a zero one; the table puts the domains' blocks side by side."""
    doms = _tags(2, 3)
    block = torch.randn(5, 2, D)
    m = TagModule(doms, _tags(4)[0], 6, 1, domain_deep=[DeepTable(block, "kv"), None])
    assert m.domain_deep_kind == "kv"
    table = m.deep_table()
    assert table.kind == "kv" and tuple(table.shape) == (5, 5, D)
    assert torch.equal(table.blocks[:, :2], block) and not table.blocks[:, 2:].any()
    assert not m.tunes_domain_tags()
    shallow = TagModule(doms, _tags(4)[0], 6, 1, domain_deep=[None, None])
    assert shallow.domain_deep is None and shallow.domain_deep_kind is None and shallow.deep_table() is None
    with pytest.raises(ValueError, match="mix deep tags of the kinds"):
        TagModule(doms, _tags(4)[0], 6, 1, domain_deep=[DeepTable(block, "kv"), DeepTable(torch.zeros(5, 3, D))])


def test_a_pickled_module_keeps_its_deep_mask_and_kind():
    m = TagModule(_tags(2), _tags(3)[0], 4, 1, deep_shape=(3, D), deep_layers=(2,),
                  domain_deep=[DeepTable(torch.ones(3, 2, D), "deep")])
    back = pickle.loads(pickle.dumps(m))
    assert back.tagged_blocks() == (2,) and back.domain_deep_kind == "deep"
    assert torch.equal(back.tag_table(), m.tag_table())


@pytest.mark.parametrize("domain_tags", [None, "text", "pretrained-4"])
def test_layout_slots_match_the_tag_table(make_reg, tiny_model, domain_tags):
    """Domain tags whose length differs from ``tag_length`` (the words of "text", a pretrained tag) still
    sit where the layout says, and the function tag is the table's last ``tag_length`` rows."""
    from sktag import DomainTagPretrainer

    if domain_tags == "pretrained-4":
        domain_tags = DomainTagPretrainer(model=tiny_model, domain="Text", tag_length=4, max_iter=1,
                                          random_state=0).fit(["CC", "CN", "NO"]).tags_
    X = pd.DataFrame({"a": ["CCO", "CCN", "CO"] * 4, "b": ["NN", "C", "OC"] * 4})
    reg = make_reg(max_iter=1, tag_length=3, domains={"a": "Text", "b": "Text"}, domain_tags=domain_tags,
                   early_stopping=False).fit(X, np.arange(12.0))
    layout, table = reg.layout_, reg.module_.tag_table().detach().cpu()
    assert [t.shape[0] for t in reg.module_.domain_tags] == list(layout.tag_lengths)
    assert layout.offsets[-1] == table.shape[0]
    torch.testing.assert_close(table[layout.function_slots], reg.module_.function_tag.detach().cpu())
    torch.testing.assert_close(table[layout.domain_slots("Text")], reg.module_.domain_tags[0].detach().cpu())
