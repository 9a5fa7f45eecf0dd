"""A library of named tags, saved as safetensors with JSON metadata.

A :class:`TagSet` maps tag names (``"SMILES"``, ``"ESOL"``) to
``tag_length x hidden_size`` float32 tensors.  It remembers which backbone
the tags were learned on (identity and embedding fingerprint), so that
loading them on another model fails loudly instead of giving silent garbage.
Task heads (the linear layer that reads a function tag) travel in the same
file.  Files hold tensors and JSON only: loading never unpickles anything.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping

import numpy as np
import torch

from ._forward.deep import RESIDUAL, check_kind
from ._version import __version__
from .exceptions import TagMismatchError

__all__ = ["TagSet", "TagMismatchError"]

_META_KEY = "sktag"
_KINDS = ("domain", "function")


def _digest(arrays: dict) -> str:
    h = hashlib.sha256()
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name], dtype=np.float32)
        h.update(name.encode())
        h.update(str(a.shape).encode())
        h.update(a.tobytes())
    return h.hexdigest()


class TagSet(Mapping):
    """Named tags learned on one backbone, plus optional task heads.

    Parameters
    ----------
    backbone : str
        Identity of the backbone the tags belong to (alias, hub id or path).
    fingerprint : str
        Fingerprint of the backbone's input-embedding matrix
        (:attr:`sktag.backbone.Backbone.fingerprint`).
    hidden_size : int
        Width of the backbone's embeddings.

    Examples
    --------
    >>> import os, tempfile
    >>> from sktag import TagRegressor, TagSet
    >>> from sktag.datasets import load_esol
    >>> from sktag.testing import make_tiny_model
    >>> X, y = load_esol(return_X_y=True)
    >>> folder = tempfile.mkdtemp()
    >>> # a tiny random model keeps the example fast; real work uses the
    >>> # default model="smollm2-135m" (hidden_size=576)
    >>> model = make_tiny_model(os.path.join(folder, "model"))
    >>> reg = TagRegressor(model=model, max_iter=1, random_state=0).fit(X[:40], y[:40])
    >>> ts = reg.tagset("ESOL")
    >>> ts.save(os.path.join(folder, "esol.safetensors"))
    >>> TagSet.load(os.path.join(folder, "esol.safetensors"))
    TagSet(backbone='...', hidden_size=32, tags=[SMILES (domain, 10), ESOL (function, 2, head)])
    """

    def __init__(self, backbone: str, fingerprint: str, hidden_size: int):
        self.backbone = str(backbone)
        self.fingerprint = str(fingerprint)
        self.hidden_size = int(hidden_size)
        self._tags: dict[str, torch.Tensor] = {}
        self._info: dict[str, dict] = {}
        self._heads: dict[str, dict] = {}
        self._deep: dict[str, torch.Tensor] = {}

    # -- Mapping interface -------------------------------------------------
    def __getitem__(self, name) -> torch.Tensor:
        return self._tags[name]

    def __iter__(self):
        return iter(self._tags)

    def __len__(self):
        return len(self._tags)

    def info(self, name) -> dict:
        """Return the metadata of one tag: kind, tag_length, description.

        Parameters
        ----------
        name : str
            The tag's name.

        Returns
        -------
        dict
            ``kind``, ``tag_length`` and ``description`` (and ``depth``, ``deep_kind`` for a deep tag).
        """
        return dict(self._info[name])

    @property
    def heads(self) -> dict:
        """Task heads by function-tag name: ``{"weight", "bias", "task"}``."""
        return self._heads

    def add(self, name, tensor, kind="domain", description="", *, overwrite=False):
        """Add a tag (a ``tag_length x hidden_size`` tensor or array).

        With ``overwrite=True`` a tag of the same name is replaced, and its deep
        block (:meth:`add_deep`), which belonged to the old vectors, dropped.

        Parameters
        ----------
        name : str
            The tag's name (non-empty, no ``/``).
        tensor : torch.Tensor or array-like of shape (tag_length, hidden_size)
            The tag's vectors (copied, as float32).
        kind : {"domain", "function"}, default="domain"
            What the tag is.
        description : str, default=""
            Free text stored with the tag.
        overwrite : bool, default=False
            Replace a tag of the same name instead of raising.

        Returns
        -------
        TagSet
            ``self``, so that calls chain.
        """
        if not isinstance(name, str) or not name:
            raise ValueError(f"tag names must be non-empty strings, got {name!r}.")
        if "/" in name:
            raise ValueError(f"tag name {name!r} may not contain '/'.")
        if kind not in _KINDS:
            raise ValueError(f"kind must be one of {_KINDS}, got {kind!r}.")
        if name in self._tags and not overwrite:
            raise ValueError(f"tag {name!r} is already in this TagSet (pass overwrite=True).")
        t = torch.as_tensor(np.asarray(tensor.detach().cpu() if torch.is_tensor(tensor) else tensor),
                            dtype=torch.float32).clone()
        if t.ndim != 2 or t.shape[1] != self.hidden_size or t.shape[0] < 1:
            raise TagMismatchError(
                f"tag {name!r} has shape {tuple(t.shape)}; expected (tag_length, {self.hidden_size})."
            )
        if not torch.isfinite(t).all():
            raise ValueError(f"tag {name!r} contains NaN or infinity.")
        self._tags[name] = t
        self._info[name] = {"kind": kind, "tag_length": int(t.shape[0]), "description": str(description)}
        self._deep.pop(name, None)  # an overwritten tag's deep block belonged to the old vectors
        return self

    def add_head(self, name, weight, bias, task: dict, mean=None, scale=None):
        """Attach a task head to function tag ``name``.

        The head computes ``weight @ ((x - mean) / scale) + bias`` on the
        readout features ``x`` of the function tag (any width: ``hidden_size``
        for the paper's readout, more for pooled ones, whatever a custom
        readout gives); ``mean`` and ``scale`` default to 0 and 1.

        Parameters
        ----------
        name : str
            The function tag the head belongs to.
        weight : array-like of shape (n_outputs, n_features)
            The head's weights.
        bias : array-like of shape (n_outputs,)
            The head's bias.
        task : dict
            JSON-serialisable description of the task (what the estimators need
            to rebuild it, e.g. the classes or the target standardisation).
        mean : array-like of shape (n_features,), default=None
            Feature means subtracted first; ``None`` is 0.
        scale : array-like of shape (n_features,), default=None
            Feature scales divided by; ``None`` is 1.

        Returns
        -------
        TagSet
            ``self``, so that calls chain.
        """
        if name not in self._tags or self._info[name]["kind"] != "function":
            raise ValueError(f"{name!r} is not a function tag of this TagSet.")
        w = torch.as_tensor(np.asarray(weight), dtype=torch.float32).clone()
        b = torch.as_tensor(np.asarray(bias), dtype=torch.float32).clone()
        if w.ndim != 2 or w.shape[1] < 1 or b.shape != (w.shape[0],):
            raise TagMismatchError(f"head of {name!r} has weight {tuple(w.shape)} and bias {tuple(b.shape)}.")
        f = w.shape[1]
        m = torch.zeros(f) if mean is None else torch.as_tensor(np.asarray(mean), dtype=torch.float32).clone()
        sc = torch.ones(f) if scale is None else torch.as_tensor(np.asarray(scale), dtype=torch.float32).clone()
        if m.shape != (f,) or sc.shape != (f,):
            raise TagMismatchError(f"head of {name!r}: mean/scale must have shape ({f},).")
        json.dumps(task)  # must be JSON-serialisable
        self._heads[name] = {"weight": w, "bias": b, "mean": m, "scale": sc, "task": dict(task)}
        return self

    @property
    def deep(self) -> dict:
        """Deep blocks of tags by name: ``[depth, tag_length, width]`` tensors (``width``: of the decoder's states)."""
        return self._deep

    def add_deep(self, name, block, kind="deep"):
        """Attach a deep block to tag ``name``: one ``tag_length x width`` block per layer.

        Function tags (``tag_depth="deep"``) and domain tags (deep domain
        tags, e.g. from ``DomainTagPretrainer(tag_depth="deep")``) can be
        deep.  ``kind="deep"``: each block is added to its decoder block's
        input at the tag's positions (``width``: of the decoder's states).
        ``kind="kv"`` (domain tags only, P-Tuning v2 style): each block is
        added to the keys and values its attention layer stores at the tag's
        positions (``width``: keys and values side by side, ``2 x kv_heads x
        head_dim``).  The depth (number of blocks) and the kind are recorded
        in the tag's metadata.

        Parameters
        ----------
        name : str
            The tag the block belongs to.
        block : torch.Tensor or array-like of shape (depth, tag_length, width)
            One block per layer (copied, as float32).
        kind : {"deep", "kv"}, default="deep"
            Where the blocks are added (see above).

        Returns
        -------
        TagSet
            ``self``, so that calls chain.
        """
        if name not in self._tags:
            raise ValueError(f"{name!r} is not a tag of this TagSet.")
        check_kind(kind)
        if kind != RESIDUAL and self._info[name]["kind"] != "domain":
            raise ValueError(f"only domain tags can be deep of kind {kind!r}; {name!r} is a "
                             f"{self._info[name]['kind']} tag.")
        b = torch.as_tensor(np.asarray(block.detach().cpu() if torch.is_tensor(block) else block),
                            dtype=torch.float32).clone()
        if b.ndim != 3 or b.shape[0] < 1 or b.shape[2] < 1 or b.shape[1] != self._tags[name].shape[0]:
            raise TagMismatchError(f"deep block of {name!r} has shape {tuple(b.shape)}; expected (depth, "
                                   f"{self._tags[name].shape[0]}, width).")
        if not torch.isfinite(b).all():
            raise ValueError(f"deep block of {name!r} contains NaN or infinity.")
        self._deep[name] = b
        self._info[name]["depth"] = int(b.shape[0])
        self._info[name]["deep_kind"] = kind
        return self

    def deep_kind(self, name) -> str | None:
        """Return the kind of tag ``name``'s deep block (``"deep"`` or ``"kv"``, see :meth:`add_deep`).

        Parameters
        ----------
        name : str
            A tag of this set, deep or shallow.

        Returns
        -------
        str or None
            ``"deep"``, ``"kv"``, or ``None`` for a shallow tag.
        """
        if name not in self._deep:
            return None
        return self._info[name].get("deep_kind", "deep")  # (files of sktag 0.3 record no kind: residual)

    def find(self, name):
        """Find the tag matching ``name`` case-insensitively (as domains match).

        Parameters
        ----------
        name : str
            The name to look for.

        Returns
        -------
        str or None
            The stored name, or ``None`` when no tag (or more than one) matches.
        """
        if name in self._tags:
            return name
        key = str(name).strip().lower()
        hits = [n for n in self._tags if n.strip().lower() == key]
        return hits[0] if len(hits) == 1 else None

    # -- combination -------------------------------------------------------
    def _check_compatible(self, other):
        if (other.fingerprint, other.hidden_size) != (self.fingerprint, self.hidden_size):
            raise TagMismatchError(
                f"cannot combine tags of backbone {self.backbone!r} (hidden size {self.hidden_size}) "
                f"with tags of backbone {other.backbone!r} (hidden size {other.hidden_size})."
            )

    def __or__(self, other: "TagSet") -> "TagSet":
        """Union of two tag sets of the same backbone.

        A name may appear in both only when it is the same tag (equal tensor,
        kind and head), as when two function tags were learned with one
        shared pretrained domain tag; otherwise ``ValueError``.
        """
        if not isinstance(other, TagSet):
            return NotImplemented
        self._check_compatible(other)
        clash = sorted(n for n in set(self) & set(other) if not self._same_entry(other, n))
        if clash:
            raise ValueError(f"both TagSets define {clash} with different values; rename one first.")
        out = self.copy()
        for n in other:
            if n not in out._tags:
                out._tags[n] = other._tags[n].clone()
                out._info[n] = dict(other._info[n])
        for n, h in other._heads.items():
            out._heads.setdefault(n, dict(h))
        for n, b in other._deep.items():
            out._deep.setdefault(n, b.clone())
        return out

    def _same_entry(self, other, name) -> bool:
        """Whether tag ``name`` (and its head, if any) is identical in both sets."""
        if self._info[name]["kind"] != other._info[name]["kind"]:
            return False
        if not torch.equal(self._tags[name], other._tags[name]):
            return False
        d1, d2 = self._deep.get(name), other._deep.get(name)
        if (d1 is None) != (d2 is None) or (d1 is not None and not torch.equal(d1, d2)):
            return False
        if self.deep_kind(name) != other.deep_kind(name):
            return False
        h1, h2 = self._heads.get(name), other._heads.get(name)
        if (h1 is None) != (h2 is None):
            return False
        return h1 is None or (all(torch.equal(h1[k], h2[k]) for k in ("weight", "bias", "mean", "scale"))
                              and h1["task"] == h2["task"])

    def copy(self) -> "TagSet":
        out = TagSet(self.backbone, self.fingerprint, self.hidden_size)
        out._tags = {n: t.clone() for n, t in self._tags.items()}
        out._info = {n: dict(i) for n, i in self._info.items()}
        out._heads = {n: dict(h) for n, h in self._heads.items()}
        out._deep = {n: b.clone() for n, b in self._deep.items()}
        return out

    def check_backbone(self, backbone) -> None:
        """Raise :class:`TagMismatchError` unless the tags fit ``backbone``.

        Parameters
        ----------
        backbone : Backbone
            A loaded backbone (see :func:`sktag.load_backbone`).

        Raises
        ------
        TagMismatchError
            When the hidden size or the embedding fingerprint differ.
        """
        if backbone.hidden_size != self.hidden_size:
            raise TagMismatchError(
                f"these tags have hidden size {self.hidden_size} (backbone {self.backbone!r}) but "
                f"model {backbone.identity!r} has hidden size {backbone.hidden_size}."
            )
        if backbone.fingerprint != self.fingerprint:
            raise TagMismatchError(
                f"these tags were learned on backbone {self.backbone!r} (embedding fingerprint "
                f"{self.fingerprint}) and do not fit model {backbone.identity!r} (fingerprint "
                f"{backbone.fingerprint})."
            )

    # -- persistence -------------------------------------------------------
    def _arrays(self) -> dict:
        arrays = {f"tag/{n}": t.numpy() for n, t in self._tags.items()}
        for n, h in self._heads.items():
            for k in ("weight", "bias", "mean", "scale"):
                arrays[f"head/{n}/{k}"] = h[k].numpy()
        for n, b in self._deep.items():
            arrays[f"deep/{n}"] = b.numpy()
        return arrays

    def save(self, path) -> None:
        """Write the tags (and heads) to a ``.safetensors`` file.

        Parameters
        ----------
        path : str or path-like
            The file to write (replaced atomically).
        """
        from safetensors.numpy import save_file

        arrays = self._arrays()
        meta = {
            "format": "sktag.TagSet/1",
            "sktag_version": __version__,
            "backbone": self.backbone,
            "fingerprint": self.fingerprint,
            "hidden_size": self.hidden_size,
            "tags": self._info,
            "heads": {n: h["task"] for n, h in self._heads.items()},
            "deep": sorted(self._deep),
            "sha256": _digest(arrays),
        }
        path = os.fspath(path)
        tmp = path + ".tmp"
        save_file({k: np.ascontiguousarray(v, dtype=np.float32) for k, v in arrays.items()}, tmp,
                  metadata={_META_KEY: json.dumps(meta)})
        os.replace(tmp, path)

    @classmethod
    def load(cls, path, backbone=None) -> "TagSet":
        """Read a file written by :meth:`save`.

        Parameters
        ----------
        path : str or path-like
            A file written by :meth:`save`.
        backbone : Backbone, optional
            When given, raise :class:`TagMismatchError` unless the tags fit it.

        Raises
        ------
        ValueError
            The file is not a valid sktag tag file, is truncated, or its
            content does not match its recorded checksum.
        """
        from safetensors import SafetensorError, safe_open
        from safetensors.numpy import load_file

        path = os.fspath(path)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"no tag file at {path!r}.")
        try:
            with safe_open(path, framework="numpy") as f:
                raw = (f.metadata() or {}).get(_META_KEY)
            arrays = load_file(path)
        except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
            raise ValueError(f"{path!r} is not a readable safetensors tag file ({exc}).") from exc
        if raw is None:
            raise ValueError(f"{path!r} is a safetensors file but not an sktag TagSet (no metadata).")
        try:
            meta = json.loads(raw)
            ts = cls(meta["backbone"], meta["fingerprint"], meta["hidden_size"])
            expected = meta["sha256"]
            tags_info = meta["tags"]
            heads_info = meta["heads"]
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"{path!r} has malformed sktag metadata ({exc}).") from exc
        if _digest(arrays) != expected:
            raise ValueError(f"{path!r} is corrupt or was modified: its tensors do not match the checksum.")
        try:
            for name, info in tags_info.items():
                ts.add(name, arrays[f"tag/{name}"], kind=info["kind"], description=info.get("description", ""))
            for name, task in heads_info.items():
                ts.add_head(name, arrays[f"head/{name}/weight"], arrays[f"head/{name}/bias"], task,
                            arrays.get(f"head/{name}/mean"), arrays.get(f"head/{name}/scale"))
            for name in meta.get("deep", []):  # files of shallow tags (and of sktag 0.2) have none
                ts.add_deep(name, arrays[f"deep/{name}"], kind=tags_info[name].get("deep_kind", "deep"))
        except (KeyError, TypeError, AttributeError) as exc:
            raise ValueError(
                f"{path!r} has inconsistent sktag metadata: it names {exc} but the file holds "
                f"{sorted(arrays)}."
            ) from exc
        if backbone is not None:
            ts.check_backbone(backbone)
        return ts

    def __repr__(self):
        items = ", ".join(
            f"{n} ({i['kind']}, {i['tag_length']}{_depth_note(self.deep_kind(n))}"
            f"{', head' if n in self._heads else ''})"
            for n, i in self._info.items()
        )
        return f"TagSet(backbone={self.backbone!r}, hidden_size={self.hidden_size}, tags=[{items}])"


def _depth_note(kind):
    return {None: "", "deep": ", deep", "kv": ", deep key/value"}[kind]
