"""Prediction and ``transform`` of the Tag-LLM estimators: the fitted state only.

The data path of ``predict``: ``X`` ─ :func:`sktag._inputs.as_columns` (columns
checked against ``fit``'s) ─ :func:`sktag._encoding.encode` with the fitted
layout ─ :class:`sktag._states.StateSource` (prefix and function-tag step,
no cache) ─ the fitted readout ─ the head.  Everything structural comes from
fitted attributes (``layout_``, ``readout_``, ``readout_layers_``,
``isolate_segments_``, ``canonicalize_``, ``dtype_``), never from parameters
changed after ``fit``.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch
from sklearn.base import TransformerMixin
from sklearn.utils.validation import check_is_fitted

from ._encoding import encode
from ._inputs import as_columns
from ._readouts import make_readout
from ._states import StateSource
from ._threads import torch_threads


class PredictMixin(TransformerMixin):
    """``predict``'s plumbing, ``transform`` and ``get_feature_names_out`` of the estimators."""

    def _fitted_readout(self):
        """The readout of the fitted model, whatever the parameters say now."""
        return make_readout(self.readout_, self._hidden_widths, self.readout_layers_, self.layout_.n_features)

    def _check_predict_columns(self, X):
        """Split ``X`` and check its columns against ``fit``'s; returns ``(columns, row_labels)``.

        Columns are matched by the names ``fit`` saw (``layout_.feature_names``),
        whatever their type: a different order or other names are refused.
        """
        columns, names, labels = as_columns(X)
        if len(columns) != self.n_features_in_:
            raise ValueError(f"X has {len(columns)} features, but {type(self).__name__} is expecting "
                             f"{self.n_features_in_} features as input.")
        fitted = self.layout_.feature_names
        if fitted is not None and names is not None and [str(n) for n in names] != [str(n) for n in fitted]:
            raise ValueError(f"The column names of X {list(names)} differ from those seen in fit {list(fitted)}; "
                             "pass the same columns in the same order.")
        if fitted is not None and names is None and hasattr(self, "feature_names_in_"):
            warnings.warn("X has no column names, but this estimator was fitted with a DataFrame; columns "
                          "are matched by position.", UserWarning, stacklevel=4)
        if len(columns[0]) == 0:
            raise ValueError("Found array with 0 sample(s) (shape=(0,)) while a minimum of 1 is required.")
        return columns, labels

    def _predict_path(self, X, head):
        """Head outputs (``head=True``) or readout features of ``X`` in row order; NaN for invalid rows."""
        check_is_fitted(self, "module_")
        self._check_params()
        columns, labels = self._check_predict_columns(X)
        with torch_threads(self.n_threads), torch.inference_mode():
            bb = self.get_backbone()
            self.module_.to(bb.device)
            rows, valid = encode(columns, self.layout_, bb.tokenizer, row_labels=labels, max_length=self.max_length,
                                 truncation=self.truncation, canonicalize=self.canonicalize_,
                                 on_invalid=self.on_invalid, validators=self.domain_validators(),
                                 max_positions=bb.max_positions)
            readout = self._fitted_readout()
            source = StateSource(bb, rows, self.layout_, readout.needs, self.isolate_segments_,
                                 self.predict_batch_size, self.verbose)
            idx = np.flatnonzero(valid)
            F = source.features(self.module_, readout, idx, desc="predict" if head else "transform")
            return self.module_.head.outputs(F, idx) if head else F

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
