"""sktag: Tag-LLM as scikit-learn estimators.

Learned *domain tags* and *function tags* (Shen et al., ICML 2024,
arXiv:2402.05140) on a frozen causal language model, exposed as
scikit-learn regressors and classifiers for SMILES, protein sequences and
other non-prose strings.
"""

from ._aliases import install as _install_aliases

_install_aliases()  # module paths of earlier versions (pickles) still import

from ._version import __version__
from ._fit.training import Callback
from ._forward.prefix_store import clear_prefix_store, prefix_store_info, set_prefix_store
from .backbone import clear_backbone_cache, load_backbone
from .embedding import LLMEmbedding
from .estimators import TagClassifier, TagRegressor
from .hybrid import HybridClassifier, HybridRegressor
from .exceptions import InvalidInputError, PerformanceWarning, TagMismatchError, TruncationWarning
from .pretrain import DescriptorTagPretrainer, DomainTagPretrainer
from .tags import TagSet

__all__ = [
    "TagRegressor",
    "TagClassifier",
    "HybridRegressor",
    "HybridClassifier",
    "DescriptorTagPretrainer",
    "DomainTagPretrainer",
    "LLMEmbedding",
    "TagSet",
    "TagMismatchError",
    "InvalidInputError",
    "PerformanceWarning",
    "TruncationWarning",
    "Callback",
    "load_backbone",
    "clear_backbone_cache",
    "set_prefix_store",
    "clear_prefix_store",
    "prefix_store_info",
    "__version__",
]
