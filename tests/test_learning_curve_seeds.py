"""benchmarks.learning_curve_seeds: the seed spread and paired gains from learning-curve reports."""

import json

import numpy as np
import pytest


@pytest.fixture(scope="module")
def seeds():
    from benchmarks import learning_curve_seeds

    return learning_curve_seeds


def _report(path, seed, scores, metric="MAE", column="mae", row_seed=None, max_rows_test=None):
    rows = [dict(dataset="solubility_aqsoldb", tdc_metric=metric, n_train=100, model=m, status="ok",
                 fit_seconds=1.0, **{column: v}, **({} if row_seed is None else {"seed": row_seed}))
            for m, v in scores.items()]
    rows.append(dict(dataset="solubility_aqsoldb", tdc_metric=metric, n_train=100, model="big", status="skipped",
                     fit_seconds=None, **{column: None}))
    path.write_text(json.dumps(dict(info=dict(seed=seed, backbone="smollm2-135m", max_rows_test=max_rows_test),
                                    rows=rows)))
    return path


def test_spread_and_paired_gain_follow_the_metric_direction(seeds, tmp_path):
    a = _report(tmp_path / "a.json", 0, {"ref": 1.00, "tag": 0.90})
    b = _report(tmp_path / "b.json", 1, {"ref": 1.10, "tag": 1.06, "only1": 2.0})
    c = _report(tmp_path / "c.json", 0, {"ref": 1.00})  # the same point again, the same score: accepted
    summary, stem = seeds.main([str(a), str(b), str(c), "--reference", "ref", "--out", str(tmp_path / "out")])
    s = summary.set_index("model")
    assert "big" not in s.index  # skipped rows are not points
    np.testing.assert_allclose(s.loc["ref", "spread"], np.std([1.0, 1.1], ddof=1))
    # lower MAE is better, so the gain is reference minus model: 0.10 and 0.04
    np.testing.assert_allclose(s.loc["tag", "gain"], 0.07)
    np.testing.assert_allclose(s.loc["tag", "gain_se"], np.std([0.10, 0.04], ddof=1) / np.sqrt(2))
    assert s.loc["tag", "wins"] == 2 and s.loc["tag", "paired"] == 2
    assert s.loc["tag", "beats_spread"] == bool(0.07 > np.std([1.0, 1.1], ddof=1))
    assert s.loc["only1", "paired"] == 1 and not s.loc["only1", "beats_spread"]  # one seed: no spread to beat
    md = stem.with_suffix(".md").read_text()
    assert "| tag | 0.900 | 1.060 | 0.980 |" in md and "+0.070 ± 0.030 | 2 of 2 |" in md
    assert stem.with_suffix(".csv").exists()

    hi = _report(tmp_path / "hi.json", 0, {"ref": 0.80, "tag": 0.70}, metric="AUPRC", column="average_precision")
    s = seeds.summarise(seeds.load_rows([hi])[0], "ref").set_index("model")
    np.testing.assert_allclose(s.loc["tag", "gain"], -0.10)  # higher AUPRC is better


def test_disagreeing_or_mixed_seed_reports_are_refused(seeds, tmp_path):
    a = _report(tmp_path / "a.json", 0, {"ref": 1.00, "tag": 0.90})
    other = _report(tmp_path / "other.json", 0, {"ref": 1.01})
    with pytest.raises(ValueError, match=r"other.json: ref on solubility_aqsoldb, n = 100, seed 0 scores 1.010000; "
                                         r"a.json gave 1.000000"):
        seeds.load_rows([a, other])
    mixed = _report(tmp_path / "mixed.json", 1, {"ref": 1.00}, row_seed=0)
    with pytest.raises(ValueError, match=r"mixed.json: its rows come from seeds \[0\], its run from seed 1"):
        seeds.load_rows([mixed])
    smoke = _report(tmp_path / "smoke.json", 1, {"ref": 1.00}, max_rows_test=30)  # another test set
    with pytest.raises(ValueError, match=r"smoke.json: made with .*'max_rows_test': 30.*, a.json with"):
        seeds.load_rows([a, smoke])
    with pytest.raises(SystemExit, match="--reference nope: no such model"):
        seeds.main([str(a), "--reference", "nope", "--out", str(tmp_path)])
