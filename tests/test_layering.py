"""The package's layers: no module imports a module of a higher layer, and no two modules import each other.

The private modules live in subpackages named for the data path, from the
bottom up: ``_runtime`` (devices, threads, parameter checks, progress, RDKit,
pickles of earlier versions), ``_forward`` (strings to columns, encoding with
tag slots, the engine's passes, the prefix cache, states, pooling, readouts,
deep tags, the module of tags and head), ``_explain`` (attributions and their
pictures), ``_fit`` (the fit skeleton, training loop, tasks, head solvers,
prediction) and ``_pretrain`` (the domain-tag pretrainers).  Public modules
have the layer of what they offer.  Imports inside functions count too.
"""

import ast
import pathlib

import pytest

import sktag

PACKAGE = pathlib.Path(sktag.__file__).parent

#: layer of each top-level name of the package (a subpackage or a public module), from the bottom up
LAYERS = {
    "_version": 0, "exceptions": 0, "_aliases": 0, "testing": 0, "_runtime": 0, "domains": 0, "distributed": 0,
    "_forward": 1, "tags": 1,
    "backbone": 2, "features": 2, "model_selection": 2,
    "_explain": 3, "explain": 3,
    "_fit": 4, "estimators": 4, "embedding": 4,
    "_pretrain": 5, "pretrain": 5,
    "hybrid": 6, "datasets": 6, "benchmark": 7, "demo": 7, "__init__": 8,
}


def _modules():
    return sorted(p for p in PACKAGE.rglob("*.py") if "pretrained_tags" not in p.parts)


def _name(path):
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path):
    """Every sktag module ``path`` imports, at the top or inside a function (absolute names)."""
    name = _name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            if mod.split(".")[0] != "sktag":
                continue
            for alias in node.names:  # ``from . import engine`` imports a module
                sub = f"{mod}.{alias.name}"
                found.add(sub if (PACKAGE.parent / (sub.replace(".", "/") + ".py")).exists()
                          or (PACKAGE.parent / sub.replace(".", "/")).is_dir() else mod)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == "sktag")
    found.discard(name)
    return found


def _layer(module):
    parts = module.split(".")
    top = parts[1] if len(parts) > 1 else "__init__"
    return LAYERS[top]


def test_every_module_has_a_layer():
    missing = sorted({_name(p).split(".")[1] if "." in _name(p) else "__init__" for p in _modules()} - set(LAYERS))
    assert not missing, f"give these a layer in LAYERS: {missing}"


def test_no_module_imports_a_higher_layer():
    upward = [f"{_name(p)} (layer {_layer(_name(p))}) imports {m} (layer {_layer(m)})"
              for p in _modules() for m in sorted(_imports(p)) if m != "sktag" and _layer(m) > _layer(_name(p))]
    assert not upward, "\n".join(upward)


def test_no_two_modules_import_each_other():
    graph = {_name(p): {m for m in _imports(p) if m != "sktag"} for p in _modules()}
    cycles = sorted({tuple(sorted((a, b))) for a, deps in graph.items() for b in deps if a in graph.get(b, ())})
    assert not cycles, f"modules that import each other: {cycles}"


@pytest.mark.parametrize("old, new", [("sktag._engine", "sktag._forward.engine"),
                                      ("sktag._module", "sktag._forward.module"),
                                      ("sktag._training", "sktag._fit.training")])
def test_module_paths_of_earlier_versions_still_import(old, new):
    import importlib

    assert importlib.import_module(old) is importlib.import_module(new)
    assert importlib.import_module(new).__spec__.name == new  # relative imports still resolve where it lives
