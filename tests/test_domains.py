"""Domain validation: SMILES (RDKit) and protein sequences."""

import numpy as np
import pandas as pd
import pytest

from sktag.datasets import load_davis, load_esol, load_protein_solubility, load_tdc_admet
from sktag.domains import (
    PROTEIN_ALPHABET,
    InvalidInputError,
    known_domains,
    register_domain,
    validate_strings,
)

BAD_SMILES = {
    "C1CC": "unclosed ring",
    "c1ccccc": "unclosed ring",
    "c1cccc1": "kekulize",
    "Xx": "syntax error",
    "C(C": "extra open parentheses",
    "CC)": "extra close parentheses",
    "[Na+": "syntax error",
    "C(C)(C)(C)(C)C": "valence",
}


def test_invalid_error_is_value_error():
    assert issubclass(InvalidInputError, ValueError)


def test_builtin_domains_listed():
    names = [n.lower() for n in known_domains()]
    assert "smiles" in names and "protein" in names


@pytest.mark.parametrize("domain", ["SMILES", "smiles", "Smiles"])
def test_smiles_canonicalised_case_insensitive(domain):
    out, ok = validate_strings(["OCC", "C1=CC=CC=C1", " CCO "], domain)
    assert out == ["CCO", "c1ccccc1", "CCO"]
    assert ok.dtype == bool and ok.all()


def test_smiles_canonicalize_false_keeps_input_stripped():
    out, ok = validate_strings(["OCC", " C1=CC=CC=C1"], "SMILES", canonicalize=False)
    assert out == ["OCC", "C1=CC=CC=C1"]
    assert ok.all()


def test_smiles_keeps_stereo():
    out, _ = validate_strings(["N[C@@H](C)C(=O)O"], "SMILES")
    assert "@" in out[0]


def test_real_esol_smiles_canonicalise_and_are_idempotent():
    X, _ = load_esol(return_X_y=True)
    out, ok = validate_strings(list(X[:200]), "SMILES")
    assert ok.all()
    again, _ = validate_strings(out, "SMILES")
    assert again == out


@pytest.mark.parametrize("smiles,reason", sorted(BAD_SMILES.items()))
def test_bad_smiles_reason(smiles, reason):
    with pytest.raises(InvalidInputError) as exc:
        validate_strings(["CCO", smiles], "SMILES")
    msg = str(exc.value)
    assert "row 1" in msg and repr(smiles) in msg
    assert reason.lower() in msg.lower()
    assert exc.value.rows == [1]


def test_error_lists_all_rows_labels_column():
    values = ["CCO", "C1CC", "c1ccccc1", "Xx", "C(C"]
    labels = ["m0", "m1", "m2", "m3", "mol7"]
    with pytest.raises(InvalidInputError) as exc:
        validate_strings(values, "SMILES", row_labels=labels, column="ligand")
    msg = str(exc.value)
    assert msg.startswith("3 invalid SMILES strings in column 'ligand'")
    assert "row 1 (index 'm1'): 'C1CC' (unclosed ring)" in msg
    assert "row 3 (index 'm3'): 'Xx'" in msg
    assert "row 4 (index 'mol7'): 'C(C'" in msg
    assert "row 2" not in msg and "row 0" not in msg
    assert exc.value.rows == [1, 3, 4]


def test_numpy_and_pandas_labels_are_plain():
    s = pd.Series(["CCO", "C1CC"], index=pd.Index([10, 11]))
    with pytest.raises(InvalidInputError, match=r"row 1 \(index 11\)"):
        validate_strings(list(s), "SMILES", row_labels=s.index)


def test_max_report_truncates():
    values = ["C1CC"] * 15
    with pytest.raises(InvalidInputError) as exc:
        validate_strings(values, "SMILES", max_report=4)
    msg = str(exc.value)
    assert msg.startswith("15 invalid SMILES")
    assert "row 3" in msg and "row 4:" not in msg
    assert "... and 11 more" in msg
    assert len(exc.value.rows) == 15


def test_long_string_shortened():
    long = "C" * 100 + "("
    with pytest.raises(InvalidInputError) as exc:
        validate_strings([long], "SMILES")
    msg = str(exc.value)
    assert long not in msg and "(101 chars)" in msg


def test_on_invalid_nan_keeps_order_and_original():
    values = ["OCC", "C1CC", "c1ccccc1", "", "   "]
    out, ok = validate_strings(values, "SMILES", on_invalid="nan")
    assert ok.tolist() == [True, False, True, False, False]
    assert out == ["CCO", "C1CC", "c1ccccc1", "", "   "]


def test_empty_and_non_string_are_invalid():
    out, ok = validate_strings(["", None, float("nan"), 3, "C"], "SMILES", on_invalid="nan")
    assert ok.tolist() == [False, False, False, False, True]
    with pytest.raises(InvalidInputError, match="missing value"):
        validate_strings([None], "SMILES")
    with pytest.raises(InvalidInputError, match="empty"):
        validate_strings([""], "SMILES")


