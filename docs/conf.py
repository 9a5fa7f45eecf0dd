"""Sphinx configuration of the sktag documentation (built by ``bash scripts/docs.sh``)."""

from __future__ import annotations

import doctest
import os
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(DOCS / "_ext"))

import sktag  # noqa: E402

project = "sktag"
author = "sktag developers"
copyright = "2026, sktag developers"
release = sktag.__version__
version = ".".join(release.split(".")[:2])

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.doctest",
    "sphinx.ext.intersphinx",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "numpydoc",
    "myst_parser",
    "sphinx_gallery.gen_gallery",
    "sphinx_copybutton",
    "sktag_results",  # docs/_ext: tables and plots of the benchmark pages, rendered from benchmarks/results/
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "**.ipynb_checkpoints", "auto_examples/*.ipynb", "auto_examples/*.py",
                    "auto_examples/*.zip", "auto_examples/*.md5", "auto_examples/*.json"]
myst_enable_extensions = ["colon_fence", "deflist", "dollarmath"]
myst_heading_anchors = 3

# -- API reference -----------------------------------------------------------------------------------------------
templates_path = ["_templates"]
autosummary_generate = True
autodoc_default_options = {"members": True}
autodoc_typehints = "none"
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_attributes_as_param_list = True
numpydoc_xref_param_type = False
# every public name: a summary, every parameter described, no unknown sections
numpydoc_validation_checks = {"PR01", "PR02", "PR03", "PR04", "PR06", "PR07", "PR08", "PR09", "PR10", "GL06", "GL07",
                              "GL08", "SS01", "RT03"}
numpydoc_validation_exclude = {r"\.__init__$", r"\.__repr__$", r"\.__sklearn_tags__$", r"\.set_.*_request$"}

# -- Doctests ----------------------------------------------------------------------------------------------------
# The docstrings' examples run with tests/test_doctests.py (in the test suite, and first thing in scripts/docs.sh, on
# a tiny random model).  ``sphinx-build -b doctest`` runs only the explicit ``doctest``/``testcode`` blocks of the
# pages (none today), so that the docstrings do not run twice.
doctest_test_doctest_blocks = ""
doctest_default_flags = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE | doctest.IGNORE_EXCEPTION_DETAIL

intersphinx_mapping = {
    "python": ("https://docs.python.org/3", None),
    "numpy": ("https://numpy.org/doc/stable/", None),
    "pandas": ("https://pandas.pydata.org/docs/", None),
    "sklearn": ("https://scikit-learn.org/stable/", None),
    "torch": ("https://docs.pytorch.org/docs/stable/", None),
    "transformers": ("https://huggingface.co/docs/transformers/main/en/", None),
}
# no network here or in CI: intersphinx inventories are read only when SKTAG_DOCS_INTERSPHINX=1
if os.environ.get("SKTAG_DOCS_INTERSPHINX") != "1":
    intersphinx_mapping = {}

# -- Gallery -----------------------------------------------------------------------------------------------------
sphinx_gallery_conf = {
    "examples_dirs": str(ROOT / "examples"),
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    "ignore_pattern": r"tag_protocol\.py",
    "download_all_examples": False,
    "remove_config_comments": True,
    "within_subsection_order": "gallery_order.GalleryOrder",
    "show_memory": False,
    "abort_on_example_error": True,
}

# -- HTML --------------------------------------------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = f"sktag {release}"
html_static_path = ["_static"]
html_theme_options = {
    "navigation_depth": 3,
    "show_toc_level": 2,
    "secondary_sidebar_items": ["page-toc"],
    "footer_start": ["copyright"],
}
html_show_sourcelink = False
nitpicky = False


def _skip_foreign_members(app, what, name, obj, skip, options):
    """Document only the members a class gets from sktag (its private base classes included).

    What a class inherits from scikit-learn (``get_params``, ``set_params``, ``score``, ``fit_transform``,
    ``set_output``, the metadata-routing methods), from :class:`collections.abc.Mapping` or from :class:`Exception`
    is documented by its owner.
    """
    if what not in ("class", "exception"):
        return None
    func = obj.fget if isinstance(obj, property) else getattr(obj, "__func__", obj)
    module = getattr(func, "__module__", None) or ""
    if module.split(".")[0] != "sktag":
        return True
    return None


def setup(app):
    app.connect("autodoc-skip-member", _skip_foreign_members)
