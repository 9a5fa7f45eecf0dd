"""Input handling (``sktag._forward.inputs``): from what the user passes to string columns.

Bad input gives a clear error (type, and a message naming the problem and
the row) and never modifies the caller's data, in ``fit`` and in
``predict``; columns are matched by name or position.
"""

import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from sklearn.exceptions import ConvergenceWarning

from conftest import assert_fit_rejects, assert_predict_rejects, unchanged
from conftest import tol
from sktag import TagRegressor
from sktag._forward.inputs import as_columns, check_sample_weight, check_strings, column_of_strings, resolve_domains
from sktag.exceptions import TruncationWarning

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


# ---------------------------------------------------------------- the helpers
def test_check_strings_returns_strings_and_invalid_mask():
    values = ["a", None, np.str_("b"), float("nan"), "", 3]
    out, invalid = check_strings(values, on_invalid="nan")
    assert out[:3] == ["a", None, "b"] and type(out[2]) is str
    assert invalid.tolist() == [False, True, False, True, True, True]  # missing, empty, non-string alike
    assert values[2].__class__ is np.str_  # a new list: the caller's is untouched
    with pytest.raises(ValueError, match=r"2 missing values \(None/NaN\): row 1: None; row 3: nan"):
        check_strings(values[:4])
    with pytest.raises(ValueError, match=r"in column 'c': row 0 \(index 'x'\)"):
        check_strings([" "], row_labels=["x"], column="c")


def test_as_columns_shapes_and_refusals():
    assert as_columns(["a", "b"]) == ([["a", "b"]], None, None)
    cols, names, labels = as_columns(pd.DataFrame({0: ["a"], 1: ["b"]}, index=["r"]))
    assert cols == [["a"], ["b"]] and names == [0, 1] and labels == ["r"]
    cols, names, _ = as_columns(np.array([["a", "b"], ["c", "d"]], dtype=object))
    assert cols == [["a", "c"], ["b", "d"]] and names is None
    with pytest.raises(TypeError, match="not a single string"):
        as_columns("abc")
    with pytest.raises(TypeError, match="order against y would be undefined"):
        as_columns({"a", "b"})
    with pytest.raises(ValueError, match="duplicate column names"):
        as_columns(pd.DataFrame([["a", "b"]], columns=["x", "x"]))


def test_resolve_domains():
    assert resolve_domains("SMILES", 2, None) == ["SMILES", "SMILES"]
    assert resolve_domains({1: "b", 0: "a"}, 2, None) == ["a", "b"]
    assert resolve_domains({"0": "a", "1": "b"}, 2, [0, 1]) == ["a", "b"]  # JSON keys match int names
    with pytest.raises(ValueError, match=r"missing \['y'\], unknown \['z'\]"):
        resolve_domains({"x": "a", "z": "b"}, 2, ["x", "y"])
    with pytest.raises(ValueError, match="may not contain '/'"):
        resolve_domains("a/b", 1, None)
    with pytest.raises(ValueError, match="has 1 names but X has 2 columns"):
        resolve_domains(["a"], 2, None)


def test_check_sample_weight():
    np.testing.assert_array_equal(check_sample_weight(None, 3), np.ones(3))
    np.testing.assert_array_equal(check_sample_weight(2, 2), [2.0, 2.0])
    for bad, match in (([1.0, -1.0], "non-negative"), ([1.0, np.nan], "NaN or infinity"),
                       ([0.0, 0.0], "sums to zero"), ([1.0], r"shape \(2,\)")):
        with pytest.raises(ValueError, match=match):
            check_sample_weight(bad, 2)


def test_column_of_strings_names_the_column():
    values, labels, name = column_of_strings(pd.Series(["C", "O"], index=[5, 6], name="lig"))
    assert values == ["C", "O"] and labels == [5, 6] and name == "lig"
    values, _, name = column_of_strings(pd.DataFrame({"a": ["x"], "b": ["y"]}), column="b")
    assert values == ["y"] and name == "b"
    with pytest.raises(ValueError, match="single column"):
        column_of_strings(pd.DataFrame({"a": ["x"], "b": ["y"]}))


# ============================================================== through fit
FIT_CASES = [
    # id, estimator, kwargs, X, y, exception, message
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
    ("bad-dict-domains", "reg", {"domains": {"smiles": "SMILES"}},
     pd.DataFrame({"smiles": ["CCO"], "other": ["x"]}), [1.0],
     ValueError, r"domains must name every column of X exactly: .*missing \['other'\]"),
]


@pytest.mark.parametrize("case", FIT_CASES, ids=[c[0] for c in FIT_CASES])
def test_fit_rejects_bad_input_without_touching_it(case, tiny_model):
    assert_fit_rejects(case, tiny_model)


# ========================================================== through predict
PREDICT_CASES = [
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
    assert_predict_rejects(case, request)


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
    np.testing.assert_allclose(pred, frame_reg.predict(frame), **tol())


# ===================================================== property-based test
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


# ================================================= DataFrame-likes, column names
def test_polars_frame_and_series_are_read_by_name(tiny_model):
    pl = pytest.importorskip("polars")
    X = ["CC", "CN", "CO", "NN", "OO", "NC"]
    y = np.array([len(s) + s.count("N") for s in X], dtype=float)
    frame = pl.DataFrame({"a": X, "b": X[::-1]})
    columns, names, labels = as_columns(frame)
    assert names == ["a", "b"] and columns == [X, X[::-1]] and labels is None
    assert as_columns(pl.Series("a", X))[0] == [X]
    est = TagRegressor(model=tiny_model, domains={"b": "Text", "a": "Text"}, tag_length=2, max_iter=1,
                       early_stopping=False, random_state=0).fit(frame, y)
    assert list(est.feature_names_in_) == ["a", "b"]
    same = est.predict(pd.DataFrame({"a": X, "b": X[::-1]}))
    np.testing.assert_array_equal(est.predict(frame), same)
    with pytest.raises(ValueError, match="differ from those seen in fit"):
        est.predict(pl.DataFrame({"b": X[::-1], "a": X}))


def test_integer_column_names_take_a_domains_dict(tiny_model):
    X = pd.DataFrame({0: ["CC", "CN", "CO", "NN"], 1: ["a", "b", "c", "d"]})
    y = np.arange(4.0)
    assert resolve_domains({0: "Text", 1: "Other"}, 2, list(X.columns)) == ["Text", "Other"]
    est = TagRegressor(model=tiny_model, domains={0: "Text", 1: "Other"}, tag_length=2, max_iter=1,
                       early_stopping=False, random_state=0).fit(X, y)
    assert est.column_domains_ == ["Text", "Other"]
    assert not hasattr(est, "feature_names_in_")  # non-string names are not feature names (sklearn's rule)
    assert est.predict(X).shape == (4,)


@pytest.mark.parametrize("X", [{"CC", "CN"}, frozenset({"CC"}), {"a": "CC"}])
def test_unordered_containers_are_refused(X):
    with pytest.raises(TypeError, match="ordered sequence"):
        as_columns(X)
