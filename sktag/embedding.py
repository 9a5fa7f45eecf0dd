"""The frozen backbone's own features as a scikit-learn transformer.

:class:`LLMEmbedding` runs strings through the frozen causal LLM once and
pools the hidden states of a few layers over each string's tokens.  With a
standard scaler and a ridge on top it is the cheap, strong baseline to put
next to a Tag-LLM model (no gradient step, one forward pass per string), and
a featuriser for any scikit-learn model::

    make_pipeline(LLMEmbedding(), StandardScaler(), RidgeCV())

It shares the estimators' data path: ``_forward.inputs.as_columns`` →
``_forward.encoding`` (a :class:`~sktag._forward.encoding.TagLayout` without function tag,
then ``encode``) → the pooled states of :meth:`~sktag._forward.states.StateSource.prefixes`,
through the process-wide prefix store (a row a Tag-LLM or another
``LLMEmbedding`` with the same prefix computed before is not run again).
"""

from __future__ import annotations

import contextlib
import os

import numpy as np
import torch
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from ._fit.backbone_access import BackboneMixin
from ._forward.deep import DeepTable, common_kind, zero_blocks
from ._forward.encoding import TagLayout, encode, token_limit, validate
from ._forward.inputs import as_columns, check_fitted_columns, resolve_domains
from ._forward.layers import LAYERS, resolve_layers
from ._forward.readouts import Needs
from ._forward.states import StateSource
from ._forward.taginit import domain_tag_vectors
from ._runtime.threads import torch_threads
from ._runtime.validation import (BOOLEAN, COMMON, POS_INT, Instance, Options, store_params, string_input_tags,
                                  validate_params)
from .backbone import resolve_device, resolve_dtype
from .tags import TagSet

__all__ = ["LLMEmbedding", "resolve_layers"]


