"""The pretrained domain tags shipped with sktag (``sktag/pretrained_tags``), found by backbone fingerprint.

``domain_tags="pretrained"`` (the estimators' default) uses them: a domain with a shipped tag for the loaded
backbone gets that tag, every other domain a new one from the init rule.  See ``pretrained_tags/README.md`` for
how each was learned and on which data.
"""

from __future__ import annotations

from pathlib import Path

FOLDER = Path(__file__).resolve().parents[1] / "pretrained_tags"

#: the ``domain_tags`` value that selects the shipped tags
PRETRAINED = "pretrained"


def shipped_domain_tags(backbone):
    """The shipped domain tags learned on ``backbone`` (same embedding fingerprint), as one TagSet, or None."""
    from ..tags import TagSet

    found = None
    for path in sorted(FOLDER.glob("*.safetensors")):
        ts = TagSet.load(path)
        if ts.fingerprint != backbone.fingerprint or ts.hidden_size != backbone.hidden_size:
            continue
        found = ts if found is None else found | ts
    return found
