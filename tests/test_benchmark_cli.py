"""The sktag-benchmark command: a subprocess on a temporary CSV, resume, bad CSVs."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import sktag
from conftest import esol_sample
from sktag.benchmark._cli import main

ROOT = Path(sktag.__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def esol_csv(tmp_path_factory):
    X, y = esol_sample(30)
    path = tmp_path_factory.mktemp("csv") / "mols.csv"
    pd.DataFrame({"name": [f"m{i}" for i in range(30)], "smiles": X, "logS": y}).to_csv(path, index=False)
    return path


def _run(args, cwd, code=None):
    """Run the command in a fresh interpreter (``code`` replaces ``python -m sktag.benchmark``)."""
    env = dict(os.environ, PYTHONPATH=str(ROOT), HF_HUB_OFFLINE="1", SKTAG_CPU_BF16="0", OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "sktag.benchmark", *args] if code is None else [sys.executable, "-c", code, *args]
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


# an interruption after three finished fits: the fourth fit raises KeyboardInterrupt, as Ctrl-C would
INTERRUPT = """
import sys
import sktag.benchmark._compare as c
fit_one, calls = c._fit_one, []
def interrupting(*a, **k):
    calls.append(1)
    if len(calls) == 4:
        raise KeyboardInterrupt
    return fit_one(*a, **k)
c._fit_one = interrupting
from sktag.benchmark._cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_command_writes_results_and_resumes(tmp_path, esol_csv, tiny_model):
    args = [str(esol_csv), "--smiles-column", "smiles", "--target", "logS", "--models", "tag", "rf_morgan_counts",
            "dummy", "--model", str(tiny_model), "--param", "tag:max_iter=1",
            "--param", "rf_morgan_counts:model__n_estimators=10", "--cv", "scaffold:3", "--out", "out"]
    first = _run(args, tmp_path, code=INTERRUPT)
    assert first.returncode == 130, first.stderr
    assert "interrupted: 3 finished fit(s)" in first.stderr and "run the same command again" in first.stderr
    fits = sorted((tmp_path / "out" / "fits").glob("*.json"))
    assert len(fits) == 3
    before = {f.name: f.read_text() for f in fits}
    assert not (tmp_path / "out" / "benchmark.md").exists()

    second = _run(args, tmp_path)
    assert second.returncode == 0, second.stderr
    assert "9 fits (3 reused from out)" in second.stderr
    assert "ETA" in second.stderr  # the progress bar
    for name, text in before.items():  # the finished fits were not redone
        assert (tmp_path / "out" / "fits" / name).read_text() == text
    assert len(list((tmp_path / "out" / "fits").glob("*.json"))) == 9
    folds = pd.read_csv(tmp_path / "out" / "benchmark.csv")
    assert len(folds) == 9 and folds["resumed"].sum() == 3 and folds["error"].isna().all()
    assert folds.loc[folds["resumed"], "fold"].tolist() == [0, 0, 0]
    for ext in ("md", "json", "png"):
        assert (tmp_path / "out" / f"benchmark.{ext}").stat().st_size > 0
    md = (tmp_path / "out" / "benchmark.md").read_text()
    assert "| rf_morgan_counts" in md and "vs rf_morgan_counts" in md and "![rmse per model](benchmark.png)" in md
    assert md.splitlines()[0] in second.stdout
    data = json.loads((tmp_path / "out" / "benchmark.json").read_text())
    assert data["reference"] == "rf_morgan_counts" and len(data["folds"]) == 9 and len(data["paired"]) == 2


def test_bad_csv_fails_before_any_fit_in_a_subprocess(tmp_path, esol_csv):
    res = _run([str(esol_csv), "--smiles-column", "SMILES", "--target", "logS", "--out", "out"], tmp_path)
    assert res.returncode == 2
    assert res.stderr.strip().splitlines() == [
        f"sktag-benchmark: error: {esol_csv}: no column 'SMILES' (did you mean 'smiles'?); "
        "the columns are ['name', 'smiles', 'logS']"]
    assert not (tmp_path / "out").exists()


def _csv(tmp_path, **columns):
    path = tmp_path / "data.csv"
    pd.DataFrame(columns).to_csv(path, index=False)
    return path


