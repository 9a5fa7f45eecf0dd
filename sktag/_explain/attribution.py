"""Integrated gradients of a fitted Tag-LLM estimator, on its input embeddings.

The explanation path runs the prediction's data path (strings → validation →
encoding with tag slots) and then, instead of the prefix cache, the whole
tagged sequence with autograd.  For each integration point ``alpha`` the
embeddings of the data tokens are ``x0 + alpha (x - x0)``, where ``x`` are
the row's token embeddings and ``x0`` the *baseline*: at every data token the
embedding of one reference token per column (:data:`REFERENCE_TOKENS`: the
carbon atom ``C`` for SMILES, so that the baseline is a carbon chain of the
same number of tokens; alanine ``A`` for proteins, as in alanine scanning;
the mean input embedding of the vocabulary for other domains).  The tags keep
their fitted vectors all along the path, so the model reads a tagged row at
every point.  The attribution of a token is ``(x - x0) · ∫ ∂f/∂x dalpha``
summed over the embedding width, the integral by Gauss–Legendre quadrature;
the attributions of a row add up to ``f(x) - f(x0)`` up to the quadrature's
error.  A tag's *effect* is measured apart, by occlusion: the output minus
the output with that tag's vectors replaced by the reference embedding.
Deep tags (blocks added inside the decoder) stay as fitted.
"""

from __future__ import annotations

import numpy as np
import torch

from .._forward import engine as _engine
from .._runtime.device import autocast
from .._runtime.report import progress


def quadrature(n_steps):
    """Gauss–Legendre nodes and weights on ``[0, 1]`` (``n_steps`` of each, float64)."""
    nodes, weights = np.polynomial.legendre.leggauss(int(n_steps))
    return (nodes + 1.0) / 2.0, weights / 2.0


#: The reference token of the baseline per domain (lower-case name); other domains take the mean embedding.
REFERENCE_TOKENS = {"smiles": "C", "protein": "A"}


def reference_vectors(backbone, domains, baseline="auto") -> torch.Tensor:
    """The baseline embedding of each column, ``[n_columns, d]`` float32.

    ``baseline="auto"`` takes :data:`REFERENCE_TOKENS` by domain, ``"mean"``
    the mean row of the input-embedding matrix for every column, and a dict
    maps a domain (any case) to the text of its reference token (domains it
    does not name fall back to ``"auto"``).  A reference text must be one
    token of the model's tokenizer.
    """
    if not (baseline in ("auto", "mean") or isinstance(baseline, dict)):
        raise ValueError(f"baseline must be 'auto', 'mean' or a dict {{domain: reference token}}, got {baseline!r}.")
    given = {str(k).strip().lower(): v for k, v in baseline.items()} if isinstance(baseline, dict) else {}
    weight = backbone.embeddings.weight
    out = []
    with torch.no_grad():
        for domain in domains:
            key = str(domain).strip().lower()
            text = None if baseline == "mean" else given.get(key, REFERENCE_TOKENS.get(key))
            if text is None:
                out.append(weight.float().mean(dim=0))
                continue
            ids = backbone.tokenizer(str(text), add_special_tokens=False)["input_ids"]
            if len(ids) != 1:
                raise ValueError(f"The reference {text!r} of the {domain} baseline is {len(ids)} tokens for this "
                                 "model's tokenizer; give the text of a single token.")
            out.append(weight[ids[0]].float())
    return torch.stack(out)


