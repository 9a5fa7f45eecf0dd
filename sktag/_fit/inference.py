"""Prediction and ``transform`` of the Tag-LLM estimators: the fitted state only.

The data path of ``predict``: ``X`` ─ :func:`sktag._forward.inputs.as_columns` (columns
checked against ``fit``'s) ─ :func:`sktag._forward.encoding.encode` with the fitted
layout ─ :class:`sktag._forward.states.StateSource` (prefix and function-tag step,
no cache) ─ the fitted readout ─ the head.  Everything structural comes from
fitted attributes (``layout_``, ``readout_``, ``readout_layers_``,
``isolate_segments_``, ``canonicalize_``, ``dtype_``), never from parameters
changed after ``fit``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch
from sklearn.base import TransformerMixin
from sklearn.utils.validation import check_is_fitted

from .._explain.attribution import Integrator, token_spans
from .._forward.encoding import encode
from .._forward.inputs import check_fitted_columns
from .._forward.readouts import make_readout
from .._forward.states import StateSource
from .._runtime.threads import torch_threads
from .._runtime.validation import POS_INT

if TYPE_CHECKING:
    from .._forward.encoding import TagLayout
    from .._forward.module import TagModule


class PredictMixin(TransformerMixin):
    """``predict``'s plumbing, ``transform`` and ``get_feature_names_out`` of the estimators.

    The host's interface, which this mixin reads and nothing else: the
    fitted attributes declared below (set by the host's ``commit_fit``), the
    parameters ``max_length``, ``truncation``, ``on_invalid``,
    ``predict_batch_size``, ``n_threads`` and ``verbose``, and the methods
    ``_check_params``, ``get_backbone`` and ``domain_validators``
    (:class:`~sktag._fit.backbone_access.BackboneMixin`) and
    :meth:`_explained_output`.
    """

    module_: TagModule
    layout_: TagLayout
    n_features_in_: int
    readout_: str
    readout_layers_: tuple
    _hidden_widths: tuple
    isolate_segments_: bool
    canonicalize_: bool

    def _explained_output(self, target, X):  # pragma: no cover - every host defines it
        """What :meth:`explain` attributes: ``(scalar(head outputs, rows), words(row))`` for ``target``."""
        raise NotImplementedError

    def _fitted_readout(self):
        """The readout of the fitted model, whatever the parameters say now."""
        return make_readout(self.readout_, self._hidden_widths, self.readout_layers_, self.layout_.n_features)

    def _encode(self, columns, labels, backbone, return_strings=False):
        """:func:`~sktag._forward.encoding.encode` of checked columns with the fitted layout and these settings."""
        return encode(columns, self.layout_, backbone.tokenizer, row_labels=labels, max_length=self.max_length,
                      truncation=self.truncation, canonicalize=self.canonicalize_, on_invalid=self.on_invalid,
                      validators=self.domain_validators(), max_positions=backbone.max_positions,
                      return_strings=return_strings)

    def _predict_path(self, X, head):
        """Head outputs (``head=True``) or readout features of ``X`` in row order; NaN for invalid rows."""
        check_is_fitted(self, "module_")
        self._check_params()
        columns, labels = check_fitted_columns(self, X)
        with torch_threads(self.n_threads), torch.inference_mode():
            bb = self.get_backbone()
            self.module_.to(bb.device)
            rows, valid = self._encode(columns, labels, bb)
            readout = self._fitted_readout()
            source = StateSource(bb, rows, self.layout_, readout.needs, self.isolate_segments_,
                                 self.predict_batch_size, self.verbose)
            idx = np.flatnonzero(valid)
            F = source.features(self.module_, readout, idx, desc="predict" if head else "transform")
            return self.module_.head.outputs(F, idx) if head else F

    def explain(self, X, *, target=None, n_steps=8, baseline="auto", batch_size=None):
        """Attribute each row's output to its tokens and atoms (integrated gradients), and measure its tags' effects.

        The token attributions of a row add up to its output minus the
        output of the baseline row, in which every data token is a reference
        token (a carbon atom ``C`` for SMILES, alanine ``A`` for proteins)
        and the tags are as fitted, up to the integration error each
        :class:`~sktag.explain.Explanation` reports as ``delta``.  Each tag's
        effect is the output minus the output with that tag's vectors
        replaced by the reference embedding.  Integration runs ``n_steps``
        forward and backward passes over the whole tagged rows; batches,
        threads and dtype are those of ``predict``, and ``verbose`` shows a
        progress bar.  See :mod:`sktag.explain`.

        Parameters
        ----------
        X : sequence of str or RDKit molecules, or DataFrame / 2-D array of columns
            The rows to explain, with the columns ``fit`` saw.
        target : int or class label, optional
            What to explain.  A regressor: the index of the output (default:
            the only one).  A classifier: a class label; for two classes its
            log-odds against the other class (default: the positive class,
            ``classes_[1]``, as ``decision_function``), for more, its logit
            (default: each row's predicted class).
        n_steps : int, default=8
            Gauss–Legendre integration points; more points make ``delta``
            smaller and cost proportionally more.
        baseline : {"auto", "mean"} or dict, default="auto"
            The reference token of the baseline: ``"auto"`` takes ``"C"``
            for SMILES columns, ``"A"`` for protein columns and the mean
            input embedding for other domains; ``"mean"`` the mean input
            embedding everywhere; a dict ``{domain: token text}`` sets the
            reference of some domains (the text must be one token).
        batch_size : int, optional
            Rows per pass (default: ``predict_batch_size``).

        Returns
        -------
        list of Explanation or None
            One :class:`~sktag.explain.Explanation` per row of ``X``, in row
            order; None for rows that are invalid under
            ``on_invalid="nan"``.
        """
        check_is_fitted(self, "module_")
        self._check_params()
        n_steps, batch_size = _check_count(n_steps, "n_steps"), _check_count(batch_size, "batch_size", None)
        scalar, words = self._explained_output(target, X)
        columns, labels = check_fitted_columns(self, X)
        with torch_threads(self.n_threads):
            bb = self.get_backbone()
            self.module_.to(bb.device)
            rows, valid, strings = self._encode(columns, labels, bb, return_strings=True)
            integrator = Integrator(bb, self.module_, self._fitted_readout(), self.layout_, self.isolate_segments_,
                                    scalar, n_steps, baseline)
            results = integrator.run(rows, np.flatnonzero(valid), batch_size or self.predict_batch_size,
                                     self.verbose)
        return [self._explanation(rows[i], [col[i] for col in strings], results[i], words(i), bb.tokenizer)
                if i in results else None for i in range(len(rows))]

    def _explanation(self, row, strings, result, words, tokenizer):
        """The :class:`~sktag.explain.Explanation` of one encoded row from its integration ``result``."""
        from ..explain import Explanation

        attributions, prediction, baseline, effects = result
        body = attributions[:len(row)]
        tokens, spans, token_attr = [], [], []
        for j, text in enumerate(strings):
            in_col = row.seg == j + 1
            is_token = in_col & (row.slot < 0)
            col_spans = token_spans(tokenizer, text, row.ids[is_token])
            spans.append(tuple(col_spans))
            tokens.append(tuple(text[a:b] for a, b in col_spans))
            token_attr.append(body[is_token])
        return Explanation(strings=tuple(strings), domains=tuple(self.layout_.column_domains), tokens=tuple(tokens),
                           spans=tuple(spans), token_attributions=tuple(token_attr),
                           domain_tag_effects=tuple(float(v) for v in effects[:-1]),
                           function_tag_effect=float(effects[-1]), prediction=prediction,
                           baseline_prediction=baseline, output=words)

    def _raw_predict(self, X):
        """Head outputs for ``X`` in the original row order (NaN for invalid rows)."""
        return self._predict_path(X, head=True)

    def transform(self, X):
        """Readout features of ``X`` (the head's input before standardisation).

        The paper's readout gives ``hidden_size`` columns (the function tag's
        final state); ``readout="pooled"`` adds ``hidden_size`` per pooled
        layer.  Invalid rows (``on_invalid="nan"``) are NaN.

        Parameters
        ----------
        X : sequence of str, or DataFrame / 2-D array of str columns
            The input strings.

        Returns
        -------
        ndarray of shape (n_samples, n_features)
            The readout features.
        """
        return self._predict_path(X, head=False)

    def get_feature_names_out(self, input_features=None):
        """Names of the columns :meth:`transform` gives.

        ``function_tag_<k>`` for the final hidden state at the last
        function-tag position, then, with ``readout="pooled"``,
        ``data_L<layer>_mean_<k>`` for the mean data-token state of each
        pooled layer (``readout_layers_``); a custom readout names its own.

        Parameters
        ----------
        input_features : array-like of str, optional
            Ignored apart from a check: when given it must name the input
            columns seen in ``fit``.

        Returns
        -------
        ndarray of str
            One name per column of :meth:`transform`.
        """
        check_is_fitted(self, "module_")
        if input_features is not None:
            given = [str(c) for c in input_features]
            fitted = self.layout_.feature_names
            expected = [str(c) for c in fitted] if fitted is not None else None
            if (expected is not None and given != expected) or len(given) != self.n_features_in_:
                raise ValueError(f"input_features {given} do not match the {self.n_features_in_} input columns "
                                 f"seen in fit{'' if expected is None else f' {expected}'}.")
        return np.asarray(self._fitted_readout().feature_names(), dtype=object)


def _check_count(value, name, default=...):
    """``value`` as a positive int (None allowed when ``default`` is given); a clear error otherwise."""
    if value is None and default is not ...:
        return default
    if not POS_INT(value):
        raise ValueError(f"{name} must be a positive int, got {value!r}.")
    return int(value)