@pytest.mark.parametrize("make, args, message", [
    (lambda t: _csv(t, smiles=["CCO", "CCN"] * 10, y=["1.5"] * 5 + ["n/a"] + ["2"] * 14), [],
     "target 'y' is not numeric: line 7 ('n/a')"),
    (lambda t: _csv(t, smiles=["CCO", "CCN"] * 10, y=["1"] * 3 + [""] + ["2"] * 16), [],
     "target 'y' is empty on line(s) 5"),
    (lambda t: _csv(t, smiles=["CCO", "c1ccccc1", "C1CCCC1", "CCN", "c1ccncc1", "C1CC1"], y=np.arange(6.0)), [],
     "too few rows per fold"),
    (lambda t: _csv(t, smiles=["CCO", "c1ccccc1", "C1CC1"] * 4, y=np.arange(12.0)), ["--cv", "scaffold:5"],
     "12 rows in 3 Bemis-Murcko scaffold group(s): 5 scaffold folds need at least 5 groups"),
    (lambda t: _csv(t, smiles=["CCO", "C1CC", "CCN"] * 4, y=np.arange(12.0)), [],
     "4 SMILES in column 'smiles' that RDKit cannot parse: line 3 'C1CC' (unclosed ring); line 6 'C1CC'"),
    (lambda t: _csv(t, smiles=["CCO", "CCN"] * 10, y=["a", "b"] * 9 + ["c", "d"]), ["--task", "regression"],
     "target 'y' is not numeric: line 2 ('a')"),
    (lambda t: _csv(t, smiles=["CCO", "CCN"] * 10, y=np.arange(20.0)), ["--column", "seq=Protein"],
     "no column 'seq'"),
    (lambda t: t / "missing.csv", [], "missing.csv: no such file"),
])
def test_bad_csvs_give_one_clear_error(tmp_path, capsys, make, args, message):
    path = make(tmp_path)
    out = tmp_path / "out"
    code = main([str(path), "--target", "y", "--out", str(out), "--quiet", "--no-plot", *args])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("sktag-benchmark: error: ") and message in err, err
    assert "Traceback" not in err and not out.exists()


def test_text_labels_are_a_classification(tmp_path, capsys):
    path = _csv(tmp_path, smiles=["CCO", "c1ccccc1", "C1CCCC1", "CCN", "c1ccncc1", "C1CC1", "CCCC", "c1ccoc1"] * 3,
                y=["active", "inactive"] * 12)
    code = main([str(path), "--target", "y", "--models", "dummy", "--cv", "kfold:3", "--out", str(tmp_path / "o"),
                 "--quiet", "--no-plot"])
    out = capsys.readouterr().out
    assert code == 0 and "Task: classification" in out and "AUROC" in out


def test_console_script_is_declared():
    import tomllib

    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    module, func = scripts["sktag-benchmark"].split(":")
    assert getattr(__import__(module, fromlist=[func]), func) is main
    assert "matplotlib" in " ".join(tomllib.loads((ROOT / "pyproject.toml").read_text())
                                    ["project"]["optional-dependencies"]["bench"])


def test_no_benchmark_module_over_450_lines():
    for f in (ROOT / "sktag" / "benchmark").glob("*.py"):
        assert len(f.read_text().splitlines()) <= 450, f