class Integrator:
    """Integrated gradients of one scalar per row through a fitted estimator's module.

    Parameters
    ----------
    backbone : Backbone
    module : TagModule
        The fitted tags and head.
    readout : Readout
        The fitted readout.
    layout : TagLayout
    isolate : bool
        Segment-isolating attention, as fitted.
    scalar : callable
        ``scalar(head_outputs [B, n_outputs], rows) -> [B]``: what is
        explained for the rows ``rows`` (their indices in the data set).
    n_steps : int
        Integration points (each costs one forward and one backward pass).
    baseline : {"auto", "mean"} or dict, default="auto"
        The baseline's reference token per column (:func:`reference_vectors`).
    """

    def __init__(self, backbone, module, readout, layout, isolate, scalar, n_steps, baseline="auto"):
        self.backbone, self.module, self.readout, self.layout = backbone, module, readout, layout
        self.isolate, self.scalar = bool(isolate), scalar
        self.alphas, self.weights = quadrature(n_steps)
        self.references = reference_vectors(backbone, layout.column_domains, baseline).to(backbone.device)

    def _reference_at(self, batch):
        """The reference embedding of every position ``[B, L, d]``: its column's (the last column's for the
        function tag)."""
        n = self.references.shape[0]
        column = torch.where(batch.seg >= 1, batch.seg - 1, torch.full_like(batch.seg, n - 1)).clamp(0, n - 1)
        return self.references[column]

    def baseline(self, batch, x):
        """The baseline embeddings of a batch whose embeddings are ``x``: the reference at every data token."""
        tokens = (batch.valid & (batch.slot < 0)).unsqueeze(-1)
        return torch.where(tokens, self._reference_at(batch).to(x.dtype), x)

    def _embedded(self, encoded, rows):
        """The batch of ``rows`` with the function tag, and its embeddings (tags spliced in, float32, no grad)."""
        bb = self.backbone
        batch = _engine.collate([encoded[i] for i in rows], tail=self.layout.function_slots, device=bb.device)
        with torch.no_grad():
            return batch, _engine.embed(bb, batch, self.module.tag_table().detach()).float()

    def _outputs(self, batch, x, rows):
        """The explained scalar ``[B]`` of embeddings ``x`` (autograd as the caller enables it)."""
        m = self.module
        with autocast(self.backbone):
            states = _engine.full_states(self.backbone, batch, None, self.isolate, self.readout.needs,
                                         m.function_deep(), m.deep_table(), inputs_embeds=x)
        return self.scalar(m.head(self.readout.features(states)), rows)

    def tag_effects(self, batch, x, rows, output):
        """Occlusion effect of each tag ``[B, n_columns + 1]``: ``output`` minus the output with that tag's vectors
        at the reference embedding (each column's domain tag, then the function tag)."""
        reference = self._reference_at(batch).to(x.dtype)
        is_tag = batch.valid & (batch.slot >= 0)
        groups = [is_tag & (batch.seg == j + 1) for j in range(self.references.shape[0])]
        groups.append(batch.valid & (batch.seg == _engine.FUNCTION_SEGMENT))  # (padding has that segment too)
        effects = []
        for group in groups:
            occluded = torch.where(group.unsqueeze(-1), reference, x)
            effects.append(output - self._outputs(batch, occluded, rows))
        return torch.stack(effects, dim=1)

    def batch(self, encoded, rows):
        """Attributions ``[B, L]`` (float64, left-padded like the batch), ``(f(x), f(x0))`` and tag effects."""
        dtype = self.backbone.dtype
        batch, x = self._embedded(encoded, rows)
        with torch.no_grad():
            x0 = self.baseline(batch, x)
            f1 = self._outputs(batch, x.to(dtype), rows)
            ends = f1, self._outputs(batch, x0.to(dtype), rows)
            effects = self.tag_effects(batch, x.to(dtype), rows, f1)
        diff = x - x0
        total = torch.zeros_like(x)
        for alpha, weight in zip(self.alphas, self.weights):
            point = (x0 + float(alpha) * diff).to(dtype).requires_grad_(True)
            with torch.enable_grad():
                (grad,) = torch.autograd.grad(self._outputs(batch, point, rows).sum(), point)
            total += float(weight) * grad.float()
        attributions = (diff * total).sum(dim=-1).double().cpu().numpy()
        ends = tuple(e.double().cpu().numpy() for e in ends)
        return attributions, ends, effects.double().cpu().numpy(), batch.valid.cpu().numpy()

    def masked_outputs(self, encoded, rows, masks):
        """The explained output of ``rows`` with some positions at the baseline embedding (deletion tests).

        ``masks`` holds one boolean array per row over the row's positions
        followed by the function tag's (as :meth:`run` orders them); True
        positions take their column's reference embedding.  Returns float64
        ``[len(rows)]``.
        """
        batch, x = self._embedded(encoded, rows)
        with torch.no_grad():
            reference, width = self._reference_at(batch), x.shape[1]
            for k, mask in enumerate(masks):
                hit = torch.as_tensor(width - len(mask) + np.flatnonzero(np.asarray(mask, dtype=bool)),
                                      dtype=torch.long, device=x.device)
                x[k, hit] = reference[k, hit]
            return self._outputs(batch, x.to(self.backbone.dtype), rows).double().cpu().numpy()

    def run(self, encoded, idx, batch_size, verbose=0):
        """Per-row results for the rows ``idx``: ``{row: (attributions, f(x), f(x0), tag effects)}``.

        The attributions cover the row's positions, those of its
        :class:`~sktag._forward.encoding.EncodedRow` followed by the function tag's
        (0 at tag positions, which the path does not move).
        """
        lengths = np.array([len(r) if r is not None else 0 for r in encoded])
        batches = _engine.length_batches(np.asarray(idx), lengths, batch_size)
        out = {}
        for b in progress(batches, bool(verbose), desc="explain", leave=False):
            attributions, (f1, f0), effects, valid = self.batch(encoded, b)
            for k, row in enumerate(b):
                out[int(row)] = (attributions[k][valid[k]], float(f1[k]), float(f0[k]), effects[k])
        return out


def token_spans(tokenizer, text, ids):
    """Character span ``(start, end)`` of each token id of ``ids`` in ``text`` (its first ``len(ids)`` tokens).

    Uses the tokenizer's offset mapping where it has one and it gives the same
    ids; otherwise decodes growing prefixes of ``ids`` (a token whose text
    cannot be located gets the empty span at the end of the previous one).
    """
    ids = [int(i) for i in ids]
    if getattr(tokenizer, "is_fast", False):
        enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
        if list(enc["input_ids"][:len(ids)]) == ids:
            return [(int(a), int(b)) for a, b in enc["offset_mapping"][:len(ids)]]
    spans, start = [], 0
    for k in range(len(ids)):
        end = len(tokenizer.decode(ids[:k + 1]))
        end = min(max(end, start), len(text))
        spans.append((start, end))
        start = end
    return spans
