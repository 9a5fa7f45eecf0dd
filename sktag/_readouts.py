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
* :class:`TagModule` holds the tags and a linear head on standardised
  readout features.
"""

from __future__ import annotations

import enum

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


def resolve_layers(layers, n_layers):
    """Hidden-state indices (0 = embeddings, ``n_layers`` = last layer) from a spec.

    ``"auto"``: five layers spread evenly over depth (6, 12, 18, 24, 30 for a
    30-layer model); an int or list of ints (negative counts from the end).
    """
    if isinstance(layers, str) and layers == "auto":
        k = min(5, n_layers)
        return sorted({int(round(n_layers * (i + 1) / k)) for i in range(k)})
    items = [layers] if isinstance(layers, (int, np.integer)) else list(layers)
    out = []
    for i in items:
        j = int(i) + (n_layers + 1 if int(i) < 0 else 0)
        if not 0 <= j <= n_layers:
            raise ValueError(f"readout layer {i} is out of range for a model with {n_layers} layers.")
        out.append(j)
    return sorted(set(out))


class TagReadout:
    """The paper's readout: final hidden state at the last function-tag position."""

    name = "tag"
    pooled_layers = ()

    def __init__(self, layers=(), n_layers=0):
        pass

    def n_features(self, d):
        return d

    def features(self, h_tag, pooled):
        return h_tag.float()


class PooledReadout(TagReadout):
    """Function-tag state and the mean data-token state of several layers."""

    name = "pooled"

    def __init__(self, layers="auto", n_layers=1):
        self.pooled_layers = tuple(resolve_layers(layers, n_layers))

    def n_features(self, d):
        return d * (1 + len(self.pooled_layers))

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
