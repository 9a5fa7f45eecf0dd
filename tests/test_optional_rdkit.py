"""sktag without RDKit: importable, non-SMILES paths work, SMILES features say what is missing.

Each check runs in a subprocess in which ``import rdkit`` fails (``sys.modules["rdkit"] = None``),
so it runs the same whether or not RDKit is installed here.
"""

import os
import subprocess
import sys
import textwrap

HIDE_RDKIT = "import sys; sys.modules['rdkit'] = None\n"
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _run(code, tmp_path):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([REPO, os.environ.get("PYTHONPATH", "")]),
               HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1")
    out = subprocess.run([sys.executable, "-c", HIDE_RDKIT + textwrap.dedent(code)], capture_output=True,
                         text=True, env=env, cwd=tmp_path, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    return out.stdout


def test_import_everything_without_rdkit(tmp_path):
    out = _run("""
        import sktag, sktag.features, sktag.model_selection, sktag.domains, sktag.datasets, sktag.tags
        import sktag.distributed, sktag.pretrain
        assert "rdkit" not in [m.split(".")[0] for m in sys.modules if sys.modules[m] is not None]
        print("ok")
    """, tmp_path)
    assert out.strip() == "ok"


def test_text_and_protein_work_and_smiles_features_name_rdkit_without_it(tiny_model, tmp_path):
    out = _run(f"""
        import warnings
        import numpy as np
        import sktag.features, sktag.model_selection
        from sktag import TagRegressor
        from sktag.domains import validate_strings

        X = ["abc", "abcd", "ab", "abcdef"] * 3
        y = np.array([len(s) for s in X], dtype=float)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            est = TagRegressor(model={tiny_model!r}, domains="Text", tag_length=2, max_iter=1,
                               device="cpu", random_state=0).fit(X, y)
        assert np.isfinite(est.predict(X)).all()
        assert validate_strings(["acde"], "Protein")[0] == ["ACDE"]
        calls = {{
            "smiles-fit": lambda: TagRegressor(model={tiny_model!r}, domains="SMILES", max_iter=1,
                                               device="cpu").fit(["CCO"] * 4, [1.0, 2, 3, 4]),
            "morgan": lambda: sktag.features.MorganFingerprint().fit_transform(["CCO"]),
            "descriptors": lambda: sktag.features.RDKitDescriptors().get_feature_names_out(),
            "scaffold": lambda: sktag.model_selection.scaffold_groups(["CCO"]),
        }}
        for name, call in calls.items():
            try:
                call()
            except ImportError as exc:
                assert exc.name == "rdkit" and "pip install rdkit" in str(exc), exc
                print(name, "ImportError")
            else:
                print(name, "no error")
    """, tmp_path)
    assert out.split() == ["smiles-fit", "ImportError", "morgan", "ImportError", "descriptors",
                           "ImportError", "scaffold", "ImportError"]


def test_smiles_error_names_the_domain_and_the_alternative(tmp_path):
    out = _run("""
        from sktag.domains import validate_strings
        try:
            validate_strings(["CCO"], "SMILES")
        except ImportError as exc:
            print(exc)
    """, tmp_path)
    assert "'SMILES' domain" in out and "pip install rdkit" in out and "'Text'" in out
