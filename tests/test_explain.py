"""Explanations: integrated gradients on the input embeddings, their bookkeeping and their pictures."""

import numpy as np
import pandas as pd
import pytest
import torch

from conftest import PROTEINS, SMILES, SUITE_DTYPE, Y_SMILES, small_clf, small_reg, tol
from sktag._explain.attribution import Integrator, quadrature, token_spans
from sktag.explain import Explanation

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

#: Integration points of the completeness tests: enough for the gap to vanish at the suite's tolerance.
MANY_STEPS = 24


def _close(a, b, scale):
    np.testing.assert_allclose(a, b, **tol(scale=scale))


def _sums(e):
    return sum(a.sum() for a in e.token_attributions)


@pytest.fixture(scope="module")
def fitted(tiny_model):
    return small_reg(tiny_model, domains="SMILES", max_iter=3).fit(SMILES, Y_SMILES)


def test_quadrature_integrates_polynomials_exactly():
    nodes, weights = quadrature(3)  # exact up to degree 5 on [0, 1]
    assert weights.sum() == pytest.approx(1.0)
    assert (weights * nodes ** 5).sum() == pytest.approx(1 / 6)
    assert np.all((nodes > 0) & (nodes < 1))


def test_attributions_add_up_to_prediction_minus_baseline(fitted):
    explanations = fitted.explain(SMILES[:6], n_steps=MANY_STEPS)
    pred = fitted.predict(SMILES[:6])
    for e, p in zip(explanations, pred):
        _close(e.prediction, p, abs(p))
        _close(_sums(e), e.prediction - e.baseline_prediction, abs(e.prediction - e.baseline_prediction))
        assert abs(e.delta) <= tol(scale=abs(e.prediction - e.baseline_prediction))["atol"] * 10
        assert e.output == "prediction"


def test_fewer_steps_leave_a_gap_that_more_steps_close(fitted):
    coarse = [abs(e.delta) for e in fitted.explain(SMILES, n_steps=2)]
    fine = [abs(e.delta) for e in fitted.explain(SMILES, n_steps=MANY_STEPS)]
    assert np.median(fine) < np.median(coarse)


def test_explanation_fields_line_up_with_the_string(fitted):
    e = fitted.explain(["OCC"], n_steps=2)[0]
    assert e.strings == ("CCO",)  # canonical SMILES, as the model read it
    assert e.domains == ("SMILES",)
    assert "".join(e.tokens[0]) == "CCO" and len(e.token_attributions[0]) == 3
    assert e.spans[0] == ((0, 1), (1, 2), (2, 3))
    assert len(e.domain_tag_effects) == 1 and np.isfinite(e.function_tag_effect)
    chars = e.char_attributions()
    assert chars.sum() == pytest.approx(e.token_attributions[0].sum())
    atoms = e.atom_attributions()
    assert atoms.shape == (3,)
    assert atoms.sum() + e.unassigned_attribution() == pytest.approx(chars.sum())


def test_atoms_share_bonds_and_keep_branches_apart(fitted):
    e = fitted.explain(["CC(=O)O"], n_steps=2)[0]
    chars = e.char_attributions()
    s = e.strings[0]
    assert s == "CC(=O)O"
    atoms = e.atom_attributions()
    # atom 2 (the carbonyl O) has its own character and half of "="; so has atom 1 (the C before the branch)
    assert atoms[2] == pytest.approx(chars[4] + chars[3] / 2)
    assert e.unassigned_attribution() == pytest.approx(chars[2] + chars[5])


def test_molecules_explain_like_their_smiles(fitted):
    from rdkit import Chem

    a = fitted.explain(SMILES[:3], n_steps=3)
    b = fitted.explain([Chem.MolFromSmiles(s) for s in SMILES[:3]], n_steps=3)
    for x, y in zip(a, b):
        assert x.strings == y.strings
        np.testing.assert_allclose(x.token_attributions[0], y.token_attributions[0], **tol())


