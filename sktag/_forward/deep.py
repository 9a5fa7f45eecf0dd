"""Deep tags: learned state at every layer at the tag positions, and how a forward applies it.

Everything deep lives here: the kinds, the blocks' shapes and masks, and the
two contexts the engine runs a forward in (:func:`domain_tags_applied`,
:func:`function_tag_applied`); a TagSet saves the blocks with their kind
(:meth:`sktag.TagSet.add_deep`).

A shallow domain tag is ``p`` input vectors.  A deep one also carries one
learned block per layer, and a *kind* says where that block goes:

``"deep"`` (residual)
    ``[n_blocks, p, width]``: added to the input of decoder block ``l`` at the
    tag's positions (``width``: the blocks' states).  The tag's keys and values
    at each layer follow from its states through the layer's own norm and
    projections.
``"kv"`` (free key/values, P-Tuning v2)
    ``[n_cache_layers, p, 2 * kv_heads * head_dim]``: added to the keys (first
    half) and values (second half) that attention layer ``l`` stores for the
    tag's positions, after its projections, any key norm and the rotary
    embedding, so the keys and values the data tokens attend to are free
    parameters.  The tag positions attend to them too, as every later
    position does.

Both start at zero, so a deep tag starts as its shallow one; both only touch
the tag positions, so the rows' tokens see them through attention alone.  The
key/value kind works through the model's cache (a :class:`DynamicCache` that
adds the blocks as each layer writes to it), which every backbone sktag
accepts goes through, so it needs no knowledge of how a family names or fuses
its projections.

The deep *function* tag (``tag_depth="deep"``) is a residual block too, added
at the last ``p`` positions of every row (:func:`function_tag_applied`);
:func:`resolve_deep_layers` and :func:`block_mask` keep it to the decoder
blocks ``deep_layers`` names.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import numpy as np
import torch

from .layers import _is_int

RESIDUAL = "deep"
KEY_VALUE = "kv"
KINDS = (RESIDUAL, KEY_VALUE)


@dataclass(frozen=True)
class DeepTable:
    """The deep blocks of the domain tags side by side, ``[n_layers, n_tag_vectors, width]``, and their kind."""

    blocks: torch.Tensor
    kind: str = RESIDUAL

    def detach(self) -> "DeepTable":
        return DeepTable(self.blocks.detach(), self.kind)

    def to(self, *args, **kwargs) -> "DeepTable":
        return DeepTable(self.blocks.to(*args, **kwargs), self.kind)

    @property
    def shape(self):
        return self.blocks.shape


def as_table(table) -> DeepTable | None:
    """``table`` as a :class:`DeepTable` (a bare tensor is of the residual kind), or None."""
    if table is None or isinstance(table, DeepTable):
        return table
    return DeepTable(table, RESIDUAL)


def check_kind(kind) -> str:
    if kind not in KINDS:
        raise ValueError(f"the kind of a deep tag must be one of {KINDS}, got {kind!r}.")
    return kind


def block_shape(backbone, kind=RESIDUAL) -> tuple[int, int]:
    """``(n_layers, width)`` of a deep block of ``kind`` on ``backbone``.

    Residual: one block per decoder block, of the width of the blocks' states
    (``hidden_widths()[1]``, which can differ from the embeddings': OPT
    projects its narrower embeddings in).  Key/value: one per cached layer,
    keys and values side by side (:meth:`Backbone.kv_geometry`).
    """
    if check_kind(kind) == RESIDUAL:
        return len(backbone.decoder_blocks()), backbone.hidden_widths()[1]
    n_layers, kv_heads, head_dim = backbone.kv_geometry()
    return n_layers, 2 * kv_heads * head_dim


class DeepLayers:
    """Parameter constraint of ``deep_layers``: ``"all"``, a positive int or a non-empty list of ints (syntax only).

    Whether the blocks exist is checked once the depth is known, by
    :func:`resolve_deep_layers`.
    """

    def __call__(self, v) -> bool:
        if isinstance(v, str):
            return v == "all"
        if _is_int(v):
            return v >= 1
        return isinstance(v, (list, tuple, np.ndarray)) and len(v) > 0 and all(_is_int(i) for i in v)

    def __str__(self):
        return "'all', a positive int (the last that many decoder blocks) or a non-empty list of block indices"


def resolve_deep_layers(spec, n_blocks) -> tuple[int, ...] | None:
    """The decoder blocks that carry a deep function-tag block under ``deep_layers=spec``; None: all of them.

    ``"all"`` (or any spec naming every block): None, today's deep tag.  A
    positive int ``k``: the last ``k`` blocks (P-Tuning v2 found prompts in
    the upper layers matter most).  A list: those block indices, ``0`` the
    first block, negative ones counted from the end; sorted, each once.

    Raises
    ------
    ValueError
        ``k`` above ``n_blocks``, an index out of range, or an index given twice.
    """
    n = int(n_blocks)
    if not DeepLayers()(spec):
        raise ValueError(f"deep_layers must be {DeepLayers()}, got {spec!r}.")
    if isinstance(spec, str):
        return None
    if _is_int(spec):
        if spec > n:
            raise ValueError(f"deep_layers={spec} asks for the last {spec} decoder blocks, but this model has {n}.")
        blocks = tuple(range(n - int(spec), n))
    else:
        bad = [int(i) for i in spec if not -n <= int(i) < n]
        if bad:
            raise ValueError(f"deep_layers holds the block indices {bad}, outside this model's {n} decoder blocks "
                             f"(0 .. {n - 1}, or -{n} .. -1 from the end).")
        idx = [int(i) % n for i in spec]
        twice = sorted({i for i in idx if idx.count(i) > 1})
        if twice:
            raise ValueError(f"deep_layers names the decoder blocks {twice} more than once (given {list(spec)}).")
        blocks = tuple(sorted(idx))
    return None if len(blocks) == n else blocks


def block_mask(blocks, n_blocks) -> torch.Tensor | None:
    """``[n_blocks, 1, 1]`` float, one at the tagged ``blocks`` and zero elsewhere; None when all are tagged."""
    if blocks is None:
        return None
    mask = torch.zeros(int(n_blocks), 1, 1)
    mask[list(blocks)] = 1.0
    return mask


def zero_blocks(backbone, length, kind=RESIDUAL) -> torch.Tensor:
    """The deep block of a ``length``-vector tag before training: ``[n_layers, length, width]`` zeros."""
    n_layers, width = block_shape(backbone, kind)
    return torch.zeros(n_layers, int(length), width)


def check_blocks(blocks, backbone) -> None:
    """Every :class:`DeepTable` in ``blocks`` (a dict by domain; None: shallow) must fit ``backbone``."""
    from ..exceptions import TagMismatchError

    for d, b in blocks.items():
        if b is None:
            continue
        shape = block_shape(backbone, b.kind)
        if (b.shape[0], b.shape[2]) != shape:
            what = "decoder blocks of width" if b.kind == RESIDUAL else "cached layers of key/value width"
            raise TagMismatchError(f"the deep domain tag ({b.kind!r}) of {d!r} has {b.shape[0]} blocks of width "
                                   f"{b.shape[2]}; this model has {shape[0]} {what} {shape[1]}.")


def common_kind(tables) -> str | None:
    """The one kind of the deep tables in ``tables`` (None entries are shallow), or None if all are shallow."""
    kinds = {t.kind for t in tables if t is not None}
    if len(kinds) > 1:
        raise ValueError(f"the domain tags mix deep tags of the kinds {sorted(kinds)}; give all of them one kind "
                         "(domain_tag_depth='deep' or 'kv' with tags of that kind, or 'shallow').")
    return kinds.pop() if kinds else None


def deep_domain_blocks(blocks, depth, backbone, lengths):
    """The deep blocks the domain tags carry under ``domain_tag_depth=depth``: ``{domain: DeepTable or None}``.

    ``"auto"``: as the tags come (``blocks``); ``"shallow"``: none;
    ``"deep"`` or ``"kv"``: a tag's own block when it has one of that kind,
    zeros of that kind (``lengths[domain]`` vectors) when it is shallow, and
    an error when it carries a block of the other kind.
    """
    if depth == "auto":
        return dict(blocks)
    if depth == "shallow":
        return dict.fromkeys(blocks)
    wrong = sorted(d for d, b in blocks.items() if b is not None and b.kind != check_kind(depth))
    if wrong:
        raise ValueError(f"domain_tag_depth={depth!r}, but the domain tags of {wrong} carry deep blocks of the "
                         f"kind {blocks[wrong[0]].kind!r}; use domain_tag_depth='auto' to keep them, or 'shallow'.")
    return {d: DeepTable(zero_blocks(backbone, lengths[d], depth), depth) if b is None else b
            for d, b in blocks.items()}


def _slots(table, slot):
    at = (slot >= 0) & (slot < table.shape[1])
    b_idx, p_idx = at.nonzero(as_tuple=True)
    return b_idx, p_idx, slot[b_idx, p_idx]


def _key_value_cache(table, slot):
    """A :class:`DynamicCache` that adds ``table[l]`` to the keys and values layer ``l`` writes at tag positions."""
    from transformers import DynamicCache

    b_idx, p_idx, rows = _slots(table, slot)
    n_layers = table.shape[0]

    class _TaggedCache(DynamicCache):
        def update(self, key_states, value_states, layer_idx, *args, **kwargs):
            if layer_idx >= n_layers:
                raise ValueError(f"the model writes cache layer {layer_idx} but the key/value deep tag has "
                                 f"{n_layers} layers.")
            B, kvh, L, hd = key_states.shape
            if (B, L) != tuple(slot.shape):
                raise ValueError(f"cache layer {layer_idx} gets states of {B} rows x {L} positions; the key/value "
                                 f"deep tag was laid out for {tuple(slot.shape)}.")
            add = table[layer_idx].to(key_states.dtype)[rows].view(len(rows), 2, kvh, hd)
            key_states = key_states.transpose(1, 2).index_put((b_idx, p_idx), add[:, 0],
                                                              accumulate=True).transpose(1, 2)
            value_states = value_states.transpose(1, 2).index_put((b_idx, p_idx), add[:, 1],
                                                                  accumulate=True).transpose(1, 2)
            return super().update(key_states, value_states, layer_idx, *args, **kwargs)

    return _TaggedCache()


@contextlib.contextmanager
def domain_tags_applied(backbone, table, slot):
    """Inside the context, a forward over a batch of ``slot`` layout carries the deep domain tags of ``table``.

    Yields the cache the forward must run with (a fresh one that adds the
    key/value kind's blocks), or None: the residual kind hooks into the
    decoder blocks' inputs (:func:`block_inputs`) and needs no particular
    cache.  ``table=None`` does nothing.
    """
    table = as_table(table)
    if table is None or table.shape[1] == 0:
        yield None
        return
    if table.kind == KEY_VALUE:
        yield _key_value_cache(table.blocks, slot)
        return
    b_idx, p_idx, rows = _slots(table, slot)

    def add(layer, h):  # out of place (autograd), touching only the tag positions
        return h.index_put((b_idx, p_idx), table.blocks[layer].to(h.dtype)[rows], accumulate=True)

    with block_inputs(backbone, add):
        yield None


@contextlib.contextmanager
def block_inputs(backbone, change):
    """Inside the context, the input ``h`` of decoder block ``l`` becomes ``change(l, h)``."""
    def hook_for(layer):
        def pre_hook(module, args, kwargs):
            h = change(layer, args[0] if args else kwargs["hidden_states"])
            if args:
                return (h, *args[1:]), kwargs
            return args, {**kwargs, "hidden_states": h}
        return pre_hook

    handles = [blk.register_forward_pre_hook(hook_for(i), with_kwargs=True)
               for i, blk in enumerate(backbone.decoder_blocks())]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


@contextlib.contextmanager
def function_tag_applied(backbone, block, n_last):
    """Add ``block[l]`` to the input of decoder block ``l`` at the last ``n_last`` positions (deep function tags).

    ``block`` is ``[n_layers, p, d]`` (float32, with the gradient to it);
    inside the context every forward of ``backbone`` adds it at the
    function-tag positions, which are the last ``p`` of every left-padded
    row.  The prefix before them never sees it (causal attention), so its
    cache stays valid.  ``block=None`` does nothing.
    """
    if block is None:
        yield
        return

    def add(layer, h):
        extra = block[layer].to(h.dtype)[-n_last:]
        return torch.cat([h[:, : h.shape[1] - n_last], h[:, h.shape[1] - n_last:] + extra], dim=1)

    with block_inputs(backbone, add):
        yield
