"""The examples in sktag's docstrings run and print what they show.

The examples that train use a tiny random model (``sktag.testing.make_tiny_model``), so the whole set takes seconds,
and they print shapes, names and flags rather than scores, which differ between CPU kinds (AVX2 float32, AVX512-BF16).

Runs under pytest (one test per module) and as a script (``python tests/test_doctests.py``, which needs only the
standard library and sktag: ``scripts/docs.sh`` runs it that way).
"""

from __future__ import annotations

import doctest
import importlib
import os
import pkgutil
import sys
import tempfile
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import sktag  # noqa: E402

OPTIONFLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


def _module_names():
    """Every module of the sktag package, except the command-line entry points."""
    names = ["sktag"]
    for info in pkgutil.walk_packages(sktag.__path__, prefix="sktag."):
        if info.name.rsplit(".", 1)[-1] == "__main__" or info.name == "sktag.demo":
            continue
        names.append(info.name)
    return sorted(names)


MODULES = _module_names()


def run_module(name, tmp_dir):
    """Run the docstring examples of module ``name`` (temporary folders go under ``tmp_dir``)."""
    module = importlib.import_module(name)
    old = tempfile.tempdir
    tempfile.tempdir = str(tmp_dir)  # the examples' tempfile.mkdtemp() folders are removed with tmp_dir
    try:
        return doctest.testmod(module, optionflags=OPTIONFLAGS, verbose=False, report=True)
    finally:
        tempfile.tempdir = old


try:
    import pytest
except ImportError:  # run as a script in an environment without pytest
    pytest = None

if pytest is not None:

    @pytest.mark.parametrize("name", MODULES)
    def test_docstring_examples(name, tmp_path):
        result = run_module(name, tmp_path)
        assert result.failed == 0, f"{result.failed} of {result.attempted} docstring examples of {name} failed"


def main():
    failed = attempted = 0
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        for name in MODULES:
            result = run_module(name, tmp)
            failed += result.failed
            attempted += result.attempted
    print(f"doctests: {attempted} examples in {len(MODULES)} modules, {failed} failed "
          f"({time.perf_counter() - t0:.0f} s)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
