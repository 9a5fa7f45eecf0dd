"""Validation and normalisation of domain strings (SMILES, protein sequences).

Every input column of a Tag-LLM estimator belongs to a *domain*.  Before a
string is tokenised it is checked (and optionally normalised) by the domain's
*validator*, so that a typo in a SMILES string produces a clear error naming
the row instead of a silently wrong prediction.

Built-in domains (names are case-insensitive):

``"SMILES"``
    Parsed with RDKit (leading/trailing whitespace ignored).  Invalid when
    RDKit cannot parse or sanitize it, or when the molecule has no atoms.
    With ``canonicalize=True`` the string is replaced by RDKit's canonical
    isomeric SMILES (:func:`rdkit.Chem.MolToSmiles`).  RDKit's log output is
    silenced while parsing; the reason RDKit logs is used in the error
    message instead.
``"Protein"``
    One-letter amino-acid sequence.  Surrounding whitespace is stripped and
    the sequence is upper-cased.  Allowed alphabet (:data:`PROTEIN_ALPHABET`):
    the 20 standard amino acids ``ACDEFGHIKLMNPQRSTVWY`` plus ``U``
    (selenocysteine), ``O`` (pyrrolysine), ``X`` (unknown), ``B`` (D or N),
    ``Z`` (E or Q) and ``J`` (L or I).  Anything else (digits, ``*``, ``-``,
    gaps, whitespace inside the sequence, ...) is invalid and the offending
    characters are named.  With ``canonicalize=False`` the stripped input is
    returned as given (lower case kept) after validation.

Any other domain name is plain text: the strings are returned unchanged and
all are valid.  Register further validators with :func:`register_domain`.
"""

from __future__ import annotations

import numbers
import threading

import numpy as np

from .exceptions import InvalidInputError

__all__ = [
    "InvalidInputError",
    "PROTEIN_ALPHABET",
    "register_domain",
    "known_domains",
    "validate_strings",
]

#: Characters accepted in a protein sequence (after upper-casing).
PROTEIN_ALPHABET = frozenset("ACDEFGHIKLMNPQRSTVWY" + "UOXBZJ")

_MAX_SHOWN_CHARS = 60


# --------------------------------------------------------------------- validators
def _validate_smiles(value, canonicalize):
    """Validator of the built-in ``"SMILES"`` domain."""
    from ._runtime.rdkit import parse_smiles  # RDKit imported only when needed

    mol, reason = parse_smiles(value)
    if mol is None:
        raise ValueError(reason)
    if canonicalize:
        from rdkit import Chem

        return Chem.MolToSmiles(mol)
    return value.strip()


def _validate_protein(value, canonicalize):
    """Validator of the built-in ``"Protein"`` domain."""
    text = value.strip()
    if not text:
        raise ValueError("empty sequence")
    seq = text.upper()
    bad = sorted(set(seq) - PROTEIN_ALPHABET)
    if bad:
        shown = ", ".join(repr(c) for c in bad)
        raise ValueError(
            f"invalid character{'s' if len(bad) > 1 else ''} {shown} (allowed: one-letter "
            "codes ACDEFGHIKLMNPQRSTVWY and UOXBZJ)"
        )
    return seq if canonicalize else text


# name.lower() -> (display name, validator)
_REGISTRY = {
    "smiles": ("SMILES", _validate_smiles),
    "protein": ("Protein", _validate_protein),
}
_LOCK = threading.Lock()


