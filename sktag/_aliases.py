"""Module paths of earlier versions, kept importable.

sktag 0.4 kept its private modules in one folder (``sktag._engine``,
``sktag._module``, ...); they now live in subpackages named for the data path.
Pickles of fitted estimators and the tests of code written against those
paths name the old modules: :class:`_AliasFinder` answers each old name with
the module that now holds its contents, so that ``pickle.load`` and ``import``
find the same objects.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys

#: old module path -> the module that holds its contents now
MOVED = {
    "sktag._device": "sktag._runtime.device",
    "sktag._threads": "sktag._runtime.threads",
    "sktag._validation": "sktag._runtime.validation",
    "sktag._rdkit": "sktag._runtime.rdkit",
    "sktag._inputs": "sktag._forward.inputs",
    "sktag._encoding": "sktag._forward.encoding",
    "sktag._layers": "sktag._forward.layers",
    "sktag._pooling": "sktag._forward.pooling",
    "sktag._deep": "sktag._forward.deep",
    "sktag._engine": "sktag._forward.engine",
    "sktag._cache": "sktag._forward.cache",
    "sktag._states": "sktag._forward.states",
    "sktag._readouts": "sktag._forward.readouts",
    "sktag._module": "sktag._forward.module",
    "sktag._taginit": "sktag._forward.taginit",
    "sktag._pretrained": "sktag._forward.pretrained",
    "sktag._feature_store": "sktag._forward.prefix_store",
    "sktag._architectures": "sktag._forward.architectures",
    "sktag._attribution": "sktag._explain.attribution",
    "sktag._smiles_atoms": "sktag._explain.smiles_atoms",
    "sktag._draw": "sktag._explain.draw",
    "sktag._training": "sktag._fit.training",
    "sktag._tasks": "sktag._fit.tasks",
    "sktag._ridge": "sktag._fit.ridge",
    "sktag._backbone_access": "sktag._fit.backbone_access",
    "sktag._base": "sktag._fit.base",
    "sktag._inference": "sktag._fit.inference",
    "sktag._tagio": "sktag._fit.tagio",
    "sktag._pretrain_base": "sktag._pretrain.base",
    "sktag._descriptor_pretrain": "sktag._pretrain.descriptor",
}


class _AliasFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Import an old module path as the module that replaced it (the same module object)."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname in MOVED:
            return importlib.util.spec_from_loader(fullname, self)
        return None

    def __init__(self):
        self._specs = {}  # module name -> its own spec, kept while the import system sets the alias's

    def create_module(self, spec):
        module = importlib.import_module(MOVED[spec.name])
        self._specs[module.__name__] = module.__spec__
        return module

    def exec_module(self, module):
        """Nothing to run (the module was imported under its own name); give it back its own ``__spec__``.

        The import system sets ``__spec__`` of the module it created to the
        old name's; the module's relative imports must keep resolving from
        where it lives.
        """
        module.__spec__ = self._specs[module.__name__]


def install() -> None:
    """Put the finder on ``sys.meta_path`` once."""
    if not any(isinstance(f, _AliasFinder) for f in sys.meta_path):
        sys.meta_path.append(_AliasFinder())
