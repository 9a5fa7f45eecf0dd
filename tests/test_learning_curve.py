"""benchmarks.learning_curve on the tiny model: nested subsamples, --llm-max-size, resume, domain tags."""


import numpy as np
import pandas as pd
import pytest


@pytest.fixture(scope="module")
def lc():
    from benchmarks import learning_curve

    return learning_curve


@pytest.fixture
def spy(lc, monkeypatch):
    """Every ``compare`` call of the script: its X, cv and models."""
    import sktag.benchmark

    calls, real = [], sktag.benchmark.compare

    def compare(X, y, **kw):
        calls.append(dict(X=np.asarray(X, dtype=object), cv=[tuple(map(np.asarray, s)) for s in kw["cv"]],
                          models=dict(kw["models"]), checkpoint_dir=kw["checkpoint_dir"]))
        return real(X, y, **kw)

    monkeypatch.setattr(sktag.benchmark, "compare", compare)
    return calls


def _args(tiny_model, out, *extra):
    return ["--model", str(tiny_model), "--threads", "1", "--out", str(out), "--datasets", "caco2_wang",
            "--sizes", "20", "40", "--max-rows-test", "30", *extra]


def test_nested_subsamples_skips_and_resume(lc, spy, tiny_model, tmp_path):
    argv = _args(tiny_model, tmp_path, "--models", "tag", "llm_embedding", "dummy", "--llm-max-size", "20")
    df, paths = lc.main(argv)
    for k in ("csv", "json", "md"):
        assert paths[k].exists()
    # one compare call per size; its training part is a prefix of the same permutation, its test part the same
    assert [len(c["cv"]) for c in spy] == [1, 1]
    (tr20, te20), (tr40, te40) = spy[0]["cv"][0], spy[1]["cv"][0]
    np.testing.assert_array_equal(tr20, np.arange(20))
    np.testing.assert_array_equal(tr40, np.arange(40))
    np.testing.assert_array_equal(spy[1]["X"][:20], spy[0]["X"][:20])
    np.testing.assert_array_equal(spy[0]["X"][te20], spy[1]["X"][te40])
    assert len(te20) == 30 and len(set(spy[1]["X"][:40]) & set(spy[1]["X"][te40])) == 0
    # --llm-max-size: the LLM models are not fitted at 40, and the report says so
    assert list(spy[0]["models"]) == ["tag", "llm_embedding", "dummy"] and list(spy[1]["models"]) == ["dummy"]
    csv = pd.read_csv(paths["csv"])
    skipped = csv[csv["status"] == "skipped"]
    assert sorted(zip(skipped["model"], skipped["n_train"])) == [("llm_embedding", 40), ("tag", 40)]
    assert skipped["note"].str.contains("--llm-max-size 20").all()
    ok = csv[csv["status"] == "ok"]
    assert ok["mae"].notna().all() and (ok["n_test"] == 30).all() and not ok["resumed"].any()
    assert (ok.groupby("n_train")["n_train"].count().to_dict() == {20: 3, 40: 1})
    md = paths["md"].read_text()
    assert "n = 40 > --llm-max-size 20" in md and "Where the curves cross" in md and "--max-rows-test" in md
    # a second run refits nothing: every fit comes from the checkpoint folder, with the same times
    fits = sorted(p.name for p in (tmp_path / "learning_curve_fits").rglob("*.json"))
    assert len(fits) == 4
    df2, _ = lc.main(argv)
    ok2 = df2[df2["status"] == "ok"]
    assert ok2["resumed"].all()
    np.testing.assert_array_equal(ok2["fit_seconds"].to_numpy(), ok["fit_seconds"].to_numpy())
    assert sorted(p.name for p in (tmp_path / "learning_curve_fits").rglob("*.json")) == fits
    df3, _ = lc.main(argv + ["--fresh"])  # --fresh refits
    assert not df3.loc[df3["status"] == "ok", "resumed"].any()
    # another seed draws other training rows
    lc.main(_args(tiny_model, tmp_path, "--models", "dummy", "--seed", "1"))
    assert not np.array_equal(spy[-1]["X"][:40], spy[1]["X"][:40])


def test_max_size_caps_one_model(lc, spy, tiny_model, tmp_path):
    df, paths = lc.main(_args(tiny_model, tmp_path, "--models", "llm_embedding", "dummy", "--max-size", "dummy=20"))
    assert [list(c["models"]) for c in spy] == [["llm_embedding", "dummy"], ["llm_embedding"]]
    row = df[(df["model"] == "dummy") & (df["n_train"] == 40)].iloc[0]
    assert row["status"] == "skipped" and "--max-size dummy=20" in row["note"]
    assert "dummy runs only up to n = 20" in paths["md"].read_text()
    with pytest.raises(SystemExit):
        lc.main(_args(tiny_model, tmp_path, "--models", "dummy", "--max-size", "dummy"))