def register_domain(name, validator, *, overwrite=False):
    """Register a validator for a domain.

    Parameters
    ----------
    name : str
        Domain name.  Look-up is case-insensitive, so ``"DNA"`` and ``"dna"``
        are the same domain.
    validator : callable
        ``validator(value: str, canonicalize: bool) -> str``.  Returns the
        normalised string, or raises :class:`ValueError` whose message is the
        reason the string is invalid.  Other exceptions propagate unchanged.
    overwrite : bool, default=False
        Replace an existing validator of the same name (built-ins included).
        Otherwise registering an existing name raises ``ValueError``.

    Examples
    --------
    >>> def dna(s, canonicalize):
    ...     s = s.strip().upper()
    ...     if set(s) - set("ACGT"):
    ...         raise ValueError("not ACGT")
    ...     return s
    >>> register_domain("DNA", dna, overwrite=True)
    >>> validate_strings(["acgt"], "dna")[0]
    ['ACGT']
    """
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"domain name must be a non-empty string, got {name!r}")
    if not callable(validator):
        raise TypeError(f"validator must be callable, got {type(validator).__name__}")
    key = name.strip().lower()
    with _LOCK:
        if key in _REGISTRY and not overwrite:
            raise ValueError(
                f"domain {name!r} is already registered; pass overwrite=True to replace it"
            )
        _REGISTRY[key] = (name.strip(), validator)


def known_domains():
    """Names of the domains that have a validator.

    Returns
    -------
    names : list of str
        Registered domain names, sorted case-insensitively.  Any other name is
        treated as plain text by :func:`validate_strings`.
    """
    with _LOCK:
        return sorted((display for display, _ in _REGISTRY.values()), key=str.lower)


def custom_validator(domain):
    """The validator registered for ``domain`` unless it is a built-in one (else None).

    Estimators carry these with them when pickled (to joblib workers, to
    disk), so that a domain registered in one process is validated the same
    way where the estimator is used.
    """
    entry = _lookup(domain)
    if entry is None or entry[1] in (_validate_smiles, _validate_protein):
        return None
    return entry[1]


def _lookup(domain):
    if not isinstance(domain, str):
        return None
    with _LOCK:
        return _REGISTRY.get(domain.strip().lower())


def _shorten(text, limit=_MAX_SHOWN_CHARS):
    if not isinstance(text, str):
        return repr(text)
    if len(text) > limit:
        return repr(text[: limit - 3] + "...") + f" ({len(text)} chars)"
    return repr(text)


def _plain_label(label):
    if isinstance(label, np.generic):
        label = label.item()
    return label


def format_invalid(
    bad, values, domain_name, *, row_labels=None, column=None, max_report=10
):
    """Build the message of an :class:`InvalidInputError`.

    Parameters
    ----------
    bad : list of (int, str)
        ``(position, reason)`` of every invalid row.
    values : sequence
        All input values (to show the offending strings).
    domain_name : str
        Domain shown in the message, e.g. ``"SMILES"``.
    row_labels : sequence, optional
        Label of every row (e.g. a pandas index), same length as ``values``.
    column : object, optional
        Column name shown in the message.
    max_report : int, default=10
        Number of rows listed; the rest are counted.

    Returns
    -------
    message : str
        The error message.
    """
    n = len(bad)
    head = f"{n} invalid {domain_name} string{'s' if n != 1 else ''}"
    if column is not None:
        head += f" in column {_plain_label(column)!r}"
    lines = []
    for pos, reason in bad[: max(int(max_report), 0)]:
        where = f"row {pos}"
        if row_labels is not None:
            where += f" (index {_plain_label(row_labels[pos])!r})"
        lines.append(f"  {where}: {_shorten(values[pos])} ({reason})")
    if n > len(lines):
        lines.append(f"  ... and {n - len(lines)} more")
    return head + ":\n" + "\n".join(lines)


def _validate_each(values, validator, canonicalize, display):
    """Run ``validator`` on every value: ``(normalised, valid_mask, [(row, reason), ...])``."""
    normalised = list(values)
    mask = np.ones(len(values), dtype=bool)
    bad = []
    for i, v in enumerate(values):
        if not isinstance(v, str):
            missing = v is None or (isinstance(v, float) and v != v)
            bad.append((i, "missing value" if missing else f"not a string (got {type(v).__name__})"))
            mask[i] = False
            continue
        try:
            out = validator(v, canonicalize)
        except ValueError as exc:
            bad.append((i, str(exc) or "invalid"))
            mask[i] = False
            continue
        if not isinstance(out, str):
            raise TypeError(f"validator of domain {display!r} returned {type(out).__name__}, expected str")
        normalised[i] = out
    return normalised, mask, bad


