"""The prefix store (``sktag._forward.prefix_store``): each row's prefix computed once across fits, by content."""

import warnings

import numpy as np
import pytest
import torch
from sklearn.model_selection import GridSearchCV, GroupKFold, cross_val_predict

import sktag
from sktag import LLMEmbedding, TagRegressor
from sktag._forward import engine
from sktag._forward.prefix_store import PrefixStore, active_store, prefix_store

from conftest import tol

BASE = dict(domains="SMILES", domain_tag_length=2, max_iter=2, batch_size=16, learning_rate_init=1e-2, random_state=0)


@pytest.fixture
def esol36():
    from sktag.datasets import load_esol

    X, y = load_esol(return_X_y=True)
    return list(X[:36]), np.asarray(y[:36])


@pytest.fixture
def passes(monkeypatch, tiny_model):
    """The rows of every prefix pass run (one entry per row, so repeats show)."""
    sktag.load_backbone(tiny_model)
    seen = []
    prefix_pass = engine.prefix_pass

    def counting(backbone, batch, *args, **kwargs):
        seen.extend(batch.ids[:, -4:].tolist())  # enough of the row to tell rows apart in these tests
        return prefix_pass(backbone, batch, *args, **kwargs)

    monkeypatch.setattr(engine, "prefix_pass", counting)
    return seen


def _batch_invariant(model):
    """Whether this machine's kernels give a row the same prefix alone as in a batch of rows of its length."""
    from sktag._forward.encoding import TagLayout, encode

    bb = sktag.load_backbone(model)
    rows, _ = encode([["CCO", "CCN", "COC", "CCC"]], TagLayout(("SMILES",), (2,), 0), bb.tokenizer)
    table = torch.randn(2, bb.hidden_size, generator=torch.Generator().manual_seed(0))
    lengths = {len(r) for r in rows}
    if len(lengths) != 1:  # pragma: no cover - the strings are of one token length on the tiny model
        pytest.skip("rows of different token lengths")
    alone = engine.prefix_kv(bb, engine.collate(rows[:1]), table)
    together = engine.prefix_kv(bb, engine.collate(rows), table)
    return torch.equal(alone[:, :, 0], together[:, :, 0])


def assert_same_numbers(a, b, model):
    """Equal bit for bit where the kernels are batch-invariant (float32 on CPU), else within float32 rounding."""
    if _batch_invariant(model):
        np.testing.assert_array_equal(a, b)
    else:  # pragma: no cover - kernels whose result depends on the batch size
        np.testing.assert_allclose(a, b, **tol(torch.float32, scale=float(np.abs(b).max())))


# ------------------------------------------------------------------ the store
def test_least_recently_used_rows_go_beyond_the_budget_and_clear_forgets_them():
    row = torch.zeros(4, 4)  # 64 bytes
    store = PrefixStore(max_bytes=3 * 64)
    for k in "abcd":
        store.put(k, row.clone())
    assert len(store) == 3 and store.evicted == 1 and store.get("a") is None
    store.get("b")  # now the most recent
    store.put("e", row.clone())
    assert store.get("b") is not None and store.get("c") is None
    store.put("big", torch.zeros(100, 100))  # larger than the budget: not kept, nothing else dropped
    assert store.get("big") is None and len(store) == 3
    store.clear()
    assert len(store) == 0 and store.nbytes == 0
    assert store.info() == {"rows": 0, "bytes": 0, "max_bytes": 192, "folder": None, "hits": 0, "misses": 0,
                            "evicted": 2}


def test_a_folder_shares_rows_between_stores_and_survives_a_broken_file(tmp_path):
    kv, pooled = torch.randn(2, 2, 3, 1, 4), torch.randn(1, 8)
    writer, reader = PrefixStore(2**20, folder=tmp_path), PrefixStore(2**20, folder=tmp_path)
    writer.put(("kv", "cfg", b"row"), kv)
    writer.put(("pooled", "cfg", b"row"), pooled)
    assert torch.equal(reader.get(("kv", "cfg", b"row")), kv)  # another process's rows, read from the folder
    assert torch.equal(reader.get(("pooled", "cfg", b"row")), pooled) and reader.get(("kv", "x", b"row")) is None
    path = writer._path(("kv", "other", b"row"))
    with open(path, "wb") as f:
        f.write(b"half a file")
    assert reader.get(("kv", "other", b"row")) is None  # unreadable: computed again, no error
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary file left
    writer.clear()
    assert list(tmp_path.iterdir()) == []


