"""benchmarks.explain_faithfulness end to end on a tiny model and a few molecules (the real run takes ~15 min)."""

import json

import pytest

pytest.importorskip("rdkit")
pytest.importorskip("scipy")


def test_the_report_pictures_and_record(tiny_model, tmp_path):
    from benchmarks import explain_faithfulness as script

    script.main(["--model", str(tiny_model), "--threads", "1", "--n-train", "60", "--n-test", "12", "--draws", "2",
                 "--max-iter", "1", "--out", str(tmp_path)])
    rec = json.loads(next(tmp_path.glob("explain_faithfulness_*.json")).read_text())
    assert rec["n_steps"] in script.CANDIDATE_STEPS
    assert rec["command"].startswith("python -m benchmarks.explain_faithfulness --model")
    assert set(rec["deletion"]) == {"1", "3", "5"}
    one = rec["deletion"]["1"]
    assert one["any"]["n"] == one["changeable"]["n"] >= 1 and len(one["tokens"]) == 3
    assert len(rec["explained"]) == 12 and rec["timing"]["explain"] > 0
    for name in rec["pictures"]:
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (tmp_path / rec["pictures"][0].replace(".png", ".svg")).exists()
    report = next(tmp_path.glob("explain_faithfulness_*.md")).read_text()
    assert "## Deletion test" in report and "prediction passes' worth" in report
    # a second run takes the first one's choice of integration points, and says so
    first = next(tmp_path.glob("explain_faithfulness_*.json"))
    again = tmp_path / "again"
    script.main(["--model", str(tiny_model), "--threads", "1", "--n-train", "60", "--n-test", "4", "--draws", "1",
                 "--max-iter", "1", "--reuse", str(first), "--out", str(again)])
    rec2 = json.loads(next(again.glob("explain_faithfulness_*.json")).read_text())
    assert rec2["n_steps"] == rec["n_steps"] and rec2["steps"] == rec["steps"] and rec2["steps_from"] == first.name