def validate_strings(
    values,
    domain,
    *,
    row_labels=None,
    column=None,
    canonicalize=True,
    on_invalid="raise",
    max_report=10,
    validator=None,
):
    """Validate and normalise strings of one domain.

    Parameters
    ----------
    values : sequence of str
        The strings, e.g. one column of the input.  Non-string entries are
        reported as invalid.
    domain : str
        Domain name, case-insensitive (``"SMILES"``, ``"Protein"`` or a name
        given to :func:`register_domain`).  Unknown names are plain text: all
        values are returned unchanged and valid.
    row_labels : sequence, optional
        Label of each row (e.g. ``df.index``), used in error messages.
    column : object, optional
        Column name used in error messages.
    canonicalize : bool, default=True
        Passed to the validator: return the canonical form (canonical SMILES,
        upper-case protein) instead of the stripped input.
    on_invalid : {"raise", "nan"}, default="raise"
        ``"raise"``: raise :class:`InvalidInputError` listing the invalid rows.
        ``"nan"``: do not raise; invalid rows get ``valid_mask[i] = False``
        and keep their original value.
    max_report : int, default=10
        At most this many invalid rows are listed in the error message, the
        rest are counted ("... and N more").
    validator : callable, optional
        Use this validator instead of the registered one (how a fitted
        estimator applies the validator it was fitted with, in any process).

    Returns
    -------
    normalised : list of str
        One entry per input value, in input order.
    valid_mask : ndarray of bool, shape (n,)
        ``True`` where the value is valid.

    Raises
    ------
    InvalidInputError
        With ``on_invalid="raise"`` when any value is invalid.

    Examples
    --------
    >>> validate_strings(["OCC", "c1ccccc1"], "smiles")[0]
    ['CCO', 'c1ccccc1']
    >>> out, ok = validate_strings(["CCO", "C1CC"], "SMILES", on_invalid="nan")
    >>> ok.tolist()
    [True, False]
    """
    if on_invalid not in ("raise", "nan"):
        raise ValueError(f"on_invalid must be 'raise' or 'nan', got {on_invalid!r}")
    if not isinstance(max_report, numbers.Integral) or isinstance(max_report, bool):
        raise TypeError(f"max_report must be an int, got {max_report!r}")
    if isinstance(values, str):
        raise TypeError("values must be a sequence of strings, not a single string")
    values = list(values)
    if row_labels is not None:
        row_labels = list(row_labels)
        if len(row_labels) != len(values):
            raise ValueError(
                f"row_labels has {len(row_labels)} entries but values has {len(values)}"
            )
    entry = _lookup(domain)
    n = len(values)
    if validator is not None:
        entry = (entry[0] if entry is not None else str(domain), validator)
    if entry is None:  # plain text
        return list(values), np.ones(n, dtype=bool)
    display, validator = entry

    if validator is _validate_smiles:
        from ._runtime.rdkit import rdkit_quiet, require_rdkit

        require_rdkit(f"The {display!r} domain (SMILES validation)",
                      "; or give these columns a plain-text domain such as 'Text'.")
        with rdkit_quiet():
            normalised, mask, bad = _validate_each(values, validator, canonicalize, display)
    else:
        normalised, mask, bad = _validate_each(values, validator, canonicalize, display)

    if bad and on_invalid == "raise":
        msg = format_invalid(
            bad,
            values,
            display,
            row_labels=row_labels,
            column=column,
            max_report=max_report,
        )
        raise InvalidInputError(msg, rows=[p for p, _ in bad], reasons=[r for _, r in bad])
    return normalised, mask
