"""The trainable part of a Tag-LLM estimator: the tags and the standardised linear head."""

from __future__ import annotations

import numpy as np
import torch

from .._runtime.upgrade import upgrade_module
from .deep import DeepTable, block_mask, common_kind


class Head(torch.nn.Module):
    """Linear layer on standardised features: ``W (x - mean) / scale + b``."""

    def __init__(self, n_features, n_outputs):
        super().__init__()
        self.linear = torch.nn.Linear(n_features, n_outputs)
        self.register_buffer("mean", torch.zeros(n_features))
        self.register_buffer("scale", torch.ones(n_features))

    def forward(self, x):
        return self.linear((x.float() - self.mean) / self.scale)

    def set_standardization(self, mean, scale):
        with torch.no_grad():
            self.mean.copy_(torch.as_tensor(mean, dtype=torch.float32))
            self.scale.copy_(torch.as_tensor(np.where(scale > 1e-6, scale, 1.0), dtype=torch.float32))

    def standardize(self, F, w):
        """Standardise with the weighted mean and std of features ``F`` (rows weighted by ``w``)."""
        mean = np.average(F, axis=0, weights=w)
        self.set_standardization(mean, np.sqrt(np.average((F - mean) ** 2, axis=0, weights=w)))

    def solve(self, task, F, targets, w, *, standardize=False, penalty=None):
        """Fit the head in closed form (``task.closed_form``) on features ``F``; returns its penalty.

        With ``standardize`` the standardisation is first set from ``F``.
        """
        if standardize:
            self.standardize(F, w)
        Z = (F - self.mean.cpu().numpy()) / self.scale.cpu().numpy()
        coef, icpt, penalty = task.closed_form(Z, targets, w, random_state=0, n_outputs=self.linear.out_features,
                                               penalty=penalty)
        self.set_weights(coef, icpt)
        return penalty

    @torch.no_grad()
    def outputs(self, F, idx):
        """Head outputs (float64 array) of the rows ``idx`` of features ``F``; NaN elsewhere."""
        out = np.full((len(F), self.linear.out_features), np.nan)
        idx = np.asarray(idx)
        if len(idx):
            x = torch.as_tensor(F[idx], dtype=torch.float32, device=self.mean.device)
            out[idx] = self(x).double().cpu().numpy()
        return out

    def set_weights(self, weight, bias):
        with torch.no_grad():
            self.linear.weight.copy_(torch.as_tensor(weight, dtype=torch.float32))
            self.linear.bias.copy_(torch.as_tensor(bias, dtype=torch.float32))


class TagModule(torch.nn.Module):
    """Domain tags (frozen unless tuned), one function tag, an optional deep function tag and the head.

    The tag table (all tags stacked) is what the engine splices into the
    input embeddings, in the order :class:`~sktag._forward.encoding.TagLayout` gives.
    With ``deep_shape=(n_blocks, width)`` the function tag is *deep*:
    ``deep_tag`` is one learned ``[p, width]`` block per decoder block, added to that block's input at
    the function-tag positions (zero at the start, so a deep tag starts as the
    shallow one); ``deep_tag`` is None for a shallow tag.  ``deep_layers``
    (a tuple of block indices, None for all) keeps the deep tag to some
    blocks: the others' rows are masked to zero (:meth:`function_deep`).

    ``domain_deep`` (a list aligned with ``domain_tags`` of
    :class:`~sktag._forward.deep.DeepTable` or None) makes the domain tags deep: one
    ``[n_layers, p_domain, width]`` block per domain, of one kind
    (``domain_deep_kind``, :mod:`sktag._forward.deep`), added at every layer at that
    domain tag's positions (None entries start at zero); all None, or
    ``domain_deep=None``, keeps them shallow.  The blocks train with the
    domain tags (``tune_domain_tags``).
    """

    def __init__(self, domain_tags, function_tag, n_features, n_outputs, tune_domain_tags=False, deep_shape=None,
                 domain_deep=None, deep_layers=None):
        super().__init__()
        self.domain_tags = torch.nn.ParameterList(
            [torch.nn.Parameter(t.clone().float(), requires_grad=tune_domain_tags) for t in domain_tags]
        )
        self.domain_deep, self._deep_kind = None, common_kind(domain_deep or [])
        if self._deep_kind is not None:
            n_blocks, width = next((b.shape[0], b.shape[2]) for b in domain_deep if b is not None)
            self.domain_deep = torch.nn.ParameterList(
                [torch.nn.Parameter((torch.zeros(n_blocks, t.shape[0], width) if b is None else b.blocks.clone())
                                    .float(), requires_grad=tune_domain_tags)
                 for t, b in zip(domain_tags, domain_deep)]
            )
        self.function_tag = torch.nn.Parameter(function_tag.clone().float())
        self.deep_tag = (None if deep_shape is None else  # [n_blocks, p, width of the blocks' states]
                         torch.nn.Parameter(torch.zeros(int(deep_shape[0]), self.function_tag.shape[0],
                                                        int(deep_shape[1]))))
        # the blocks left out by deep_layers: their rows are multiplied by zero, so they get no gradient and stay 0
        mask = None if self.deep_tag is None else block_mask(deep_layers, self.deep_tag.shape[0])
        self.register_buffer("deep_mask", mask)
        self.head = Head(n_features, n_outputs)

    def __setstate__(self, state):
        """Unpickle; a module of an earlier sktag is upgraded (:func:`sktag._runtime.upgrade.upgrade_module`)."""
        super().__setstate__(state)
        upgrade_module(self)

    def tag_table(self):
        return torch.cat([*self.domain_tags, self.function_tag], dim=0)

    def function_deep(self):
        """The deep function tag the engine adds, ``[n_blocks, p, width]`` (zero outside ``deep_layers``), or None."""
        mask = self.deep_mask
        return self.deep_tag if mask is None else self.deep_tag * mask

    def tagged_blocks(self):
        """The decoder blocks that carry the deep function tag (a tuple of indices); None for a shallow tag."""
        if self.deep_tag is None:
            return None
        mask = self.deep_mask
        if mask is None:
            return tuple(range(self.deep_tag.shape[0]))
        return tuple(int(i) for i in mask.flatten().nonzero().flatten())

    def deep_table(self):
        """The deep blocks of the domain tags side by side (a :class:`~sktag._forward.deep.DeepTable`), or None."""
        if self.domain_deep is None:
            return None
        return DeepTable(torch.cat(list(self.domain_deep), dim=1), self.domain_deep_kind)

    @property
    def domain_deep_kind(self):
        """The kind of the domain tags' deep blocks (:mod:`sktag._forward.deep`), or None when they are shallow."""
        if self.domain_deep is None:
            return None
        return self._deep_kind

    def tunes_domain_tags(self):
        """Whether the domain tags (and their deep blocks) train: then no prefix can be cached."""
        deep = [] if self.domain_deep is None else list(self.domain_deep)
        return any(t.requires_grad for t in [*self.domain_tags, *deep])
