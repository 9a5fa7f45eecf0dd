"""The frozen backbone's own features as a scikit-learn transformer.

:class:`LLMEmbedding` runs strings through the frozen causal LLM once and
pools the hidden states of a few layers over each string's tokens.  With a
standard scaler and a ridge on top it is the cheap, strong baseline to put
next to a Tag-LLM model (no gradient step, one forward pass per string), and
a featuriser for any scikit-learn model::

    make_pipeline(LLMEmbedding(), StandardScaler(), RidgeCV())
"""

from __future__ import annotations

import math
import numbers
import os
import re
import warnings

import numpy as np
import torch
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from . import _engine
from ._base import BackboneMixin, _length_batches, _progress
from ._data import as_columns, encode_rows, resolve_domains, tokenize_columns, validate_columns
from ._validation import check_bool, check_choice, check_int
from .backbone import resolve_device, resolve_dtype
from .tags import TagSet

__all__ = ["LLMEmbedding", "resolve_layers"]

_LAYER_RULE = re.compile(r"^(every|spread)(\d+)$")


def _check_layers_spec(layers):
    """Syntax of the ``layers`` parameter (the depth is checked later)."""
    if isinstance(layers, str):
        if layers in ("last", "all") or _LAYER_RULE.match(layers):
            m = _LAYER_RULE.match(layers)
            if m and int(m.group(2)) < 1:
                raise ValueError(f"layers={layers!r}: the number in {m.group(1)}K must be >= 1.")
            return
    elif isinstance(layers, numbers.Integral) and not isinstance(layers, (bool, np.bool_)):
        return
    elif isinstance(layers, (list, tuple, np.ndarray)) and len(layers) > 0 and all(
        isinstance(i, numbers.Integral) and not isinstance(i, (bool, np.bool_)) for i in layers
    ):
        return
    raise ValueError(
        "layers must be an int, a non-empty list of ints, 'last', 'all', 'everyK' or 'spreadK' "
        f"(K a positive integer, e.g. 'spread5'), got {layers!r}."
    )


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

    Returns
    -------
    list of int, each in ``0 .. n_layers``.
    """
    _check_layers_spec(layers)
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
    idx = [int(layers)] if isinstance(layers, numbers.Integral) else [int(i) for i in layers]
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


def _pool(hidden, batch, n_segments, pooling):
    """Pool ``[B, L, d]`` hidden states over each segment's data tokens.

    Data tokens are the valid positions with no tag vector (``slot < 0``);
    segment ``j`` (0-based column) has ``seg == j + 1`` (see
    :func:`sktag._data.encode_rows`).  Returns ``[B, n_segments, n_layers, d]``
    in float32.
    """
    seg_ids = torch.arange(1, n_segments + 1, device=batch.seg.device)
    data = batch.valid & (batch.slot < 0)
    member = data[:, None, :] & (batch.seg[:, None, :] == seg_ids[None, :, None])  # [B, S, L]
    if pooling == "mean":
        w = member.float()
        w = w / w.sum(dim=-1, keepdim=True).clamp_min(1.0)
        pooled = [torch.einsum("bsl,bld->bsd", w, h.float()) for h in hidden]
    else:  # "last": the segment's last data token
        L = member.shape[-1]
        pos = torch.arange(L, device=member.device).expand_as(member)
        last = torch.where(member, pos, -1).amax(dim=-1).clamp_min(0)  # [B, S]
        pooled = []
        for h in hidden:
            d = h.shape[-1]
            pooled.append(h.float().gather(1, last[..., None].expand(-1, -1, d)))
    return torch.stack(pooled, dim=2)


class LLMEmbedding(TransformerMixin, BackboneMixin, BaseEstimator):
    """Pooled hidden states of a frozen causal LLM as features.

    Each string is tokenised and run through the frozen backbone once; the
    hidden states of the chosen ``layers`` are pooled over the string's
    tokens (the mean, or the last token).  A DataFrame / 2-D array gives one
    segment per column, laid out as in :class:`~sktag.TagRegressor`
    (``[<Dom_1> col_1 <Dom_2> col_2 ...]``, without the function tag), and
    one block of features per column and layer.  Nothing is trained: ``fit``
    checks the parameters and records the input layout.

    The default reproduces the frozen-feature baseline of issue 13: the mean
    over tokens of layers 6, 12, 18, 24 and 30 of SmolLM2-135M, concatenated
    (5 x 576 = 2880 features per column).  Put a
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
    layers : int, list of int or str, default="spread5"
        Which hidden states, as indices into transformers' ``hidden_states``
        (0 = input embeddings, ``i`` = output of block ``i``, the last =
        final hidden state after the final norm; negative ints count from the
        end), or a rule: ``"last"``, ``"all"`` (every block), ``"everyK"``
        (blocks K, 2K, ...), ``"spreadK"`` (K blocks spread evenly over the
        depth, ending at the last).  ``"spread5"`` adapts to any depth and is
        6, 12, 18, 24, 30 on SmolLM2-135M: the fixed, untuned spread that
        gave the best frozen features in issue 13 (test RMSE 0.95 on an ESOL
        scaffold split, against 1.06 for the final layer alone).  See
        :func:`resolve_layers`; the resolved list is ``layers_``.
    domain_tags : TagSet, str, path-like or None, default=None
        ``None``: the segments are not tagged.  A :class:`~sktag.TagSet` or
        the path of a saved one: each segment is preceded by the vectors of
        its domain's tag (which must exist in the set and belong to this
        backbone).  ``"text"``: preceded by the token embeddings of the words
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
        Of the backbone; ``"auto"`` is bfloat16 on CUDA, float32 on CPU.
        Pooling is done in float32 either way.
    trust_remote_code : bool, default=False
    verbose : int, default=0
        ``> 0`` shows a tqdm progress bar over the batches of ``transform``.

    Attributes
    ----------
    layers_ : list of int
        The resolved hidden-state indices.
    n_layers_ : int
        Number of blocks of the backbone.
    hidden_size_ : int
    n_features_in_ : int
        Number of input columns (1 for a 1-D input).
    feature_names_in_ : ndarray of str
        Column names of a DataFrame ``X`` in ``fit``.
    column_domains_ : list of str
        Domain of each column.
    domains_ : list of str
        The distinct domains, in order of first appearance.
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
    >>> pipe = make_pipeline(LLMEmbedding(), StandardScaler(), RidgeCV())  # doctest: +SKIP
    >>> pipe.fit(smiles_train, y_train).score(smiles_test, y_test)        # doctest: +SKIP
    """

    def __init__(
        self,
        model="smollm2-135m",
        domains="SMILES",
        *,
        pooling="mean",
        layers="spread5",
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
        verbose=0,
    ):
        self.model = model
        self.domains = domains
        self.pooling = pooling
        self.layers = layers
        self.domain_tags = domain_tags
        self.isolate_segments = isolate_segments
        self.max_length = max_length
        self.truncation = truncation
        self.canonicalize = canonicalize
        self.on_invalid = on_invalid
        self.batch_size = batch_size
        self.device = device
        self.dtype = dtype
        self.trust_remote_code = trust_remote_code
        self.verbose = verbose

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.string = True
        tags.input_tags.one_d_array = True
        tags.input_tags.two_d_array = True
        tags.requires_fit = True  # fit records the column layout and the layers
        tags.non_deterministic = False
        return tags

    # ------------------------------------------------------------------ params
    def _validate_params(self):
        check_choice("pooling", self.pooling, ("mean", "last"))
        _check_layers_spec(self.layers)
        check_int("max_length", self.max_length, 1)
        check_int("batch_size", self.batch_size, 1)
        check_int("verbose", self.verbose, 0)
        check_choice("truncation", self.truncation, ("warn", "raise"))
        check_choice("on_invalid", self.on_invalid, ("raise", "nan"))
        for name in ("isolate_segments", "canonicalize", "trust_remote_code"):
            check_bool(name, getattr(self, name))
        dt = self.domain_tags
        if not (dt is None or isinstance(dt, (TagSet, str, os.PathLike))):
            raise ValueError('domain_tags must be None, "text", a TagSet or the path of a saved TagSet, '
                             f"got {type(dt).__name__}.")
        resolve_dtype(self.dtype, resolve_device(self.device))

    def _load_tags(self, backbone):
        """Stacked tag table (float32, CPU) and vectors per domain, or (None, zeros)."""
        spec = self.domain_tags
        if spec is None:
            return None, [0] * len(self.domains_)
        if isinstance(spec, str) and spec == "text":
            vectors = []
            for dom in self.domains_:
                ids = backbone.tokenizer(f"{dom}: ", add_special_tokens=False)["input_ids"]
                with torch.no_grad():
                    vectors.append(backbone.embeddings(torch.as_tensor(ids, device=backbone.device)).float().cpu())
        else:
            ts = spec if isinstance(spec, TagSet) else TagSet.load(spec, backbone=backbone)
            ts.check_backbone(backbone)
            missing = [d for d in self.domains_ if d not in ts]
            if missing:
                raise ValueError(f"domain_tags has no tag for the domains {missing}; it holds {list(ts)}.")
            vectors = [ts[d].detach().float().cpu() for d in self.domains_]
        return torch.cat(vectors, dim=0), [int(v.shape[0]) for v in vectors]

    # ------------------------------------------------------------------ fitting
    def _fit(self, split):
        """Validate parameters and ``split = as_columns(X)``; record the layout.

        Returns the validated columns and the mask of valid rows, so that
        ``fit_transform`` does not validate twice.
        """
        self._validate_params()
        # a refit may name another model: forget what the last fit recorded
        for key in ("_backbone", "backbone_fingerprint_", "backbone_identity_"):
            self.__dict__.pop(key, None)
        backbone = self._get_backbone()
        columns, names, row_labels = split
        if len(columns[0]) == 0:
            raise ValueError("X has 0 samples; at least one is required.")
        column_domains = resolve_domains(self.domains, len(columns), names)
        cfg = backbone.config.get_text_config(decoder=True)
        n_layers = int(cfg.num_hidden_layers)
        layers = resolve_layers(self.layers, n_layers)
        cols, valid = validate_columns(columns, column_domains, names, row_labels,
                                       canonicalize=self.canonicalize, errors=self.on_invalid)

        self.n_features_in_ = len(columns)
        if names is not None:
            self.feature_names_in_ = np.asarray(names, dtype=object)
        else:
            self.__dict__.pop("feature_names_in_", None)
        self.column_domains_ = column_domains
        self.domains_ = list(dict.fromkeys(column_domains))
        self.layers_ = layers
        self.n_layers_ = n_layers
        self.hidden_size_ = backbone.hidden_size
        self.tag_table_, self.tag_lengths_ = self._load_tags(backbone)
        self.backbone_identity_ = backbone.identity
        self.backbone_fingerprint_ = backbone.fingerprint
        return cols, valid

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
        """
        self._fit(as_columns(X))
        return self

    def fit_transform(self, X, y=None):
        """``fit(X).transform(X)``, validating the strings once.

        Parameters
        ----------
        X : array-like of str, shape (n_samples,) or (n_samples, n_columns)
        y : None
            Ignored.

        Returns
        -------
        X_new : ndarray of float64, shape (n_samples, n_features_out)
        """
        cols, valid = self._fit(as_columns(X))
        return self._embed(cols, valid)

    # --------------------------------------------------------------- transform
    def _check_columns(self, columns, names):
        if len(columns) != self.n_features_in_:
            raise ValueError(
                f"X has {len(columns)} columns, but this LLMEmbedding was fitted with {self.n_features_in_}."
            )
        fitted = getattr(self, "feature_names_in_", None)
        if fitted is not None and names is not None and list(fitted) != names:
            raise ValueError(
                f"The column names of X {names} differ from those seen in fit {list(fitted)}; pass the "
                "same columns in the same order."
            )
        if fitted is not None and names is None:
            warnings.warn(
                "X has no column names, but this LLMEmbedding was fitted with a DataFrame; columns are "
                "matched by position.",
                UserWarning,
                stacklevel=3,
            )

    def transform(self, X):
        """Pooled hidden states of each string.

        Parameters
        ----------
        X : array-like of str, shape (n_samples,) or (n_samples, n_columns)
            Same columns as in ``fit``.

        Returns
        -------
        X_new : ndarray of float64, shape (n_samples, n_columns * len(layers_) * hidden_size_)
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
        self._validate_params()
        columns, names, row_labels = as_columns(X)
        self._check_columns(columns, names)
        if len(columns[0]) == 0:
            raise ValueError("X has 0 samples; at least one is required.")
        cols, valid = validate_columns(columns, self.column_domains_, names, row_labels,
                                       canonicalize=self.canonicalize, errors=self.on_invalid)
        return self._embed(cols, valid)

    @torch.inference_mode()
    def _embed(self, cols, valid):
        backbone = self._get_backbone()
        n = len(cols[0])
        n_seg = len(cols)
        out = np.full((n, n_seg * len(self.layers_) * self.hidden_size_), np.nan, dtype=np.float64)
        idx = np.flatnonzero(valid)
        if not len(idx):
            return out
        # every row is tokenised (as by the estimators), so that messages name
        # rows by their position in X; only valid rows are run
        tokenized = tokenize_columns(backbone.tokenizer, cols, self.max_length, self.truncation)
        tag_index = {d: i for i, d in enumerate(self.domains_)}
        offsets = np.concatenate([[0], np.cumsum(self.tag_lengths_)]).astype(np.int64)
        rows = encode_rows(tokenized, [tag_index[d] for d in self.column_domains_], offsets, self.tag_lengths_)
        lengths = np.array([len(r) for r in rows])
        table = None if self.tag_table_ is None else self.tag_table_.to(backbone.device)
        batches = _length_batches(idx, lengths, int(self.batch_size))
        for b in _progress(batches, self.verbose > 0, desc="LLMEmbedding", unit="batch"):
            batch = _engine.collate([rows[i] for i in b], device=backbone.device)
            hs = _engine.hidden_states(backbone, batch, table, self.layers_, self.isolate_segments)
            pooled = _pool(hs, batch, n_seg, self.pooling)  # [B, S, n_layers, d]
            out[b] = pooled.reshape(len(b), -1).double().cpu().numpy()
        return out

    # ----------------------------------------------------------- feature names
    def _column_prefixes(self):
        names = getattr(self, "feature_names_in_", None)
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
        d = self.hidden_size_
        return np.asarray(
            [f"{p}__L{layer}_{self.pooling}_{k}" for p in prefixes for layer in self.layers_ for k in range(d)],
            dtype=object,
        )