def test_set_prefix_store_turns_it_off_and_on_and_reports_what_it_holds(monkeypatch, tmp_path, tiny_model):
    from sktag._forward import prefix_store as ps

    monkeypatch.setattr(ps, "_PROCESS", {"store": None, "configured": False})
    for var in (ps.ENV_BYTES, ps.ENV_FOLDER):
        monkeypatch.delenv(var, raising=False)
    with prefix_store(store=None, max_bytes=None):
        pass
    token = ps._ACTIVE.set(None)  # outside the suite's per-test store: the process-wide one
    try:
        sktag.set_prefix_store(max_bytes=0)
        assert active_store() is None and sktag.prefix_store_info()["enabled"] is False
        sktag.set_prefix_store(max_bytes=10**6, folder=tmp_path)
        assert active_store().folder == str(tmp_path) and active_store().max_bytes == 10**6
        import os

        assert os.environ[ps.ENV_FOLDER] == str(tmp_path)  # worker processes started now inherit it
        LLMEmbedding(model=tiny_model, layers=[1]).fit_transform(["CCO", "CCN"])
        info = sktag.prefix_store_info()
        assert info["enabled"] and info["rows"] == 2 and info["misses"] == 2 and len(list(tmp_path.iterdir())) == 2
        sktag.clear_prefix_store()
        assert sktag.prefix_store_info()["rows"] == 0 and list(tmp_path.iterdir()) == []
        with pytest.raises(ValueError, match="max_bytes must be"):
            sktag.set_prefix_store(max_bytes=-1)
    finally:
        ps._ACTIVE.reset(token)


# ------------------------------------------------------------------ reuse across fits
def test_a_grid_search_over_tag_lengths_runs_each_rows_prefix_once(tiny_model, esol36, passes):
    """4 tag lengths x 3 scaffold-grouped folds + the refit: 13 fits and 12 predictions, each row's prefix run once."""
    from sktag.model_selection import scaffold_groups

    X, y = esol36
    groups = scaffold_groups(X)
    search = GridSearchCV(TagRegressor(model=tiny_model, **BASE), {"tag_length": [1, 2, 3, 4]},
                          cv=GroupKFold(3), scoring="neg_root_mean_squared_error")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        search.fit(X, y, groups=groups)
    assert len(passes) == len(X) and len({tuple(r) for r in passes}) > 1
    store = active_store()
    assert store.misses == len(X) and store.hits > 10 * len(X)
    with prefix_store(max_bytes=0):  # the same search with every prefix computed where it is needed
        passes.clear()
        off = GridSearchCV(TagRegressor(model=tiny_model, **BASE), {"tag_length": [1, 2, 3, 4]},
                           cv=GroupKFold(3), scoring="neg_root_mean_squared_error")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            off.fit(X, y, groups=groups)
        assert len(passes) > 12 * len(X) * 2 // 3
    assert_same_numbers(search.cv_results_["mean_test_score"], off.cv_results_["mean_test_score"], tiny_model)
    assert_same_numbers(search.predict(X), off.predict(X), tiny_model)


def test_compare_with_two_tag_llm_rows_and_the_embedding_runs_each_prefix_once(tiny_model, esol36, passes, capsys):
    """A Tag-LLM, the same with a deep function tag and LLMEmbedding with the same domain tag share the prefixes
    (the ``"text"`` domain tag: the tiny model has no shipped one)."""
    from sklearn.linear_model import RidgeCV
    from sklearn.pipeline import make_pipeline

    from sktag.benchmark import compare

    X, y = esol36
    tag = dict(model=tiny_model, domains="SMILES", domain_tags="text", max_iter=1, random_state=0)
    models = {"tag": TagRegressor(**tag), "tag_deep": TagRegressor(tag_depth="deep", **tag),
              "embedding": make_pipeline(LLMEmbedding(model=tiny_model, domain_tags="text"), RidgeCV())}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        on = compare(X, y, models=models, cv="kfold:3", random_state=0, verbose=1)
        assert "tag_deep fold 0: 36 rows reused stored LLM prefixes, 0 computed" in capsys.readouterr().err
        assert len(passes) == len(X)  # the first Tag-LLM fit and its predictions; everything after reuses them
        reused = on.folds.set_index(["model", "fold"])["prefix_reused"]
        assert reused[("tag", 0)] == 0 and reused[("tag", 1)] == len(X) and reused[("embedding", 0)] == len(X)
        assert any(f"{len(X)} rows computed" in n for n in on.notes), on.notes
        with prefix_store(max_bytes=0):
            off = compare(X, y, models=models, cv="kfold:3", random_state=0)
    assert off.folds["prefix_reused"].isna().all()
    a, b = on.predictions(), off.predictions()
    assert a[["model", "fold", "row"]].equals(b[["model", "fold", "row"]])
    assert_same_numbers(a["y_pred"].to_numpy(), b["y_pred"].to_numpy(), tiny_model)


