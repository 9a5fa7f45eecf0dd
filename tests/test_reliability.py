"""Reliability and security (issue 7).

Bad inputs give a clear error (type and message naming the problem and the
row) and never modify the caller's data; training stops on a non-finite
loss; fits are deterministic; pickles are small, backbone-free and load on
a CPU-only machine; an interrupted fit stays usable; nothing is unpickled
from tag files and nothing touches the network for a local model.
"""

import contextlib
import copy
import json
import os
import pickle
import struct
import subprocess
import sys
import textwrap
import time
import warnings

import joblib
import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning, NotFittedError

import sktag
from sktag import TagClassifier, TagMismatchError, TagRegressor, TagSet
from sktag.exceptions import TruncationWarning
from sktag.domains import InvalidInputError

TESTS_DIR = os.path.dirname(os.path.abspath(__file__))
REPO_DIR = os.path.dirname(TESTS_DIR)

# early_stopping=False: most cases use a handful of rows, too few to hold out a validation set
PARAMS = dict(tag_length=3, max_iter=2, batch_size=16, learning_rate_init=1e-2, random_state=0,
              early_stopping=False)

SMILES = ["CCO", "OCC", "CCN", "CCC", "c1ccccc1", "CO", "CN", "CC(=O)O", "C1CCCCC1", "CCCl",
          "O=C=O", "CC(C)O"]
