"""The frozen-prefix path must match the naive full path (values and gradients)."""

import numpy as np
import pytest
import torch

from conftest import SHORT_SMILES as STRINGS
from conftest import encoded_rows as _rows
from conftest import random_tag_table as _table
from conftest import tol
from sktag._forward import engine as _engine


@pytest.mark.parametrize("isolate", [False, True])
@pytest.mark.parametrize("two_columns", [False, True])
def test_prefix_path_matches_full_path(backbone, isolate, two_columns):
    cols = [STRINGS, STRINGS[::-1]] if two_columns else [STRINGS]
    lengths = (3, 4, 5) if two_columns else (3, 5)
    rows = _rows(backbone, cols, lengths)
    table = _table(backbone, lengths)
    p = lengths[-1]
    f_slots = np.arange(sum(lengths[:-1]), sum(lengths))

    # naive: whole sequence with autograd, padded batch of mixed lengths
    t_full = table.clone().requires_grad_(True)
    batch = _engine.collate(rows, tail=f_slots)
    assert len(set(len(r) for r in rows)) > 1  # really mixed lengths
    h_full = _engine.full_forward(backbone, batch, t_full, isolate)
    (h_full ** 2).sum().backward()

    # fast: prefix without autograd, then only the p function-tag positions
    ftag = table[-p:].clone().requires_grad_(True)
    pbatch = _engine.collate(rows)
    kv = _engine.prefix_kv(backbone, pbatch, table, isolate)
    assert not kv.requires_grad
    h_fast = _engine.tag_forward(backbone, kv, pbatch.valid, ftag)
    (h_fast ** 2).sum().backward()

    torch.testing.assert_close(h_fast, h_full, **tol(torch.float32))
    torch.testing.assert_close(ftag.grad, t_full.grad[-p:], **tol(torch.float32, kind="gradients"))

    # and each padded row equals that row run alone, without padding
    for i, r in enumerate(rows):
        single = _engine.collate([r], tail=f_slots)
        h1 = _engine.full_forward(backbone, single, table, isolate)
        torch.testing.assert_close(h1[0], h_full[i].detach(), **tol(torch.float32))


def test_padding_side_does_not_change_results(backbone):
    """A right-padded layout with explicit positions gives the same hidden states."""
    rows = _rows(backbone, [STRINGS], (3, 5))
    table = _table(backbone, (3, 5))
    f_slots = np.arange(3, 8)
    left = _engine.collate(rows, tail=f_slots)
    h_left = _engine.full_forward(backbone, left, table, all_positions=True)
    # build the right-padded equivalent by rolling every row
    shift = (~left.valid).sum(1)
    roll = lambda t: torch.stack([torch.roll(t[i], -int(shift[i])) for i in range(len(shift))])  # noqa: E731
    right = _engine.Batch(ids=roll(left.ids), slot=roll(left.slot), seg=roll(left.seg),
                          valid=roll(left.valid), pos=roll(left.pos))
    h_right = _engine.full_forward(backbone, right, table, all_positions=True)
    for i in range(len(rows)):
        n = int(left.valid[i].sum())
        torch.testing.assert_close(h_right[i, :n], h_left[i, -n:], **tol(torch.float32))


@pytest.mark.parametrize("isolate", [False, True])
def test_isolate_segments_masks_the_other_segments(backbone, isolate):
    """Changing segment 2 of three: what each segment's hidden states may see.

    Segment 1 comes first, so causal attention alone keeps it unchanged.
    Segment 3 (its domain tag and tokens, identical in both rows) attends to
    segment 2 under plain causal attention, so its hidden states change;
    with segment isolation they must stay exactly as they were.  The function
    tag sees every segment either way.
    """
    a = [["CCO"], ["c1ccccc1"], ["NCC"]]
    b = [["CCO"], ["OCCCCCCN"], ["NCC"]]  # only segment 2 differs, same number of tokens
    lengths = (3, 4, 5)  # domain tags d0 (columns 1 and 3) and d1 (column 2), function tag
    rows = _rows(backbone, a, lengths) + _rows(backbone, b, lengths)
    assert len(rows[0]) == len(rows[1])  # same positions: no padding, same position ids
    table = _table(backbone, lengths)
    f_slots = np.arange(sum(lengths[:-1]), sum(lengths))
    batch = _engine.collate(rows, tail=f_slots)
    assert torch.equal(batch.seg[0], batch.seg[1]) and torch.equal(batch.pos[0], batch.pos[1])
    with torch.no_grad():
        h = _engine.full_forward(backbone, batch, table, isolate, all_positions=True)
    seg = batch.seg[0]

    def states(segment):
        return h[0][seg == segment], h[1][seg == segment]

    def differ(x, y):
        return (x - y).abs().max().item() > 1e-3

    changed = (batch.ids[0] != batch.ids[1]) & (seg == 2)
    assert changed.any() and not ((batch.ids[0] != batch.ids[1]) & (seg != 2)).any()
    torch.testing.assert_close(*states(1), **tol(torch.float32))  # before segment 2: causal
    assert differ(*states(2))
    if isolate:
        torch.testing.assert_close(*states(3), **tol(torch.float32))
    else:
        assert differ(*states(3))
    assert differ(*states(_engine.FUNCTION_SEGMENT))  # the function tag sees all segments
    # the first position of segment 3 is its domain tag: identical input, and still it sees segment 2
    # only without isolation
    first3 = int(torch.nonzero(seg == 3)[0])
    assert differ(h[0][first3], h[1][first3]) != isolate

def test_sliding_window_mask_matches_transformers_pattern():
    """Key j is visible to query i iff i - window < j <= i, as in transformers' overlay."""
    from transformers.masking_utils import sliding_window_causal_mask_function

    L, w = 7, 3
    valid = torch.ones(1, L, dtype=torch.bool)
    mask = _engine.attention_mask(valid, None, None, L, False, torch.float32, window=w)[0, 0]
    ref = sliding_window_causal_mask_function(w)
    t = torch.tensor
    expected = torch.tensor([[bool(ref(t(0), t(0), t(i), t(j))) for j in range(L)] for i in range(L)])
    assert torch.equal(mask == 0, expected)
    assert int((mask == 0).sum(1).max()) == w
    # queries restricted to the last n_q positions (the cached-prefix path), left padding
    valid = torch.tensor([[False, False, True, True, True, True, True]])
    tail = _engine.attention_mask(valid, None, None, 2, False, torch.float32, window=w)[0, 0]
    assert torch.equal(tail == 0, expected[-2:] & valid[0])
    # no window: plain causal, as before
    full = _engine.attention_mask(torch.ones(1, L, dtype=torch.bool), None, None, L, False, torch.float32)
    assert torch.equal(full[0, 0] == 0, torch.ones(L, L, dtype=torch.bool).tril())
