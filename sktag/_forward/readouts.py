"""Readouts: what the head reads, and what each one needs the engine to compute.

A readout declares its needs (:class:`Needs`): the hidden states at the last
function-tag position at some layers, and data-token states pooled at some
layers, over all data tokens or per segment (input column), by their mean or
the last one.  The engine computes exactly those, once, into one record
(:class:`sktag._forward.engine.States`); the pooled states do not depend on the
function tag, so they come from the frozen prefix pass that fills the
key/value cache and are cached with it.  The readout turns the record into
the head's input features, names them, and saves and loads its own metadata
in a :class:`~sktag.TagSet`.

A new readout is one subclass of :class:`Readout` with a ``name``: it
registers itself, and ``readout="<name>"`` (or the class itself) then works in
the estimators, ``tagset``/``from_tags`` included.  The head takes any width.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .layers import LAYERS, resolve_layers

__all__ = ["Needs", "Readout", "TagReadout", "PooledReadout", "READOUTS", "ReadoutSpec", "make_readout", "LAYERS"]


@dataclass(frozen=True)
class Needs:
    """What a readout needs from a forward pass.

    Attributes
    ----------
    tag_layers : tuple of int
        Hidden-state indices (0 = embeddings, ``n_layers`` = final state after
        the final norm) read at the last function-tag position.
    pooled_layers : tuple of int
        Hidden-state indices pooled over the data tokens (never tag positions
        or padding).
    per_segment : bool
        Pool each segment (input column) on its own instead of all data
        tokens together.
    pooling : {"mean", "last"}
    """

    tag_layers: tuple = ()
    pooled_layers: tuple = ()
    per_segment: bool = False
    pooling: str = "mean"


#: Readout classes by name (filled by :meth:`Readout.__init_subclass__`).
READOUTS: dict = {}


class Readout:
    """Base class of readouts; a subclass with a ``name`` registers itself in :data:`READOUTS`.

    Parameters
    ----------
    widths : sequence of int
        Width of every hidden state of the backbone, index 0 (embeddings) to
        ``n_layers`` (:meth:`sktag.backbone.Backbone.hidden_widths`).
    layers : int, list of int or str, default="spread10"
        The estimator's ``readout_layers``; what it means is the readout's
        choice (see :func:`sktag._forward.layers.resolve_layers`).
    n_segments : int, default=1
        Number of input columns.

    Subclasses define :attr:`needs`, :meth:`features` and
    :meth:`feature_names`, and may override :meth:`to_meta`.
    """

    name = None
    #: Standardise the features under a random (``head_init="random"``) head; the paper's readout does not.
    standardize_random_head = True

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if cls.__dict__.get("name"):
            READOUTS[cls.name] = cls

    def __init__(self, widths, layers="spread10", n_segments=1):
        self.widths = tuple(int(w) for w in widths)
        self.n_layers = len(self.widths) - 1
        self.n_segments = int(n_segments)
        self.layers = layers

    @property
    def needs(self) -> Needs:  # pragma: no cover - every readout defines it
        raise NotImplementedError

    def features(self, states) -> torch.Tensor:  # pragma: no cover - every readout defines it
        """Head input ``[B, n_features]`` (float32) from :class:`sktag._forward.engine.States`."""
        raise NotImplementedError

    def feature_names(self) -> list:  # pragma: no cover - every readout defines it
        """One name per feature, in the order of :meth:`features`."""
        raise NotImplementedError

    @property
    def n_features(self) -> int:
        return len(self.feature_names())

    @property
    def fitted_layers(self) -> list:
        """The resolved layers this readout reads, stored as the estimators' ``readout_layers_``."""
        return list(self.needs.pooled_layers)

    def to_meta(self) -> dict:
        """JSON-serialisable metadata saved with a head in a TagSet (see :meth:`from_meta`)."""
        return {"readout": self.name, "readout_layers": self.fitted_layers}

    @classmethod
    def from_meta(cls, meta, widths, n_segments=1):
        """The readout a TagSet head was saved with."""
        layers = meta.get("readout_layers") or "spread10"
        return cls(widths, layers, n_segments)

    # helpers for subclasses
    def _tag_names(self):
        return [f"function_tag_L{layer}_{k}" if len(self.needs.tag_layers) > 1 else f"function_tag_{k}"
                for layer in self.needs.tag_layers for k in range(self.widths[layer])]

    def _pooled_names(self):
        needs = self.needs
        segs = [f"seg{j + 1}_" for j in range(self.n_segments)] if needs.per_segment else [""]
        return [f"data_{s}L{layer}_{needs.pooling}_{k}" for s in segs for layer in needs.pooled_layers
                for k in range(self.widths[layer])]


class TagReadout(Readout):
    """The paper's readout: the final hidden state at the last function-tag position."""

    name = "tag"
    standardize_random_head = False

    @property
    def needs(self):
        return Needs(tag_layers=(self.n_layers,))

    def features(self, states):
        return states.tag[0].float()

    def feature_names(self):
        return self._tag_names()

    @property
    def fitted_layers(self):
        return []


class PooledReadout(Readout):
    """The function tag's final state and the mean data-token state of ``layers``."""

    name = "pooled"

    def __init__(self, widths, layers="spread10", n_segments=1):
        super().__init__(widths, layers, n_segments)
        self.pooled_layers = tuple(resolve_layers(layers, self.n_layers))

    @property
    def needs(self):
        return Needs(tag_layers=(self.n_layers,), pooled_layers=self.pooled_layers)

    def features(self, states):
        tag = states.tag[0]
        return torch.cat([tag.float(), states.pooled.flatten(1).float().to(tag.device)], dim=1)

    def feature_names(self):
        return self._tag_names() + self._pooled_names()


class ReadoutSpec:
    """Parameter constraint of ``readout``: a registered name or a :class:`Readout` subclass."""

    def __call__(self, v) -> bool:
        return (isinstance(v, str) and v in READOUTS) or (isinstance(v, type) and issubclass(v, Readout)
                                                           and v.name is not None)

    def __str__(self):
        return "a str among {" + ", ".join(repr(n) for n in READOUTS) + "} or a Readout subclass"


def make_readout(readout, widths, layers, n_segments=1) -> Readout:
    """The readout ``readout`` (a name or a class) for a backbone of hidden-state ``widths``."""
    cls = readout if isinstance(readout, type) else READOUTS.get(readout)
    if cls is None:
        raise ValueError(f"unknown readout {readout!r}; known: {sorted(READOUTS)}. Define a Readout subclass "
                         "with that name (and import it) before loading a TagSet saved with it.")
    return cls(widths, layers, n_segments)