def test_real_invalid_smiles_from_bundled_tdc_data():
    # TDC solubility_aqsoldb test rows 1159 and 1160 have [NH+2]: valence error.
    b = load_tdc_admet("solubility_aqsoldb", split="test")
    out, ok = validate_strings(list(b.data), "SMILES", on_invalid="nan")
    assert (~ok).sum() == 2
    assert np.flatnonzero(~ok).tolist() == [1159, 1160]
    with pytest.raises(InvalidInputError) as exc:
        validate_strings(list(b.data), "SMILES", row_labels=b.ids, column="Drug")
    msg = str(exc.value)
    assert msg.startswith("2 invalid SMILES strings in column 'Drug'")
    assert "row 1159" in msg and "valence" in msg.lower()


def test_no_rdkit_output_reaches_console(capfd):
    values = list(BAD_SMILES) + ["CC1=CC=C[NH+2]([O-])[CH-]1", "[H]C([H])([H])[H]"]
    validate_strings(values, "SMILES", on_invalid="nan")
    with pytest.raises(InvalidInputError):
        validate_strings(values, "SMILES")
    captured = capfd.readouterr()
    assert captured.out == "" and captured.err == ""


def test_rdkit_log_state_restored():
    from rdkit import rdBase

    before = rdBase.LogStatus()
    validate_strings(["C1CC", "CCO"], "SMILES", on_invalid="nan")
    assert rdBase.LogStatus() == before


# ----------------------------------------------------------------- proteins
def test_protein_normalised():
    out, ok = validate_strings([" mktayiak ", "MKUOXBZJ"], "protein")
    assert out == ["MKTAYIAK", "MKUOXBZJ"] and ok.all()
    out, _ = validate_strings([" mktayiak "], "Protein", canonicalize=False)
    assert out == ["mktayiak"]


def test_protein_alphabet_documented():
    assert PROTEIN_ALPHABET == set("ACDEFGHIKLMNPQRSTVWYUOXBZJ")


@pytest.mark.parametrize("seq,bad", [("MK1", "'1'"), ("MK*", "'*'"), ("MK TA", "' '"), ("MK-A", "'-'"), ("MK1*", "'*', '1'")])
def test_protein_bad_characters(seq, bad):
    with pytest.raises(InvalidInputError) as exc:
        validate_strings(["MKTA", seq], "Protein", column="target")
    msg = str(exc.value)
    assert "1 invalid Protein string in column 'target'" in msg
    assert f"row 1: {seq!r}" in msg and bad in msg


def test_real_protein_sequences_valid():
    X, _ = load_protein_solubility(split="test", return_X_y=True)
    out, ok = validate_strings(list(X), "Protein")
    assert ok.all() and out == list(X)
    b = load_davis(fold="test")
    seqs = sorted(set(b.data[:, 1]))
    out, ok = validate_strings(seqs, "protein")
    assert ok.all() and any("X" in s for s in out)


# ----------------------------------------------------------------- registry
def test_unknown_domain_is_plain_text():
    values = ["any thing", "C1CC", " x "]
    out, ok = validate_strings(values, "free text")
    assert out == values and ok.all()


def test_register_custom_domain():
    def dna(s, canonicalize):
        t = s.strip().upper()
        if set(t) - set("ACGT"):
            raise ValueError("not a DNA sequence")
        return t if canonicalize else s

    register_domain("DNA_test", dna)
    try:
        assert "DNA_test" in known_domains()
        out, ok = validate_strings(["acgt", "ACGU"], "dna_TEST", on_invalid="nan")
        assert out == ["ACGT", "ACGU"] and ok.tolist() == [True, False]
        with pytest.raises(InvalidInputError, match="not a DNA sequence"):
            validate_strings(["ACGU"], "DNA_test")
        with pytest.raises(ValueError, match="already registered"):
            register_domain("dna_test", dna)
        register_domain("dna_test", lambda s, c: s.lower(), overwrite=True)
        assert validate_strings(["ACGT"], "DNA_test")[0] == ["acgt"]
    finally:
        from sktag import domains

        domains._REGISTRY.pop("dna_test", None)


def test_register_domain_argument_checks():
    with pytest.raises(TypeError):
        register_domain("x_dom", "not callable")
    with pytest.raises(ValueError):
        register_domain("", lambda s, c: s)
    with pytest.raises(ValueError, match="already registered"):
        register_domain("SMILES", lambda s, c: s)


def test_validator_bad_return_type():
    register_domain("bad_ret", lambda s, c: 1)
    try:
        with pytest.raises(TypeError, match="expected str"):
            validate_strings(["a"], "bad_ret")
    finally:
        from sktag import domains

        domains._REGISTRY.pop("bad_ret", None)


def test_argument_validation():
    with pytest.raises(ValueError, match="on_invalid"):
        validate_strings(["CCO"], "SMILES", on_invalid="ignore")
    with pytest.raises(TypeError):
        validate_strings("CCO", "SMILES")
    with pytest.raises(ValueError, match="row_labels"):
        validate_strings(["CCO"], "SMILES", row_labels=[1, 2])
