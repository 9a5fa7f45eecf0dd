"""The ``sktag-benchmark`` command (also ``python -m sktag.benchmark``)."""

from __future__ import annotations

import argparse
import ast
import shutil
import sys
from pathlib import Path

import numpy as np

from . import _plot
from ._registry import DEFAULT_MODELS, MODELS

EPILOG = """\
examples:
  sktag-benchmark data.csv --smiles-column smiles --target logS
  sktag-benchmark data.csv --smiles-column smiles --target active --task classification --cv scaffold:5
  sktag-benchmark pairs.csv --smiles-column drug --column target=Protein --target pKd --models tag rf_morgan_counts
  sktag-benchmark data.csv --target y --model ./my-llm --param tag:max_iter=3 --out results/

Every finished fit is kept in OUT/fits: rerun the same command after an interruption and it resumes.
named models: """ + ", ".join(MODELS)


def build_parser():
    p = argparse.ArgumentParser(prog="sktag-benchmark", description="Benchmark Tag-LLM models against classical "
                                "models on a CSV file, with the same folds for every model.", epilog=EPILOG,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("csv", help="the data: a CSV/TSV file with a SMILES column and a target column, a Parquet file, "
                   "an SD file (.sdf, .sdf.gz: its molecules are the SMILES column, --target names a property) or "
                   "a SMILES file (.smi)")
    p.add_argument("--smiles-column", default="smiles", help="column of SMILES strings (default: smiles)")
    p.add_argument("--target", required=True, help="column of the target (numbers, or class labels)")
    p.add_argument("--column", action="append", default=[], metavar="COLUMN=DOMAIN",
                   help="another input column of the LLM models and its domain, e.g. --column target=Protein "
                        "(repeatable; the classical models use only the SMILES column)")
    p.add_argument("--task", choices=["auto", "regression", "classification"], default="auto",
                   help="default auto: classification for text labels or at most 10 distinct integers")
    p.add_argument("--cv", default=None, help="folds: scaffold:K (default with K=5), kfold:K, stratified:K, or K")
    p.add_argument("--models", nargs="+", default=["default"], metavar="NAME",
                   help="named models, 'default' or 'all' (default: default = " + " ".join(DEFAULT_MODELS) + ")")
    p.add_argument("--model", default="smollm2-135m", help="LLM of the Tag-LLM models: a name or a local folder")
    p.add_argument("--param", action="append", default=[], metavar="NAME:PARAM=VALUE",
                   help="set a parameter of one model, e.g. tag:max_iter=3 or rf_morgan_counts:model__n_estimators=100")
    p.add_argument("--scoring", nargs="+", default=None, metavar="METRIC",
                   help="metrics (first ranks): rmse mae mse r2 spearman ci | roc_auc average_precision accuracy "
                        "balanced_accuracy log_loss")
    p.add_argument("--stats", choices=["corrected_t", "bootstrap", "both"], default="corrected_t",
                   help="paired statistics against the reference row (default: corrected_t)")
    p.add_argument("--reference", default=None, help="row of the paired statistics (default: best classical)")
    p.add_argument("--out", default=None, help="output folder (default: sktag-benchmark-<csv name>)")
    p.add_argument("--restart", action="store_true", help="forget the finished fits in OUT and start again")
    p.add_argument("--n-jobs", type=int, default=None, help="fits in parallel processes (default: one at a time)")
    p.add_argument("--random-state", type=int, default=0, help="seed of the folds and models (default: 0)")
    p.add_argument("--sep", default=None, help="delimiter of a text file (default: a tab for .tsv, else ,)")
    p.add_argument("--no-plot", action="store_true", help="do not write the PNG plot (no matplotlib needed)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def _parse_params(items, parser):
    out = {}
    for item in items:
        name, sep, rest = item.partition(":")
        key, eq, value = rest.partition("=")
        if not (sep and eq and name and key):
            parser.error(f"--param {item!r}: expected NAME:PARAM=VALUE, e.g. tag:max_iter=3")
        try:
            value = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            pass  # a plain string
        out.setdefault(name, {})[key] = value
    return out


def load_csv(path, smiles_column, target, columns, task, sep=None):
    """Read and check the CSV: ``(X, y)``; ``ValueError`` with one clear message when it is unusable.

    Rows are named by their line in a text file (the header is line 1), by their record number in an SD file.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: no such file")
    df = _read_table(path, smiles_column, sep)
    _check_columns(df, path, smiles_column, target, columns)
    y = _read_target(df, path, target, task)
    X = df[[smiles_column] + list(columns)] if columns else df[smiles_column]
    return X, y


def _read_table(path, smiles_column, sep):
    """The file as a table of strings, its index the line (text files) or record number (SD files)."""
    import pandas as pd

    from sktag.datasets._files import _kind, read_molecules

    try:
        kind = _kind(path)
    except ValueError:  # any other name: a delimited text file
        kind = "csv"
    if kind in ("sdf", "smi", "parquet"):  # the molecules (SDF, SMILES file) are the SMILES column
        df = read_molecules(path, smiles_column=smiles_column)
        return df.astype(object).where(df.notna(), "").astype(str)  # a record without a field: an empty cell
    try:
        df = pd.read_csv(path, sep=sep or ("\t" if kind == "tsv" else ","), dtype=str, keep_default_na=False,
                         skipinitialspace=True)
    except Exception as exc:
        raise ValueError(f"{path} is not a readable CSV file: {exc}") from None
    if len(df) == 0:
        raise ValueError(f"{path}: no data rows (only a header line)")
    df.index = pd.RangeIndex(2, len(df) + 2, name="line")
    return df


def _check_columns(df, path, smiles_column, target, columns):
    """Every named column is there once, and no input cell is empty."""
    cols = list(df.columns)
    wanted = [smiles_column, target] + list(columns)
    missing = [c for c in wanted if c not in cols]
    if missing:
        hints = [f"{c!r} (did you mean {[k for k in cols if k.lower() == c.lower()][0]!r}?)"
                 if any(k.lower() == c.lower() for k in cols) else repr(c) for c in missing]
        raise ValueError(f"{path}: no column {', '.join(hints)}; the columns are {cols}")
    if len(set(wanted)) != len(wanted):
        raise ValueError(f"{path}: a column is used twice among {wanted}")
    for c in [smiles_column] + list(columns):
        empty = df.index[df[c].str.strip() == ""]
        if len(empty):
            raise ValueError(f"{path}: column {c!r} is empty on {df.index.name}(s) {_lines(empty)}")


def _read_target(df, path, target, task):
    """The target column: numbers for regression, numbers or labels (integers when whole) for classification."""
    import pandas as pd

    where = df.index.name
    raw = df[target].str.strip()
    empty = df.index[raw == ""]
    if len(empty):
        raise ValueError(f"{path}: target {target!r} is empty on {where}(s) {_lines(empty)}; drop those rows")
    num = pd.to_numeric(raw, errors="coerce")
    bad = df.index[num.isna() | ~np.isfinite(num.astype(float))]
    if task == "regression" or (task == "auto" and 0 < len(bad) < len(df)):
        if len(bad):
            shown = ", ".join(f"{where} {i} ({raw[i]!r})" for i in bad[:5]) + (" ..." if len(bad) > 5 else "")
            raise ValueError(f"{path}: target {target!r} is not numeric: {shown}"
                             + ("" if task == "regression" else "; for class labels pass --task classification"))
    if task == "auto" and len(bad) == len(df) and raw.nunique() > 20:
        raise ValueError(f"{path}: target {target!r} is not numeric (e.g. {raw.iloc[0]!r}) and has {raw.nunique()} "
                         "distinct values: pass --task classification if these are class labels")
    y = num.to_numpy(dtype=float) if len(bad) == 0 else raw.to_numpy(dtype=object)
    if task == "classification" and len(bad) == 0 and np.all(y == np.round(y)):
        y = y.astype(np.int64)
    return y


def _check_smiles(smiles, path):
    """One ``ValueError`` naming the line of every SMILES that RDKit cannot parse."""
    from sktag.exceptions import InvalidInputError
    from sktag.model_selection import scaffold_groups

    try:
        scaffold_groups(smiles)
    except InvalidInputError as exc:
        lines = smiles.index[list(exc.rows)]
        shown = "; ".join(f"{smiles.index.name or 'row'} {ln} {smiles[ln]!r} ({why})"
                          for ln, why in list(zip(lines, exc.reasons))[:10])
        raise ValueError(f"{path}: {len(lines)} SMILES in column {smiles.name!r} that RDKit cannot parse: {shown}"
                         + (" ..." if len(lines) > 10 else "")) from None


def _lines(index):
    return ", ".join(map(str, list(index[:10]))) + (" ..." if len(index) > 10 else "")


def _parse_columns(items, parser):
    """``--column COLUMN=DOMAIN`` items as ``{column: domain}``."""
    columns = {}
    for item in items:
        col, eq, dom = item.partition("=")
        if not (eq and col and dom):
            parser.error(f"--column {item!r}: expected COLUMN=DOMAIN, e.g. target=Protein")
        columns[col] = dom
    return columns


def _model_names(items):
    """The named models of ``--models``, in order and once each ("default" and "all" may be combined with names)."""
    models = []
    for m in items:
        for name in DEFAULT_MODELS if m == "default" else list(MODELS) if m == "all" else [m]:
            if name not in models:
                models.append(name)
    return models


def _fail(msg):
    print(f"sktag-benchmark: error: {msg}", file=sys.stderr)
    return 2


def _make_out_folder(out):
    """Create the output folder before any fit; the error message when it cannot be used, else None."""
    try:  # a file in its place, or no permission, is a one-line error
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        return (f"--out {out}: cannot be used as the output folder: "
                + ("a file of that name exists" if out.exists() and not out.is_dir() else str(exc)))
    return None


def _compare(args, X, y, columns, params, out):
    """``compare`` on the command's data and options, its fits kept in ``out``."""
    from ._compare import compare

    cv = int(args.cv) if args.cv and args.cv.isdigit() else args.cv
    domains = {args.smiles_column: "SMILES", **columns} if columns else "SMILES"
    return compare(X, y, models=_model_names(args.models), cv=cv, task=args.task, scoring=args.scoring,
                   n_jobs=args.n_jobs, random_state=args.random_state, verbose=0 if args.quiet else 1,
                   model=args.model, model_params=params or None,
                   smiles_column=args.smiles_column if columns else None, domains=domains,
                   reference=args.reference, checkpoint_dir=out)


def main(argv=None):
    """Run the command; returns the exit status (0, 2 for bad input, 130 when interrupted)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    params = _parse_params(args.param, parser)
    columns = _parse_columns(args.column, parser)
    out = Path(args.out or f"sktag-benchmark-{Path(args.csv).stem}")
    if not args.no_plot:
        try:
            _plot.figure_class()
        except ImportError:
            return _fail("the PNG plot needs matplotlib: pip install 'sktag[bench]' (or pass --no-plot)")
    try:
        X, y = load_csv(args.csv, args.smiles_column, args.target, list(columns), args.task, args.sep)
        _check_smiles(X[args.smiles_column] if columns else X, args.csv)
    except (ValueError, ImportError) as exc:  # ImportError: RDKit is missing
        return _fail(str(exc))
    created = not out.exists()
    problem = _make_out_folder(out)
    if problem:
        return _fail(problem)
    if args.restart and (out / "fits").exists():
        shutil.rmtree(out / "fits")
    try:
        result = _compare(args, X, y, columns, params, out)
    except (ValueError, TypeError) as exc:
        if created and not any(p.is_file() for p in out.rglob("*")):  # refused before any fit: leave no folder
            shutil.rmtree(out, ignore_errors=True)
        return _fail(f"{args.csv}: {exc}")
    except KeyboardInterrupt:
        n = len(list((out / "fits").glob("*.json"))) if (out / "fits").exists() else 0
        print(f"\ninterrupted: {n} finished fit(s) are kept in {out / 'fits'}; run the same command again to "
              "resume", file=sys.stderr)
        return 130
    paths = result.save(out, "benchmark", plot=not args.no_plot, test=args.stats)
    print(result.to_markdown(test=args.stats))
    written = ", ".join(str(p) for p in paths.values() if p is not None)
    print(f"wrote {written}", file=sys.stderr)
    return 0
