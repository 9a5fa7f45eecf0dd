"""Exceptions and warnings raised by sktag (all importable from here)."""

from __future__ import annotations

from sklearn.exceptions import ConvergenceWarning, NotFittedError

__all__ = [
    "InvalidInputError",
    "TagMismatchError",
    "SharedGPUError",
    "TruncationWarning",
    "ConvergenceWarning",
    "NotFittedError",
]


class InvalidInputError(ValueError):
    """Raised when input strings are not valid for their domain.

    A subclass of :class:`ValueError`.  The message lists every invalid row
    (up to a limit) with its position, index label, column, the offending
    string and the reason.

    Parameters
    ----------
    message : str
        The error message.
    rows : sequence of int, default=()
        Positions (0-based) of all invalid rows.
    reasons : sequence of str, default=()
        The reason for each position in ``rows``.

    Attributes
    ----------
    rows : list of int
        Positions (0-based) of all invalid rows, not only the listed ones.
    reasons : list of str
        The reason for each position in ``rows``.
    """

    def __init__(self, message, rows=(), reasons=()):
        super().__init__(message)
        self.rows = list(rows)
        self.reasons = list(reasons)


class TagMismatchError(ValueError):
    """Tags were learned on another backbone or have the wrong shape."""


class SharedGPUError(RuntimeError):
    """Several worker processes would load the backbone on one GPU."""


class PerformanceWarning(UserWarning):
    """A fit takes a much slower path than it could (for example, no room for the prefix cache)."""


class TruncationWarning(UserWarning):
    """Some strings were longer than ``max_length`` tokens and were truncated."""
