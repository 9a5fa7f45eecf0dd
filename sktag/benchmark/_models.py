"""The built-in named models of :func:`sktag.benchmark.compare`, each one entry of the registry.

See :mod:`sktag.benchmark._registry` for how a named model is defined.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, clone

from .._runtime.validation import store_params
from ._registry import _REGISTRY, MODELS, ModelContext, register_model

__all__ = ["make_model", "uses_llm", "PretrainedTag"]


def uses_llm(estimator):
    """Whether ``estimator`` (or anything inside it) runs a language model of sktag."""
    from sktag import DomainTagPretrainer, LLMEmbedding, TagClassifier, TagRegressor
    from sktag.hybrid import _HybridBase

    llm = (TagRegressor, TagClassifier, LLMEmbedding, DomainTagPretrainer, PretrainedTag)
    if isinstance(estimator, llm):
        return True
    if isinstance(estimator, _HybridBase) and estimator.llm is not None:
        return True
    if not hasattr(estimator, "get_params"):
        return False
    params = estimator.get_params(deep=True)
    for v in params.values():
        if isinstance(v, llm):
            return True
        if isinstance(v, (list, tuple)):  # Stacking*/Voting*/Pipeline steps: (name, estimator) pairs
            for item in v:
                est = item[-1] if isinstance(item, tuple) else item
                if isinstance(est, llm) or (isinstance(est, BaseEstimator) and est is not estimator
                                            and uses_llm(est)):
                    return True
    return False


def make_model(name, task, *, model="smollm2-135m", domains="SMILES", smiles_column=None, random_state=None):
    """Build the named model ``name`` as an unfitted scikit-learn estimator.

    Parameters
    ----------
    name : str
        One of :data:`MODELS`.
    task : {"regression", "classification"}
    model : str or path, default="smollm2-135m"
        LLM of the Tag-LLM and ``LLMEmbedding`` models (a name or a local folder).
    domains : str or dict, default="SMILES"
        ``domains`` of the LLM models (a dict ``{column: domain}`` for a DataFrame).
    smiles_column : str or None, default=None
        For a DataFrame ``X``: the SMILES column, the only one the classical
        featurisers (Morgan, RDKit descriptors) see.  None when ``X`` is one
        column of SMILES.
    random_state : int or None, default=None
        Seeds the model (and its inner splits).

    Returns
    -------
    estimator : estimator
        Pipelines have the steps ``"features"`` (or ``"embedding"``, ``"scale"``)
        and ``"model"``, so ``set_params(model__n_estimators=100)`` works.
    """
    if name not in _REGISTRY:
        raise ValueError(f"unknown model {name!r}; named models: {list(MODELS)} (or pass {{'name': estimator}})")
    if task not in ("regression", "classification"):
        raise ValueError(f"task must be 'regression' or 'classification', got {task!r}")
    context = ModelContext(task, model, domains, smiles_column, random_state)
    return _REGISTRY[name].build(context)


def _llm_embedding(pretrained):
    def build(ctx):
        from sktag.hybrid import default_llm_model

        return default_llm_model(ctx.task, model=ctx.model, domains=ctx.domains,
                                 domain_tags="pretrained" if pretrained else None)
    return build


def _stack(ctx):
    from sklearn.ensemble import StackingClassifier, StackingRegressor
    from sklearn.linear_model import RidgeCV

    bases = [("tag", ctx.tag()), ("hgb", ctx.classical("hgb_descriptors"))]
    if ctx.classification:
        return StackingClassifier(bases, cv=5)
    return StackingRegressor(bases, final_estimator=RidgeCV(), cv=5)


def _morgan(model):
    def build(ctx):
        from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor
        from sklearn.linear_model import RidgeCV
        from sklearn.pipeline import Pipeline

        from sktag.features import MorganFingerprint
        from sktag.hybrid import logistic_regression_cv

        if model == "rf":
            est = (RandomForestClassifier if ctx.classification else RandomForestRegressor)(
                n_estimators=500, random_state=ctx.random_state)
        else:
            est = (logistic_regression_cv(Cs=np.logspace(-3, 1, 5), cv=3, max_iter=2000) if ctx.classification
                   else RidgeCV(alphas=np.logspace(-1, 3, 9)))
        return Pipeline([("features", ctx.smiles_features(MorganFingerprint(radius=2, n_bits=2048))), ("model", est)])
    return build


def _dummy(ctx):
    from sklearn.dummy import DummyClassifier, DummyRegressor

    return DummyClassifier(strategy="prior") if ctx.classification else DummyRegressor(strategy="mean")


for _name, _description, _build, _kw in [
    ("tag", "Tag-LLM, sktag defaults (pooled readout, closed-form head)", lambda ctx: ctx.tag(),
     dict(llm=True, default=True)),
    ("tag_paper", "Tag-LLM, paper (function-tag readout, random head, gradient; p = 10, 10 epochs)",
     lambda ctx: ctx.tag(readout="tag", head_init="random", head_update="gradient", early_stopping=False,
                         tag_length=10, max_iter=10),
     dict(llm=True)),
    ("tag_deep", "Tag-LLM defaults with a deep function tag (tag_depth='deep': a learned block per decoder block)",
     lambda ctx: ctx.tag(tag_depth="deep"), dict(llm=True)),
    ("tag_text", "Tag-LLM defaults + text domain prompt", lambda ctx: ctx.tag(domain_tags="text"), dict(llm=True)),
    ("tag_pretrained", "Tag-LLM defaults + domain tags pretrained on the training strings",
     lambda ctx: PretrainedTag(ctx.tag(), column=ctx.smiles_column, random_state=ctx.random_state),
     dict(llm=True, smiles=True)),
    ("tag_untrained_domain", "Tag-LLM defaults with an untrained domain tag (domain_tags=None, the default before "
     "0.3)", lambda ctx: ctx.tag(domain_tags=None), dict(llm=True)),
    ("llm_embedding", "LLMEmbedding (frozen) + ridge / logistic", _llm_embedding(False), dict(llm=True)),
    ("llm_embedding_pretrained", "LLMEmbedding with sktag's shipped domain tag + ridge / logistic",
     _llm_embedding(True), dict(llm=True, default=True)),
    ("stack", "Stack: Tag-LLM defaults + descriptors/HistGB", _stack, dict(llm=True, smiles=True)),
    ("hybrid", "Hybrid: frozen LLM features (shipped domain tag) + descriptors/HistGB + Morgan/RF, blended on "
     "scaffold-grouped out-of-fold predictions", lambda ctx: ctx.hybrid(llm="embedding"),
     dict(llm=True, smiles=True, default=True)),
    ("hybrid_tag", "Hybrid with the Tag-LLM defaults as the LLM base model", lambda ctx: ctx.hybrid(llm="tag"),
     dict(llm=True, smiles=True)),
    ("stack_classical", "The hybrid's blend of descriptors/HistGB + Morgan/RF alone (no LLM; the control)",
     lambda ctx: ctx.hybrid(llm=None), dict(smiles=True)),
    ("rf_morgan_counts", "Morgan counts + random forest", lambda ctx: ctx.classical("rf_morgan_counts"),
     dict(smiles=True, default=True)),
    ("rf_morgan", "Morgan bits + random forest", _morgan("rf"), dict(smiles=True)),
    ("linear_morgan", "Morgan bits + ridge / logistic regression", _morgan("linear"), dict(smiles=True)),
    ("hgb_descriptors", "RDKit descriptors + hist. gradient boosting", lambda ctx: ctx.classical("hgb_descriptors"),
     dict(smiles=True, default=True)),
    ("dummy", "Dummy (mean / prior)", _dummy, dict(default=True)),
]:
    register_model(_name, _description, _build, **_kw)
del _name, _description, _build, _kw


class PretrainedTag(BaseEstimator):
    """A Tag-LLM estimator whose domain tags are first pretrained on the training strings.

    ``fit`` learns one domain tag per domain of the estimator's input
    (``<SMILES>``, and ``<Protein>`` for a second column of protein
    sequences, say) with :class:`~sktag.DomainTagPretrainer` (stage 1 of
    Tag-LLM) on the distinct training strings of that domain only, then
    fits a clone of ``estimator`` with ``domain_tags`` set to them (the
    pretraining time counts as fit time).

    Parameters
    ----------
    estimator : TagRegressor or TagClassifier
        Its ``domains`` say which column holds which domain: a dict
        ``{column: domain}`` for a DataFrame, a list for the columns of a 2-D
        array, or one domain name for a single column.
    column : str or None, default=None
        The column of a DataFrame ``X`` when the estimator's ``domains`` is
        one domain name (the SMILES column).
    max_iter : int, default=1
        Pretraining epochs.
    max_samples : int or None, default=None
        Pretrain each tag on at most this many distinct strings (drawn with
        ``random_state``).
    random_state : int or None, default=None
        Seeds the pretraining and the choice of strings.

    Attributes
    ----------
    pretrainers_ : dict
        ``{domain: fitted DomainTagPretrainer}``.
    tags_ : TagSet
        Every pretrained domain tag, as the estimator received it.
    estimator_ : TagRegressor or TagClassifier
        The fitted estimator.
    """

    def __init__(self, estimator, *, column=None, max_iter=1, max_samples=None, random_state=None):
        store_params(self, locals())

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        inner = self.estimator.__sklearn_tags__()  # a classifier's wrapper is a classifier, and so on
        tags.estimator_type, tags.target_tags, tags.input_tags = (inner.estimator_type, inner.target_tags,
                                                                   inner.input_tags)
        return tags

    def _strings_by_domain(self, X):
        """``{domain: distinct strings}`` of every domain of the estimator's input, in column order."""
        domains = self.estimator.domains
        if isinstance(domains, dict):
            pairs = [(X[c], d) for c, d in domains.items()]
        elif isinstance(domains, (list, tuple)):
            arr = X.iloc if hasattr(X, "iloc") else np.asarray(X, dtype=object)
            pairs = [(arr[:, i], d) for i, d in enumerate(domains)]
        else:
            pairs = [(X[self.column] if self.column is not None else X, domains)]
        out = {}
        for col, domain in pairs:  # two columns of one domain share its tag
            key = str(domain)
            out[key] = np.concatenate([out.get(key, np.array([], dtype=object)),
                                       np.asarray(col, dtype=object).astype(str)])
        return {d: np.unique(v) for d, v in out.items()}

    def fit(self, X, y):
        """Pretrain a domain tag per domain on the strings of ``X``, then fit the estimator.

        Parameters
        ----------
        X : sequence of str, or DataFrame / 2-D array of str columns
            The training strings; each domain's tag is pretrained on the distinct strings of its columns.
        y : array-like of shape (n_samples,)
            The targets of the estimator's fit (the pretraining does not see them).

        Returns
        -------
        self : object
            The fitted estimator.
        """
        from sktag import DomainTagPretrainer

        est = self.estimator
        pretrainers, tags = {}, None
        for domain, strings in self._strings_by_domain(X).items():
            if self.max_samples is not None and self.max_samples < len(strings):
                rng = np.random.RandomState(self.random_state)
                strings = strings[np.sort(rng.choice(len(strings), self.max_samples, replace=False))]
            pre = DomainTagPretrainer(model=est.model, domain=domain, tag_length=est.tag_length,
                                      max_iter=self.max_iter, random_state=self.random_state, verbose=0)
            pretrainers[domain] = pre.fit(list(strings))
            tags = pre.tags_ if tags is None else tags | pre.tags_
        fitted = clone(est).set_params(domain_tags=tags).fit(X, y)
        self.pretrainers_, self.tags_, self.estimator_ = pretrainers, tags, fitted
        if hasattr(fitted, "classes_"):
            self.classes_ = fitted.classes_
        elif hasattr(self, "classes_"):
            del self.classes_
        return self

    def predict(self, X):
        """Predict with the fitted estimator.

        Parameters
        ----------
        X : sequence of str, or DataFrame / 2-D array of str columns
            The strings to predict for, in the columns of the training data.

        Returns
        -------
        ndarray of shape (n_samples,)
            The fitted estimator's predictions: values, or class labels for a classifier.
        """
        return self.estimator_.predict(X)

    def predict_proba(self, X):
        """Predict class probabilities with the fitted classifier.

        Parameters
        ----------
        X : sequence of str, or DataFrame / 2-D array of str columns
            The strings to classify.

        Returns
        -------
        ndarray of shape (n_samples, n_classes)
            The fitted classifier's class probabilities, in the order of ``classes_``.
        """
        return self.estimator_.predict_proba(X)
