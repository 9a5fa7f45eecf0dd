"""Forward passes of a tagged input through the frozen backbone.

Every row is laid out as ``[<Dom_1> seg_1 <Dom_2> seg_2 ... <Function>]``.
Positions are described by three integer arrays per row:

``ids``
    the token id (0 at tag positions),
``slot``
    ``-1`` for a token, else the row of the *tag table* (all tags stacked)
    whose vector goes there,
``seg``
    the segment a position belongs to (a domain tag belongs to the segment it
    opens); the function tag has segment ``FUNCTION_SEGMENT`` and sees
    everything.

Batches are left-padded, so the function tag always occupies the last
``p`` columns.  Two equivalent ways to get the hidden state at the last
function-tag position:

* :func:`full_forward` runs the whole sequence (the naive path);
* :func:`prefix_kv` runs everything before the function tag once, without
  autograd, and returns its key/value cache; :func:`tag_forward` then runs
  only the ``p`` function-tag positions against that cache.  Because the
  LLM is causal and the prefix does not depend on the function tag, both
  give the same result, gradients included.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass

import numpy as np
import torch

from .deep import domain_tags_applied, function_tag_applied
from .encoding import FUNCTION_SEGMENT, EncodedRow  # noqa: F401  (EncodedRow: rows collate takes)
from .pooling import data_token_groups, pool_states  # noqa: F401  (part of the engine's interface)


def to_device(array, device) -> torch.Tensor:
    """Copy a numpy array to ``device`` without making the host wait for CUDA.

    On CUDA the array goes through pinned memory with ``non_blocking=True``,
    so queueing the copy does not synchronise with running kernels.
    """
    t = torch.from_numpy(np.ascontiguousarray(array))
    if torch.device(device).type == "cuda":
        return t.pin_memory().to(device, non_blocking=True)
    return t


@dataclass
class States:
    """What one forward gives a readout (see :class:`sktag._forward.readouts.Needs`): one record.

    ``tag`` is a list of ``[B, d]`` tensors, the hidden states at the last
    function-tag position at each of the readout's tag layers; ``pooled`` is
    ``[B, G, width]``, data-token states pooled at its pooled layers (layer blocks
    side by side; ``G`` is 1, or one group per segment).  Either is None when
    the readout does not need it.
    """

    tag: list | None = None
    pooled: torch.Tensor | None = None


@dataclass
class Batch:
    """A left-padded batch of positions, on a device."""

    ids: torch.Tensor  # [B, L] long
    slot: torch.Tensor  # [B, L] long, -1 for tokens
    seg: torch.Tensor  # [B, L] long
    valid: torch.Tensor  # [B, L] bool, False on padding
    pos: torch.Tensor  # [B, L] long position ids

    @property
    def lengths(self) -> torch.Tensor:
        return self.valid.sum(dim=1)


def collate(rows, tail=None, device="cpu") -> Batch:
    """Left-pad ``rows`` (a list of :class:`EncodedRow`) into a :class:`Batch`.

    ``tail`` is an optional ``(slots,)`` array appended to every row (the
    function tag), with segment ``FUNCTION_SEGMENT``.
    """
    n_tail = 0 if tail is None else len(tail)
    lengths = [len(r) + n_tail for r in rows]
    L = max(lengths) if lengths else 0
    B = len(rows)
    ids = np.zeros((B, L), dtype=np.int64)
    slot = np.full((B, L), -1, dtype=np.int64)
    seg = np.full((B, L), FUNCTION_SEGMENT, dtype=np.int64)
    valid = np.zeros((B, L), dtype=bool)
    pos = np.zeros((B, L), dtype=np.int64)
    for b, (r, n) in enumerate(zip(rows, lengths)):
        start = L - n
        end = start + len(r)
        ids[b, start:end] = r.ids
        slot[b, start:end] = r.slot
        seg[b, start:end] = r.seg
        if n_tail:
            slot[b, end:] = tail
        valid[b, start:] = True
        pos[b, start:] = np.arange(n)
    t = lambda a: to_device(a, device)  # noqa: E731
    return Batch(ids=t(ids), slot=t(slot), seg=t(seg), valid=t(valid), pos=t(pos))


def length_batches(indices, lengths, batch_size, rng=None, max_tokens=None):
    """Split ``indices`` into batches of rows of similar length.

    With ``rng`` (training): shuffle, sort by length within chunks of 20
    batches, then shuffle the order of the batches (seeded).  Without
    (inference): sort all by length and cap each batch at ``max_tokens``
    padded tokens (default ``batch_size x 128``), so that a few long strings
    do not pad a whole large batch.
    """
    indices = np.asarray(indices)
    lengths = np.asarray(lengths)
    if rng is None:
        order = indices[np.argsort(lengths[indices], kind="stable")]
        max_tokens = max_tokens or batch_size * 128
        batches, start = [], 0
        for i in range(1, len(order) + 1):
            # rows are sorted: the padded size of order[start:i + 1] is (i + 1 - start) * lengths[order[i]]
            if i == len(order) or i - start + 1 > batch_size or (i - start + 1) * lengths[order[i]] > max_tokens:
                batches.append(order[start:i])
                start = i
        return batches
    perm = rng.permutation(indices)
    chunk = batch_size * 20
    batches = []
    for c in range(0, len(perm), chunk):
        part = perm[c:c + chunk]
        part = part[np.argsort(lengths[part], kind="stable")]
        batches.extend(part[i:i + batch_size] for i in range(0, len(part), batch_size))
    order = rng.permutation(len(batches))
    return [batches[i] for i in order]


def equal_length_batches(indices, lengths, batch_size):
    """Split ``indices`` into batches of rows of one length each (no padding), at most ``batch_size`` rows.

    The batches of the frozen prefix passes: a row computed without padding
    gets the same values whichever rows share its batch, so a prefix stored
    from one fit serves another bit for bit (on kernels whose result for a
    row does not depend on the batch size; float32 on CPU is one).  Rows go
    by length, then by position.
    """
    indices = np.asarray(indices)
    order = indices[np.argsort(np.asarray(lengths)[indices], kind="stable")]
    batches, start = [], 0
    for i in range(1, len(order) + 1):
        if i == len(order) or i - start >= batch_size or lengths[order[i]] != lengths[order[start]]:
            batches.append(order[start:i])
            start = i
    return batches


def embed(backbone, batch: Batch, tag_table: torch.Tensor) -> torch.Tensor:
    """Input embeddings of ``batch`` with tag vectors spliced in.

    ``tag_table`` is ``[n_slots, d]`` (float32 master weights); the result is
    in the backbone's dtype and keeps the gradient to ``tag_table``.
    """
    emb = backbone.embeddings(batch.ids)
    if tag_table is None or tag_table.shape[0] == 0:
        return emb
    is_tag = batch.slot >= 0
    tags = tag_table.to(emb.dtype)[batch.slot.clamp_min(0)]
    return torch.where(is_tag.unsqueeze(-1), tags, emb)


def attention_mask(valid_k, seg_q, seg_k, n_q, isolate, dtype, window=None):
    """Additive 4-D mask ``[B, 1, n_q, L_k]``.

    Queries are the last ``n_q`` key positions (causal).  Padding is never
    attended to.  With ``isolate``, a position outside the function tag only
    sees positions of its own segment.  With a ``window``, a query sees only
    the last ``window`` key positions, itself included (the sliding window
    of transformers' ``sliding_window_overlay``: key index ``> q - window``).
    Rows are contiguous (padding only on the left, or only on the right), so
    distances between indices are distances between positions.
    """
    B, L_k = valid_k.shape
    device = valid_k.device
    q_idx = torch.arange(L_k - n_q, L_k, device=device)
    k_idx = torch.arange(L_k, device=device)
    allowed = k_idx[None, :] <= q_idx[:, None]
    if window is not None:
        allowed = allowed & (k_idx[None, :] > q_idx[:, None] - int(window))
    allowed = allowed.unsqueeze(0) & valid_k[:, None, :]
    if isolate:
        same = seg_q[:, :, None] == seg_k[:, None, :]
        allowed = allowed & (same | (seg_q == FUNCTION_SEGMENT)[:, :, None])
    mask = torch.zeros(allowed.shape, dtype=dtype, device=device)
    mask.masked_fill_(~allowed, torch.finfo(dtype).min)
    return mask.unsqueeze(1)


def build_masks(backbone, valid_k, seg_q, seg_k, n_q, isolate, dtype):
    """The ``attention_mask`` of every forward: one 4-D tensor, or one per layer type.

    The one place masks are built, for the whole-sequence passes (training
    with tuned domain tags, the prefix cache, pooled states, LLMEmbedding,
    pretraining) and the function-tag step alike: causal, padding never
    attended to, segment isolation (``isolate``) and the sliding window of
    each layer type.  ``backbone.mask_windows`` says which window each layer
    type has (:attr:`sktag.backbone.Backbone.mask_windows`); models that mix
    global and local layers take a dict keyed by layer type.  See
    :func:`attention_mask` for the arguments.
    """
    windows = getattr(backbone, "mask_windows", None) or {None: None}
    built = {}
    for w in set(windows.values()):
        built[w] = attention_mask(valid_k, seg_q, seg_k, n_q, isolate, dtype, window=w)
    if list(windows) == [None]:
        return built[windows[None]]
    return {layer_type: built[w] for layer_type, w in windows.items()}


def _cache_kwarg(decoder) -> str:
    params = inspect.signature(decoder.forward).parameters
    return "cache" if "cache" in params else "past_key_values"


def _run_decoder(backbone, inputs_embeds, mask, pos, cache=None, use_cache=False, hidden_states=False):
    decoder = backbone.decoder
    kwargs = {_cache_kwarg(decoder): cache} if cache is not None else {}
    if hidden_states:
        kwargs["output_hidden_states"] = True
    out = decoder(
        inputs_embeds=inputs_embeds,
        attention_mask=mask,
        position_ids=pos,
        use_cache=use_cache,
        **kwargs,
    )
    new_cache = None
    if use_cache:
        new_cache = out["cache"] if "cache" in out else out["past_key_values"]
    if hidden_states:
        return out.last_hidden_state, new_cache, out.hidden_states
    return out.last_hidden_state, new_cache


def _forward(backbone, batch: Batch, tag_table, isolate, *, cache=False, hidden_states=False, deep_table=None,
             inputs_embeds=None):
    """Embed ``batch`` with the tags spliced in and run the decoder over the whole sequence.

    ``deep_table`` holds the deep blocks of the domain tags (a
    :class:`sktag._forward.deep.DeepTable`, or a bare tensor of the residual kind),
    or None.  ``inputs_embeds`` (``[B, L, d]``), when given, replaces the
    embedded batch (``tag_table`` is then unused): the attributions
    integrate over it.  Returns ``(last_hidden_state, kv or None, hidden_states or
    None)``; ``kv`` is the key/value cache as a tensor ``[n_layers, 2, B,
    kvh, L, hd]``.
    """
    x = embed(backbone, batch, tag_table) if inputs_embeds is None else inputs_embeds
    mask = build_masks(backbone, batch.valid, batch.seg, batch.seg, batch.ids.shape[1], isolate, x.dtype)
    with domain_tags_applied(backbone, deep_table, batch.slot) as kv_cache:
        if kv_cache is None and cache:
            from transformers import DynamicCache

            kv_cache = DynamicCache()
        out = _run_decoder(backbone, x, mask, batch.pos, cache=kv_cache, use_cache=kv_cache is not None,
                           hidden_states=hidden_states)
    h, new_cache = out[0], out[1]
    kv = None if not cache else torch.stack([torch.stack(kv) for kv in _cache_layers(new_cache)])
    return h, kv, (out[2] if hidden_states else None)


def full_forward(backbone, batch: Batch, tag_table, isolate=False, all_positions=False, deep_table=None):
    """Run the whole tagged sequence; hidden state at the last position ``[B, d]``.

    With ``all_positions=True`` returns the full ``[B, L, d]`` hidden states.
    """
    h, _, _ = _forward(backbone, batch, tag_table, isolate, deep_table=deep_table)
    return h if all_positions else h[:, -1]


def _cache_layers(cache):
    """``[(K, V), ...]`` per layer from a transformers cache object."""
    if hasattr(cache, "layers"):
        return [(layer.keys, layer.values) for layer in cache.layers]
    if hasattr(cache, "key_cache"):
        return list(zip(cache.key_cache, cache.value_cache))
    return [tuple(kv) for kv in cache]


def _pooled(hs, batch, needs):
    """The pooled states ``needs`` asks for, ``[B, G, width]`` (None when it asks for none)."""
    if needs is None or not needs.pooled_layers:
        return None
    groups = int(batch.seg.max()) if needs.per_segment else None
    return pool_states(hs, needs.pooled_layers, batch, groups, needs.pooling)


@torch.no_grad()
def prefix_pass(backbone, batch: Batch, tag_table, isolate=False, needs=None, deep_table=None, kv=True):
    """:func:`prefix_kv` and the pooled data-token states ``needs`` asks for, from the same pass.

    Returns ``(kv, pooled)``; ``pooled`` (``[B, G, width]``, see
    :class:`States`) is None when ``needs`` asks for no pooled states, ``kv``
    is None with ``kv=False`` (only the pooled states are wanted).
    """
    pooling = needs is not None and bool(needs.pooled_layers)
    _, kv, hs = _forward(backbone, batch, tag_table, isolate, cache=kv, hidden_states=pooling,
                         deep_table=deep_table)
    return kv, _pooled(hs, batch, needs)


def full_states(backbone, batch: Batch, tag_table, isolate=False, needs=None, deep=None, deep_table=None,
                inputs_embeds=None) -> States:
    """The :class:`States` ``needs`` asks for from one pass over the whole sequence, function tag included.

    The path with autograd to every tag (tuned domain tags): ``batch`` ends
    with the function tag (``collate(..., tail=...)``); ``deep`` is a deep
    function tag (:func:`sktag._forward.deep.function_tag_applied`), ``deep_table`` the deep domain tags
    (:mod:`sktag._forward.deep`).  ``inputs_embeds`` replaces the embedded batch
    (see :func:`_forward`).
    """
    with function_tag_applied(backbone, deep, None if deep is None else deep.shape[1]):
        _, _, hs = _forward(backbone, batch, tag_table, isolate, hidden_states=True, deep_table=deep_table,
                            inputs_embeds=inputs_embeds)
    tag = [hs[i][:, -1] for i in needs.tag_layers] if needs.tag_layers else None
    return States(tag=tag, pooled=_pooled(hs, batch, needs))


@torch.no_grad()
def prefix_kv(backbone, batch: Batch, tag_table, isolate=False, deep_table=None):
    """Key/value cache of a prefix batch: a tensor ``[n_layers, 2, B, kvh, L, hd]``."""
    return _forward(backbone, batch, tag_table, isolate, cache=True, deep_table=deep_table)[1]


def tag_forward(backbone, kv, prefix_valid, tag):
    """Hidden state ``[B, d]`` at the last function-tag position (the final state): :func:`tag_states`."""
    return tag_states(backbone, kv, prefix_valid, tag)[-1]


def tag_states(backbone, kv, prefix_valid, tag, layers=None, deep=None):
    """Run only the function-tag positions against a prefix cache.

    Parameters
    ----------
    kv : Tensor ``[n_layers, 2, B, kvh, L, hd]``
        Left-padded prefix cache (constant, no gradient).
    prefix_valid : Tensor ``[B, L]`` bool
    tag : Tensor ``[p, d]``
        The function tag (gradient flows into it).
    deep : Tensor ``[n_layers, p, d]``, optional
        Deep function tag: added to the input of every decoder block at the
        ``p`` positions (see :func:`sktag._forward.deep.function_tag_applied`).
    layers : sequence of int, optional
        Hidden-state indices to return (``n_layers``: the final state, after
        the final norm); default: the final state only.

    Returns
    -------
    list of Tensor ``[B, d]``: the states at the last function-tag position, one per layer (widths can
    differ between layers: OPT's last state is narrower).
    """
    from transformers import DynamicCache

    B, L = prefix_valid.shape
    p = tag.shape[0]
    dtype = kv.dtype
    x = tag.to(dtype).unsqueeze(0).expand(B, p, tag.shape[1])
    start = prefix_valid.sum(dim=1, keepdim=True)
    pos = start + torch.arange(p, device=kv.device)
    valid_k = torch.cat([prefix_valid, torch.ones(B, p, dtype=torch.bool, device=kv.device)], 1)
    mask = build_masks(backbone, valid_k, None, None, p, False, dtype)
    cache = DynamicCache()
    for i in range(kv.shape[0]):
        cache.update(kv[i, 0], kv[i, 1], i)
    final_only = layers is None or list(layers) == [len(backbone.hidden_widths()) - 1]
    with function_tag_applied(backbone, deep, p):
        out = _run_decoder(backbone, x, mask, pos, cache=cache, use_cache=True, hidden_states=not final_only)
    if final_only:
        return [out[0][:, -1]]
    return [out[2][i][:, -1] for i in layers]


def hidden_states(backbone, batch: Batch, tag_table, layers, isolate=False, deep_table=None):
    """Hidden states of chosen layers over the whole (tagged) sequence.

    One forward pass of the decoder with ``output_hidden_states``; no
    function tag is needed (``collate`` without ``tail``), but a batch with
    one works too.

    Parameters
    ----------
    batch : Batch
    tag_table : Tensor ``[n_slots, d]`` or None
        Vectors spliced in at tag positions (``batch.slot >= 0``).
    layers : sequence of int
        Indices into transformers' ``hidden_states`` tuple, each in
        ``0..n_layers``: 0 is the input embeddings (tags spliced in), ``i``
        the output of decoder block ``i``; the last one, ``n_layers``, is
        taken after the final norm (it equals ``last_hidden_state``), as in
        transformers.
    isolate : bool, default=False
        Segment-isolating attention (see :func:`attention_mask`).
    deep_table : DeepTable or Tensor ``[n_layers, n, width]``, optional
        Deep blocks of the domain tags (:mod:`sktag._forward.deep`).

    Returns
    -------
    list of Tensor ``[B, L, d]``
        One per entry of ``layers``, in that order, in the backbone's dtype.
    """
    layers = [int(i) for i in layers]
    # all of them: a list of indices selects only those in some transformers 5.x versions (5.17:
    # the tuple then holds just them) and is read as True in others
    _, _, hs = _forward(backbone, batch, tag_table, isolate, hidden_states=True, deep_table=deep_table)
    if hs is None or max(layers) >= len(hs) or min(layers) < 0:
        n = 0 if hs is None else len(hs)
        raise ValueError(f"layers {layers} are not all among the {n} hidden states this model returns.")
    picked = [hs[i] for i in layers]
    if any(h is None for h in picked):  # pragma: no cover - a model that cannot record some layer
        raise RuntimeError(f"the model did not return the hidden states of layers {layers}.")
    return picked
