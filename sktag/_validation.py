"""Parameter checks shared by sktag's estimators (called in ``fit``, never ``__init__``)."""

from __future__ import annotations

import numbers

import numpy as np


def check_int(name, value, low, allow=()):
    """``value`` is an int >= ``low`` (or one of ``allow``)."""
    if value in allow and isinstance(value, str):
        return
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
        extra = f" or one of {list(allow)}" if allow else ""
        raise ValueError(f"{name} must be an integer >= {low}{extra}, got {value!r}.")


def check_float(name, value, low, high=None, low_open=False):
    """``value`` is a finite number in ``[low, high)`` (``(low, high)`` with ``low_open``)."""
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and np.isfinite(value)
    ok = ok and (value > low if low_open else value >= low) and (high is None or value < high)
    if not ok:
        interval = f"{'(' if low_open else '['}{low}, {high if high is not None else 'inf'})"
        raise ValueError(f"{name} must be a number in {interval}, got {value!r}.")


def check_choice(name, value, choices):
    """``value`` is one of the strings ``choices``."""
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name} must be one of {list(choices)}, got {value!r}.")


def check_bool(name, value):
    """``value`` is True or False."""
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name} must be True or False, got {value!r}.")
