"""Layer specs: which hidden states a readout or :class:`~sktag.LLMEmbedding` reads.

``"spread10"``, ``"everyK"``, ``"all"``, ``"last"``, an index or a list of
indices, resolved against the depth of the loaded model by
:func:`resolve_layers`; :data:`LAYERS` is the parameter constraint.
"""

from __future__ import annotations

import math
import numbers
import re

import numpy as np

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
        Number of decoder blocks of the model.

    Returns
    -------
    list of int
        Indices into ``hidden_states``, each in ``0 .. n_layers``.
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