def test_one_class_subsample_is_skipped(lc, spy, tiny_model, tmp_path):
    # hia_hou is mostly positive: find a seed whose first 3 training rows hold one class
    seed = next(s for s in range(200) if len(set(lc.load_dataset("hia_hou", s)["y"][:3])) == 1)
    df, paths = lc.main(["--model", str(tiny_model), "--threads", "1", "--out", str(tmp_path), "--datasets", "hia_hou",
                         "--sizes", "3", "20", "--max-rows-test", "30", "--models", "dummy", "--seed", str(seed)])
    assert [c["cv"][0][0].size for c in spy] == [20]
    row = df[df["n_train"] == 3].iloc[0]
    assert row["status"] == "skipped" and "one class" in row["note"]
    assert "one class" in paths["md"].read_text()


def test_crossings(lc):
    rows = [("tag", True, 100, 1.0), ("tag", True, 200, 0.5), ("tag", True, 400, 0.3),
            ("emb", True, 100, 0.7), ("emb", True, 200, 0.9), ("emb", True, 400, 0.9),
            ("rf", False, 100, 0.8), ("rf", False, 200, 0.6), ("rf", False, 400, 0.5),
            ("hgb", False, 100, 0.9), ("hgb", False, 200, 0.55), ("hgb", False, 400, 0.4),
            ("dummy", False, 100, 0.1), ("dummy", False, 200, 0.1), ("dummy", False, 400, 0.1)]
    df = pd.DataFrame(rows, columns=["model", "llm", "n_train", "mae"]).assign(status="ok")
    cross, best = lc.crossings(df, "mae", greater=False)
    assert cross["tag"].startswith("better from n = 200 on")
    assert cross["emb"] == "never in the sizes run (better only at n = 100)"
    assert best == "n = 100: rf 0.800, n = 200: hgb 0.550, n = 400: hgb 0.400"
    cross, _ = lc.crossings(df.assign(mae=-df["mae"]), "mae", greater=True)  # the other direction
    assert cross["tag"].startswith("better from n = 200 on")


def test_variants_and_domain_tags(lc, spy, tiny_model, tmp_path):
    import torch

    from sktag import DomainTagPretrainer, LLMEmbedding, TagSet
    from sktag.datasets import load_tdc_admet

    with pytest.raises(SystemExit):  # tag_dtag needs --domain-tags
        lc.main(_args(tiny_model, tmp_path, "--models", "tag_dtag"))
    smiles = list(load_tdc_admet("caco2_wang").data[:20])
    pre = DomainTagPretrainer(model=str(tiny_model), domain="SMILES", tag_length=2, max_iter=1, n_threads=1,
                              random_state=0).fit(smiles)
    pre.tags_.save(tmp_path / "dtag.safetensors")
    df, paths = lc.main(_args(tiny_model, tmp_path / "out", "--sizes", "20", "--models", "tag_deep", "tag_dtag",
                              "llm_embedding_dtag", "--domain-tags", str(tmp_path / "dtag.safetensors")))
    assert (df["status"] == "ok").all() and df["llm"].all() and df["mae"].notna().all()
    passed = spy[-1]["models"]  # estimators, with the tags of the file (compare's keys include their content)
    assert passed["tag_deep"] == "tag_deep"  # a named model of sktag.benchmark
    tags = passed["tag_dtag"].domain_tags
    assert isinstance(tags, TagSet) and torch.equal(tags["SMILES"], pre.tags_["SMILES"])
    assert passed["llm_embedding_dtag"].named_steps["embedding"].domain_tags is tags
    args = lc.parse_args(_args(tiny_model, tmp_path, "--models", "tag_deep", "tag_dtag", "llm_embedding_dtag",
                               "--domain-tags", "t.safetensors"))
    est, _, llm = lc.build_models(args.models, "regression", args, "t.safetensors")
    assert est["tag_deep"] == "tag_deep"
    assert est["tag_dtag"].domain_tags == "t.safetensors" and est["tag_dtag"].tag_depth == "shallow"
    assert isinstance(est["llm_embedding_dtag"].named_steps["embedding"], LLMEmbedding)
    assert est["llm_embedding_dtag"].named_steps["embedding"].domain_tags == "t.safetensors"
    assert all(llm.values())
    assert "sha256" in paths["md"].read_text()