Y_SMILES = np.linspace(-1.0, 2.0, len(SMILES))
PROTEINS = ["MKV", "ACDEFG", "mkvl", "GGGG", "WYWY", "KLMN"]
Y_PROTEINS = np.arange(len(PROTEINS), dtype=float)
TEXT = ["a", "bb", "ccc", "dddd", "ee", "f", "ggg", "hhhh"]
Y_CLF = np.array([0, 1, 1, 0, 1, 0, 1, 0])

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    """One torch thread: tiny models gain nothing from more, and on a shared
    two-core machine spinning OpenMP threads make every fit 100x slower."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


# --------------------------------------------------------------------- helpers
def _assert_same(after, before):
    if isinstance(before, pd.DataFrame):
        pd.testing.assert_frame_equal(after, before)
    elif isinstance(before, pd.Series):
        pd.testing.assert_series_equal(after, before)
    elif isinstance(before, np.ndarray):
        assert after.dtype == before.dtype and after.shape == before.shape
        if before.dtype == object:
            assert repr(after.tolist()) == repr(before.tolist())
        else:
            np.testing.assert_array_equal(after, before)
    else:
        assert type(after) is type(before)
        assert repr(after) == repr(before)  # repr: NaN == NaN, None kept


@contextlib.contextmanager
def unchanged(*objs):
    """Assert that the wrapped call leaves every object in ``objs`` as it was."""
    snapshots = [copy.deepcopy(o) for o in objs]
    yield
    for o, s in zip(objs, snapshots):
        _assert_same(o, s)


def _reg(model, **kw):
    return TagRegressor(model=model, **{"domains": "Text", **PARAMS, **kw})


def _clf(model, **kw):
    return TagClassifier(model=model, **{"domains": "Text", **PARAMS, **kw})


@pytest.fixture(scope="module")
def smiles_reg(tiny_model):
    return _reg(tiny_model, domains="SMILES").fit(SMILES, Y_SMILES)


@pytest.fixture(scope="module")
def protein_reg(tiny_model):
    return _reg(tiny_model, domains="Protein").fit(PROTEINS, Y_PROTEINS)


@pytest.fixture(scope="module")
def text_clf(tiny_model):
    return _clf(tiny_model).fit(TEXT, Y_CLF)


@pytest.fixture(scope="module")
def frame():
    return pd.DataFrame({"smiles": ["CCO", "CCN", "c1ccccc1", "CO", "CN", "CCC"],
                         "text": ["x", "yy", "z", "ww", "v", "uuu"]},
                        index=["a", "b", "c", "d", "e", "f"])


@pytest.fixture(scope="module")
def frame_reg(tiny_model, frame):
    return _reg(tiny_model, domains={"smiles": "SMILES", "text": "Text"}).fit(frame, np.arange(6.0))


# ===================================================== 1. invalid inputs, fit
BAD_SMILES = ["CCO", "C1CC", "CCN", "c1cccc1"]
SMILES_MSG = (r"2 invalid SMILES strings:\n  row 1: 'C1CC' \(unclosed ring\)\n"
              r"  row 3: 'c1cccc1' \(Can't kekulize mol")
PROTEIN_MSG = r"1 invalid Protein string:\n  row 1: 'MK1' \(invalid character '1'"

FIT_CASES = [
    # id, estimator, kwargs, X, y, exception, message
    ("bad-smiles", "reg", {"domains": "SMILES"}, BAD_SMILES, [1.0, 2.0, 3.0, 4.0],
     InvalidInputError, SMILES_MSG),
    ("bad-smiles-array", "reg", {"domains": "SMILES"}, np.array(BAD_SMILES, dtype=object),
     np.array([1.0, 2.0, 3.0, 4.0]), InvalidInputError, SMILES_MSG),
    ("bad-protein", "reg", {"domains": "Protein"}, ["MKV", "MK1", "ACD"], [1.0, 2.0, 3.0],
     InvalidInputError, PROTEIN_MSG),
    ("empty-string", "reg", {}, ["a", "", "b"], [1.0, 2.0, 3.0],
     ValueError, r"1 empty strings: row 1: ''"),
    ("whitespace-string", "reg", {}, ["a", "b", "  \t"], [1.0, 2.0, 3.0],
     ValueError, r"1 empty strings: row 2: '  \\t'"),
    ("empty-smiles", "reg", {"domains": "SMILES"}, ["CCO", ""], [1.0, 2.0],
     ValueError, r"1 empty strings: row 1: ''"),
    ("none-in-X", "reg", {}, ["a", None, "b"], [1.0, 2.0, 3.0],
     ValueError, r"1 missing values \(None/NaN\): row 1: None\. sktag needs a string in every cell"),
    ("nan-in-X", "clf", {}, ["a", "b", float("nan"), "c"], [0, 1, 0, 1],
     ValueError, r"1 missing values \(None/NaN\): row 2: nan\."),
    ("int-in-X", "reg", {}, ["a", 3, "b"], [1.0, 2.0, 3.0],
     TypeError, r"1 non-string values: row 1: 3 of type int\. Convert them to str"),
    ("bytes-in-X", "reg", {}, ["a", b"CCO"], [1.0, 2.0],
     TypeError, r"1 non-string values: row 1: b'CCO' of type bytes"),
    ("single-string-X", "reg", {}, "CCO", [1.0],
     TypeError, r"X must be a sequence of strings .* not a single string"),
    ("y-nan", "reg", {}, ["a", "b", "c"], [1.0, float("nan"), 2.0],
     ValueError, r"y contains NaN or infinity in 1 rows \(rows \[1\]\)"),
    ("y-inf", "reg", {}, ["a", "b", "c"], np.array([1.0, 2.0, -np.inf]),
     ValueError, r"y contains NaN or infinity in 1 rows \(rows \[2\]\)"),
    ("y-nan-clf", "clf", {}, ["a", "b", "c"], np.array([0.0, np.nan, 1.0]),
     ValueError, r"y contains NaN or infinity in 1 rows \(rows \[1\]\)"),
    ("y-none-clf", "clf", {}, ["a", "b", "c"], [0, None, 1],
     ValueError, r"y has missing labels in rows \[1\]"),
    ("y-non-numeric-reg", "reg", {}, ["a", "b"], ["1.5", "x"],
     ValueError, r"y must be numeric for a regressor"),
    ("y-missing", "reg", {}, ["a", "b"], None,
     ValueError, r"TagRegressor requires y to be passed, but the target y is None"),
    ("len-mismatch", "reg", {}, ["a", "b", "c"], [1.0, 2.0],
     ValueError, r"X has 3 samples but y has 2; they must match"),
    ("len-mismatch-clf", "clf", {}, ["a", "b", "c", "d"], [0, 1, 0],
     ValueError, r"X has 4 samples but y has 3; they must match"),
    ("y-empty", "reg", {}, ["a", "b", "c"], [],
     ValueError, r"X has 3 samples but y has 0; they must match"),
    ("zero-samples", "reg", {}, [], [],
     ValueError, r"Found array with 0 sample\(s\) \(shape=\(0, 1\)\) while a minimum of 1 is required"),
    ("zero-samples-clf", "clf", {}, np.array([], dtype=object), np.array([]),
     ValueError, r"Found array with 0 sample\(s\) \(shape=\(0, 1\)\) while a minimum of 1 is required"),
    ("one-sample-early-stopping", "reg", {"early_stopping": True}, ["a"], [1.0],
     ValueError, r"early_stopping needs at least one training and two validation samples; with 1 "
                 r"samples and validation_fraction=0\.1"),
    ("few-samples-early-stopping", "clf", {"early_stopping": True}, ["a", "b", "c", "d"],
     [0, 1, 0, 1], ValueError,
     r"early_stopping needs at least one training and two validation samples; with 4 samples"),
    ("few-samples-stratified-split", "clf", {"early_stopping": True, "validation_fraction": 0.3},
     ["a", "b", "c", "d", "e", "f"], [0, 1, 2, 0, 1, 2], ValueError,
     r"Cannot hold out a stratified validation set of 2 samples: .*number of classes = 3"),
    ("one-class", "clf", {}, ["a", "b", "c"], ["x", "x", "x"],
     ValueError, r"y has only one class \('x'\); a classifier needs at least two"),
    ("one-sample-clf", "clf", {}, ["a"], [1],
     ValueError, r"y has only one class \(1\); a classifier needs at least two"),
    ("continuous-y-clf", "clf", {}, ["a", "b", "c"], [0.5, 1.25, 2.0],
     ValueError, r"y looks continuous \(non-integer floats\); TagClassifier needs class labels"),
    ("y-2d-clf", "clf", {}, ["a", "b"], [[0, 1], [1, 0]],
     ValueError, r"y must be 1-D for TagClassifier, got shape \(2, 2\)"),
    ("truncation-raise", "reg", {"max_length": 4, "truncation": "raise"}, ["abcdefg", "ab", "abcdef"],
     [1.0, 2.0, 3.0], ValueError,
     r"2 rows have strings longer than max_length=4 tokens \(rows \[0, 2\]; longest 7 tokens\)"),
    ("y-overflow", "reg", {}, ["a", "b", "c"], [1e300, -1e300, 0.0],
     ValueError, r"y is too large to standardise \(largest \|y\| = 1e\+300\)"),
    ("bad-dict-domains", "reg", {"domains": {"smiles": "SMILES"}},
     pd.DataFrame({"smiles": ["CCO"], "other": ["x"]}), [1.0],
     ValueError, r"domains must name every column of X exactly: .*missing \['other'\]"),
]


@pytest.mark.parametrize("case", FIT_CASES, ids=[c[0] for c in FIT_CASES])
def test_fit_rejects_bad_input_without_touching_it(case, tiny_model):
    _, kind, kw, X, y, exc, match = case
    est = (_reg if kind == "reg" else _clf)(tiny_model, **kw)
    with unchanged(X, y), pytest.raises(exc, match=match):
        est.fit(X, y)


def test_invalid_rows_are_listed_with_dataframe_index(tiny_model):
    X = pd.DataFrame({"mol": ["CCO", "C1CC", "CN"]}, index=["first", "second", "third"])
    y = pd.Series([1.0, 2.0, 3.0], index=X.index)
    with unchanged(X, y), pytest.raises(InvalidInputError,
                                        match=r"in column 'mol':\n  row 1 \(index 'second'\): 'C1CC'") as info:
        _reg(tiny_model, domains={"mol": "SMILES"}).fit(X, y)
    assert info.value.rows == [1]


def test_valid_smiles_are_canonicalised_on_a_copy(tiny_model):
    X = ["OCC", "C(C)O", "c1ccccc1", "N#N"]
    X_arr = np.array(X, dtype=object)
    df = pd.DataFrame({"s": X})
    y = np.array([1.0, 2.0, 3.0, 4.0])
    with unchanged(X, X_arr, df, y):
        est = _reg(tiny_model, domains="SMILES", max_iter=1).fit(X, y)
        est.predict(X_arr)
        _reg(tiny_model, domains={"s": "SMILES"}, max_iter=1).fit(df, y).predict(df)
    assert X[0] == "OCC"  # not replaced by the canonical "CCO"


# ================================================= 1. invalid inputs, predict
PREDICT_CASES = [
    ("bad-smiles", "smiles_reg", BAD_SMILES, InvalidInputError, SMILES_MSG),
    ("bad-protein", "protein_reg", ["MKV", "MK1", "ACD"], InvalidInputError, PROTEIN_MSG),
    ("protein-gap", "protein_reg", ["MK-V"], InvalidInputError,
     r"1 invalid Protein string:\n  row 0: 'MK-V' \(invalid character '-'"),
    ("empty-string", "smiles_reg", ["CCO", ""], ValueError, r"1 empty strings: row 1: ''"),
    ("none", "smiles_reg", ["CCO", None], ValueError, r"1 missing values \(None/NaN\): row 1: None"),
    ("nan", "text_clf", np.array(["a", np.nan], dtype=object), ValueError,
     r"1 missing values \(None/NaN\): row 1: nan"),
    ("float", "text_clf", ["a", 1.5], TypeError, r"1 non-string values: row 1: 1\.5 of type float"),
    ("zero-samples", "smiles_reg", [], ValueError,
     r"Found array with 0 sample\(s\) \(shape=\(0,\)\) while a minimum of 1 is required"),
    ("two-columns-for-one", "smiles_reg", np.array([["CCO", "CCO"]], dtype=object), ValueError,
     r"X has 2 features, but TagRegressor is expecting 1 features as input"),
    ("3-d", "smiles_reg", np.array([[["CCO"]]], dtype=object), ValueError,
     r"X must be 1-D or 2-D, got an array with 3 dimensions"),
]


@pytest.mark.parametrize("case", PREDICT_CASES, ids=[c[0] for c in PREDICT_CASES])
def test_predict_rejects_bad_input_without_touching_it(case, request):
    _, fixture, X, exc, match = case
    est = request.getfixturevalue(fixture)
    with unchanged(X), pytest.raises(exc, match=match):
        est.predict(X)


@pytest.mark.parametrize("how, match", [
    ("renamed", r"The column names of X \['smiles', 'words'\] differ from those seen in fit "
                r"\['smiles', 'text'\]"),
    ("swapped", r"The column names of X \['text', 'smiles'\] differ from those seen in fit"),
    ("one-column", r"X has 1 features, but TagRegressor is expecting 2 features as input"),
    ("three-columns", r"X has 3 features, but TagRegressor is expecting 2 features as input"),
])
def test_predict_with_other_columns(frame_reg, frame, how, match):
    X = {"renamed": lambda f: f.rename(columns={"text": "words"}),
         "swapped": lambda f: f[["text", "smiles"]],
         "one-column": lambda f: f[["smiles"]],
         "three-columns": lambda f: f.assign(extra="q")}[how](frame)
    with unchanged(X, frame), pytest.raises(ValueError, match=match):
        frame_reg.predict(X)


def test_predict_without_names_after_dataframe_fit_warns(frame_reg, frame):
    arr = frame.to_numpy()
    with unchanged(arr), pytest.warns(UserWarning, match="X has no column names"):
        pred = frame_reg.predict(arr)
    np.testing.assert_allclose(pred, frame_reg.predict(frame), rtol=1e-6)


@pytest.mark.parametrize("method", ["predict", "predict_proba", "decision_function", "tagset", "score"])
def test_not_fitted(tiny_model, method):
    est = _clf(tiny_model)
    args = {"tagset": (), "score": (TEXT, Y_CLF)}.get(method, (TEXT,))
    with pytest.raises(NotFittedError, match="This TagClassifier instance is not fitted yet"):
        getattr(est, method)(*args)


def _truncation_warnings(record):
    return [w for w in record if issubclass(w.category, TruncationWarning)]


def test_truncation_warns_once_and_counts_rows(tiny_model):
    X = ["abcdefgh", "ab", "abcdefghij", "abc", "abcdefghijkl"]
    y = np.arange(5.0)
    est = _reg(tiny_model, max_length=6, max_iter=1)
    with warnings.catch_warnings(record=True) as rec, unchanged(X, y):
        warnings.simplefilter("always")
        est.fit(X, y)
    trunc = _truncation_warnings(rec)
    assert len(trunc) == 1
    assert str(trunc[0].message) == ("3 of 5 rows had strings longer than max_length=6 tokens and "
                                     "were truncated.")
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        pred = est.predict(X[:2])
    trunc = _truncation_warnings(rec)
    assert len(trunc) == 1 and str(trunc[0].message).startswith("1 of 2 rows")
    assert np.isfinite(pred).all()


def test_truncation_counts_rows_not_cells(tiny_model):
    df = pd.DataFrame({"a": ["xxxxxxxx", "x", "xxxxxxxx"], "b": ["yyyyyyyy", "y", "y"]})
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        _reg(tiny_model, domains={"a": "T", "b": "T"}, max_length=4, max_iter=1).fit(df, [1.0, 2.0, 3.0])
    trunc = _truncation_warnings(rec)
    assert len(trunc) == 1 and str(trunc[0].message).startswith("2 of 3 rows")


@pytest.mark.parametrize("model, match", [
    ("no-such-org/no-such-model-xyz", r"Could not load model='no-such-org/no-such-model-xyz'"),
    ("gpt-nonexistent-model-xyz", r"Could not load model='gpt-nonexistent-model-xyz'"),
    ("./no/such/folder", r"model='\./no/such/folder': no such folder"),
    ("/no/such/folder/at/all", r"model='/no/such/folder/at/all': no such folder"),
])
def test_unknown_model_fails_fast(model, match):
    assert os.environ.get("HF_HUB_OFFLINE") == "1"
    est = TagRegressor(model=model, domains="Text", max_iter=1)
    t0 = time.perf_counter()
    with pytest.raises(ValueError, match=match):
        est.fit(["a", "b"], [1.0, 2.0])
    assert time.perf_counter() - t0 < 5


def test_model_that_is_a_file(tmp_path):
    f = tmp_path / "weights.bin"
    f.write_bytes(b"\0" * 16)
    with pytest.raises(ValueError, match=r"is a file, not a model folder"):
        TagRegressor(model=str(f), domains="Text").fit(["a"], [1.0])


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
    est = _reg(tiny_model, **{name: value})  # constructing never validates
    assert est.get_params()[name] is value
    with pytest.raises(ValueError, match=match):
        est.fit(["a", "b"], [1.0, 2.0])
    assert not hasattr(est, "module_")


def test_on_invalid_nan_keeps_order_and_length(smiles_reg, text_clf):
    X = ["OCC", "C1CC", "c1ccccc1", "c1cccc1", "CN"]
    est = copy.deepcopy(smiles_reg).set_params(on_invalid="nan")
    with unchanged(X):
        pred = est.predict(X)
    assert pred.shape == (5,)
    np.testing.assert_array_equal(np.isnan(pred), [False, True, False, True, False])
    np.testing.assert_allclose(pred[[0, 2, 4]], smiles_reg.predict(["CCO", "c1ccccc1", "CN"]), rtol=1e-6)
    # the default still raises
    with pytest.raises(InvalidInputError, match="2 invalid SMILES strings"):
        smiles_reg.predict(X)


def test_on_invalid_nan_classifier(tiny_model):
    clf = _clf(tiny_model, domains="SMILES", on_invalid="nan").fit(SMILES[:8], Y_CLF)
    X = ["CCO", "C1CC", "CN"]
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # no 'All-NaN slice' noise
        proba = clf.predict_proba(X)
        log_proba = clf.predict_log_proba(X)
        # a label array has no missing value: predict (and so score) refuse, naming the rows
        with pytest.raises(ValueError, match=r"1 rows of X are invalid \(rows \[1\]\)"):
            clf.predict(X)
        with pytest.raises(ValueError, match=r"rows \[1\]"):
            clf.score(X, [0, 1, 0])
        labels = clf.predict(["CCO", "CN"])
    np.testing.assert_array_equal(np.isnan(log_proba).any(axis=1), [False, True, False])
    assert labels[0] in clf.classes_ and labels[1] in clf.classes_
    np.testing.assert_array_equal(labels, clf.classes_[proba[[0, 2]].argmax(axis=1)])
    assert proba.shape == (3, 2)
    np.testing.assert_array_equal(np.isnan(proba).any(axis=1), [False, True, False])
    np.testing.assert_allclose(proba[[0, 2]].sum(axis=1), 1.0)


# ======================================================= 1. tag files
@pytest.fixture(scope="module")
def tag_file(smiles_reg, tmp_path_factory):
    path = tmp_path_factory.mktemp("tags") / "smiles.safetensors"
    smiles_reg.save_tags(path)
    return path


def test_tags_from_another_backbone(tag_file, other_tiny_model):
    est = _reg(other_tiny_model, domains="SMILES", domain_tags=str(tag_file))
    with pytest.raises(TagMismatchError, match=r"these tags were learned on backbone .*tiny-llama.* and "
                                               r"do not fit model .*tiny-llama-2"):
        est.fit(SMILES, Y_SMILES)
    est = _reg(other_tiny_model, domains="SMILES", domain_tags=TagSet.load(tag_file))
    with pytest.raises(TagMismatchError, match="do not fit model"):
        est.fit(SMILES, Y_SMILES)


def test_truncated_and_tampered_tag_files(tag_file, tiny_model, tmp_path):
    raw = tag_file.read_bytes()
    truncated = tmp_path / "truncated.safetensors"
    truncated.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(ValueError, match=r"truncated\.safetensors' is not a readable safetensors tag file"):
        _reg(tiny_model, domains="SMILES", domain_tags=str(truncated)).fit(SMILES, Y_SMILES)
    cut_tail = tmp_path / "cut.safetensors"
    cut_tail.write_bytes(raw[:-4])
    with pytest.raises(ValueError, match="is not a readable safetensors tag file"):
        TagSet.load(cut_tail)
    tampered = tmp_path / "tampered.safetensors"
    data = bytearray(raw)
    data[-3] ^= 0x40  # flip a bit of the last tensor
    tampered.write_bytes(bytes(data))
    with pytest.raises(ValueError, match=r"is corrupt or was modified: its tensors do not match the checksum"):
        _reg(tiny_model, domains="SMILES", domain_tags=str(tampered)).fit(SMILES, Y_SMILES)
    with pytest.raises(FileNotFoundError, match="no tag file at"):
        _reg(tiny_model, domains="SMILES", domain_tags=str(tmp_path / "missing.safetensors")).fit(SMILES, Y_SMILES)


def _rewrite_metadata(raw, edit):
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    meta = json.loads(header["__metadata__"]["sktag"])
    edit(meta)
    header["__metadata__"] = {"sktag": json.dumps(meta)}
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h)) + h + raw[8 + n:]


def test_tag_file_with_tampered_metadata(tag_file, tmp_path):
    bad = tmp_path / "ghost.safetensors"
    bad.write_bytes(_rewrite_metadata(tag_file.read_bytes(),
                                      lambda m: m["tags"].update(Ghost={"kind": "domain", "tag_length": 3})))
    with pytest.raises(ValueError, match="Ghost"):
        TagSet.load(bad)


# ======================================================== 2. numerical safety
def test_non_finite_loss_stops_training(tiny_model):
    X, y = TEXT, np.arange(8.0)
    # the paper's training (gradient-trained head on the function tag's state): a closed-form head
    # on normalised hidden states never sees a non-finite loss
    est = _reg(tiny_model, learning_rate_init=1e30, max_iter=6, readout="tag", head_init="random",
               head_update="gradient")
    with unchanged(X, y), pytest.raises(
            FloatingPointError,
            match=r"The training loss became (inf|nan|-inf) in epoch \d+; the weights of the last finite "
                  r"epoch were kept\. Lower learning_rate_init \(now 1e\+30\) or check the targets"):
        est.fit(X, y)
    assert est.n_iter_ >= 1 and len(est.loss_curve_) == est.n_iter_
    assert all(np.isfinite(est.loss_curve_))
    assert all(torch.isfinite(p).all() for p in est.module_.parameters())
    assert np.isfinite(est.predict(X)).all()
    # non-finite in the first epoch (2 batches: the first step blows up the second): nothing was
    # learned, so the estimator is left as it was, unfitted
    fresh = clone(est).set_params(batch_size=4)
    with unchanged(X, y), pytest.raises(FloatingPointError, match=r"in epoch 1; nothing was learned, so the "
                                                                  r"estimator is left as it was"):
        fresh.fit(X, y)
    assert not hasattr(fresh, "module_") and not hasattr(fresh, "loss_curve_")


def test_predict_is_finite_for_valid_input(smiles_reg, text_clf):
    X = ["C" * 700, "CCO", "c1ccc2ccccc2c1", "[Na+].[Cl-]", "C"]
    with pytest.warns(TruncationWarning):
        pred = smiles_reg.predict(X)
    assert pred.shape == (5,) and np.isfinite(pred).all()
    with pytest.warns(TruncationWarning, match="1 of 4 rows"):
        proba = text_clf.predict_proba(["a", "x" * 600, "?!", "é"])
    assert np.isfinite(proba).all()
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)


def test_one_sample_regression_is_finite(tiny_model):
    est = _reg(tiny_model).fit(["CCO"], [3.5])
    assert np.isfinite(est.predict(["CCO", "N"])).all()


# ============================================================ 3. determinism
def test_same_random_state_is_bitwise_identical(make_reg, length_task):
    X, y = length_task[0][:16], length_task[1][:16]
    p1 = make_reg(max_iter=2, batch_size=8).fit(X, y).predict(X)
    p2 = make_reg(max_iter=2, batch_size=8).fit(X, y).predict(X)
    assert p1.tobytes() == p2.tobytes()
    p3 = make_reg(max_iter=2, batch_size=8, random_state=1).fit(X, y).predict(X)
    assert not np.array_equal(p1, p3)


# The same fit in a fresh process, with the network switched off: checks that
# importing sktag and fitting on a local folder never open a socket, and that
# the predictions are bitwise those of this process.
_CHILD = textwrap.dedent("""
    import json, os, socket, sys, tempfile
    attempts = []
    def _blocked(*args, **kwargs):
        attempts.append(repr(args)[:200])
        raise OSError("network access blocked by the test")
    class _NoSocket(socket.socket):
        def __init__(self, *args, **kwargs):
            _blocked(*args)
    socket.socket = _NoSocket
    socket.create_connection = _blocked
    socket.getaddrinfo = _blocked
    import sktag
    after_import = len(attempts)
    os.environ["HF_HUB_OFFLINE"] = "0"        # conftest must not switch the hub off here
    os.environ["TRANSFORMERS_OFFLINE"] = "0"
    sys.path.insert(0, {tests!r})
    from conftest import _length_task, build_tiny_model
    import torch; torch.set_num_threads(1)  # as in the parent
    import warnings; warnings.simplefilter("ignore")
    X, y = _length_task(120)
    X, y = X[:16], y[:16]
    with tempfile.TemporaryDirectory() as d:
        path = build_tiny_model(d)
        est = sktag.TagRegressor(model=path, **{params!r}).fit(X, y)
        pred = est.predict(X)
        print(json.dumps({{"after_import": after_import, "attempts": attempts,
                           "fingerprint": est.backbone_fingerprint_,
                           "pred": pred.tobytes().hex(), "repr": repr(pred.tolist())}}))
