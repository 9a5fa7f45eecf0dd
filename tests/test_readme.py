"""The README stays short, starts with the two set-up commands, and its quickstart code runs.

The quickstart is run as written except for the model: ``model="smollm2-135m"`` (the embedded default, minutes on
a CPU) is replaced by the folder of a tiny random model, so the test checks that the code is valid and runs end to
end in seconds, not the score it prints.
"""

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
SETUP = [
    "bash scripts/demo.sh     # install into .venv (with the embedded model), fit a TagRegressor on ESOL, "
    "compare with baselines",
    "bash scripts/test.sh     # same install plus test extras, run the test suite (what CI runs: .ci/run)",
]


def _text():
    return README.read_text(encoding="utf-8")


def _quickstart_code(text):
    """The first ```python block after the "## Quickstart" heading."""
    section = text.split("\n## Quickstart", 1)
    assert len(section) == 2, "the README has no '## Quickstart' section"
    match = re.search(r"```python\n(.*?)```", section[1], flags=re.S)
    assert match, "the README's Quickstart section has no python code block"
    return match.group(1)


def test_readme_is_short():
    n = len(_text().splitlines())
    assert n <= 150, f"README.md has {n} lines; keep it at 150 or fewer (the rest belongs in docs/)"


def test_readme_starts_with_the_two_setup_commands():
    lines = _text().splitlines()
    assert lines[0] == "# sktag"
    block = lines[lines.index("```bash") + 1:]
    assert lines.index("```bash") <= 2, "the set-up commands come first"
    assert block[:3] == SETUP + ["```"]


def test_readme_has_no_relative_links_or_images():
    """The README is also the package description: links must work on an index page."""
    text = _text()
    assert "![" not in text
    for target in re.findall(r"\]\(([^)]+)\)", text):
        assert target.startswith(("https://", "http://")), f"relative link {target!r} in README.md"


def test_readme_quickstart_runs_on_a_tiny_model(tiny_model):
    pytest.importorskip("rdkit")
    code = _quickstart_code(_text())
    default = 'model="smollm2-135m"'
    assert default in code, f"the quickstart no longer names {default}; update this test"
    code = code.replace(default, f"model={str(tiny_model)!r}")
    namespace = {"__name__": "__readme__"}
    exec(compile(code, str(README) + ":quickstart", "exec"), namespace)
    reg, rmse = namespace["reg"], namespace["rmse"]
    assert reg.n_iter_ >= 1
    assert rmse == rmse and rmse > 0  # a finite score was printed


def test_docs_quickstart_is_the_readme_quickstart():
    """The quickstart page shows the code the README shows (which runs above), so their expected outputs agree."""
    page = README.parent / "docs" / "quickstart.md"
    if not page.exists():
        pytest.skip("no docs/quickstart.md in this checkout")
    docs_code = re.search(r"```python\n(.*?)```", page.read_text(encoding="utf-8"), flags=re.S).group(1)
    assert docs_code == _quickstart_code(_text())