class LLMEmbedding(TransformerMixin, BackboneMixin, BaseEstimator):
    """Pooled hidden states of a frozen causal LLM as features.

    Each string is tokenised and run through the frozen backbone once; the
    hidden states of the chosen ``layers`` are pooled over the string's
    tokens (the mean, or the last token).  A DataFrame / 2-D array gives one
    segment per column, laid out as in :class:`~sktag.TagRegressor`
    (``[<Dom_1> col_1 <Dom_2> col_2 ...]``, without the function tag), and
    one block of features per column and layer.  Nothing is trained: ``fit``
    checks the parameters and records the input layout.

    The default is the frozen-feature baseline next to the estimators'
    default readout: the mean over tokens of layers 3, 6, ..., 30 of
    SmolLM2-135M, concatenated (10 x 576 = 5760 features per column).  Put a
    :class:`~sklearn.preprocessing.StandardScaler` before a linear model:
    intermediate hidden states are not normalised and their scales differ a
    lot from feature to feature.

    Parameters
    ----------
    model : str or path-like, default="smollm2-135m"
        The frozen LLM: an embedded alias, a local folder or a hub id (see
        :func:`~sktag.load_backbone`).  Shared with every other sktag
        estimator on the same model, dtype and device.
    domains : str, list of str or dict, default="SMILES"
        Domain of each column, as for :class:`~sktag.TagRegressor`: one name
        for all columns, a list with one name per column, or a dict column
        -> name (DataFrame column names, or 0..n-1 for a 2-D array).  Strings
        are validated (and with ``canonicalize`` normalised) by their domain.
    pooling : {"mean", "last"}, default="mean"
        ``"mean"``: average over the segment's data tokens (tag positions and
        padding excluded).  ``"last"``: the hidden state at the segment's last
        data token, which has seen the whole segment.
    layers : int, list of int or str, default="spread10"
        Which hidden states, as indices into transformers' ``hidden_states``
        (0 = input embeddings, ``i`` = output of block ``i``, the last =
        final hidden state after the final norm; negative ints count from the
        end), or a rule: ``"last"``, ``"all"`` (every block), ``"everyK"``
        (blocks K, 2K, ...), ``"spreadK"`` (K blocks spread evenly over the
        depth, ending at the last).  ``"spread10"`` adapts to any depth and
        is 3, 6, ..., 30 on SmolLM2-135M; it had the best mean rank over
        ESOL, BBBP and Lipophilicity in the inner cross-validation of
        ``benchmarks/choose_defaults.py`` (mean pooling, closed-form ridge /
        logistic head), ahead of ``"spread5"``, ``"spread3"`` and the last
        layer alone.  The estimators' ``readout_layers`` default is the same.
        See :func:`resolve_layers`; the resolved list is ``layers_``.
    domain_tags : TagSet, str, path-like or None, default=None
        ``None``: the segments are not tagged.  A :class:`~sktag.TagSet` or
        the path of a saved one: each segment is preceded by the vectors of
        its domain's domain tag (which must exist in the set, matched
        case-insensitively, and belong to this backbone).  ``"pretrained"``:
        the domain tags sktag ships for this backbone where there is one (the
        estimators' default; see :class:`~sktag.TagRegressor`), no tag
        elsewhere.  ``"text"``: preceded by the token embeddings of the words
        ``"<domain>: "`` instead.  Tag positions are never pooled; they change
        the features through attention only.
    isolate_segments : bool, default=False
        With several columns, let each segment attend only to itself (and its
        tag), so each column's block does not depend on the other columns.
    max_length : int, default=512
        Tokens per string; longer strings are truncated (see ``truncation``).
    truncation : {"warn", "raise"}, default="warn"
    canonicalize : bool, default=True
        Replace SMILES by RDKit's canonical form (and upper-case proteins)
        before tokenising.
    on_invalid : {"raise", "nan"}, default="raise"
        ``"raise"``: an invalid string raises
        :class:`~sktag.domains.InvalidInputError` naming every bad row.
        ``"nan"``: its row of the output is all NaN; order is kept.
    batch_size : int, default=32
        Strings per forward pass; batches group strings of similar length and
        are also capped at ``batch_size x 128`` padded tokens.
    device : {"auto", "cpu", "cuda", "cuda:N"} or torch.device, default="auto"
    dtype : {"auto", "float32", "bfloat16", "float16"} or torch.dtype, default="auto"
        Of the backbone; ``"auto"`` is bfloat16 on CUDA and on CPUs with
        native bfloat16 (AVX512-BF16 or AMX; ``SKTAG_CPU_BF16=0/1``
        overrides the detection), float32 on other CPUs.  Pooling is done in
        float32 either way.  ``transform`` runs in the dtype ``fit`` resolved
        (``dtype_``).
    trust_remote_code : bool, default=False
        Passed to ``transformers`` when loading ``model``.
    n_threads : int, default=None
        Torch threads used by ``transform`` (restored after); ``None`` keeps
        torch's setting, except inside joblib/Dask/Ray workers, where the
        parallel backend's inner thread limit is honoured (as for
        :class:`~sktag.TagRegressor`).
    verbose : int, default=0
        ``> 0`` shows a tqdm progress bar over the batches of ``transform``.

    Attributes
    ----------
    layers_ : list of int
        The resolved hidden-state indices.
    pooling_ : str
    isolate_segments_ : bool
    canonicalize_ : bool
        ``pooling``, ``isolate_segments`` and ``canonicalize`` as ``fit``
        saw them: ``transform`` uses these, never parameters changed after
        ``fit``.
    dtype_ : torch.dtype
        The backbone dtype ``fit`` resolved; ``transform`` runs in it.
    n_layers_ : int
        Number of blocks of the backbone.
    hidden_size_ : int
    hidden_widths_ : tuple of int
        Width of each hidden state (``hidden_size_`` for almost every model).
    n_features_in_ : int
        Number of input columns (1 for a 1-D input).
    feature_names_in_ : ndarray of str
        Column names of a DataFrame ``X`` in ``fit``.
    layout_ : TagLayout
        The input layout (domains, tag lengths, column names), as the
        estimators' ``layout_`` but without a function tag.
    column_domains_ : list of str
        Domain of each column.
    domains_ : list of str
        The distinct domains (compared case-insensitively), in order of first
        appearance.
    deep_table_ : Tensor or None
        The deep blocks of the domain tags side by side (float32, CPU),
        ``[n_layers, n_tag_vectors, width]``, when a domain tag is deep
        (``DomainTagPretrainer(tag_depth="deep")`` or ``"kv"``); None otherwise.
    domain_tag_depth_ : {"shallow", "deep", "kv"}
        The kind of the domain tags' deep blocks (see
        :meth:`sktag.TagSet.add_deep`); ``"shallow"`` without.
    tag_table_ : Tensor or None
        The domain tags' vectors stacked (float32, CPU), None without tags.
    tag_lengths_ : list of int
        Vectors per domain in ``domains_`` (zeros without tags).
    backbone_identity_, backbone_fingerprint_ : str
        The backbone ``fit`` saw; ``transform`` refuses another.

    Examples
    --------
    >>> from sklearn.linear_model import RidgeCV
    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn.preprocessing import StandardScaler
    >>> from sktag import LLMEmbedding
    >>> from sktag.testing import make_tiny_model
    >>> model = make_tiny_model()  # a tiny random model keeps the example fast
    >>> from sktag.datasets import load_esol
    >>> X, y = load_esol(return_X_y=True)
    >>> emb = LLMEmbedding(model=model, layers="last")
    >>> emb.fit_transform(X[:4]).shape
    (4, 32)
    >>> emb.get_feature_names_out()[:2]
    array(['smiles__L2_mean_0', 'smiles__L2_mean_1'], dtype=object)
    >>> pipe = make_pipeline(LLMEmbedding(model=model), StandardScaler(), RidgeCV())
    >>> pipe.fit(X[:60], y[:60]).predict(X[60:65]).shape
    (5,)
    """

    _parameter_constraints = {
        **{k: COMMON[k] for k in ("model", "max_length", "truncation", "canonicalize", "on_invalid", "device",
                                  "dtype", "trust_remote_code", "verbose")},
        "domains": [Instance(str, list, tuple, dict, what="a domain name, a list or a dict")],
        "pooling": [Options("mean", "last")],
        "layers": [LAYERS],
        "domain_tags": [Instance(TagSet, str, os.PathLike, what="a TagSet, a path, 'pretrained' or 'text'"), None],
        "isolate_segments": [BOOLEAN],
        "batch_size": [POS_INT],
        "n_threads": COMMON["n_threads"],
    }

    def __init__(
        self,
        model="smollm2-135m",
        domains="SMILES",
        *,
        pooling="mean",
        layers="spread10",
        domain_tags=None,
        isolate_segments=False,
        max_length=512,
        truncation="warn",
        canonicalize=True,
        on_invalid="raise",
        batch_size=32,
        device="auto",
        dtype="auto",
        trust_remote_code=False,
        n_threads=None,
        verbose=0,
    ):
        store_params(self, locals())

    _fitted_marker = "layers_"

    def __sklearn_tags__(self):
        # fit records the column layout and the layers
        return string_input_tags(super().__sklearn_tags__(), requires_fit=True)

    # ------------------------------------------------------------------ params
    def _check_params(self):
        validate_params(self)
        resolve_dtype(self.dtype, resolve_device(self.device))

    # ------------------------------------------------------------------ fitting
    def _fit(self, columns, names):
        """Validate the parameters, load the backbone; the fitted attributes for the layout of ``X``."""
        self._check_params()
        backbone = self.get_backbone(refit=True)  # a refit may name another model
        if len(columns[0]) == 0:
            raise ValueError("X has 0 samples; at least one is required.")
        column_domains = resolve_domains(self.domains, len(columns), names)
        n_layers = int(backbone.config.get_text_config(decoder=True).num_hidden_layers)
        layers = resolve_layers(self.layers, n_layers)
        tags, blocks = domain_tag_vectors(self.domain_tags, TagLayout.build(column_domains, 0, names).domains,
                                          backbone, 0, untagged=None, deep=True)
        layout = TagLayout.build(column_domains, 0, names,
                                 None if tags is None else {d: t.shape[0] for d, t in tags.items()})
        # domain tags that leave no room in the model's positions are refused here, as the estimators do
        token_limit(self.max_length, layout.n_features, layout.tag_positions, backbone.max_positions)

        return dict(
            n_features_in_=len(columns),
            layout_=layout,
            column_domains_=list(layout.column_domains),
            domains_=layout.domains,
            tag_lengths_=list(layout.tag_lengths),
            tag_table_=None if tags is None else torch.cat([tags[d] for d in layout.domains], dim=0),
            **_deep_table(tags, blocks, layout.domains, backbone),
            layers_=layers,
            pooling_=self.pooling,
            isolate_segments_=bool(self.isolate_segments),
            canonicalize_=bool(self.canonicalize),
            dtype_=backbone.dtype,
            n_layers_=n_layers,
            hidden_size_=backbone.hidden_size,
            hidden_widths_=backbone.hidden_widths(),
            backbone_identity_=backbone.identity,
            backbone_fingerprint_=backbone.fingerprint,
            **self._held_backbone(backbone),
        )

    @contextlib.contextmanager
    def _fitted_state(self, attrs, names):
        """Install the fitted attributes ``attrs``; on an exception, restore the estimator as it was."""
        old = self._install_fitted(attrs, names)
        try:
            yield
        except BaseException:
            self._restore(old)
            raise

    def fit(self, X, y=None):
        """Check the parameters and ``X``, and record the column layout.

        Nothing is learned; the strings are validated (so bad rows are
        reported here already) but not run through the model.

        Parameters
        ----------
        X : array-like of str, shape (n_samples,) or (n_samples, n_columns)
            A list / array / Series of strings, or a DataFrame / 2-D array
            with one string column per segment.
        y : None
            Ignored.

        Returns
        -------
        self : LLMEmbedding
            The fitted transformer.
        """
        columns, names, row_labels = as_columns(X)
        with self._fitted_state(self._fit(columns, names), names):
            validate(columns, self.layout_, row_labels=row_labels, canonicalize=self.canonicalize_,
                     on_invalid=self.on_invalid, validators=self.domain_validators())
        return self

    def fit_transform(self, X, y=None):
        """``fit(X).transform(X)``, validating the strings once.

        Parameters
        ----------
        X : array-like of str, shape (n_samples,) or (n_samples, n_columns)
            The input strings.
        y : None
            Ignored.

        Returns
        -------
        X_new : ndarray of float64, shape (n_samples, n_features_out)
            The pooled hidden states.
        """
        columns, names, row_labels = as_columns(X)
        with self._fitted_state(self._fit(columns, names), names), torch_threads(self.n_threads):
            return self._embed(columns, row_labels)

    # --------------------------------------------------------------- transform
    def transform(self, X):
        """Pooled hidden states of each string.

        Parameters
        ----------
        X : array-like of str, shape (n_samples,) or (n_samples, n_columns)
            Same columns as in ``fit``.

        Returns
        -------
        X_new : ndarray of float64 of shape ``(n_samples, n_columns * len(layers_) * hidden_size_)``
            Blocks of ``hidden_size_`` features, ordered by column, then by
            layer (see :meth:`get_feature_names_out`).  With
            ``on_invalid="nan"`` the rows of invalid strings are NaN.

        Raises
        ------
        InvalidInputError
            With ``on_invalid="raise"``, when a string is not valid for its
            domain; the message names every bad row.
        """
        check_is_fitted(self, "layers_")
        self._check_params()
        columns, row_labels = check_fitted_columns(self, X)
        with torch_threads(self.n_threads):
            return self._embed(columns, row_labels)

    @torch.inference_mode()
    def _embed(self, columns, row_labels):
        """Encode ``columns`` with ``layout_`` and pool the hidden states of the valid rows."""
        backbone = self.get_backbone()
        rows, valid = encode(columns, self.layout_, backbone.tokenizer, row_labels=row_labels,
                             max_length=self.max_length, truncation=self.truncation,
                             canonicalize=self.canonicalize_, on_invalid=self.on_invalid,
                             validators=self.domain_validators(), max_positions=backbone.max_positions)
        n_seg = self.layout_.n_features
        width = sum(self._layer_widths())
        out = np.full((len(rows), n_seg * width), np.nan, dtype=np.float64)
        idx = np.flatnonzero(valid)
        if not len(idx):
            return out
        table = None if self.tag_table_ is None else self.tag_table_.to(backbone.device)
        deep = None if self.deep_table_ is None else DeepTable(self.deep_table_.to(backbone.device),
                                                                 self.domain_tag_depth_)
        needs = Needs(pooled_layers=tuple(self.layers_), per_segment=True, pooling=self.pooling_)
        # rows computed before (another fold, another model with the same prefix) come from the prefix store
        source = StateSource(backbone, rows, self.layout_, needs, self.isolate_segments_, int(self.batch_size),
                             self.verbose)
        for i, _, pooled in source.prefixes(idx, (table, table, deep), kv=False, desc="LLMEmbedding"):
            out[i] = pooled.reshape(-1).double().cpu().numpy()
        return out

    # ----------------------------------------------------------- feature names
    def _column_prefixes(self):
        names = self.layout_.feature_names
        if names is not None:
            return [str(c) for c in names]
        doms = [d.lower() for d in self.column_domains_]
        if len(set(doms)) == len(doms):
            return doms
        return [f"{d}{j}" for j, d in enumerate(doms)]

    def get_feature_names_out(self, input_features=None):
        """Names of the output features.

        ``<column>__L<layer>_<pooling>_<k>`` for column, layer and coordinate
        ``k``, e.g. ``smiles__L6_mean_0``.  ``<column>`` is the DataFrame
        column name, else the column's domain in lower case (with the column
        position appended when two columns share a domain).

        Parameters
        ----------
        input_features : array-like of str, optional
            Column names to use instead; must equal ``feature_names_in_``
            when that exists, else have ``n_features_in_`` entries.

        Returns
        -------
        ndarray of str
            One name per output column.
        """
        check_is_fitted(self, "layers_")
        prefixes = self._column_prefixes()
        if input_features is not None:
            input_features = [str(c) for c in input_features]
            fitted = getattr(self, "feature_names_in_", None)
            if fitted is not None and input_features != list(fitted):
                raise ValueError(f"input_features {input_features} differ from feature_names_in_ {list(fitted)}.")
            if len(input_features) != self.n_features_in_:
                raise ValueError(
                    f"input_features has {len(input_features)} names, expected {self.n_features_in_}."
                )
            prefixes = input_features
        widths = self._layer_widths()
        return np.asarray(
            [f"{p}__L{layer}_{self.pooling_}_{k}" for p in prefixes for layer, d in zip(self.layers_, widths)
             for k in range(d)],
            dtype=object,
        )

    def _layer_widths(self):
        """Width of each pooled layer (``hidden_size_`` unless the model changes width)."""
        return [self.hidden_widths_[i] for i in self.layers_]


def _deep_table(tags, blocks, domains, backbone):
    """``deep_table_`` (the deep blocks of the domain tags side by side, zeros for shallow ones; None when none is
    deep) and ``domain_tag_depth_``."""
    kind = None if tags is None else common_kind([blocks[d] for d in domains])
    if kind is None:
        return {"deep_table_": None, "domain_tag_depth_": "shallow"}
    table = torch.cat([zero_blocks(backbone, tags[d].shape[0], kind) if blocks[d] is None else blocks[d].blocks
                       for d in domains], dim=1)
    return {"deep_table_": table, "domain_tag_depth_": kind}
