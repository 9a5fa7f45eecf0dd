"""Objects pickled by earlier versions of sktag, brought up to this one in one place.

Each class that unpickles state calls the function for it here from its
``__setstate__``: what an earlier version did not record gets the value that
version behaved as, so the rest of the code reads every attribute directly.

=========================  ==========================================  ========================================
written by                 lacks                                       behaves as
=========================  ==========================================  ========================================
sktag 0.3 (``TagModule``)  ``deep_mask``                               every decoder block carries the deep tag
sktag 0.3 (``TagModule``)  ``_deep_kind``                              residual deep domain tags (``"deep"``)
sktag ≤ 0.3 (estimators)   ``_domain_tags_digest``, ``head_alpha_``    no domain-tag check on a warm start;
                                                                       the head's penalty chosen afresh
sktag ≤ 0.3 (embedding)    ``deep_table_``, ``domain_tag_depth_``      shallow, or residual, domain tags
=========================  ==========================================  ========================================
"""

from __future__ import annotations

#: the residual kind of deep domain tag, the only kind before sktag 0.4 (``sktag._forward.deep.RESIDUAL``)
RESIDUAL = "deep"

#: Fitted attributes an estimator of each kind may lack, and the value that stands for "not recorded".
FITTED_DEFAULTS = {
    "module_": {"_domain_tags_digest": None, "head_alpha_": None},
    "layers_": {"deep_table_": None, "domain_tag_depth_": RESIDUAL},
}


def upgrade_module(module) -> None:
    """Give a :class:`~sktag._forward.module.TagModule` of an earlier version what it lacks."""
    module._buffers.setdefault("deep_mask", None)
    module.__dict__.setdefault("_deep_kind", None if module.domain_deep is None else RESIDUAL)


def upgrade_estimator(state: dict) -> dict:
    """The ``__dict__`` of a fitted estimator of an earlier version, with what it lacks (unfitted: as it is)."""
    for marker, defaults in FITTED_DEFAULTS.items():
        if marker in state:
            state = {**defaults, **state}
    return state
