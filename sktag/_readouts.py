"""The trainable module: tags, readout and head.

* **Tag init rules** (:class:`TagInit`): how a new tag starts — the mean
  vocabulary embedding rescaled to the mean token norm (``"mean"``), or the
  embeddings of the literal words ``"<domain>: "`` (``"text"``, the Tag-LLM
  paper's text-prompt ablation).
* **Readouts** turn the backbone's states into the head's input features.
  ``"tag"`` is the paper's: the final hidden state at the last function-tag
  position.  ``"pooled"`` concatenates it with the mean hidden state of the
  data tokens at several layers; those means do not depend on the function
  tag, so they come from the same frozen prefix pass that fills the
  key/value cache.  A new readout is one new class in :data:`READOUTS`.
* **Layer specs** (:func:`resolve_layers`, constraint :data:`LAYERS`): which
  hidden states are pooled, for the pooled readout and for
  :class:`~sktag.LLMEmbedding` alike (``"spread5"``, ``"everyK"``, ...).
* :class:`TagModule` holds the tags and a linear head on standardised
  readout features.
"""

from __future__ import annotations

import enum
import math
import numbers
import re

import numpy as np
import torch


class TagInit(str, enum.Enum):
    """How a new tag is initialised."""

    MEAN = "mean"
    TEXT = "text"


def init_tag(backbone, rule, length, name=None) -> torch.Tensor:
    """Initial ``[n, d]`` float32 tag on CPU for ``rule`` (a :class:`TagInit`).

    ``"mean"`` repeats :meth:`Backbone.tag_init <sktag.backbone.Backbone.tag_init>`
    ``length`` times; ``"text"`` is the token embeddings of ``"<name>: "``
    (its own length, whatever ``length`` says).
    """
    rule = TagInit(rule)
    if rule is TagInit.TEXT:
        ids = backbone.tokenizer(f"{name}: ", add_special_tokens=False)["input_ids"]
        with torch.no_grad():
            emb = backbone.embeddings(torch.as_tensor(ids, device=backbone.device))
        return emb.float().cpu()
    return backbone.tag_init().expand(int(length), -1).clone()


_LAYER_RULE = re.compile(r"^(every|spread)(\d+)$")


def _is_int(v) -> bool:
    return isinstance(v, numbers.Integral) and not isinstance(v, (bool, np.bool_))


class LayerSpec:
    """Parameter constraint: a layer spec :func:`resolve_layers` reads (syntax only).

    Whether the layers exist is checked once the depth is known, by
    :func:`resolve_layers`.  Used for ``LLMEmbedding(layers=...)`` and the
    estimators' ``readout_layers``.
    """

    def __call__(self, v) -> bool:
        if isinstance(v, str):
            m = _LAYER_RULE.match(v)
            return v in ("last", "all") or (m is not None and int(m.group(2)) >= 1)
        if _is_int(v):
            return True
        return isinstance(v, (list, tuple, np.ndarray)) and len(v) > 0 and all(_is_int(i) for i in v)

    def __str__(self):
        return ("an int, a non-empty list of ints, 'last', 'all', 'everyK' or 'spreadK' "
                "(K a positive integer, e.g. 'spread5')")


#: The constraint of every layer-spec parameter.
LAYERS = LayerSpec()


def resolve_layers(layers, n_layers):
    """Indices into the ``hidden_states`` of a model with ``n_layers`` blocks.

    Index 0 is the input embeddings, ``i`` the output of block ``i`` and
    ``n_layers`` the final hidden state (after the final norm).

    Parameters
    ----------
    layers : int, list of int or str
        * an int or a list of ints: those indices, negative ones counted from
          the end (``-1`` is the final hidden state); kept in the given order;
        * ``"last"``: ``[n_layers]``;
        * ``"all"``: ``1 .. n_layers`` (every block, not the embeddings);
        * ``"everyK"``: ``K, 2K, ...`` up to ``n_layers``;
        * ``"spreadK"``: ``K`` layers spread evenly over the depth and ending
          at the last, ``ceil(i * n_layers / K)`` for ``i = 1..K`` (fewer when
          the model has fewer than ``K`` blocks).  For SmolLM2-135M (30
          blocks) ``"spread5"`` and ``"every6"`` are both 6, 12, 18, 24, 30.
    n_layers : int

    Returns
    -------
    list of int, each in ``0 .. n_layers``.
    """
    if not LAYERS(layers):
        raise ValueError(f"layers must be {LAYERS}, got {layers!r}.")
    n = int(n_layers)
    if isinstance(layers, str):
        if layers == "last":
            return [n]
        if layers == "all":
            return list(range(1, n + 1))
        rule, k = _LAYER_RULE.match(layers).groups()
        k = int(k)
        if rule == "every":
            if k > n:
                raise ValueError(f"layers={layers!r} selects no layer of a model with {n} layers.")
            return list(range(k, n + 1, k))
        return sorted({math.ceil(i * n / k) for i in range(1, k + 1)})
    idx = [int(layers)] if _is_int(layers) else [int(i) for i in layers]
    bad = [i for i in idx if not -(n + 1) <= i <= n]
    if bad:
        raise ValueError(
            f"layers {bad} out of range: this model has {n} layers, so hidden-state indices go from "
            f"0 (embeddings) to {n} (final), or -{n + 1} to -1."
        )
    out = [i % (n + 1) for i in idx]
    if len(set(out)) != len(out):
        raise ValueError(f"layers={layers!r} names a layer twice (resolved: {out}).")
    return out


class TagReadout:
    """The paper's readout: final hidden state at the last function-tag position."""

    name = "tag"
    pooled_layers = ()

    def __init__(self, layers=(), backbone=None):
        pass

    def n_features(self, d):
        """Width of the features given the width ``d`` of the function tag's final state."""
        return d

    def features(self, h_tag, pooled):
        return h_tag.float()


class PooledReadout(TagReadout):
    """Function-tag state and the mean data-token state of several layers."""

    name = "pooled"

    def __init__(self, layers="spread10", backbone=None):
        widths = backbone.hidden_widths()
        self.pooled_layers = tuple(resolve_layers(layers, len(widths) - 1))
        self.pooled_width = sum(widths[i] for i in self.pooled_layers)

    def n_features(self, d):
        return d + self.pooled_width

    def features(self, h_tag, pooled):
        return torch.cat([h_tag.float(), pooled.float().to(h_tag.device)], dim=1)


READOUTS = {cls.name: cls for cls in (TagReadout, PooledReadout)}


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

    def set_weights(self, weight, bias):
        with torch.no_grad():
            self.linear.weight.copy_(torch.as_tensor(weight, dtype=torch.float32))
            self.linear.bias.copy_(torch.as_tensor(bias, dtype=torch.float32))


class TagModule(torch.nn.Module):
    """Domain tags (frozen unless tuned), one function tag and the head.

    The tag table (all tags stacked) is what the engine splices into the
    input embeddings, in the order :class:`~sktag._encoding.TagLayout` gives.
    """

    def __init__(self, domain_tags, function_tag, n_features, n_outputs, tune_domain_tags=False):
        super().__init__()
        self.domain_tags = torch.nn.ParameterList(
            [torch.nn.Parameter(t.clone().float(), requires_grad=tune_domain_tags) for t in domain_tags]
        )
        self.function_tag = torch.nn.Parameter(function_tag.clone().float())
        self.head = Head(n_features, n_outputs)

    def tag_table(self):
        return torch.cat([*self.domain_tags, self.function_tag], dim=0)
