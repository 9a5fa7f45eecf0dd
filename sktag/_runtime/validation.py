"""Parameter constraints, scikit-learn style: one table, checked in ``fit``.

Every sktag estimator declares ``_parameter_constraints``: a dict mapping
each constructor parameter to a list of constraints, any of which may hold
(``None`` in the list allows ``None``).  :data:`COMMON` holds the entries the
estimators, the pretrainer and the featurisers share, so that one parameter
means and accepts the same thing everywhere.
"""

from __future__ import annotations

import numbers
import os

import numpy as np


class Interval:
    """A number of ``kind`` (``"int"`` or ``"real"``) in an interval."""

    def __init__(self, kind, low=None, high=None, closed="both"):
        self.kind, self.low, self.high, self.closed = kind, low, high, closed

    def __call__(self, v):
        if isinstance(v, (bool, np.bool_)):
            return False
        if self.kind == "int" and not isinstance(v, numbers.Integral):
            return False
        if not isinstance(v, numbers.Real) or not np.isfinite(v):
            return False
        lo_ok = self.low is None or (v >= self.low if self.closed in ("both", "left") else v > self.low)
        hi_ok = self.high is None or (v <= self.high if self.closed in ("both", "right") else v < self.high)
        return lo_ok and hi_ok

    def __str__(self):
        left = "[" if self.closed in ("both", "left") else "("
        right = "]" if self.closed in ("both", "right") else ")"
        what = "an int" if self.kind == "int" else "a float"
        lo = "-inf" if self.low is None else self.low
        hi = "inf" if self.high is None else self.high
        return f"{what} in the range {left}{lo}, {hi}{right}"


class Options:
    """One of the given strings."""

    def __init__(self, *options):
        self.options = options

    def __call__(self, v):
        return isinstance(v, str) and v in self.options

    def __str__(self):
        return "a str among {" + ", ".join(repr(o) for o in self.options) + "}"


class Instance:
    """An instance of one of the given types."""

    def __init__(self, *types, what=None):
        self.types, self.what = types, what

    def __call__(self, v):
        return isinstance(v, self.types)

    def __str__(self):
        return self.what or "an instance of " + " or ".join(t.__name__ for t in self.types)


class _Boolean:
    def __call__(self, v):
        return isinstance(v, (bool, np.bool_))

    def __str__(self):
        return "an instance of 'bool'"


class _Callable:
    def __call__(self, v):
        return callable(v)

    def __str__(self):
        return "a callable"


class _RandomState:
    def __call__(self, v):
        return (isinstance(v, numbers.Integral) and not isinstance(v, bool) and 0 <= v < 2**32) or isinstance(
            v, np.random.RandomState)

    def __str__(self):
        return "an int in the range [0, 2**32) or a numpy RandomState"


BOOLEAN = _Boolean()
CALLABLE = _Callable()
RANDOM_STATE = _RandomState()
POS_INT = Interval("int", 1)
NONNEG_INT = Interval("int", 0)

#: Constraints shared by estimators, pretrainer and featurisers.
COMMON = {
    "model": [Instance(str, os.PathLike, what="a model alias, hub id or folder (str or path)")],
    "tag_length": [POS_INT],
    "max_iter": [POS_INT],
    "batch_size": [POS_INT, Options("auto")],
    "predict_batch_size": [POS_INT],
    "learning_rate_init": [Interval("real", 0, None, closed="neither")],
    "alpha": [Interval("real", 0, None)],
    "tol": [Interval("real", 0, None)],
    "validation_fraction": [Interval("real", 0, 1, closed="neither")],
    "n_iter_no_change": [POS_INT],
    "max_length": [POS_INT],
    "truncation": [Options("warn", "raise")],
    "canonicalize": [BOOLEAN],
    "on_invalid": [Options("raise", "nan")],
    "prefix_cache": [Options("auto", "disk"), BOOLEAN, Interval("real", 0, None), None],
    "device": [Instance(str), Instance(object, what="a torch.device")],
    "dtype": [Options("auto", "float32", "fp32", "bfloat16", "bf16", "float16", "fp16"),
              Instance(object, what="a torch.dtype")],
    "attn_implementation": [Instance(str, what="a str such as 'auto', 'sdpa' or 'eager'")],
    "device_map": [Instance(str, dict), None],
    "trust_remote_code": [BOOLEAN],
    "n_threads": [POS_INT, Interval("int", None, -1), None],
    "random_state": [RANDOM_STATE, None],
    "verbose": [NONNEG_INT, BOOLEAN],
    "warm_start": [BOOLEAN],
    "early_stopping": [BOOLEAN],
}


def validate_params(est, constraints=None):
    """Check every parameter of ``est`` against its constraint table.

    Raises ``ValueError`` with scikit-learn's wording: "The 'x' parameter of
    Est must be ... Got ... instead."
    """
    constraints = type(est)._parameter_constraints if constraints is None else constraints
    for name, value in est.get_params(deep=False).items():
        allowed = constraints.get(name)
        if allowed is None or allowed == "no_validation":
            continue
        if value is None and None in allowed:
            continue
        tests = [c for c in allowed if c is not None]
        if any(_holds(c, value) for c in tests):
            continue
        descr = [str(c) for c in tests] + (["None"] if None in allowed else [])
        must = descr[0] if len(descr) == 1 else ", ".join(descr[:-1]) + " or " + descr[-1]
        raise ValueError(f"The {name!r} parameter of {type(est).__name__} must be {must}. Got {value!r} instead.")


def _holds(constraint, value):
    if isinstance(constraint, Instance) and constraint.types == (object,) and constraint.what:
        # torch objects, checked by type name to keep torch out of this module
        kind = "device" if "device" in constraint.what else "dtype"
        return type(value).__module__ == "torch" and type(value).__name__ == kind
    return constraint(value)


def string_input_tags(tags, *, two_d=True, requires_fit=None, target_required=None):
    """Set the scikit-learn tags of an estimator of strings (the one ``__sklearn_tags__`` body of sktag).

    Every sktag estimator, transformer and featuriser takes strings, 1-D
    (and, with ``two_d``, one column per segment); none takes sparse input or
    is non-deterministic with a fixed ``random_state``.
    """
    tags.input_tags.string = True
    tags.input_tags.one_d_array = True
    tags.input_tags.two_d_array = bool(two_d)
    tags.input_tags.sparse = False
    tags.non_deterministic = False
    if requires_fit is not None:
        tags.requires_fit = requires_fit
    if target_required is not None:
        tags.target_tags.required = target_required
    return tags


def store_params(estimator, params):
    """What ``__init__`` does (scikit-learn's rule): store every parameter as given, nothing else."""
    for name, value in params.items():
        if name not in ("self", "__class__"):
            setattr(estimator, name, value)
