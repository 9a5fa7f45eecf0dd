"""The named models of :func:`sktag.benchmark.compare`."""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, clone

__all__ = ["make_model", "MODELS", "DEFAULT_MODELS", "LLM_MODELS", "SMILES_MODELS", "uses_llm"]

#: name -> description of every named model
MODELS = {
    "tag": "Tag-LLM, sktag defaults (pooled readout, closed-form head)",
    "tag_paper": "Tag-LLM, paper (function-tag readout, random head, gradient)",
    "tag_deep": "Tag-LLM defaults with a deep function tag (tag_depth='deep': a learned block per decoder block)",
    "tag_text": "Tag-LLM defaults + text domain prompt",
    "tag_pretrained": "Tag-LLM defaults + domain tags pretrained on the training strings",
    "tag_untrained_domain": "Tag-LLM defaults with an untrained domain tag (domain_tags=None, the default before 0.3)",
    "llm_embedding": "LLMEmbedding (frozen) + ridge / logistic",
    "llm_embedding_pretrained": "LLMEmbedding with sktag's shipped domain tag + ridge / logistic",
    "stack": "Stack: Tag-LLM defaults + descriptors/HistGB",
    "hybrid": "Hybrid: frozen LLM features (shipped domain tag) + descriptors/HistGB + Morgan/RF, blended on "
              "scaffold-grouped out-of-fold predictions",
    "hybrid_tag": "Hybrid with the Tag-LLM defaults as the LLM base model",
    "stack_classical": "The hybrid's blend of descriptors/HistGB + Morgan/RF alone (no LLM; the control)",
    "rf_morgan_counts": "Morgan counts + random forest",
    "rf_morgan": "Morgan bits + random forest",
    "linear_morgan": "Morgan bits + ridge / logistic regression",
    "hgb_descriptors": "RDKit descriptors + hist. gradient boosting",
    "dummy": "Dummy (mean / prior)",
}
#: what ``models="default"`` runs
DEFAULT_MODELS = ["tag", "llm_embedding_pretrained", "hybrid", "rf_morgan_counts", "hgb_descriptors", "dummy"]
#: models that run the LLM (the others are "classical")
LLM_MODELS = ["tag", "tag_paper", "tag_deep", "tag_text", "tag_pretrained", "tag_untrained_domain", "llm_embedding",
              "llm_embedding_pretrained", "stack", "hybrid", "hybrid_tag"]
#: models that need a SMILES column
SMILES_MODELS = ["tag_pretrained", "stack", "hybrid", "hybrid_tag", "stack_classical", "rf_morgan_counts", "rf_morgan",
                 "linear_morgan", "hgb_descriptors"]


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
    from sklearn.compose import ColumnTransformer
    from sklearn.dummy import DummyClassifier, DummyRegressor
    from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor, StackingClassifier, StackingRegressor
    from sklearn.linear_model import RidgeCV
    from sklearn.pipeline import Pipeline

    from sktag import TagClassifier, TagRegressor
    from sktag.features import MorganFingerprint
    from sktag.hybrid import (HybridClassifier, HybridRegressor, default_classical_models, default_llm_model,
                              logistic_regression_cv)

    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; named models: {list(MODELS)} (or pass {{'name': estimator}})")
    if task not in ("regression", "classification"):
        raise ValueError(f"task must be 'regression' or 'classification', got {task!r}")
    clf = task == "classification"

    def smiles_features(featuriser):
        if smiles_column is None:
            return featuriser
        return ColumnTransformer([("smiles", featuriser, [smiles_column])])

    def tag(**kw):
        return (TagClassifier if clf else TagRegressor)(model=model, domains=domains, random_state=random_state, **kw)

    classical = dict(default_classical_models(task, smiles_column=smiles_column, random_state=random_state))

    def hgb():
        return classical["hgb_descriptors"]

    def hybrid(**kw):
        Hybrid = HybridClassifier if clf else HybridRegressor
        return Hybrid(model=model, domains=domains, smiles_column=smiles_column, random_state=random_state, **kw)

    if name == "tag":
        return tag()
    if name == "tag_paper":
        return tag(readout="tag", head_init="random", head_update="gradient", early_stopping=False)
    if name == "tag_deep":
        return tag(tag_depth="deep")
    if name == "tag_text":
        return tag(domain_tags="text")
    if name == "tag_pretrained":
        return PretrainedTag(tag(), column=smiles_column, random_state=random_state)
    if name == "tag_untrained_domain":
        return tag(domain_tags=None)
    if name in ("llm_embedding", "llm_embedding_pretrained"):
        return default_llm_model(task, model=model, domains=domains,
                                 domain_tags="pretrained" if name == "llm_embedding_pretrained" else None)
    if name in ("hybrid", "hybrid_tag", "stack_classical"):
        return hybrid(llm={"hybrid": "embedding", "hybrid_tag": "tag", "stack_classical": None}[name])
    if name == "stack":
        if clf:
            return StackingClassifier([("tag", tag()), ("hgb", hgb())], cv=5)
        return StackingRegressor([("tag", tag()), ("hgb", hgb())], final_estimator=RidgeCV(), cv=5)
    if name == "rf_morgan_counts":
        return classical["rf_morgan_counts"]
    if name == "rf_morgan":
        est = (RandomForestClassifier if clf else RandomForestRegressor)(n_estimators=500, random_state=random_state)
        return Pipeline([("features", smiles_features(MorganFingerprint(radius=2, n_bits=2048))), ("model", est)])
    if name == "linear_morgan":
        est = (logistic_regression_cv(Cs=np.logspace(-3, 1, 5), cv=3, max_iter=2000) if clf
               else RidgeCV(alphas=np.logspace(-1, 3, 9)))
        return Pipeline([("features", smiles_features(MorganFingerprint(radius=2, n_bits=2048))), ("model", est)])
    if name == "hgb_descriptors":
        return hgb()
    return DummyClassifier(strategy="prior") if clf else DummyRegressor(strategy="mean")


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
        self.estimator = estimator
        self.column = column
        self.max_iter = max_iter
        self.max_samples = max_samples
        self.random_state = random_state

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
            The training strings.
        y : array-like of shape (n_samples,)
            The targets.

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
            The input strings.

        Returns
        -------
        ndarray
            The fitted estimator's predictions.
        """
        return self.estimator_.predict(X)

    def predict_proba(self, X):
        """Predict class probabilities with the fitted classifier.

        Parameters
        ----------
        X : sequence of str, or DataFrame / 2-D array of str columns
            The input strings.

        Returns
        -------
        ndarray of shape (n_samples, n_classes)
            The fitted classifier's class probabilities.
        """
        return self.estimator_.predict_proba(X)