def test_explain_leaves_the_estimator_unchanged(fitted):
    before = fitted.predict(SMILES)
    params = {k: v.detach().clone() for k, v in fitted.module_.named_parameters()}
    grads = {k: None if v.grad is None else v.grad.clone() for k, v in fitted.module_.named_parameters()}
    fitted.explain(SMILES[:4], n_steps=2)
    for k, v in fitted.module_.named_parameters():
        assert torch.equal(params[k], v.detach())
        assert (v.grad is None) if grads[k] is None else torch.equal(grads[k], v.grad)  # explain accumulates none
    np.testing.assert_array_equal(before, fitted.predict(SMILES))


def test_invalid_rows_have_no_explanation(tiny_model):
    reg = small_reg(tiny_model, domains="SMILES", on_invalid="nan").fit(SMILES, Y_SMILES)
    out = reg.explain(["CCO", "not a smiles((", "CCN"], n_steps=2)
    assert out[1] is None and isinstance(out[0], Explanation) and isinstance(out[2], Explanation)


def test_bad_arguments_are_refused(fitted):
    with pytest.raises(ValueError, match="n_steps must be a positive int"):
        fitted.explain(SMILES[:2], n_steps=0)
    with pytest.raises(ValueError, match="batch_size must be a positive int"):
        fitted.explain(SMILES[:2], batch_size=2.5)
    with pytest.raises(ValueError, match="output index"):
        fitted.explain(SMILES[:2], target=1)
    with pytest.raises(ValueError, match="column=3 is out of range"):
        fitted.explain(SMILES[:1], n_steps=1)[0].char_attributions(3)


def test_multi_output_regressor_needs_a_target(tiny_model):
    y = np.c_[Y_SMILES, -Y_SMILES]
    reg = small_reg(tiny_model, domains="SMILES").fit(SMILES, y)
    with pytest.raises(ValueError, match="has 2 outputs"):
        reg.explain(SMILES[:2])
    e = reg.explain(SMILES[:2], target=1, n_steps=MANY_STEPS)
    np.testing.assert_allclose([x.prediction for x in e], reg.predict(SMILES[:2])[:, 1], **tol(scale=3))
    assert e[0].output == "prediction of output 1"


def test_binary_classifier_explains_the_log_odds(tiny_model):
    y = np.array(["no", "yes"] * 6)
    clf = small_clf(tiny_model, domains="SMILES").fit(SMILES, y)
    pos, neg = clf.explain(SMILES[:4], n_steps=MANY_STEPS), clf.explain(SMILES[:4], target="no", n_steps=MANY_STEPS)
    np.testing.assert_allclose([e.prediction for e in pos], clf.decision_function(SMILES[:4]), **tol(scale=3))
    np.testing.assert_allclose([e.prediction for e in neg], [-e.prediction for e in pos], **tol(scale=3))
    assert pos[0].output == "log-odds of class 'yes'"
    with pytest.raises(ValueError, match="not one of the classes"):
        clf.explain(SMILES[:2], target="maybe")


def test_multiclass_classifier_explains_the_predicted_class(tiny_model):
    y = np.array([0, 1, 2] * 4)
    clf = small_clf(tiny_model, domains="SMILES").fit(SMILES, y)
    raw = clf.decision_function(SMILES[:4])
    out = clf.explain(SMILES[:4], n_steps=MANY_STEPS)
    np.testing.assert_allclose([e.prediction for e in out], raw.max(axis=1), **tol(scale=3))
    assert out[0].output == f"logit of class {int(raw[0].argmax())!r}"
    one = clf.explain(SMILES[:2], target=2, n_steps=2)
    assert one[0].output == "logit of class 2"


def test_two_columns_and_a_deep_tag(tiny_model):
    X = pd.DataFrame({"drug": SMILES[:6], "target": PROTEINS})
    reg = small_reg(tiny_model, domains={"drug": "SMILES", "target": "Protein"}, tag_depth="deep",
                    early_stopping=False).fit(X, np.arange(6.0))
    e = reg.explain(X.iloc[:2], n_steps=MANY_STEPS)[0]
    assert len(e.strings) == 2 and len(e.domain_tag_effects) == 2
    _close(e.prediction, reg.predict(X.iloc[:1])[0], 6)
    assert abs(e.delta) <= tol(scale=abs(e.prediction - e.baseline_prediction))["atol"] * 10
    assert e.char_attributions(1).shape == (len(e.strings[1]),)


