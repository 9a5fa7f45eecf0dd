"""How a new tag starts: the tag init rules (:class:`TagInit`).

``"mean"``: the mean vocabulary embedding rescaled to the mean token norm of
the loaded model; ``"text"``: the embeddings of the literal words
``"<domain>: "`` (the Tag-LLM paper's text-prompt ablation).
"""

from __future__ import annotations

import enum

import torch

from .deep import DeepTable, check_blocks
from .pretrained import PRETRAINED, shipped_domain_tags

#: vectors of a new domain tag when ``domain_tag_length`` is None: the length of the shipped tags (and the
#: reference p of Tag-LLM), whatever the function tag's length
DOMAIN_TAG_LENGTH = 10


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


def domain_tag_vectors(spec, domains, backbone, length, *, untagged=TagInit.MEAN, deep=False):
    """The starting vectors of each domain's tag, ``{domain: [n, d] float32 CPU tensor}``, or None.

    With ``deep=True``, the pair ``(vectors, blocks)``: ``blocks`` maps each
    domain to the deep block its tag carries (a :class:`sktag._forward.deep.DeepTable`
    of one tag, ``[n_layers, n, width]`` and its kind, see
    :meth:`sktag.TagSet.add_deep`), or None for a shallow tag.

    Parameters
    ----------
    spec : None, "pretrained", "text", TagSet or path
        The ``domain_tags`` parameter: ``None`` gives every domain the
        ``untagged`` rule (``None`` there: no domain tags at all);
        ``"pretrained"`` the tags sktag ships for ``backbone``
        (:mod:`sktag._forward.pretrained`) where there is one, the ``untagged`` rule
        elsewhere (``None`` there: a tag of no vectors), and the ``untagged``
        rule everywhere when ``length`` is 0 and ``untagged`` is not None
        (``domain_tag_length=0``: no domain tag); ``"text"`` (unless a file of
        that name exists) the words ``"<domain>: "``; a TagSet or the path of
        a saved one its domain tags, matched case-insensitively and checked
        against ``backbone``.
    domains : list of str
        The distinct domains of the input.
    backbone : Backbone
    length : int
        Vectors per tag of the init rule (``tag_length``).
    untagged : TagInit or None, default=TagInit.MEAN
    deep : bool, default=False
    """
    vectors, blocks = _domain_tags(spec, domains, backbone, length, untagged)
    if not deep:
        return vectors
    if vectors is not None:
        check_blocks(blocks, backbone)
    return vectors, blocks


def _from_tagset(ts, name):
    """``(vectors, DeepTable or None)`` of tag ``name`` of TagSet ``ts``, as float32 CPU copies."""
    block = ts.deep.get(name)
    vectors = ts[name].detach().float().cpu().clone()
    return vectors, None if block is None else DeepTable(block.detach().float().cpu().clone(), ts.deep_kind(name))


def _domain_tags(spec, domains, backbone, length, untagged):
    """``(vectors, blocks)`` of :func:`domain_tag_vectors` (``blocks``: None for every shallow tag)."""
    import os

    from ..tags import TagSet

    if spec is None:
        if untagged is None:
            return None, None
        return {d: init_tag(backbone, untagged, length) for d in domains}, dict.fromkeys(domains)
    if isinstance(spec, str) and spec == TagInit.TEXT.value and not os.path.exists(spec):
        return {d: init_tag(backbone, TagInit.TEXT, length, d) for d in domains}, dict.fromkeys(domains)
    if isinstance(spec, str) and spec == PRETRAINED and not os.path.exists(spec):
        shipped = shipped_domain_tags(backbone) if (length or untagged is None) else None
        out, blocks = {}, dict.fromkeys(domains)
        for d in domains:
            name = None if shipped is None else shipped.find(d)
            if name is not None and shipped.info(name)["kind"] == "domain":
                out[d], blocks[d] = _from_tagset(shipped, name)
            elif untagged is not None:
                out[d] = init_tag(backbone, untagged, length)
            else:
                out[d] = torch.zeros(0, backbone.hidden_size)
        return out, blocks
    ts = TagSet.load(spec, backbone=backbone) if isinstance(spec, (str, os.PathLike)) else spec
    if not isinstance(ts, TagSet):
        raise ValueError(f'domain_tags must be None, "pretrained", "text", a TagSet or a path, got '
                         f'{type(spec).__name__}.')
    ts.check_backbone(backbone)
    found = {d: ts.find(d) for d in domains}
    missing = [d for d, n in found.items() if n is None or ts.info(n)["kind"] != "domain"]
    if missing:
        held = [n for n in ts if ts.info(n)["kind"] == "domain"]
        raise ValueError(f"no domain tag for the domain(s) {missing} of X in domain_tags; it holds the domain "
                         f"tags {held}. Pretrain those domains or pass domain_tags=None.")
    pairs = {d: _from_tagset(ts, n) for d, n in found.items()}
    return {d: v for d, (v, _) in pairs.items()}, {d: b for d, (_, b) in pairs.items()}


def domain_tags_digest(vectors, blocks) -> str | None:
    """A digest of the starting domain tags (``vectors``, ``blocks`` of :func:`domain_tag_vectors`).

    Recorded at ``fit``: a warm start compares it with what ``domain_tags``
    gives now, so that a changed ``domain_tags`` is refused instead of
    silently ignored.  None when there are no domain tags.
    """
    from ..tags import _digest

    if vectors is None:
        return None
    arrays = {}
    for d, v in vectors.items():
        arrays[f"{d}|tag"] = v.detach().float().cpu().numpy()
        block = (blocks or {}).get(d)
        if block is not None:
            arrays[f"{d}|{block.kind}"] = block.blocks.detach().float().cpu().numpy()
    return _digest(arrays)
