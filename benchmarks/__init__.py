"""The benchmark scripts behind sktag's defaults and its published numbers.

Each script is a module: run it from the repository root as ``python -m benchmarks.<script> [options]``, e.g.
``python -m benchmarks.accuracy --quick``.  ``benchmarks.studies`` holds the one-off studies.  ``benchmarks/README.md``
describes every script and its report.
"""

from __future__ import annotations

import sys

__all__ = ["command"]


def command(module, argv=None):
    """The command line that runs the script ``module`` (``benchmarks.<script>``) with ``argv``.

    ``argv`` defaults to this process's arguments; reports record the line so that a run can be repeated.
    """
    args = sys.argv[1:] if argv is None else [str(a) for a in argv]
    return " ".join(["python -m", module, *args])