def test_predict_reuses_the_prefixes_of_another_fit_and_cross_val_predict_shares_them(tiny_model, esol36, passes):
    X, y = esol36
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cross_val_predict(TagRegressor(model=tiny_model, **BASE), X, y, cv=3)
        assert len(passes) == len(X)
        est = TagRegressor(model=tiny_model, tag_length=4, **{k: v for k, v in BASE.items()}).fit(X[:20], y[:20])
    est.predict(X)
    assert len(passes) == len(X)  # fit and predict: every row seen before


def test_a_changed_domain_tag_or_backbone_never_hits_a_stale_row(tiny_model, other_tiny_model, esol36, passes):
    X, y = esol36
    X = X[:8]
    emb = LLMEmbedding(model=tiny_model, domain_tags="text").fit(X)
    first = emb.transform(X)
    assert len(passes) == 8
    LLMEmbedding(model=tiny_model).fit_transform(X)  # no domain tag: another prefix
    LLMEmbedding(model=other_tiny_model, domain_tags="text").fit_transform(X)  # another backbone
    LLMEmbedding(model=tiny_model, domain_tags="text", isolate_segments=True).fit_transform(X)
    assert len(passes) == 4 * 8
    original = emb.tag_table_.clone()
    with torch.no_grad():
        emb.tag_table_ += 0.5  # tags changed in place: their values are in the key
    moved = emb.transform(X)
    assert len(passes) == 5 * 8 and not np.allclose(moved, first)
    with torch.no_grad():
        emb.tag_table_.copy_(original)
    np.testing.assert_array_equal(emb.transform(X), first)
    assert len(passes) == 5 * 8  # back to the first values: served from the store
    TagRegressor(model=tiny_model, **{**BASE, "domain_tags": "text", "early_stopping": False}).fit(X, y[:8])
    assert len(passes) == 5 * 8 + 8  # the embedding stored no key/value cache: the Tag-LLM needs one


def test_a_backbone_changed_in_place_never_hits_a_stale_row(tiny_model, esol36, passes):
    """Weights quantised, replaced or changed in place are part of the key (the digest of all weights)."""
    X = esol36[0][:6]
    emb = LLMEmbedding(model=tiny_model, layers=[1, 2]).fit(X)
    first = emb.transform(X)
    weight = next(p for n, p in sktag.load_backbone(tiny_model).model.named_parameters() if "layers.1." in n)
    original = weight.detach().clone()
    try:
        with torch.no_grad():
            weight.mul_(1.5)
        assert not np.allclose(emb.transform(X), first) and len(passes) == 12
    finally:
        with torch.no_grad():
            weight.copy_(original)
    np.testing.assert_array_equal(emb.transform(X), first)
    assert len(passes) == 12  # the weights as they were: the rows stored then


def test_a_small_budget_evicts_rows_and_the_fit_is_the_same(tiny_model, esol36, passes):
    X, y = esol36
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with prefix_store(max_bytes=0):
            ref = TagRegressor(model=tiny_model, **BASE).fit(X, y).predict(X)
        with prefix_store(max_bytes=40_000) as small:
            est = TagRegressor(model=tiny_model, **BASE).fit(X, y)
            assert small.evicted > 0 and small.nbytes <= 40_000
            got = est.predict(X)
    assert_same_numbers(got, ref, tiny_model)


def test_verbose_says_how_many_rows_came_from_the_store(tiny_model, esol36, capsys):
    X, y = esol36
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        TagRegressor(model=tiny_model, **BASE).fit(X[:20], y[:20])
        TagRegressor(model=tiny_model, verbose=1, **BASE).fit(X[10:30], y[10:30])
    assert "10 of 20 rows reused from the prefix store" in capsys.readouterr().out


def test_featurisers_keep_each_strings_features_and_compute_the_same(monkeypatch, esol36):
    from rdkit import Chem

    from sktag.features import MorganFingerprint, RDKitDescriptors

    X = esol36[0][:8]
    for cls, other in ((RDKitDescriptors, dict(descriptors=["MolWt", "TPSA"])), (MorganFingerprint, dict(n_bits=64))):
        counted = []
        featurise = cls._featurise
        monkeypatch.setattr(cls, "_featurise", lambda self, mols: counted.append(len(mols)) or featurise(self, mols))
        with prefix_store(max_bytes=0):
            plain = cls().transform(X)
        first = cls().transform(X[:5])
        both = cls().transform(X)
        assert counted == [8, 5, 3]  # the second call featurised only the three new strings
        np.testing.assert_array_equal(both[:5], first)
        np.testing.assert_array_equal(both[:8], plain)
        cls(**other).transform(X)  # other parameters: other features
        cls().transform([Chem.MolFromSmiles(s) for s in X[:2]])  # molecules are featurised every time
        assert counted == [8, 5, 3, 8, 2]
