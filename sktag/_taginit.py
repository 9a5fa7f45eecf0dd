"""How a new tag starts: the tag init rules (:class:`TagInit`).

``"mean"``: the mean vocabulary embedding rescaled to the mean token norm of
the loaded model; ``"text"``: the embeddings of the literal words
``"<domain>: "`` (the Tag-LLM paper's text-prompt ablation).
"""

from __future__ import annotations

import enum

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
