"""Encoding: validated string columns → token rows with tag slots.

The second step of the data path.  A :class:`TagLayout`, built once in
``fit`` (or from a saved TagSet), says which domain each column has and
where every tag's vectors sit in the *tag table* (all tags stacked: domain
tags first, in order of first appearance, then the function tag).  One call,
:func:`encode`, validates and tokenises ``X`` and lays each row out as
``[<Dom_1> seg_1 <Dom_2> seg_2 ...]`` — everything before the function tag,
which the engine appends.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from ..exceptions import TruncationWarning
from .inputs import MAX_REPORT, check_strings

#: Segment id of the function tag (it attends to every segment).
FUNCTION_SEGMENT = -1


@dataclass
class EncodedRow:
    """One row of input before the function tag.

    ``ids`` are token ids (0 at tag positions), ``slot`` the row of the tag
    table whose vector goes at each position (-1 for a token), ``seg`` the
    segment (column) each position belongs to, counted from 1.
    """

    ids: np.ndarray
    slot: np.ndarray
    seg: np.ndarray

    def __len__(self):
        return len(self.ids)


def domain_key(name) -> str:
    """Domains compare case-insensitively, as domain validation does."""
    return str(name).strip().lower()


@dataclass(frozen=True)
class TagLayout:
    """Where every tag sits in the tag table, and which column uses which.

    Parameters
    ----------
    column_domains : tuple of str
        Domain of each input column.
    tag_lengths : tuple of int
        Length of each distinct domain's tag, in the order of :attr:`domains`.
    function_length : int
        Length of the function tag (0: no function tag, as in pretraining).
    feature_names : tuple or None
        Column names of a DataFrame ``X``.
    """

    column_domains: tuple
    tag_lengths: tuple
    function_length: int
    feature_names: tuple | None = None

    @classmethod
    def build(cls, column_domains, function_length, feature_names=None, domain_lengths=None):
        """Layout with distinct domains in order of first appearance (case-insensitive).

        ``domain_lengths`` maps a domain (any case) to its tag length; domains
        not in it get ``function_length``.
        """
        lengths = {domain_key(d): n for d, n in (domain_lengths or {}).items()}
        firsts = {}
        for d in column_domains:
            firsts.setdefault(domain_key(d), d)
        doms = list(firsts.values())
        return cls(
            column_domains=tuple(firsts[domain_key(d)] for d in column_domains),
            tag_lengths=tuple(int(lengths.get(domain_key(d), function_length)) for d in doms),
            function_length=int(function_length),
            feature_names=None if feature_names is None else tuple(feature_names),
        )

    @property
    def domains(self) -> list:
        """Distinct domains, in the order of their tags in the table."""
        return list(dict.fromkeys(self.column_domains))

    @property
    def n_features(self) -> int:
        return len(self.column_domains)

    @property
    def offsets(self) -> np.ndarray:
        """Start of each domain tag in the table, then of the function tag, then the end."""
        return np.concatenate([[0], np.cumsum([*self.tag_lengths, self.function_length])]).astype(np.int64)

    def domain_slots(self, domain) -> np.ndarray:
        i = self.domains.index(domain)
        return np.arange(self.offsets[i], self.offsets[i + 1])

    @property
    def tag_positions(self) -> int:
        """Positions the tags take in one row: each column's domain tag and the function tag."""
        lengths = dict(zip(self.domains, self.tag_lengths))
        return int(sum(lengths[d] for d in self.column_domains) + self.function_length)

    @property
    def function_slots(self) -> np.ndarray:
        o = self.offsets
        return np.arange(o[-2], o[-1])

    def to_dict(self) -> dict:
        """JSON-serialisable form, stored with a head in a TagSet."""
        return {
            "column_domains": list(self.column_domains),
            "tag_lengths": list(self.tag_lengths),
            "function_length": self.function_length,
            "feature_names": None if self.feature_names is None else [str(n) for n in self.feature_names],
        }

    @classmethod
    def from_dict(cls, d) -> "TagLayout":
        names = d.get("feature_names")
        return cls(tuple(d["column_domains"]), tuple(int(n) for n in d["tag_lengths"]),
                   int(d["function_length"]), None if names is None else tuple(names))


def token_limit(max_length, n_columns, tag_positions, max_positions):
    """Tokens one string may keep: ``max_length``, or fewer where a row would not fit the model.

    A row holds ``tag_positions`` tag vectors and ``n_columns`` strings, and
    must fit in the ``max_positions`` positions of the model (None: no
    limit).  Returns ``(limit, why)``, ``why`` saying what set the limit (for
    messages).  Raises ``ValueError`` naming the limit when the tags alone
    leave no room for one token per string.
    """
    if max_positions is None or tag_positions + n_columns * max_length <= max_positions:
        return int(max_length), f"max_length={max_length} tokens"
    room = int(max_positions) - int(tag_positions)
    if room < n_columns:
        raise ValueError(
            f"The tags take {tag_positions} positions of every row, but this model takes at most "
            f"{max_positions} positions (its max_position_embeddings), which leaves no room for "
            f"{'the string' if n_columns == 1 else f'the {n_columns} strings'}. Use a shorter tag_length "
            "(or shorter domain tags)."
        )
    limit = room // n_columns
    shared = f", shared by {n_columns} strings" if n_columns > 1 else ""
    return limit, (f"{limit} tokens (the model takes {max_positions} positions and the tags take "
                   f"{tag_positions}{shared})")


