"""Parameter constraints (``sktag._runtime.validation``): checked in ``fit``, never in ``__init__``,
with scikit-learn's wording."""

import pytest
import torch

from conftest import small_reg
from sktag import DomainTagPretrainer, TagClassifier, TagRegressor
from sktag._runtime.validation import Interval, Options, validate_params

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


_PARAM_ERROR = r"The '{}' parameter of TagRegressor must be {}\. Got {} instead\."

_DTYPES = r"a str among \{'auto', 'float32', 'fp32', 'bfloat16', 'bf16', 'float16', 'fp16'\} or a torch\.dtype"

@pytest.mark.parametrize("name, value, match", [
    ("dtype", "float64", _PARAM_ERROR.format("dtype", _DTYPES, "'float64'")),
    ("dtype", "int8", _PARAM_ERROR.format("dtype", _DTYPES, "'int8'")),
    ("dtype", torch.int8, r"dtype=torch\.int8 is not supported"),
    ("dtype", 32, _PARAM_ERROR.format("dtype", _DTYPES, "32")),
    ("device", "tpu9", r"device='tpu9' is not a valid torch device"),
    ("device", 0, _PARAM_ERROR.format("device", r"an instance of str or a torch\.device", "0")),
    ("device", "cuda:0", r"device='cuda:0' was requested but CUDA is not available"),
    ("on_invalid", "ignore", _PARAM_ERROR.format("on_invalid", r"a str among \{'raise', 'nan'\}", "'ignore'")),
    ("truncation", "cut", _PARAM_ERROR.format("truncation", r"a str among \{'warn', 'raise'\}", "'cut'")),
    ("max_length", 0, _PARAM_ERROR.format("max_length", r"an int in the range \[1, inf\]", "0")),
])
def test_bad_params_raise_in_fit_not_init(tiny_model, name, value, match):
    if value == "cuda:0" and torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    est = small_reg(tiny_model, **{name: value})  # constructing never validates
    assert est.get_params()[name] is value
    with pytest.raises(ValueError, match=match):
        est.fit(["a", "b"], [1.0, 2.0])
    assert not hasattr(est, "module_")



def test_constraint_descriptions():
    assert str(Interval("int", 1)) == "an int in the range [1, inf]"
    assert str(Interval("real", 0, 1, closed="neither")) == "a float in the range (0, 1)"
    assert Interval("int", 1)(3) and not Interval("int", 1)(True) and not Interval("real", 0)(float("nan"))
    assert Options("a", "b")("a") and not Options("a", "b")("c")


@pytest.mark.parametrize("Est", [TagRegressor, TagClassifier, DomainTagPretrainer])
def test_every_parameter_has_a_constraint(Est):
    missing = set(Est().get_params()) - set(Est._parameter_constraints)
    assert not missing
    validate_params(Est())  # the defaults are valid