"""What sktag tells its user while it works: progress bars, and warnings that point at the user's code."""

from __future__ import annotations

import os
import sys


def progress(iterable, enabled, **kwargs):
    """``tqdm(iterable)`` when ``enabled``, else ``iterable``."""
    if not enabled:
        return iterable
    from tqdm.auto import tqdm

    return tqdm(iterable, **kwargs)


def user_stacklevel() -> int:
    """The ``stacklevel`` that makes a warning point at the first caller outside sktag (call it where you warn)."""
    package = os.path.dirname(os.path.abspath(sys.modules["sktag"].__file__))
    frame, level = sys._getframe(1), 1
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(package):
        frame, level = frame.f_back, level + 1
    return level
