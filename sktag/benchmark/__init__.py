"""Benchmark sktag's models against classical ones on your own data.

:func:`compare` cross-validates named models (the Tag-LLM defaults, the
paper's estimator, ``LLMEmbedding`` + ridge / logistic, Morgan counts +
random forest, RDKit descriptors + HistGradientBoosting, a dummy, a stack)
and your own estimators on the same folds -- scaffold-grouped folds for
SMILES by default -- and returns a :class:`BenchmarkResult` with a tidy
per-fold table, a summary, paired statistics against the best classical
model (Nadeau and Bengio's corrected resampled t-test, or a paired
bootstrap), Markdown and a plot.  ``sktag-benchmark data.csv ...`` (or
``python -m sktag.benchmark``) does the same on a CSV file.

See :func:`compare` for an example.
"""

from ._compare import compare
from ._env import environment
from ._metrics import DEFAULT_SCORING, METRICS, Metric, concordance_index, get_metric
from ._models import PretrainedTag, make_model
from ._registry import DEFAULT_MODELS, LLM_MODELS, MODELS, ModelContext, register_model, unregister_model
from ._result import BenchmarkResult
from ._stats import bootstrap_ci, corrected_ttest

__all__ = ["compare", "BenchmarkResult", "make_model", "MODELS", "DEFAULT_MODELS", "LLM_MODELS", "Metric",
           "METRICS", "DEFAULT_SCORING", "get_metric", "concordance_index", "corrected_ttest", "bootstrap_ci",
           "PretrainedTag", "environment", "register_model", "unregister_model", "ModelContext"]