def tokenize(tokenizer, columns, max_length, truncation, rows=None, why=None):
    """Token ids of every cell (no special tokens), truncated to ``max_length``.

    ``rows`` (a boolean mask) limits the length check and warning to those
    rows; ``why`` says what set ``max_length`` (see :func:`token_limit`).
    Raises (``truncation="raise"``) or warns once, counting rows.
    """
    n = len(columns[0])
    check = np.ones(n, dtype=bool) if rows is None else rows
    tokenized, rows_long = [], np.zeros(n, dtype=bool)
    longest = 0
    for col in columns:
        ids = tokenizer([c if isinstance(c, str) else "" for c in col], add_special_tokens=False)["input_ids"]
        lengths = np.fromiter((len(t) for t in ids), dtype=np.int64, count=len(ids))
        too_long = (lengths > max_length) & check
        if too_long.any():
            rows_long |= too_long
            longest = max(longest, int(lengths[too_long].max()))
            ids = [t[:max_length] for t in ids]
        tokenized.append(ids)
    if rows_long.any():
        bad = np.flatnonzero(rows_long)
        why = why or f"max_length={max_length} tokens"
        if truncation == "raise":
            advice = "Raise max_length" if why.startswith("max_length") else "Shorten the strings or the tags"
            raise ValueError(
                f"{len(bad)} rows have strings longer than {why} "
                f"(rows {bad[:MAX_REPORT].tolist()}{' ...' if len(bad) > MAX_REPORT else ''}; "
                f"longest {longest} tokens). {advice} or set truncation='warn'."
            )
        warnings.warn(
            f"{len(bad)} of {n} rows had strings longer than {why} and were truncated.",
            TruncationWarning,
            stacklevel=4,
        )
    return tokenized


def layout_rows(tokenized, layout, valid=None, suffix=None):
    """:class:`EncodedRow` per row (``None`` where ``valid`` is False).

    ``suffix`` optionally maps a row index to extra token ids appended to the
    last segment (the pretrainer's end-of-sequence token).
    """
    n = len(tokenized[0])
    slots = [layout.domain_slots(d) for d in layout.column_domains]
    rows = []
    for i in range(n):
        if valid is not None and not valid[i]:
            rows.append(None)
            continue
        ids, slot, seg = [], [], []
        for j, s in enumerate(slots):
            toks = list(tokenized[j][i])
            if suffix is not None and j == len(slots) - 1:
                toks += suffix(i)
            toks = np.asarray(toks, dtype=np.int64)
            ids += [np.zeros(len(s), dtype=np.int64), toks]
            slot += [s, np.full(len(toks), -1, dtype=np.int64)]
            seg.append(np.full(len(s) + len(toks), j + 1, dtype=np.int64))
        rows.append(EncodedRow(np.concatenate(ids), np.concatenate(slot), np.concatenate(seg)))
    return rows


def validate(columns, layout, *, row_labels=None, canonicalize=True, on_invalid="raise", validators=None):
    """Domain validation and normalisation of each column.

    Returns ``(columns, valid)``: normalised strings and the mask of rows
    whose every cell is present and valid.  With ``on_invalid="raise"`` any
    missing or invalid cell raises, naming the rows.
    """
    from ..domains import validate_strings

    names = layout.feature_names
    ok = np.ones(len(columns[0]), dtype=bool)
    out = []
    for j, (col, dom) in enumerate(zip(columns, layout.column_domains)):
        colname = names[j] if names is not None else (j if len(columns) > 1 else None)
        col, bad = check_strings(col, row_labels, colname, on_invalid=on_invalid)
        norm, valid = validate_strings(
            col, dom, row_labels=row_labels, column=colname, canonicalize=canonicalize,
            on_invalid=on_invalid, validator=(validators or {}).get(domain_key(dom)),
        )
        out.append(list(norm))
        ok &= np.asarray(valid, dtype=bool) & ~bad
    return out, ok


def encode(columns, layout, tokenizer, *, row_labels=None, max_length=512, truncation="warn",
           canonicalize=True, on_invalid="raise", validators=None, max_positions=None, return_strings=False):
    """Validate, tokenise and lay out ``columns`` (from :func:`sktag._forward.inputs.as_columns`).

    ``max_positions`` is the model's position limit
    (:attr:`sktag.backbone.Backbone.max_positions`): strings are truncated
    so that a row with its tags fits (:func:`token_limit`).  With
    ``return_strings`` the validated strings (canonical SMILES where
    ``canonicalize``), one list per column, come third.

    Returns
    -------
    rows : list of EncodedRow or None
        One per input row, in input order; ``None`` for invalid rows.
    valid : ndarray of bool
    strings : list of list of str
        Only with ``return_strings``.
    """
    if len(columns) != layout.n_features:
        raise ValueError(f"X has {len(columns)} columns, but the layout has {layout.n_features}.")
    limit, why = token_limit(max_length, layout.n_features, layout.tag_positions, max_positions)
    cols, valid = validate(columns, layout, row_labels=row_labels, canonicalize=canonicalize,
                           on_invalid=on_invalid, validators=validators)
    tokenized = tokenize(tokenizer, cols, limit, truncation, rows=valid, why=why)
    rows = layout_rows(tokenized, layout, valid)
    return (rows, valid, cols) if return_strings else (rows, valid)
