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

FUNCTION_SEGMENT = -1


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
class EncodedRow:
    """One row of input, before the function tag."""

    ids: np.ndarray
    slot: np.ndarray
    seg: np.ndarray

    def __len__(self):
        return len(self.ids)


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


def _layer_masks(backbone, valid_k, seg_q, seg_k, n_q, isolate, dtype):
    """The mask(s) to pass as ``attention_mask``: one tensor, or one per layer type.

    ``backbone.mask_windows`` says which sliding window each layer type has
    (:attr:`sktag.backbone.Backbone.mask_windows`); models that mix global
    and local layers take a dict keyed by layer type.
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


def _run_decoder(backbone, inputs_embeds, mask, pos, cache=None, use_cache=False):
    decoder = backbone.decoder
    kwargs = {_cache_kwarg(decoder): cache} if cache is not None else {}
    out = decoder(
        inputs_embeds=inputs_embeds,
        attention_mask=mask,
        position_ids=pos,
        use_cache=use_cache,
        **kwargs,
    )
    if not use_cache:
        return out.last_hidden_state, None
    new_cache = out["cache"] if "cache" in out else out["past_key_values"]
    return out.last_hidden_state, new_cache


def full_forward(backbone, batch: Batch, tag_table, isolate=False, all_positions=False):
    """Run the whole tagged sequence; hidden state at the last position ``[B, d]``.

    With ``all_positions=True`` returns the full ``[B, L, d]`` hidden states.
    """
    x = embed(backbone, batch, tag_table)
    mask = _layer_masks(backbone, batch.valid, batch.seg, batch.seg, batch.ids.shape[1], isolate, x.dtype)
    h, _ = _run_decoder(backbone, x, mask, batch.pos)
    return h if all_positions else h[:, -1]


def _cache_layers(cache):
    """``[(K, V), ...]`` per layer from a transformers cache object."""
    if hasattr(cache, "layers"):
        return [(layer.keys, layer.values) for layer in cache.layers]
    if hasattr(cache, "key_cache"):
        return list(zip(cache.key_cache, cache.value_cache))
    return [tuple(kv) for kv in cache]


@torch.no_grad()
def prefix_kv(backbone, batch: Batch, tag_table, isolate=False):
    """Key/value cache of a prefix batch: a tensor ``[n_layers, 2, B, kvh, L, hd]``."""
    from transformers import DynamicCache

    x = embed(backbone, batch, tag_table)
    mask = _layer_masks(backbone, batch.valid, batch.seg, batch.seg, batch.ids.shape[1], isolate, x.dtype)
    _, cache = _run_decoder(backbone, x, mask, batch.pos, cache=DynamicCache(), use_cache=True)
    return torch.stack([torch.stack(kv) for kv in _cache_layers(cache)])


def tag_forward(backbone, kv, prefix_valid, tag, autocast_dtype=None):
    """Run only the function-tag positions against a prefix cache.

    Parameters
    ----------
    kv : Tensor ``[n_layers, 2, B, kvh, L, hd]``
        Left-padded prefix cache (constant, no gradient).
    prefix_valid : Tensor ``[B, L]`` bool
    tag : Tensor ``[p, d]``
        The function tag (gradient flows into it).

    Returns
    -------
    Tensor ``[B, d]``: hidden state at the last function-tag position.
    """
    from transformers import DynamicCache

    B, L = prefix_valid.shape
    p = tag.shape[0]
    dtype = kv.dtype
    x = tag.to(dtype).unsqueeze(0).expand(B, p, tag.shape[1])
    start = prefix_valid.sum(dim=1, keepdim=True)
    pos = start + torch.arange(p, device=kv.device)
    valid_k = torch.cat([prefix_valid, torch.ones(B, p, dtype=torch.bool, device=kv.device)], 1)
    mask = _layer_masks(backbone, valid_k, None, None, p, False, dtype)
    cache = DynamicCache()
    for i in range(kv.shape[0]):
        cache.update(kv[i, 0], kv[i, 1], i)
    h, _ = _run_decoder(backbone, x, mask, pos, cache=cache, use_cache=True)
    return h[:, -1]


class PrefixStore:
    """Prefix key/value caches of a whole data set, packed without padding.

    Memory: ``n_layers x 2 x kv_heads x head_dim x tokens x bytes`` per row,
    ``tokens`` being the row's prefix length (domain tags + data tokens).
    """

    def __init__(self, n_layers, kvh, hd, lengths, dtype, device):
        self.lengths = np.asarray(lengths, dtype=np.int64)
        self.offsets = np.concatenate([[0], np.cumsum(self.lengths)])
        total = int(self.offsets[-1])
        # one extra all-zero token that padding points at
        self.buf = torch.zeros((n_layers, 2, total + 1, kvh, hd), dtype=dtype, device=device)
        self.device = device

    @staticmethod
    def nbytes(backbone, total_tokens) -> int:
        return backbone.n_kv_bytes_per_token() * int(total_tokens)

    def put(self, rows, kv, valid):
        """Store the cache ``kv`` of a left-padded batch of data-set ``rows``."""
        L = valid.shape[1]
        for b, r in enumerate(rows):
            n = int(self.lengths[r])
            o = int(self.offsets[r])
            # [n_layers, 2, kvh, n, hd] -> [n_layers, 2, n, kvh, hd]
            self.buf[:, :, o:o + n] = kv[:, :, b, :, L - n:].transpose(2, 3)

    def gather(self, rows):
        """Left-padded ``(kv, valid)`` for data-set ``rows``."""
        lengths = self.lengths[rows]
        L = int(lengths.max())
        pad = self.buf.shape[2] - 1
        idx = np.full((len(rows), L), pad, dtype=np.int64)
        for b, (r, n) in enumerate(zip(rows, lengths)):
            idx[b, L - n:] = np.arange(self.offsets[r], self.offsets[r] + n)
        idx_t = to_device(idx, self.device)
        kv = self.buf[:, :, idx_t]  # [nl, 2, B, L, kvh, hd]
        kv = kv.permute(0, 1, 2, 4, 3, 5).contiguous()
        valid = to_device(idx != pad, self.device)
        return kv, valid
