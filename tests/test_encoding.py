"""Encoding (``sktag._forward.encoding``): domain validation, tokenisation and the tag layout.

Invalid domain strings are named row by row (with the DataFrame index and
column), valid ones are canonicalised on a copy, long strings are truncated
with one warning that counts rows, ``on_invalid="nan"`` keeps order and
length, and :class:`TagLayout` places every tag in the tag table.
"""

import copy
import warnings

import numpy as np
import pandas as pd
import pytest

from conftest import assert_fit_rejects, assert_predict_rejects, small_reg, unchanged
from conftest import tol
from sktag._forward.encoding import FUNCTION_SEGMENT, TagLayout, encode, layout_rows
from sktag.backbone import load_backbone
from sktag.domains import InvalidInputError
from sktag.exceptions import TruncationWarning

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


# ----------------------------------------------------------------- TagLayout
def test_layout_places_domain_tags_then_the_function_tag():
    layout = TagLayout.build(["SMILES", "Protein", "smiles"], 5, ["a", "b", "c"], {"protein": 2})
    assert layout.domains == ["SMILES", "Protein"]  # case-insensitive: one tag for SMILES and smiles
    assert layout.column_domains == ("SMILES", "Protein", "SMILES")
    assert layout.tag_lengths == (5, 2) and layout.function_length == 5
    assert layout.offsets.tolist() == [0, 5, 7, 12]
    assert layout.domain_slots("Protein").tolist() == [5, 6]
    assert layout.function_slots.tolist() == list(range(7, 12))
    assert TagLayout.from_dict(layout.to_dict()) == layout


def test_layout_rows_and_encode(tiny_model):
    bb = load_backbone(tiny_model, dtype="float32", device="cpu")
    layout = TagLayout.build(["Text", "Other"], 3)
    tokenized = [bb.tokenizer(["ab", "c"], add_special_tokens=False)["input_ids"],
                 bb.tokenizer(["d", "efg"], add_special_tokens=False)["input_ids"]]
    rows = layout_rows(tokenized, layout, valid=np.array([True, False]))
    assert rows[1] is None
    r = rows[0]
    n_ab, n_d = len(tokenized[0][0]), len(tokenized[1][0])
    assert r.slot.tolist() == [0, 1, 2] + [-1] * n_ab + [3, 4, 5] + [-1] * n_d
    assert r.seg.tolist() == [1] * (3 + n_ab) + [2] * (3 + n_d)
    assert (r.ids[r.slot >= 0] == 0).all() and FUNCTION_SEGMENT not in r.seg
    enc, valid = encode([["ab", "c"], ["d", "efg"]], layout, bb.tokenizer)
    assert valid.tolist() == [True, True]
    np.testing.assert_array_equal(enc[0].ids, r.ids)
    np.testing.assert_array_equal(enc[0].slot, r.slot)


# ============================================================ invalid strings
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
    ("truncation-raise", "reg", {"max_length": 4, "truncation": "raise"}, ["abcdefg", "ab", "abcdef"],
     [1.0, 2.0, 3.0], ValueError,
     r"2 rows have strings longer than max_length=4 tokens \(rows \[0, 2\]; longest 7 tokens\)"),
]


@pytest.mark.parametrize("case", FIT_CASES, ids=[c[0] for c in FIT_CASES])
def test_fit_rejects_bad_input_without_touching_it(case, tiny_model):
    assert_fit_rejects(case, tiny_model)


PREDICT_CASES = [
    ("bad-smiles", "smiles_reg", BAD_SMILES, InvalidInputError, SMILES_MSG),
    ("bad-protein", "protein_reg", ["MKV", "MK1", "ACD"], InvalidInputError, PROTEIN_MSG),
    ("protein-gap", "protein_reg", ["MK-V"], InvalidInputError,
     r"1 invalid Protein string:\n  row 0: 'MK-V' \(invalid character '-'"),
]


@pytest.mark.parametrize("case", PREDICT_CASES, ids=[c[0] for c in PREDICT_CASES])
def test_predict_rejects_bad_input_without_touching_it(case, request):
    assert_predict_rejects(case, request)


def test_invalid_rows_are_listed_with_dataframe_index(tiny_model):
    X = pd.DataFrame({"mol": ["CCO", "C1CC", "CN"]}, index=["first", "second", "third"])
    y = pd.Series([1.0, 2.0, 3.0], index=X.index)
    with unchanged(X, y), pytest.raises(InvalidInputError,
                                        match=r"in column 'mol':\n  row 1 \(index 'second'\): 'C1CC'") as info:
        small_reg(tiny_model, domains={"mol": "SMILES"}).fit(X, y)
    assert info.value.rows == [1]

def test_valid_smiles_are_canonicalised_on_a_copy(tiny_model):
    X = ["OCC", "C(C)O", "c1ccccc1", "N#N"]
    X_arr = np.array(X, dtype=object)
    df = pd.DataFrame({"s": X})
    y = np.array([1.0, 2.0, 3.0, 4.0])
    with unchanged(X, X_arr, df, y):
        est = small_reg(tiny_model, domains="SMILES", max_iter=1).fit(X, y)
        est.predict(X_arr)
        small_reg(tiny_model, domains={"s": "SMILES"}, max_iter=1).fit(df, y).predict(df)
    assert X[0] == "OCC"  # not replaced by the canonical "CCO"

def test_on_invalid_nan_keeps_order_and_length(smiles_reg, text_clf):
    X = ["OCC", "C1CC", "c1ccccc1", "c1cccc1", "CN"]
    est = copy.deepcopy(smiles_reg).set_params(on_invalid="nan")
    with unchanged(X):
        pred = est.predict(X)
    assert pred.shape == (5,)
    np.testing.assert_array_equal(np.isnan(pred), [False, True, False, True, False])
    np.testing.assert_allclose(pred[[0, 2, 4]], smiles_reg.predict(["CCO", "c1ccccc1", "CN"]), **tol())
    # the default still raises
    with pytest.raises(InvalidInputError, match="2 invalid SMILES strings"):
        smiles_reg.predict(X)


# ================================================================= truncation
def _truncation_warnings(record):
    return [w for w in record if issubclass(w.category, TruncationWarning)]

def test_truncation_warns_once_and_counts_rows(tiny_model):
    X = ["abcdefgh", "ab", "abcdefghij", "abc", "abcdefghijkl"]
    y = np.arange(5.0)
    est = small_reg(tiny_model, max_length=6, max_iter=1)
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
        small_reg(tiny_model, domains={"a": "T", "b": "T"}, max_length=4, max_iter=1).fit(df, [1.0, 2.0, 3.0])
    trunc = _truncation_warnings(rec)
    assert len(trunc) == 1 and str(trunc[0].message).startswith("2 of 3 rows")
