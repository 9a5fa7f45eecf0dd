"""Fitted estimators to and from :class:`~sktag.TagSet` files (tag composition)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from sklearn.utils.validation import check_is_fitted

from .._forward.encoding import TagLayout
from .._forward.inputs import resolve_domains
from .._forward.readouts import READOUTS, make_readout
from .._runtime.validation import validate_params
from ..exceptions import TagMismatchError
from .records import FitInputs, FitRun, FitState
from .training import History

if TYPE_CHECKING:
    from .._forward.module import TagModule


class TagSetMixin:
    """``tagset``, ``save_tags`` and ``from_tags`` of the Tag-LLM estimators.

    The host's interface, which this mixin reads and nothing else: the
    fitted attributes declared below, its parameters, ``get_backbone``
    (:class:`~sktag._fit.backbone_access.BackboneMixin`), ``_fitted_readout``
    (:class:`~sktag._fit.inference.PredictMixin`) and the fit steps
    ``initialize_layout`` and ``commit_fit``.
    """

    #: the task of the host (:mod:`sktag._fit.tasks`), a class attribute
    _task_class: type
    module_: TagModule
    layout_: TagLayout
    _task_state_: dict
    isolate_segments_: bool
    canonicalize_: bool
    backbone_identity_: str
    backbone_fingerprint_: str

    def tagset(self, name=None, description=""):
        """The fitted tags as a :class:`~sktag.TagSet`, with the task head.

        Parameters
        ----------
        name : str, optional
            Name of the function tag; defaults to ``function_tag_name_`` or
            the class name.
        description : str, default=""
            Free text stored with the function tag.

        Returns
        -------
        TagSet
            The domain tags, the function tag (with its deep blocks, if any) and the head.
        """
        from ..tags import TagSet

        check_is_fitted(self, "module_")
        name = name or getattr(self, "function_tag_name_", None) or type(self).__name__
        m = self.module_
        ts = TagSet(self.backbone_identity_, self.backbone_fingerprint_, m.function_tag.shape[1])
        deep_domains = [None] * len(m.domain_tags) if m.domain_deep is None else list(m.domain_deep)
        for dom, t, block in zip(self.layout_.domains, m.domain_tags, deep_domains):
            if t.shape[0]:  # domain_tag_length=0: no domain tag to save (the layout records the 0)
                ts.add(dom, t.detach().cpu(), kind="domain")
                if block is not None:
                    ts.add_deep(dom, block.detach().cpu(), kind=m.domain_deep_kind)
        ts.add(name, m.function_tag.detach().cpu(), kind="function", description=description)
        if m.deep_tag is not None:
            ts.add_deep(name, m.function_deep().detach().cpu())
        meta = {
            "task": self._task_class.name,
            "task_state": self._task_state_,
            "layout": self.layout_.to_dict(),
            **self._fitted_readout().to_meta(),
            "isolate_segments": bool(self.isolate_segments_),
            "canonicalize": bool(self.canonicalize_),
        }
        if m.deep_tag is not None:
            meta["deep_layers"] = list(m.tagged_blocks())
        h = m.head
        ts.add_head(name, h.linear.weight.detach().cpu(), h.linear.bias.detach().cpu(), meta,
                    h.mean.detach().cpu(), h.scale.detach().cpu())
        return ts

    def save_tags(self, path, name=None, description=""):
        """Save :meth:`tagset` to a safetensors file (no pickle).

        Parameters
        ----------
        path : str or path-like
            The file to write.
        name : str, optional
            Name of the function tag; defaults to ``function_tag_name_`` or
            the class name.
        description : str, default=""
            Free text stored with the function tag.
        """
        self.tagset(name, description).save(path)

    @classmethod
    def from_tags(cls, tags, function_tag, *, domain_tags=None, domains=None, **params):
        """A fitted estimator from saved tags and a head, without training.

        This is how tags compose: a function tag and its head learned with
        one set of domain tags can be applied with another (``domain_tags``)
        or another column layout (``domains``).

        Parameters
        ----------
        tags : TagSet or path
            Holds ``function_tag`` with its head (and usually domain tags).
        function_tag : str
            Name of the function tag to use.
        domain_tags : TagSet or path, optional
            Domain tags to use instead of those in ``tags``.
        domains : str, list or dict, optional
            Column -> domain mapping; defaults to the one recorded with the head.
        **params
            Other constructor parameters (``device``, ...).  ``model``
            defaults to the backbone the TagSet records.

        Returns
        -------
        estimator : fitted instance of ``cls``
        """
        from ..tags import TagSet

        ts = tags if isinstance(tags, TagSet) else TagSet.load(tags)
        if function_tag not in ts.heads:
            raise ValueError(f"{function_tag!r} has no head in this TagSet; heads: {list(ts.heads)}.")
        head = ts.heads[function_tag]
        meta = head["task"]
        if meta.get("task") != cls._task_class.name or "layout" not in meta:
            raise ValueError(f"the head of {function_tag!r} is a {meta.get('task')} head, not "
                             f"{cls._task_class.name} (or was saved by an older sktag).")
        doms = ts if domain_tags is None else (
            domain_tags if isinstance(domain_tags, TagSet) else TagSet.load(domain_tags))
        saved = TagLayout.from_dict(meta["layout"])
        if domain_tags is None and saved.tag_lengths and not any(saved.tag_lengths):  # fitted without domain tags
            doms = None
            params.setdefault("domain_tag_length", 0)
        if domains is None:
            names, n_cols = saved.feature_names, saved.n_features
            column_domains = list(saved.column_domains)
            domains_param = dict(zip(names, column_domains)) if names is not None else column_domains
        else:
            n_cols = len(domains) if isinstance(domains, (list, tuple, dict)) else saved.n_features
            names = tuple(domains) if isinstance(domains, dict) and not all(
                isinstance(k, int) for k in domains) else None
            domains_param = domains
        params.setdefault("model", ts.backbone)
        params.setdefault("readout", meta["readout"])
        if meta.get("readout_layers"):  # a "tag" readout has none: the estimator's default then
            params.setdefault("readout_layers", list(meta["readout_layers"]))
        params.setdefault("isolate_segments", meta.get("isolate_segments", False))
        params.setdefault("canonicalize", meta.get("canonicalize", True))
        params.setdefault("tag_depth", "deep" if function_tag in ts.deep else "shallow")
        if function_tag in ts.deep:  # (a TagSet of sktag 0.3 does not say: every block)
            params.setdefault("deep_layers", meta.get("deep_layers", "all"))
        est = cls(domains=domains_param, tag_length=ts.info(function_tag)["tag_length"], domain_tags=doms,
                  **params)
        validate_params(est)
        return est._install_tags(ts, function_tag, n_cols, names)

    def _install_tags(self, ts, function_tag, n_columns, names):
        """The fitted state of ``from_tags``: the fit steps' layout and commit, with the saved tensors."""
        head, meta = ts.heads[function_tag], ts.heads[function_tag]["task"]
        bb = self.get_backbone()
        ts.check_backbone(bb)
        if meta["readout"] == self.readout and meta["readout"] in READOUTS:  # the readout's own metadata
            readout = READOUTS[meta["readout"]].from_meta(meta, bb.hidden_widths(), n_columns)
        else:
            readout = make_readout(self.readout, bb.hidden_widths(), self.readout_layers, n_columns)
        state = FitState(inputs=FitInputs(
            columns=None, names=names, labels=None, column_domains=resolve_domains(self.domains, n_columns, names),
            task=self._task_class.from_params(self), task_state=meta["task_state"], targets=None, weights=None,
            backbone=bb, readout=readout))
        self.initialize_layout(state)  # checks the domain tags too
        state.run = FitRun(history=History(False))  # nothing trained
        if head["weight"].shape[1] != readout.n_features:
            raise TagMismatchError(f"the head of {function_tag!r} reads {head['weight'].shape[1]} features but the "
                                   f"{readout.name!r} readout gives {readout.n_features}.")
        deep = ts.deep.get(function_tag)
        if (deep is None) != (state.module.deep_tag is None) or (
                deep is not None and deep.shape != state.module.deep_tag.shape):
            raise TagMismatchError(f"tag_depth={self.tag_depth!r} but {function_tag!r} is "
                                   f"{'shallow' if deep is None else f'a deep tag of depth {deep.shape[0]}'}.")
        if deep is not None:
            lost = sorted(set(deep.flatten(1).ne(0).any(1).nonzero().flatten().tolist())
                          - set(state.module.tagged_blocks()))
            if lost:
                raise TagMismatchError(f"deep_layers={self.deep_layers!r} leaves out the decoder blocks {lost}, "
                                       f"where the deep tag {function_tag!r} has learned values; use the "
                                       f"deep_layers it was fitted with ({meta.get('deep_layers', 'all')!r}).")
        with torch.no_grad():
            state.module.function_tag.copy_(ts[function_tag].to(state.module.function_tag.device))
            if deep is not None:
                state.module.deep_tag.copy_(deep.to(state.module.deep_tag.device))
        state.module.head.set_weights(head["weight"], head["bias"])
        state.module.head.set_standardization(head["mean"].numpy(), head["scale"].numpy())
        self.commit_fit(state)
        self.function_tag_name_ = function_tag
        return self