def test_tag_deep_reg_chooses_on_scaffold_folds_of_the_training_rows(lc, spy, tiny_model, tmp_path):
    """tag_deep_reg: a grid search over alpha x deep_layers on scaffold-grouped folds of the n training rows only;
    its inner scores are recorded and reported, and the refit is the chosen deep tag."""
    from sklearn.model_selection import GridSearchCV

    from sktag import TagRegressor
    from sktag.model_selection import scaffold_groups

    for bad in (["--reg-deep-layers", "0"], ["--inner-folds", "1"]):
        with pytest.raises(SystemExit):
            lc.parse_args(_args(tiny_model, tmp_path, "--models", "tag_deep_reg", *bad))
    df, paths = lc.main(_args(tiny_model, tmp_path, "--sizes", "40", "--models", "tag_deep_reg", "--reg-alpha", "0",
                              "10", "--reg-deep-layers", "all", "1"))
    search = spy[-1]["models"]["tag_deep_reg"]
    assert isinstance(search, GridSearchCV) and isinstance(search.estimator, TagRegressor)
    assert search.estimator.tag_depth == "deep" and search.param_grid == {"alpha": [0.0, 10.0],
                                                                          "deep_layers": ["all", 1]}
    X_train = spy[-1]["X"][:40]
    groups = scaffold_groups(list(X_train))
    assert len(search.cv) == 2
    tests = np.sort(np.concatenate([te for _, te in search.cv]))
    np.testing.assert_array_equal(tests, np.arange(40))  # a partition of the training rows, no test row
    whole = np.bincount(groups)[groups] <= 40 / (2 * 2)  # scaffold sets over half a fold are split (inner_folds)
    for tr, te in search.cv:
        assert not set(groups[tr][whole[tr]]) & set(groups[te][whole[te]])
    record = tmp_path / "learning_curve_fits" / "caco2_wang_40" / "tag_deep_reg_search_seed0.json"
    rec = lc.json.loads(record.read_text())
    assert len(rec["settings"]) == 4 and all(len(s["folds"]) == 2 for s in rec["settings"])
    best = max(rec["settings"], key=lambda s: s["mean"])
    assert rec["best_params"] == best["params"] and rec["scoring"] == "neg_mean_absolute_error"
    row = df[df["model"] == "tag_deep_reg"].iloc[0]
    assert row["status"] == "ok" and row["note"].startswith("inner 2-fold CV chose ")
    assert "alpha=10.0, deep_layers=1:" in row["note"] and "tag_deep_reg, n = 40: inner" in paths["md"].read_text()
    # a record of another grid (the kept fit's record overwritten by a later run) is not reported as this fit's
    assert lc.search_note(record, {"alpha": [0.0, 10.0], "deep_layers": ["all", 1]}) == row["note"]
    assert "of another grid" in lc.search_note(record, {"alpha": [0.0], "deep_layers": ["all", 1]})
    with pytest.raises(ValueError, match="half_life_obach is scored by Spearman, which has none"):
        lc.main(_args(tiny_model, tmp_path / "spearman", "--models", "tag_deep_reg", "--datasets", "half_life_obach"))


def test_unparsable_smiles_are_left_out(lc):
    pytest.importorskip("rdkit")
    d = lc.load_dataset("solubility_aqsoldb", 0)  # 2 of its TDC test SMILES have a 4-valent neutral N+2
    assert (len(d["X"]), len(d["X_test"])) == (7985, 1995)
    assert "0 `train_val` and 2 test SMILES that RDKit cannot parse" in d["note"]
    assert not set(d["X"]) & set(d["X_test"]) and lc.rdkit_parses(d["X_test"]).all()


def test_reuse_fills_the_points_not_refitted(lc, spy, tiny_model, tmp_path):
    _, first = lc.main(_args(tiny_model, tmp_path / "a", "--models", "llm_embedding", "dummy"))
    # refit dummy only, at one size, on the same data set, and add another data set
    df, paths = lc.main(["--model", str(tiny_model), "--threads", "1", "--out", str(tmp_path / "b"), "--datasets",
                         "caco2_wang", "--sizes", "40", "--max-rows-test", "30", "--models", "dummy",
                         "--reuse", str(first["json"])])
    assert [list(c["models"]) for c in spy] == [["llm_embedding", "dummy"]] * 2 + [["dummy"]]
    got = {(r.model, r.n_train): r for r in df.itertuples()}
    assert sorted(got) == [("dummy", 20), ("dummy", 40), ("llm_embedding", 20), ("llm_embedding", 40)]
    old = pd.read_csv(first["csv"]).set_index(["model", "n_train"])
    kept = old.loc[("llm_embedding", 20), "fit_seconds"]
    assert got[("llm_embedding", 20)].fit_seconds == pytest.approx(kept, rel=1e-9)
    md = paths["md"].read_text()
    assert f"rows reused from {first['json'].name}" in md and "llm_embedding n = 20" in md
    assert "dummy n = 40" not in md.split("rows reused from")[1].split("\n")[0]
    assert "| n = 20 | n = 40 |" in md
    assert (df["seed"] == 0).all()
    # rows of another seed, backbone or test subsample are other points: refused, not reported as this run's
    for extra, what in ((["--seed", "1"], r"seed 0 \(this run: 1\);"), (["--max-rows-test", "29"], "max_rows_test 30")):
        argv = ["--model", str(tiny_model), "--threads", "1", "--out", str(tmp_path / "c"), "--datasets", "caco2_wang",
                "--sizes", "40", "--max-rows-test", "30", "--models", "dummy", "--reuse", str(first["json"]), *extra]
        with pytest.raises(ValueError, match=rf"--reuse .*{first['json'].name}: made with {what}"):
            lc.main(argv)
    report = lc.json.loads(first["json"].read_text())
    report["rows"][0]["seed"] = 3  # a report that itself mixed seeds
    (tmp_path / "mixed.json").write_text(lc.json.dumps(report))
    with pytest.raises(ValueError, match="made with rows of seed 3"):
        lc.main(_args(tiny_model, tmp_path / "d", "--models", "dummy", "--reuse", str(tmp_path / "mixed.json")))