def test_killed_run_resumes(tmp_path, esol_csv, tiny_model):
    """A run killed with SIGKILL (no clean-up at all) keeps its finished fits; the rerun does only the rest."""
    import signal
    import time

    args = [str(esol_csv), "--target", "logS", "--models", "tag", "dummy", "--model", str(tiny_model),
            "--param", "tag:max_iter=15", "--param", "tag:early_stopping=False", "--cv", "scaffold:3",
            "--out", "out", "--quiet", "--no-plot"]
    env = dict(os.environ, PYTHONPATH=str(ROOT), HF_HUB_OFFLINE="1", SKTAG_CPU_BF16="0", OMP_NUM_THREADS="1")
    proc = subprocess.Popen([sys.executable, "-m", "sktag.benchmark", *args], cwd=tmp_path, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    fits = tmp_path / "out" / "fits"
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None and not list(fits.glob("*.json")):
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.read()
    done = {f.name: f.read_text() for f in fits.glob("*.json")}
    assert 1 <= len(done) < 6
    res = _run(args, tmp_path)
    assert res.returncode == 0, res.stderr
    folds = pd.read_csv(tmp_path / "out" / "benchmark.csv")
    assert folds["resumed"].sum() == len(done) and len(folds) == 6
    assert all((fits / name).read_text() == text for name, text in done.items())


def test_missing_matplotlib_is_reported_before_any_fit(tmp_path, capsys, monkeypatch, esol_csv):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    out = tmp_path / "out"
    assert main([str(esol_csv), "--target", "logS", "--models", "dummy", "--out", str(out), "--quiet"]) == 2
    assert "pip install 'sktag[bench]' (or pass --no-plot)" in capsys.readouterr().err
    assert not out.exists()
    assert main([str(esol_csv), "--target", "logS", "--models", "dummy", "--out", str(out), "--quiet",
                 "--no-plot"]) == 0
    assert (out / "benchmark.md").exists() and not (out / "benchmark.png").exists()


def test_ctrl_c_mid_fit_stops_the_run_and_the_rerun_redoes_that_fit(tmp_path, esol_csv, tiny_model):
    """SIGINT while a Tag-LLM trains: exit 130, only finished fits kept; the same command then refits it."""
    import re
    import signal
    import threading
    import time

    epochs = 100  # and as many epochs of patience: the fit cannot end before the interrupt
    args = [str(esol_csv), "--target", "logS", "--models", "dummy", "tag", "--model", str(tiny_model),
            "--param", f"tag:max_iter={epochs}", "--param", f"tag:n_iter_no_change={epochs}",
            "--param", "tag:early_stopping=False",
            "--param", "tag:verbose=1", "--cv", "kfold:2", "--out", "out", "--no-plot"]
    env = dict(os.environ, PYTHONPATH=str(ROOT), HF_HUB_OFFLINE="1", SKTAG_CPU_BF16="0", OMP_NUM_THREADS="1")
    proc = subprocess.Popen([sys.executable, "-m", "sktag.benchmark", *args], cwd=tmp_path, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    err = bytearray()
    reader = threading.Thread(target=lambda: [err.extend(c) for c in iter(lambda: proc.stderr.read1(4096), b"")])
    reader.start()
    epoch_bar = re.compile(rb"fit:.*?\| *(\d+)/%d" % epochs)
    epoch_loss = re.compile(rb"fit:[^\r\n]*?loss=")
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:  # until the Tag-LLM of fold 0 is a few epochs in
        done = [int(n) for n in epoch_bar.findall(bytes(err))]
        # tqdm may refresh the count lazily; every finished epoch also prints its loss
        if (done and max(done) >= 3) or len(epoch_loss.findall(bytes(err))) >= 3:
            break
        time.sleep(0.02)
    assert proc.poll() is None, err.decode(errors="replace")
    proc.send_signal(signal.SIGINT)
    proc.wait(timeout=60)
    reader.join(timeout=10)
    text = err.decode(errors="replace")
    assert proc.returncode == 130, text
    assert "interrupted: 1 finished fit(s)" in text  # dummy on fold 0; not the Tag-LLM cut short
    kept = [json.loads(f.read_text()) for f in (tmp_path / "out" / "fits").glob("*.json")]
    assert len(kept) == 1 and kept[0]["n_iter"] is None
    assert not (tmp_path / "out" / "benchmark.md").exists()

    res = _run(args, tmp_path)  # the same command
    assert res.returncode == 0, res.stderr
    folds = pd.read_csv(tmp_path / "out" / "benchmark.csv")
    assert folds[["model", "fold", "resumed"]].values.tolist() == [
        ["dummy", 0, True], ["tag", 0, False], ["dummy", 1, False], ["tag", 1, False]]
    assert (folds.loc[folds["model"] == "tag", "n_iter"] == epochs).all()  # the refit ran to the end


def test_out_that_is_a_file_is_a_one_line_error(tmp_path, esol_csv, capsys):
    out = tmp_path / "results"
    out.write_text("not a folder")
    code = main([str(esol_csv), "--target", "logS", "--models", "dummy", "--out", str(out), "--quiet", "--no-plot"])
    err = capsys.readouterr().err
    assert code == 2 and err.strip().splitlines() == [
        f"sktag-benchmark: error: --out {out}: cannot be used as the output folder: a file of that name exists"]
    assert out.read_text() == "not a folder"


def test_a_csv_with_a_header_and_no_rows(tmp_path, capsys):
    path = tmp_path / "empty.csv"
    path.write_text("smiles,y\n")
    code = main([str(path), "--target", "y", "--out", str(tmp_path / "o"), "--quiet", "--no-plot"])
    assert code == 2 and f"sktag-benchmark: error: {path}: no data rows" in capsys.readouterr().err
