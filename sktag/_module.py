"""The trainable part of a Tag-LLM estimator: the tags and the standardised linear head."""

from __future__ import annotations

import numpy as np
import torch

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
