"""sktag.datasets.read_molecules and sktag-benchmark on SD and SMILES files."""

import gzip
import shutil
import warnings

import numpy as np
import pandas as pd
import pytest

from sktag.benchmark._cli import main
from sktag.datasets import read_molecules

Chem = pytest.importorskip("rdkit.Chem")

MOLECULES = [("CCO", "1.5", "active"), ("c1ccccc1", "2.0", "inactive"), ("CC(=O)O", "0.3", "active"),
             ("C1CCCCC1", "1.1", "inactive"), ("c1ccncc1", "0.7", "active"), ("CCN", "0.9", "inactive")]


def write_sdf(path, molecules=MOLECULES, broken=()):
    """An SD file of ``molecules`` (title, logS and label fields); records in ``broken`` get an atom count
    line that RDKit cannot read."""
    with Chem.SDWriter(str(path)) as w:
        for smiles, logs, label in molecules:
            mol = Chem.MolFromSmiles(smiles)
            mol.SetProp("_Name", f"mol-{smiles}")
            mol.SetProp("logS", logs)
            mol.SetProp("label", label)
            w.write(mol)
    records = path.read_text().split("$$$$\n")[:-1]
    for i in broken:
        lines = records[i].split("\n")
        lines[3] = " 99" + lines[3][3:]  # more atoms than the block has
        records[i] = "\n".join(lines)
    path.write_text("".join(r + "$$$$\n" for r in records))
    return path


def test_sdf_fields_become_columns_and_records_are_numbered(tmp_path):
    frame = read_molecules(write_sdf(tmp_path / "m.sdf"))
    assert frame.index.name == "record" and frame.index.tolist() == [1, 2, 3, 4, 5, 6]
    assert frame["smiles"].tolist() == [Chem.MolToSmiles(Chem.MolFromSmiles(s)) for s, _, _ in MOLECULES]
    assert frame["name"].tolist() == [f"mol-{s}" for s, _, _ in MOLECULES]
    assert frame["label"].tolist() == [lab for _, _, lab in MOLECULES]
    X, y = read_molecules(tmp_path / "m.sdf", target="logS", return_X_y=True)
    assert y.dtype == float and np.allclose(y, [float(v) for _, v, _ in MOLECULES]) and len(X) == 6
    _, labels = read_molecules(tmp_path / "m.sdf", target="label", return_X_y=True)
    assert labels.tolist() == [lab for _, _, lab in MOLECULES]


def test_a_broken_sd_record_is_named_not_dropped_silently(tmp_path):
    path = write_sdf(tmp_path / "m.sdf", broken=[1, 4])
    with pytest.raises(ValueError, match=r"2 record\(s\) that cannot be used: record 2: RDKit cannot read this "
                                         r"record; record 5: RDKit cannot read"):
        read_molecules(path, target="logS")
    with pytest.warns(UserWarning, match="record 2: .*record 5: .*they are left out"):
        frame = read_molecules(path, target="logS", on_invalid="warn")
    assert frame.index.tolist() == [1, 3, 4, 6]  # the records keep their numbers
    assert [d["record"] for d in frame.attrs["invalid"]] == [2, 5]
    gz = tmp_path / "m.sdf.gz"
    with open(path, "rb") as src, gzip.open(gz, "wb") as dst:
        shutil.copyfileobj(src, dst)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        pd.testing.assert_frame_equal(read_molecules(gz, target="logS", on_invalid="warn"), frame)


def test_smiles_csv_and_tsv_files(tmp_path):
    smi = tmp_path / "m.smi"
    smi.write_text("SMILES Name\nCCO ethanol\n\n# a comment\nc1ccccc1 benzene ring\nC1CC broken\n")
    with pytest.raises(ValueError, match=r"line 6: 'C1CC': unclosed ring"):
        read_molecules(smi)
    smi.write_text("CCO ethanol\nc1ccccc1\n")
    frame = read_molecules(smi)
    assert frame.index.tolist() == [1, 2] and frame["name"].tolist() == ["ethanol", ""]
    table = pd.DataFrame({"smi": ["CCO", "CCN"], "y": ["1", "2"]})
    table.to_csv(tmp_path / "m.csv", index=False)
    table.to_csv(tmp_path / "m.tsv", index=False, sep="\t")
    X, y = read_molecules(tmp_path / "m.tsv", target="y", smiles_column="smi", return_X_y=True)
    assert X.index.tolist() == [2, 3] and y.tolist() == [1.0, 2.0]
    with pytest.raises(ValueError, match=r"no column 'smiles'; the columns are \['smi', 'y'\]"):
        read_molecules(tmp_path / "m.csv")
    with pytest.raises(ValueError, match="no property 'logP'"):
        read_molecules(tmp_path / "m.csv", smiles_column="smi", target="logP")
    with pytest.raises(ValueError, match="unknown kind of file"):
        (tmp_path / "m.xyz").write_text("x")
        read_molecules(tmp_path / "m.xyz")
    with pytest.raises(ValueError, match="no such file"):
        read_molecules(tmp_path / "missing.sdf")


def test_sktag_benchmark_on_an_sd_file(tmp_path, capsys):
    path = write_sdf(tmp_path / "m.sdf", MOLECULES * 4)
    out = tmp_path / "out"
    code = main([str(path), "--target", "logS", "--models", "dummy", "rf_morgan_counts", "--cv", "kfold:3",
                 "--param", "rf_morgan_counts:model__n_estimators=10", "--out", str(out), "--quiet", "--no-plot"])
    printed = capsys.readouterr()
    assert code == 0, printed.err
    assert "Task: regression; 24 rows" in printed.out and (out / "benchmark.json").exists()
    broken = write_sdf(tmp_path / "b.sdf", MOLECULES * 4, broken=[3])
    code = main([str(broken), "--target", "logS", "--models", "dummy", "--out", str(tmp_path / "o2"), "--quiet",
                 "--no-plot"])
    err = capsys.readouterr().err
    assert code == 2 and "record 4: RDKit cannot read this record" in err and "Traceback" not in err


def test_parquet_file(tmp_path):
    pytest.importorskip("pyarrow")
    pd.DataFrame({"smiles": ["CCO", "C1CC", "CCN"], "y": [1.0, 2.0, 3.0]}).to_parquet(tmp_path / "m.parquet")
    with pytest.raises(ValueError, match=r"row 1: 'C1CC': unclosed ring"):
        read_molecules(tmp_path / "m.parquet")
    with pytest.warns(UserWarning):
        X, y = read_molecules(tmp_path / "m.parquet", target="y", return_X_y=True, on_invalid="warn")
    assert X.index.tolist() == [0, 2] and y.tolist() == [1.0, 3.0]


def test_sktag_benchmark_names_sd_records_without_the_target(tmp_path, capsys):
    path = write_sdf(tmp_path / "m.sdf", MOLECULES * 4)
    records = path.read_text().split("$$$$\n")
    records[2] = records[2].replace(">  <logS>  (3) \n0.3\n\n", "")  # record 3 has no logS field
    path.write_text("$$$$\n".join(records))
    code = main([str(path), "--target", "logS", "--models", "dummy", "--out", str(tmp_path / "o"), "--quiet",
                 "--no-plot"])
    err = capsys.readouterr().err
    assert code == 2 and "target 'logS' is empty on record(s) 3;" in err, err

