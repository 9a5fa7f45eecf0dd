"""The registry of named benchmark models: one entry per model, and the views derived from it.

A named model is defined in one place, :func:`register_model`: its name, a
one-line description, whether it runs the language model and whether it needs
a SMILES column, and the function that builds it from a :class:`ModelContext`
(the task, the language model, the domains, the SMILES column, the seed).
:data:`MODELS`, :data:`DEFAULT_MODELS`, :data:`LLM_MODELS` and
:data:`SMILES_MODELS` are views of the registry, kept up to date.  The
built-in models register themselves in :mod:`sktag.benchmark._models`.
:data:`OWN_BASELINES` pairs named models with the baseline each is compared
with in a report.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

__all__ = ["register_model", "unregister_model", "ModelContext", "NamedModel", "MODELS", "DEFAULT_MODELS",
           "LLM_MODELS", "SMILES_MODELS", "OWN_BASELINES"]

#: name -> description of every named model
MODELS: dict = {}
#: what ``models="default"`` runs
DEFAULT_MODELS: list = []
#: models that run the LLM (the others are "classical")
LLM_MODELS: list = []
#: models that need a SMILES column
SMILES_MODELS: list = []
#: name -> :class:`NamedModel`
_REGISTRY: dict = {}

#: (model, its own baseline) -> what the comparison says; reported when both rows ran
OWN_BASELINES = {
    ("tag", "llm_embedding_pretrained"): "the trained function tag against the frozen features with the same "
                                         "domain tag",
    ("hybrid", "stack_classical"): "the LLM's share of the blend: the same blend without it",
    ("hybrid_tag", "stack_classical"): "the Tag-LLM's share of the blend: the same blend without it",
    ("hybrid_tag", "hybrid"): "the Tag-LLM against the frozen features as the hybrid's LLM base model",
}


@dataclass(frozen=True)
class ModelContext:
    """What a named model's builder gets: the settings of :func:`make_model`.

    Parameters
    ----------
    task : {"regression", "classification"}
        The task.
    model : str or path
        The language model of the LLM models.
    domains : str or dict
        ``domains`` of the LLM models.
    smiles_column : str or None
        The SMILES column of a DataFrame ``X`` (None: ``X`` is one column of SMILES).
    random_state : int or None
        The seed.
    """

    task: str
    model: object = "smollm2-135m"
    domains: object = "SMILES"
    smiles_column: object = None
    random_state: object = None

    @property
    def classification(self) -> bool:
        """Whether the task is classification."""
        return self.task == "classification"

    def tag(self, **params):
        """A ``TagRegressor`` or ``TagClassifier`` on the context's model, domains and seed.

        Parameters
        ----------
        **params
            Further parameters of the estimator, e.g. ``tag_depth="deep"``.

        Returns
        -------
        TagRegressor or TagClassifier
            The unfitted Tag-LLM estimator.
        """
        from sktag import TagClassifier, TagRegressor

        cls = TagClassifier if self.classification else TagRegressor
        return cls(model=self.model, domains=self.domains, random_state=self.random_state, **params)

    def hybrid(self, **params):
        """A ``HybridRegressor`` or ``HybridClassifier`` on the context's settings.

        Parameters
        ----------
        **params
            Further parameters of the hybrid, e.g. ``llm=None`` for the blend of the classical models alone.

        Returns
        -------
        HybridRegressor or HybridClassifier
            The unfitted hybrid, on the context's SMILES column.
        """
        from sktag.hybrid import HybridClassifier, HybridRegressor

        cls = HybridClassifier if self.classification else HybridRegressor
        return cls(model=self.model, domains=self.domains, smiles_column=self.smiles_column,
                   random_state=self.random_state, **params)

    def classical(self, name):
        """One of the hybrid's default classical models.

        Parameters
        ----------
        name : {"hgb_descriptors", "rf_morgan_counts"}
            The model.

        Returns
        -------
        Pipeline
            The unfitted pipeline (featuriser, then model).
        """
        from sktag.hybrid import default_classical_models

        models = default_classical_models(self.task, smiles_column=self.smiles_column, random_state=self.random_state)
        return dict(models)[name]

    def smiles_features(self, featuriser):
        """A featuriser of the SMILES column.

        Parameters
        ----------
        featuriser : transformer
            A featuriser of SMILES strings, such as ``MorganFingerprint(radius=2)``.

        Returns
        -------
        transformer
            ``featuriser`` itself, or a ``ColumnTransformer`` applying it to
            :attr:`smiles_column` when ``X`` is a DataFrame.
        """
        from sklearn.compose import ColumnTransformer

        if self.smiles_column is None:
            return featuriser
        return ColumnTransformer([("smiles", featuriser, [self.smiles_column])])


@dataclass(frozen=True)
class NamedModel:
    """One entry of the registry (see :func:`register_model`)."""

    name: str
    description: str
    build: Callable
    llm: bool = False
    smiles: bool = False
    default: bool = False


def register_model(name, description, build, *, llm=False, smiles=False, default=False, replace=False):
    """Add a named model to :func:`compare`, :func:`make_model` and ``sktag-benchmark``.

    Parameters
    ----------
    name : str
        The model's name (``models=[name]``).
    description : str
        One line for reports and ``--help``.
    build : callable
        ``build(context)`` returns a new unfitted estimator from a
        :class:`ModelContext`.
    llm : bool, default=False
        Whether the model runs the language model (listed in :data:`LLM_MODELS`).
    smiles : bool, default=False
        Whether the model needs a SMILES column (left out where there is none).
    default : bool, default=False
        Whether ``models="default"`` runs it.
    replace : bool, default=False
        Replace a model of that name; otherwise a taken name is refused.

    Returns
    -------
    NamedModel
        The registry entry.

    Examples
    --------
    >>> from sklearn.dummy import DummyRegressor
    >>> from sktag.benchmark import MODELS, register_model
    >>> entry = register_model("median", "Dummy (median)", lambda ctx: DummyRegressor(strategy="median"))
    >>> MODELS["median"]
    'Dummy (median)'
    >>> unregister_model("median")
    >>> "median" in MODELS
    False
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"name must be a non-empty str, got {name!r}.")
    if name in _REGISTRY and not replace:
        raise ValueError(f"a model named {name!r} is registered already; pass replace=True to replace it.")
    if not callable(build):
        raise TypeError(f"build must be callable (context -> estimator), got {build!r}.")
    entry = NamedModel(name, str(description), build, bool(llm), bool(smiles), bool(default))
    _REGISTRY[name] = entry
    MODELS[name] = entry.description
    for names, member in ((DEFAULT_MODELS, entry.default), (LLM_MODELS, entry.llm), (SMILES_MODELS, entry.smiles)):
        if name in names:
            names.remove(name)
        if member:
            names.append(name)
    return entry


def unregister_model(name):
    """Remove a named model added with :func:`register_model` (or a built-in one).

    Parameters
    ----------
    name : str
        The model's name.
    """
    if name not in _REGISTRY:
        raise ValueError(f"no model named {name!r} is registered; named models: {list(MODELS)}.")
    del _REGISTRY[name], MODELS[name]
    for names in (DEFAULT_MODELS, LLM_MODELS, SMILES_MODELS):
        if name in names:
            names.remove(name)