def test_masking_nothing_gives_the_prediction(fitted):
    from sktag._forward.encoding import encode

    bb = fitted.get_backbone()
    rows, _ = encode([SMILES[:3]], fitted.layout_, bb.tokenizer)
    scalar, _ = fitted._explained_output(None, SMILES[:3])
    integ = Integrator(bb, fitted.module_, fitted._fitted_readout(), fitted.layout_, False, scalar, 1)
    sizes = [len(r) + fitted.layout_.function_length for r in rows]
    none = integ.masked_outputs(rows, [0, 1, 2], [np.zeros(n, dtype=bool) for n in sizes])
    np.testing.assert_allclose(none, fitted.predict(SMILES[:3]), **tol(scale=3))
    some = integ.masked_outputs(rows, [0], [np.r_[np.zeros(sizes[0] - 1, bool), True]])
    assert some[0] != pytest.approx(none[0])


def test_token_spans_without_offsets():
    class Decoder:  # a slow tokenizer: no offset mapping, decodes id k to its character
        is_fast = False

        def decode(self, ids):
            return "".join("CCl"[i] for i in ids)

    assert token_spans(Decoder(), "CCl", [0, 1, 2]) == [(0, 1), (1, 2), (2, 3)]


def test_draw_writes_a_png(fitted, tmp_path):
    e = fitted.explain(["c1ccccc1O"], n_steps=2)[0]
    data = e.draw(tmp_path / "one.png", size=(200, 150))
    assert (tmp_path / "one.png").read_bytes() == data
    assert data[:8] == b"\x89PNG\r\n\x1a\n"


def test_draw_a_protein_as_bars(protein_reg, tmp_path):
    e = protein_reg.explain(PROTEINS[:1], n_steps=2)[0]
    svg = e.draw(tmp_path / "p.svg")
    assert "<svg" in svg and (tmp_path / "p.svg").exists()


@pytest.mark.skipif(SUITE_DTYPE != torch.float32, reason="the gap bound is stated for float32")
def test_gap_shrinks_fast_with_the_default_steps(fitted):
    gaps = [abs(e.delta) / max(abs(e.prediction - e.baseline_prediction), 1e-9) for e in fitted.explain(SMILES)]
    assert np.median(gaps) < 0.1


def test_the_baseline_is_a_carbon_chain_with_the_tags(fitted):
    """The tiny tokenizer reads one character a token: the baseline row is the SMILES "CCC...C" of as many atoms."""
    e = fitted.explain(["c1ccccc1O"], n_steps=2)[0]
    chain = "C" * len(e.tokens[0])
    _close(e.baseline_prediction, fitted.predict([chain])[0], abs(e.baseline_prediction))
    assert fitted.explain([chain], n_steps=2)[0].token_attributions[0] == pytest.approx(0.0, abs=1e-12)


def test_other_baselines(fitted):
    mean = fitted.explain(SMILES[:2], baseline="mean", n_steps=MANY_STEPS)
    oxygen = fitted.explain(SMILES[:2], baseline={"smiles": "O"}, n_steps=MANY_STEPS)
    auto = fitted.explain(SMILES[:2], n_steps=MANY_STEPS)
    for a, b, c in zip(mean, oxygen, auto):
        assert len({round(a.baseline_prediction, 6), round(b.baseline_prediction, 6), round(c.baseline_prediction, 6)}) == 3
        for e in (a, b):
            _close(_sums(e), e.prediction - e.baseline_prediction, abs(e.prediction - e.baseline_prediction))
    with pytest.raises(ValueError, match="is 2 tokens"):
        fitted.explain(SMILES[:1], baseline={"SMILES": "Cl"})
    with pytest.raises(ValueError, match="baseline must be"):
        fitted.explain(SMILES[:1], baseline="zero")
