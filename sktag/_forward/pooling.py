"""Pooling hidden states over the data tokens of each row (never tag positions or padding).

What the pooled readouts and :class:`~sktag.LLMEmbedding` read: the mean (or
the last) of a row's data-token states at chosen layers, over all its data
tokens or per segment (input column).
"""

from __future__ import annotations

import torch


def data_token_groups(batch, n_segments=None) -> torch.Tensor:
    """``[B, G, L]`` bool: which positions each pooling group averages over.

    Data tokens are the valid positions without a tag vector (``slot < 0``).
    Without ``n_segments`` there is one group, all data tokens of the row;
    with it, group ``j`` holds the data tokens of segment ``j + 1`` (column
    ``j``, see :func:`sktag._forward.encoding.layout_rows`).
    """
    data = (batch.slot < 0) & batch.valid
    if n_segments is None:
        return data[:, None, :]
    seg_ids = torch.arange(1, int(n_segments) + 1, device=batch.seg.device)
    return data[:, None, :] & (batch.seg[:, None, :] == seg_ids[None, :, None])


def pool_states(hidden_states, layers, batch, n_segments=None, how="mean") -> torch.Tensor:
    """Hidden states at ``layers`` pooled over each row's data tokens, per group.

    Parameters
    ----------
    hidden_states : sequence of Tensor ``[B, L, d]``
        Indexed by the entries of ``layers``.
    layers : sequence of int
    batch : sktag._forward.engine.Batch
    n_segments : int, optional
        Pool each segment on its own (see :func:`data_token_groups`);
        default: all data tokens together.
    how : {"mean", "last"}
        The mean over the group's tokens, or the state at its last token.

    Returns
    -------
    Tensor ``[B, G, sum of the layers' widths]`` (float32), layer blocks side
    by side; G is 1 or ``n_segments``.  (Widths can differ between layers:
    OPT models with a projection keep the first and last states narrower.)
    """
    member = data_token_groups(batch, n_segments)
    pooled = []
    if how == "mean":
        w = member.float()
        count = w.sum(dim=-1, keepdim=True).clamp_min(1.0)
        for i in layers:
            h = hidden_states[i]
            pooled.append(torch.einsum("bgl,bld->bgd", w.to(h.device), h.float()) / count.to(h.device))
    elif how == "last":
        pos = torch.arange(member.shape[-1], device=member.device).expand_as(member)
        last = torch.where(member, pos, -1).amax(dim=-1).clamp_min(0)  # [B, G]
        for i in layers:
            h = hidden_states[i]
            idx = last.to(h.device)[..., None].expand(-1, -1, h.shape[-1])
            pooled.append(h.float().gather(1, idx))
    else:
        raise ValueError(f"how must be 'mean' or 'last', got {how!r}.")
    return torch.cat(pooled, dim=-1)