""")
_CHILD_PARAMS = dict(domains="Text", tag_length=3, max_iter=2, batch_size=8, learning_rate_init=1e-2,
                     random_state=0)


@pytest.fixture(scope="module", autouse=True)
def _child_process():
    """Start the child at the beginning of the module; it runs while the other tests do."""
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
    env["PYTHONPATH"] = REPO_DIR + os.pathsep + env.get("PYTHONPATH", "")
    proc = subprocess.Popen([sys.executable, "-c", _CHILD.format(tests=TESTS_DIR, params=_CHILD_PARAMS)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=TESTS_DIR)
    yield proc
    if proc.poll() is None:
        proc.kill()
    proc.communicate()


@pytest.fixture(scope="module")
def child_run(_child_process):
    out, err = _child_process.communicate(timeout=180)
    assert _child_process.returncode == 0, err[-3000:]
    return json.loads(out.strip().splitlines()[-1])


def test_no_network_at_import_or_local_fit(child_run):
    assert child_run["after_import"] == 0
    assert child_run["attempts"] == []


def test_bitwise_identical_across_processes(child_run, tiny_model, length_task):
    X, y = length_task[0][:16], length_task[1][:16]
    est = TagRegressor(model=tiny_model, **_CHILD_PARAMS).fit(X, y)
    assert child_run["fingerprint"] == est.backbone_fingerprint_  # same tiny model
    pred = est.predict(X)
    assert child_run["repr"] == repr(pred.tolist())
    assert child_run["pred"] == pred.tobytes().hex()


# ============================================================ 4. persistence
def test_pickle_and_joblib_round_trips(smiles_reg, text_clf, tmp_path):
    for est in (smiles_reg, text_clf):
        X = SMILES if est is smiles_reg else TEXT
        expected = est.predict(X)
        np.testing.assert_array_equal(pickle.loads(pickle.dumps(est)).predict(X), expected)
        joblib.dump(est, tmp_path / "est.joblib")
        np.testing.assert_array_equal(joblib.load(tmp_path / "est.joblib").predict(X), expected)
    proba = text_clf.predict_proba(TEXT)
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(text_clf)).predict_proba(TEXT), proba)


def test_pickle_holds_no_backbone_weights(smiles_reg):
    data = pickle.dumps(smiles_reg)
    model = smiles_reg._get_backbone().model
    emb = model.get_input_embeddings().weight.detach().float().numpy()
    model_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    assert len(data) < 200_000
    assert len(data) < emb.nbytes < model_bytes
    assert emb[5].tobytes() not in data and emb[-1].tobytes() not in data
    assert "_backbone" not in pickle.loads(data).__dict__
    assert "_backbone" in smiles_reg.__dict__  # pickling does not strip the live estimator


def test_pickle_with_cuda_device_loads_on_cpu_only_machine(smiles_reg, monkeypatch):
    est = pickle.loads(pickle.dumps(smiles_reg)).set_params(device="cuda")
    expected = smiles_reg.predict(SMILES)
    data = pickle.dumps(est)
    payloads = []
    real = torch.storage._load_from_bytes

    def record(b):
        payloads.append(b)
        return real(b)

    monkeypatch.setattr(torch.storage, "_load_from_bytes", record)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    loaded = pickle.loads(data)
    assert payloads, "expected the tags to be pickled as torch storages"
    for b in payloads:  # storage location tags recorded by torch.save
        assert b"cpu" in b and b"cuda" not in b
    assert all(p.device.type == "cpu" for p in loaded.module_.parameters())
    with pytest.raises(ValueError, match=r"device='cuda' was requested but CUDA is not available"):
        loaded.predict(SMILES)
    np.testing.assert_array_equal(loaded.set_params(device="cpu").predict(SMILES), expected)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_fitted_on_gpu_unpickles_without_gpu(tiny_model, tmp_path):  # pragma: no cover - GPU only
    est = _reg(tiny_model, device="auto").fit(TEXT, np.arange(8.0))
    assert next(est.module_.parameters()).device.type == "cuda"
    path = tmp_path / "gpu.pkl"
    path.write_bytes(pickle.dumps(est))
    code = (f"import pickle, numpy as np; est = pickle.load(open({str(path)!r}, 'rb')); "
            f"p = est.predict({TEXT!r}); assert np.isfinite(p).all(); print('ok')")
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "PYTHONPATH": REPO_DIR}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0 and "ok" in proc.stdout, proc.stderr[-2000:]


def test_unpickled_estimator_detects_changed_backbone(tmp_path):
    from conftest import build_tiny_model

    path = build_tiny_model(tmp_path / "m")
    est = _reg(path).fit(TEXT, np.arange(8.0))
    data = pickle.dumps(est)
    build_tiny_model(tmp_path / "m", seed=1)  # other weights in the same folder
    sktag.clear_backbone_cache()
    loaded = pickle.loads(data)
    with pytest.raises(ValueError, match=r"was fitted on backbone .* but model=.* now loads a different "
                                         r"model .* Refit, or point model at the original weights"):
        loaded.predict(TEXT)


def test_tag_files_are_safetensors(tag_file):
    raw = tag_file.read_bytes()
    n = struct.unpack("<Q", raw[:8])[0]
    assert 0 < n < len(raw) - 8
    assert raw[8:9] == b"{"
    header = json.loads(raw[8:8 + n])
    assert json.loads(header["__metadata__"]["sktag"])["format"] == "sktag.TagSet/1"
    assert raw[:2] != b"\x80\x04" and not raw.startswith(b"PK")  # neither a pickle nor a torch zip


# ================================================= 5. interruption, resumption
class _InterruptAfterBatch(sktag.Callback):
    """Raise ``KeyboardInterrupt`` (as Ctrl-C would) after the optimizer step of batch ``n`` of the fit."""

    def __init__(self, n):
        self.n, self.seen = n, 0

    def on_batch_end(self, loop, batch_rows, loss):
        self.seen += 1
        if self.seen == self.n:
            raise KeyboardInterrupt


class _InterruptAtEpoch(sktag.Callback):
    """Raise ``KeyboardInterrupt`` when epoch ``epoch`` (counted over the estimator's life) begins."""

    def __init__(self, epoch):
        self.epoch = epoch

    def on_epoch_begin(self, loop, epoch):
        if epoch == self.epoch:
            raise KeyboardInterrupt


@pytest.mark.parametrize("early_stopping", [False, True])
def test_interrupt_keeps_best_weights_then_warm_start(tiny_model, length_task, early_stopping):
    X, y = length_task[0][:20], length_task[1][:20]
    # without early stopping 20 rows: 3 batches of 8/8/4; with it 2 of them are held out: 3 of 8/8/2
    kw = dict(max_iter=6, batch_size=8, early_stopping=early_stopping, n_iter_no_change=10)
    est = _reg(tiny_model, callbacks=[_InterruptAfterBatch(7)], **kw)  # 1st batch of epoch 3
    kept = "the best validation epoch so far" if early_stopping else "the last complete epoch"
    with pytest.warns(UserWarning, match=rf"fit was interrupted after 2 complete epochs; the estimator "
                                         rf"keeps the weights of {kept}"):
        assert est.fit(X, y) is est
    assert est.n_iter_ == 2 and len(est.loss_curve_) == 2
    # the weights kept are those of a fit that stopped after epoch 2 (which keeps the last epoch's
    # weights, or with early stopping the best validation epoch's, epoch 0 included)
    reference = _reg(tiny_model, **{**kw, "max_iter": 2}).fit(X, y)
    assert reference.loss_curve_ == est.loss_curve_
    assert reference.validation_scores_ == est.validation_scores_
    assert reference.best_epoch_ == est.best_epoch_
    np.testing.assert_array_equal(est.predict(X), reference.predict(X))
    first_losses = list(est.loss_curve_)

    est.set_params(warm_start=True, max_iter=2, callbacks=None)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(X, y)
    assert est.n_iter_ == 4 and len(est.loss_curve_) == 4
    assert est.loss_curve_[:2] == first_losses
    assert np.isfinite(est.predict(X)).all()


@pytest.mark.parametrize("where", ["mid-epoch", "epoch-begin"])
def test_interrupt_mid_epoch_of_warm_start_keeps_previous_weights(tiny_model, length_task, where):
    X, y = length_task[0][:16], length_task[1][:16]  # 2 batches of 8 per epoch
    est = _reg(tiny_model, max_iter=2, batch_size=8).fit(X, y)
    before = est.predict(X)
    state = copy.deepcopy(est.module_.state_dict())
    # after one optimizer step of epoch 3, or as epoch 3 begins
    cb = _InterruptAfterBatch(1) if where == "mid-epoch" else _InterruptAtEpoch(3)
    est.set_params(warm_start=True, callbacks=[cb])
    with pytest.warns(UserWarning, match="interrupted after 2 complete epochs"):
        est.fit(X, y)
    assert est.n_iter_ == 2 and len(est.loss_curve_) == 2
    for k, v in est.module_.state_dict().items():
        assert torch.equal(v, state[k]), k
    np.testing.assert_array_equal(est.predict(X), before)


@pytest.mark.parametrize("where", ["mid-epoch", "epoch-begin"])
def test_interrupt_in_first_epoch_reraises(tiny_model, where):
    cb = _InterruptAfterBatch(1) if where == "mid-epoch" else _InterruptAtEpoch(1)
    clf = _clf(tiny_model, batch_size=4, callbacks=[cb])
    with pytest.raises(KeyboardInterrupt):
        clf.fit(TEXT, Y_CLF)
    # nothing was learned: the estimator stays unfitted
    assert not hasattr(clf, "module_")
    with pytest.raises(NotFittedError):
        clf.predict(TEXT)
    # and a fitted one keeps its fit
    fitted = _clf(tiny_model, batch_size=4).fit(TEXT, Y_CLF)
    proba = fitted.predict_proba(TEXT)
    fitted.set_params(callbacks=[_InterruptAfterBatch(1) if where == "mid-epoch" else _InterruptAtEpoch(1)])
    with pytest.raises(KeyboardInterrupt):
        fitted.fit(TEXT, Y_CLF[::-1])
    np.testing.assert_array_equal(fitted.predict_proba(TEXT), proba)
    assert fitted.n_iter_ == 2


# ========================================================= 6. security defaults
def test_trust_remote_code_is_off_and_passed_through(tiny_model, monkeypatch):
    import inspect

    import transformers

    from sktag.backbone import load_backbone

    assert TagRegressor().trust_remote_code is False and TagClassifier().trust_remote_code is False
    assert inspect.signature(load_backbone).parameters["trust_remote_code"].default is False
    calls = []
    for cls in (transformers.AutoModelForCausalLM, transformers.AutoTokenizer):
        real = cls.from_pretrained

        def record(*args, _real=real, _name=cls.__name__, **kwargs):
            calls.append((_name, kwargs))
            return _real(*args, **kwargs)

        monkeypatch.setattr(cls, "from_pretrained", record)
    sktag.clear_backbone_cache()
    try:
        _reg(tiny_model, max_iter=1).fit(TEXT, np.arange(8.0))
        assert {name for name, _ in calls} == {"AutoModelForCausalLM", "AutoTokenizer"}
        for _, kwargs in calls:
            assert kwargs["trust_remote_code"] is False
            assert kwargs["local_files_only"] is True  # a local folder never goes to the hub
        calls.clear()
        _reg(tiny_model, max_iter=1, trust_remote_code=True).fit(TEXT, np.arange(8.0))
        model_calls = [k for name, k in calls if name == "AutoModelForCausalLM"]
        assert model_calls and all(k["trust_remote_code"] is True for k in model_calls)
    finally:
        sktag.clear_backbone_cache()


class _Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


def test_tag_loading_never_unpickles(tmp_path, tiny_model):
    marker = str(tmp_path / "pwned")
    as_pickle = tmp_path / "pickle.safetensors"
    as_pickle.write_bytes(pickle.dumps({"tag/SMILES": _Evil(marker)}))
    as_torch = tmp_path / "torch.safetensors"
    torch.save({"tag/SMILES": _Evil(marker)}, as_torch)
    assert not os.path.exists(marker)
    for path in (as_pickle, as_torch):
        with pytest.raises(ValueError, match="is not a readable safetensors tag file"):
            TagSet.load(path)
        with pytest.raises(ValueError, match="is not a readable safetensors tag file"):
            _reg(tiny_model, domains="SMILES", domain_tags=str(path)).fit(SMILES, Y_SMILES)
    assert not os.path.exists(marker)
    # the check itself can fail: unpickling this file does create the marker
    pickle.loads(as_pickle.read_bytes())
    assert os.path.exists(marker)


# ===================================================== 7. property-based test
_text = st.one_of(
    st.text(st.characters(exclude_categories=("Cs",)), max_size=12),
    st.text(st.characters(exclude_categories=("Cs",)), min_size=1, max_size=12).filter(str.strip),
    st.sampled_from(["", " ", "\t\n", "CCO", "\u00e9\u00e8", "\u4e2d\u6587", "\x00", "\U0001f600"]),
    st.text(st.characters(exclude_categories=("Cs",)), min_size=600, max_size=700),
)


@st.composite
def _fit_predict_case(draw):
    X = draw(st.lists(_text, min_size=0, max_size=6))
    n_y = draw(st.one_of(st.just(len(X)), st.just(len(X)), st.integers(0, 7)))
    value = st.one_of(st.floats(-1e6, 1e6), st.floats(-1e6, 1e6),
                      st.floats(allow_nan=True, allow_infinity=True, width=64))
    y = draw(st.lists(value, min_size=n_y, max_size=n_y))
    X_new = draw(st.lists(_text, min_size=0, max_size=4))
    return X, y, X_new


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=_fit_predict_case())
def test_random_unicode_either_documented_error_or_finite(tiny_model, case):
    X, y, X_new = case
    est = TagRegressor(model=tiny_model, domains="Text", tag_length=2, max_iter=1, batch_size=8,
                       max_length=64, random_state=0)
    with warnings.catch_warnings(), unchanged(X, y, X_new):
        warnings.simplefilter("ignore", TruncationWarning)
        warnings.simplefilter("ignore", ConvergenceWarning)
        try:
            est.fit(X, y)
        except (ValueError, TypeError) as exc:
            assert str(exc)  # a message, not a bare exception
            event(f"fit raised {type(exc).__name__}")
            return
        event("fit succeeded")
        for data in (X, X_new):
            try:
                pred = est.predict(data)
            except (ValueError, TypeError) as exc:
                assert str(exc)
                continue
            assert pred.shape == (len(data),)
            assert np.isfinite(pred).all()
