"""Shared RDKit helpers: quiet parsing of SMILES with a readable failure reason.

RDKit reports *why* a SMILES string is rejected only through its C++ log
(``rdApp.error``), which by default is printed to stderr.  The helpers here
block that output for the duration of the call (restoring the previous log
state afterwards) and capture the messages so that the reason can be put into
an exception message instead.

RDKit is imported lazily, on the first call that needs it, so that
``import sktag`` and every non-SMILES code path work without it;
:func:`require_rdkit` raises an :class:`ImportError` that says what needed
it and how to install it.
"""

from __future__ import annotations

import contextlib
import importlib
import re

__all__ = ["rdkit_quiet", "parse_smiles", "require_rdkit", "RDKitMissingError"]


class RDKitMissingError(ImportError):
    """RDKit is needed for a SMILES feature but is not installed."""


def require_rdkit(what="This feature", hint=""):
    """Import and return the ``rdkit`` package, or raise a clear ImportError.

    Parameters
    ----------
    what : str
        What needs RDKit, for the message (e.g. ``"The 'SMILES' domain"``).
    hint : str
        Appended to the message (an alternative that needs no RDKit).
    """
    try:
        return importlib.import_module("rdkit")
    except ImportError as exc:
        raise RDKitMissingError(
            f"{what} needs RDKit, which could not be imported ({exc}). "
            f"Install it with: python -m pip install rdkit{hint}",
            name="rdkit",
        ) from exc


def _chem():
    require_rdkit("SMILES parsing")
    from rdkit import Chem, rdBase

    return Chem, rdBase


_TIMESTAMP = re.compile(r"^\[\d\d:\d\d:\d\d\]\s?")
_POSITION = re.compile(r"check for mistakes around position (\d+)")


@contextlib.contextmanager
def rdkit_quiet():
    """Context manager that silences all RDKit logging (``rdApp.*``).

    The previous state of every RDKit log channel is restored on exit, also
    when an exception is raised.  Nothing is printed to stdout / stderr and
    nothing reaches the Python ``logging`` module while the block runs.

    Examples
    --------
    >>> from rdkit import Chem
    >>> with rdkit_quiet():
    ...     mol = Chem.MolFromSmiles("C1CC")  # prints nothing
    >>> mol is None
    True
    """
    _, rdBase = _chem()
    blocker = rdBase.BlockLogs()
    try:
        yield
    finally:
        del blocker


def _reason_from_log(text):
    """Turn the text RDKit logged for a failed parse into a short reason."""
    reasons = []
    position = None
    for raw in str(text).splitlines():
        line = " ".join(_TIMESTAMP.sub("", raw).split())
        if not line:
            continue
        m = _POSITION.search(line)
        if m:
            position = int(m.group(1))
            continue
        if line.startswith("SMILES Parse Error:"):
            msg = line[len("SMILES Parse Error:") :].strip()
            if msg.startswith("Failed parsing SMILES"):
                continue
            for sep in (" for input:", " while parsing:"):
                if sep in msg:
                    msg = msg.split(sep, 1)[0]
            reason = msg.strip()
        elif line.startswith("SMILES Parse Error") or line.startswith("SMARTS"):
            reason = line
        elif re.fullmatch(r"[~ ]*\^", line):
            continue  # the caret line pointing at the position
        elif "Error" in line or "error" in line or "kekulize" in line or "valence" in line:
            reason = line.rstrip(".").strip()
        else:
            # echo of the input under "check for mistakes", or other noise
            continue
        if reason and reason not in reasons:
            reasons.append(reason)
    if not reasons:
        return None
    reason = "; ".join(reasons)
    if position is not None:
        reason += f" near position {position}"
    return reason


def _reason_from_sanitization(smiles):
    """Reason for a failure found by re-parsing without sanitization."""
    Chem, _ = _chem()
    mol = Chem.MolFromSmiles(smiles, sanitize=False)
    if mol is None:
        return "SMILES syntax error"
    try:
        problems = Chem.DetectChemistryProblems(mol)
    except Exception as exc:  # pragma: no cover - defensive
        return f"sanitization failed: {exc}"
    if problems:
        return "; ".join(p.Message() for p in problems)
    return "RDKit could not sanitize the molecule"


def parse_smiles(smiles):
    """Parse one SMILES string with RDKit, without printing anything.

    Leading and trailing whitespace is ignored.  Call inside
    :func:`rdkit_quiet` when parsing many strings (this function also works on
    its own, it then silences the log itself).

    Parameters
    ----------
    smiles : str
        The SMILES string.

    Returns
    -------
    mol : rdkit.Chem.Mol or None
        The sanitized molecule, or ``None`` when the string is invalid.
    reason : str or None
        Why the string is invalid (taken from RDKit's error log where
        possible), ``None`` for a valid molecule.
    """
    if not isinstance(smiles, str):
        return None, f"not a string (got {type(smiles).__name__})"
    text = smiles.strip()
    if not text:
        return None, "empty string"
    Chem, rdBase = _chem()
    with rdkit_quiet():
        mol = Chem.MolFromSmiles(text)
        if mol is not None:
            if mol.GetNumAtoms() == 0:
                return None, "empty molecule (no atoms)"
            return mol, None
        reason = None
        capture_cls = getattr(rdBase, "CaptureErrorLog", None)
        if capture_cls is not None:
            with capture_cls() as capture:
                Chem.MolFromSmiles(text)
            reason = _reason_from_log(capture.messages)
        if reason is None:
            reason = _reason_from_sanitization(text)
    return None, reason
