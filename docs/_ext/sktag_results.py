"""Benchmark tables and plots rendered at build time from the report files in ``benchmarks/results/``.

A number on a benchmark page is read from the report that the benchmark script wrote, so it cannot drift from it.
Every directive takes a report's file name or a glob (``hybrid_*.json``: the newest match, by the date stamp in
the name); a report that is missing is a build error.  The first time a page shows a report, a provenance line
follows it (script, command, CPU, CPU kind, dtype, threads, date, sktag version: what the report records); later
uses on the same page name the report only.  The directives work in MyST Markdown pages.

``sktag-table``
    A table of the report's Markdown file (``<stem>.md``), as the script wrote it.  Options: ``:section:`` (text of
    the heading the table is under), ``:table:`` (1-based, within the section or the file; default 1),
    ``:columns:`` (comma-separated 1-based numbers or header texts; default all), ``:rows:`` (comma-separated texts
    that a row's first cell must contain; default all), ``:caption:``, ``:note:`` (text added to the provenance
    line, for what the report does not record).
``sktag-figure``
    The report's PNG (``<stem>.png``, or a ``.png`` name or glob), copied into the build.  Options: ``:alt:``,
    ``:width:``, ``:caption:``, ``:note:``.
``sktag-hybrid``
    From a ``benchmarks/hybrid.py`` report: ``:show: table`` (per data set the LLM features alone, the best
    classical model, the classical stack, the hybrid and the paired differences, from the report's two tables)
    or ``:show: plot`` (the test scores per data set with the spread over splits, drawn from the JSON).
    ``:expect:`` names data sets that a note lists when the report does not have them; ``:note:``.
``sktag-provenance``
    The provenance line of a report on its own.  Option ``:note:``.
``sktag-archive``
    A list of reports, one per content line ``<report file>: <what it measured>``, each with its provenance;
    ``:superseded: <glob>`` adds every match of the glob but the newest, described by ``:text:``.

Register with ``extensions = [..., "sktag_results"]`` (``docs/_ext`` is on ``sys.path``); the folder of the reports
is ``sktag_results_dir`` (default ``<repository>/benchmarks/results``).
"""

from __future__ import annotations

import glob as _glob
import hashlib
import json
import os
import re
import shlex
from pathlib import Path

from docutils import nodes
from docutils.parsers.rst import directives
from docutils.statemachine import StringList
from sphinx.errors import ExtensionError
from sphinx.util.docutils import SphinxDirective

__all__ = ["setup"]

STAMP = re.compile(r"(\d{8})-(\d{4})")
LABELS = {"esol": "ESOL", "bbbp": "BBBP", "lipophilicity": "Lipophilicity", "caco2_wang": "Caco2",
          "hia_hou": "HIA", "davis": "DAVIS", "solubility_aqsoldb": "AqSolDB", "cyp3a4_veith": "CYP3A4"}
MODEL_LABELS = {"hgb_descriptors": "descriptors + GB", "rf_morgan_counts": "Morgan + RF"}


# -- finding reports ------------------------------------------------------------------------------------------------

def results_dir(env) -> Path:
    folder = env.config.sktag_results_dir or Path(env.srcdir).parent / "benchmarks" / "results"
    return Path(folder)


def _sort_key(path: Path):
    m = STAMP.search(path.name)
    return (m.group(1) + m.group(2)) if m else "", path.name


def resolve(env, pattern: str) -> Path:
    """The report file of ``pattern``: a name in the results folder or the newest match of a glob."""
    folder = results_dir(env)
    matches = [Path(p) for p in _glob.glob(str(folder / pattern)) if Path(p).is_file()]
    if not matches:
        raise ExtensionError(f"sktag_results: no report matches {pattern!r} in {folder}")
    path = max(matches, key=_sort_key)
    store = env.__dict__.setdefault("sktag_globs", {})
    if any(c in pattern for c in "*?["):
        store.setdefault(env.docname, {})[pattern] = path.name
    env.note_dependency(str(path))
    return path


def companion(path: Path, suffix: str) -> Path:
    """``<stem><suffix>`` beside the report; a missing one is a build error."""
    other = path.with_suffix(suffix)
    if not other.is_file():
        raise ExtensionError(f"sktag_results: {path.name} has no {other.name}")
    return other


def _outdated(app, env, added, changed, removed):
    """Pages whose glob now resolves to another (newer) report are read again."""
    out = []
    for docname, globs in getattr(env, "sktag_globs", {}).items():
        for pattern, name in globs.items():
            matches = [Path(p) for p in _glob.glob(str(results_dir(env) / pattern))]
            if not matches or max(matches, key=_sort_key).name != name:
                out.append(docname)
                break
    return out


def _purge(app, env, docname):
    getattr(env, "sktag_globs", {}).pop(docname, None)


def _merge(app, env, docnames, other):
    env.__dict__.setdefault("sktag_globs", {}).update(getattr(other, "sktag_globs", {}))


# -- provenance -----------------------------------------------------------------------------------------------------

def _find(obj, *keys):
    """First scalar value of any of ``keys`` in a nested dict (breadth first)."""
    queue = [obj]
    while queue:
        cur = queue.pop(0)
        if isinstance(cur, dict):
            for k in keys:
                v = cur.get(k)
                if v is not None and not isinstance(v, (dict, list)):
                    return v
            queue.extend(v for v in cur.values() if isinstance(v, dict))
    return None


def _clean(text: str) -> str:
    """Report text for the docs: without work-item references."""
    text = re.sub(r"\s*[;,]\s*issue \d+(?:'s)?(?: [^);|]*)?(?=\))", "", text)
    text = re.sub(r"\s*\(issue \d+[^)]*\)", "", text)
    text = re.sub(r"\b[Ii]ssue \d+'s\s+", "the ", text)
    return re.sub(r"\b[Ii]ssue \d+\s*", "", text)



def _script_path(report, script):
    """``benchmarks/<script>.py`` or ``benchmarks/studies/<script>.py``, whichever exists (None if neither)."""
    root = report.parents[1]  # benchmarks/
    for folder, prefix in ((root, "benchmarks"), (root / "studies", "benchmarks/studies")):
        if (folder / f"{script}.py").is_file():
            return f"{prefix}/{script}.py"
    return None

def provenance(path: Path) -> dict:
    """What a report records about its run: script, command, cpu, kind, dtype, threads, date, sktag."""
    data = {}
    stem = path.with_suffix("")
    jpath, mpath = stem.with_suffix(".json"), stem.with_suffix(".md")
    if jpath.is_file():
        data = json.loads(jpath.read_text())
    md = mpath.read_text() if mpath.is_file() else ""
    info = {}
    command = _find(data, "command")
    argv = _find(data, "argv") if command is None else None
    if command is None and isinstance(data.get("meta"), dict) and isinstance(data["meta"].get("argv"), list):
        script = re.sub(r"_\d{8}.*$", "", path.stem)
        argvs = data["meta"]["argv"]
        argvs = argvs if argvs and isinstance(argvs[0], list) else [argvs]  # a merged report: one per run
        module = _script_path(path, script)
        module = module.replace("/", ".").removesuffix(".py") if module else f"benchmarks.{script}"
        command = [f"python -m {module} " + shlex.join(map(str, a)) for a in argvs]
    if command is None and argv is None:
        m = re.search(r"[Cc]ommand:?\s*`([^`]+)`", md)
        command = m.group(1) if m else None
    if command:
        commands = [re.sub(r"\s--out\s+\S+", "", str(c)) for c in (command if isinstance(command, list) else
                                                                    [command])]
        info["command"] = commands
        m = re.search(r"(benchmarks/[\w/]+\.py|scripts/\w+\.sh)", commands[0])
        module = re.search(r"-m (benchmarks(?:\.\w+)+)", commands[0])
        if m:
            info["script"] = m.group(1)
        elif module:
            info["script"] = module.group(1).replace(".", "/") + ".py"
    if "script" not in info:  # the script named by the report's file name
        name = re.match(r"[a-z_]+", path.stem)
        found = _script_path(path, name.group(0).rstrip("_")) if name else None
        if found:
            info["script"] = found
    info["cpu"] = _find(data, "device_name", "cpu")
    head = md.split("\n|", 1)[0]  # the report's text above its first table
    info["kind"] = _find(data, "kind")
    if info["kind"] is None:
        m = re.search(r"native bfloat16 \(([A-Z0-9/ -]+)\)", head)
        info["kind"] = m.group(1) if m else None
    dtype = _find(data, "backbone_dtype", "dtype")
    if dtype in (None, "auto"):
        m = re.search(r"[,;:]\s*(bfloat16|float32)\b", head)
        dtype = m.group(1) if m else None
    info["dtype"] = str(dtype).replace("torch.", "") if dtype else None
    info["threads"] = _find(data, "torch_threads", "threads")
    date = _find(data, "started", "date")
    m = STAMP.search(str(date or "")) or STAMP.search(path.name)
    if m:
        d = m.group(1)
        date = f"{d[:4]}-{d[4:6]}-{d[6:]} {m.group(2)[:2]}:{m.group(2)[2:]}"
    elif date:
        date = str(date).replace("T", " ")[:16]
    info["date"] = date
    return {k: v for k, v in info.items() if v not in (None, "")}


def provenance_markdown(path: Path, note: str = "") -> str:
    p = provenance(path)
    parts = [f"Report `{path.with_suffix('').name}`"]
    if "command" in p:
        cmds = p["command"]
        parts.append(("command " if len(cmds) == 1 else f"{len(cmds)} runs merged, commands ")
                     + ", ".join(f"`{c}`" for c in cmds))
    elif "script" in p:
        parts.append(f"script `{p['script']}`")
    machine = p.get("cpu", "")
    if p.get("kind") and p["kind"] not in machine:
        machine = f"{machine} ({p['kind']})" if machine else p["kind"]
    if machine:
        parts.append(f"CPU {machine}" if "NVIDIA" not in machine else f"GPU {machine}")
    if "dtype" in p:
        parts.append(p["dtype"])
    if "threads" in p:
        parts.append(f"{p['threads']} torch threads")
    if "date" in p:
        parts.append(f"run {p['date']}")
    text = "; ".join(parts)
    if note:
        text += f"; {note}"
    return text + "."


# -- Markdown tables of the reports ---------------------------------------------------------------------------------

def _split_row(line: str) -> list[str]:
    cells, cur, code = [], "", False
    for ch in line.strip().strip("|"):
        if ch == "`":
            code = not code
        if ch == "|" and not code:
            cells.append(cur.strip())
            cur = ""
        else:
            cur += ch
    cells.append(cur.strip())
    return cells


def md_tables(text: str):
    """``[(heading, header, align, rows)]`` of every Markdown table, with the heading above it."""
    tables, heading, block = [], "", []
    for line in text.splitlines() + [""]:
        if line.startswith("|"):
            block.append(line)
            continue
        if len(block) >= 2:
            tables.append((heading, _split_row(block[0]), _split_row(block[1]), [_split_row(r) for r in block[2:]]))
        block = []
        if line.startswith("#"):
            heading = line.lstrip("#").strip()
    return tables


def pick_table(path: Path, section: str | None, index: int):
    tables = md_tables(path.read_text())
    if section:
        tables = [t for t in tables if section.lower() in t[0].lower()]
    if not 1 <= index <= len(tables):
        raise ExtensionError(f"sktag_results: {path.name} has no table {index}"
                             + (f" under a heading with {section!r}" if section else ""))
    return tables[index - 1]


def _columns(header, spec):
    if not spec:  # every column but the machine's load, which is no result
        return [i for i, h in enumerate(header) if "load" not in h.lower()]
    out = []
    for item in (s.strip() for s in spec.split(",")):
        if item.isdigit():
            out.append(int(item) - 1)
            continue
        hits = [i for i, h in enumerate(header) if item.lower() in h.lower()]
        if not hits:
            raise ExtensionError(f"sktag_results: no column {item!r} in {header}")
        out.append(hits[0])
    if any(not 0 <= i < len(header) for i in out):
        raise ExtensionError(f"sktag_results: column out of range in {spec!r}")
    return out


def table_markdown(header, align, rows, caption=""):
    lines = ["| " + " | ".join(_clean(h) for h in header) + " |", "|" + "|".join(align) + "|"]
    lines += ["| " + " | ".join(_clean(c) for c in r) + " |" for r in rows]
    if caption:
        return [f"~~~{{table}} {caption}", *lines, "~~~"]  # a tilde fence: the caption may hold backticks
    return lines


# -- directives -----------------------------------------------------------------------------------------------------

class _ReportDirective(SphinxDirective):
    required_arguments = 1
    final_argument_whitespace = False
    has_content = False

    def report(self, suffix: str | None = None) -> Path:
        path = resolve(self.env, self.arguments[0])
        return companion(path, suffix) if suffix and path.suffix != suffix else path

    def provenance_nodes(self, path: Path) -> list:
        """The report's provenance line, the first time the page shows the report; else nothing."""
        seen = self.env.temp_data.setdefault("sktag_seen", set())
        key = (self.env.docname, path.with_suffix("").name)
        if key in seen:
            return []
        seen.add(key)
        return self.parse([provenance_markdown(path, self.options.get("note", ""))], "sktag-provenance")

    def parse(self, lines: list[str], cls: str = "sktag-report"):
        node = nodes.container(classes=[cls])
        self.state.nested_parse(StringList(lines, source=self.get_source_info()[0]), self.content_offset, node)
        return [node]


class TableDirective(_ReportDirective):
    option_spec = {"section": directives.unchanged, "table": directives.positive_int,
                   "columns": directives.unchanged, "rows": directives.unchanged,
                   "caption": directives.unchanged, "note": directives.unchanged}

    def run(self):
        path = self.report(".md")
        _, header, align, rows = pick_table(path, self.options.get("section"), self.options.get("table", 1))
        cols = _columns(header, self.options.get("columns"))
        if self.options.get("rows"):
            keys = [k.strip().lower() for k in self.options["rows"].split(",")]
            picked = []
            for k in keys:
                hits = [r for r in rows if k in r[0].lower() and r not in picked]
                if not hits:
                    raise ExtensionError(f"sktag_results: no row {k!r} in a table of {path.name}")
                picked.append(hits[0])
            rows = [r for r in rows if r in picked]
        sub = [[r[i] if i < len(r) else "" for i in cols] for r in rows]
        lines = table_markdown([header[i] for i in cols], [align[i] if i < len(align) else "---" for i in cols],
                               sub, self.options.get("caption", ""))
        return self.parse(lines) + self.provenance_nodes(path)


class FigureDirective(_ReportDirective):
    option_spec = {"alt": directives.unchanged, "width": directives.unchanged,
                   "caption": directives.unchanged, "note": directives.unchanged}

    def run(self):
        path = self.report()
        if path.suffix != ".png":
            path = companion(path, ".png")
        return figure_nodes(self, path, self.options.get("alt") or path.stem)


def figure_nodes(directive, png: Path, alt: str, report: Path | None = None):
    env = directive.env
    docdir = Path(env.srcdir) / Path(env.docname).parent
    uri = os.path.relpath(png, docdir).replace(os.sep, "/")
    image = nodes.image(uri=uri, alt=alt, candidates={"*": uri})
    if directive.options.get("width"):
        image["width"] = directive.options["width"]
    fig = nodes.figure("", image, classes=["sktag-figure"])
    if directive.options.get("caption"):
        fig += nodes.caption(directive.options["caption"], directive.options["caption"])
    return [fig] + directive.provenance_nodes(report or png)


class ProvenanceDirective(_ReportDirective):
    option_spec = {"note": directives.unchanged}

    def run(self):
        return self.provenance_nodes(self.report())


def _bold_best(cells, lower):
    """``cells`` (``"0.813 ± 0.068"`` or ``"0.813"``) with the best score in bold (every tied one)."""
    values = [float(c.split()[0]) for c in cells]
    best = min(values) if lower else max(values)
    return [f"**{c}**" if v == best else c for c, v in zip(cells, values)]


class HybridDirective(_ReportDirective):
    option_spec = {"show": lambda a: directives.choice(a, ("table", "plot")), "expect": directives.unchanged,
                   "note": directives.unchanged, "caption": directives.unchanged, "width": directives.unchanged,
                   "alt": directives.unchanged}

    def run(self):
        path = self.report(".json")
        data = json.loads(path.read_text())["results"]
        if self.options.get("show", "table") == "plot":
            return figure_nodes(self, hybrid_plot(self.env, path, data), "hybrid benchmark plot", path)
        md = companion(path, ".md")
        _, h1, _, scores = pick_table(md, None, 1)
        _, h2, _, paired = pick_table(md, None, 2)
        by_name = {r[0]: r for r in paired}
        col = {h: i for i, h in enumerate(h1)}
        header = ["data set", "LLM features alone", "best classical", "classical stack",
                  "hybrid", "hybrid − best classical", "hybrid − classical stack"]
        rows = []
        for row in scores:
            name = row[0].split(" (")[0]
            metric = re.search(r"\((\w+), (lower|higher) is better, (\d+) splits?\)", row[0])
            p = by_name.get(name)
            if metric is None or p is None:
                raise ExtensionError(f"sktag_results: cannot read the row {row[0]!r} of {md.name}")
            best = p[1]
            arrow = "↓" if metric.group(2) == "lower" else "↑"
            cells = [row[col["llm_embedding_pretrained"]], row[col[best]], row[_header_index(h1, "stack_classical")],
                     row[_header_index(h1, "hybrid (default)")]]
            cells = _bold_best(cells, lower=metric.group(2) == "lower")
            cells[1] += f" ({MODEL_LABELS.get(best, best).split(' (')[0]})"
            rows.append([f"{LABELS.get(name, name)}, {metric.group(1)} {arrow} ({metric.group(3)} split"
                         + ("s)" if metric.group(3) != "1" else ")"), *cells,
                         p[_header_index(h2, "hybrid − best classical")], p[_header_index(h2, "hybrid − stack")]])
        lines = table_markdown(header, ["---"] + ["---:"] * 6, rows, self.options.get("caption", ""))
        missing = [d.strip() for d in self.options.get("expect", "").split(",") if d.strip() and d.strip()
                   not in data]
        if missing:
            lines += ["", "No row for " + ", ".join(LABELS.get(d, d) for d in missing) + " (not in this report yet)."]
        return self.parse(lines) + self.provenance_nodes(path)


class ArchiveDirective(SphinxDirective):
    """A list of reports, one line each: ``<report file>: <what it measured>`` in the content."""

    has_content = True
    option_spec = {"superseded": directives.unchanged, "text": directives.unchanged}

    def run(self):
        items = []
        for line in self.content:
            if line.strip():
                name, _, text = line.partition(": ")
                items.append((resolve(self.env, name.strip()), text.strip()))
        if self.options.get("superseded"):  # every match of the glob but the newest
            pattern = self.options["superseded"]
            newest = resolve(self.env, pattern)
            for p in sorted(Path(x) for x in _glob.glob(str(results_dir(self.env) / pattern))):
                if p != newest:
                    self.env.note_dependency(str(p))
                    items.append((p, self.options.get("text", "")))
        lines = [] if items else ["No report yet."]
        for path, text in items:
            prov = provenance_markdown(path).removeprefix(f"Report `{path.with_suffix('').name}`")
            prov = f" ({prov.removeprefix('; ').rstrip('.')})" if prov.startswith("; ") else ""
            lines.append(f"- `{path.name}`: {_clean(text)}{prov}")
        node = nodes.container(classes=["sktag-archive"])
        self.state.nested_parse(StringList(lines, source=self.get_source_info()[0]), self.content_offset, node)
        return [node]


def _header_index(header, text):
    for i, h in enumerate(header):
        if h.lower().startswith(text.lower()):
            return i
    raise ExtensionError(f"sktag_results: no column {text!r} in {header}")


def hybrid_plot(env, path: Path, data: dict) -> Path:
    """The hybrid report's test scores as a PNG (one panel per data set), drawn once per report."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    out = Path(env.app.doctreedir) / "sktag_results"
    out.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha1(path.read_bytes() + Path(__file__).read_bytes()).hexdigest()[:10]  # report and code
    png = out / f"{path.stem}_{digest}.png"
    if png.is_file():
        return png
    rows = [("llm_embedding_pretrained", "LLM features alone", "#9e9e9e"),
            ("hgb_descriptors", "descriptors + gradient boosting", "#4c72b0"),
            ("rf_morgan_counts", "Morgan counts + random forest", "#55a868"),
            ("hgb+rf:linear", "classical stack", "#8172b2"),
            ("llm+hgb+rf:linear", "hybrid", "#dd8452")]
    names = list(data)
    metrics = {}
    for row in pick_table(companion(path, ".md"), None, 1)[3]:
        m = re.match(r"(\w+) \((\w+), (lower|higher)", row[0])
        if m:
            metrics[m.group(1)] = m.group(2) + (" ↓" if m.group(3) == "lower" else " ↑")
    ncols = min(3, len(names))
    nrows = -(-len(names) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.2 * ncols, 2.9 * nrows + 0.5), squeeze=False)
    for ax in axes.flat[len(names):]:
        ax.set_visible(False)
    for ax, name in zip(axes.flat, names):
        splits = data[name]["splits"]
        means = [np.mean([s["test"][k] for s in splits]) for k, _, _ in rows]
        sds = [np.std([s["test"][k] for s in splits], ddof=1) if len(splits) > 1 else 0.0 for k, _, _ in rows]
        for x, (m, sd, (_, _, c)) in enumerate(zip(means, sds, rows)):
            ax.errorbar([x], [m], yerr=[sd], fmt="o", color=c, markersize=7, capsize=3)
        ax.set_xlim(-0.6, len(rows) - 0.4)
        ax.grid(axis="y", alpha=0.3)
        lo, hi = min(m - s for m, s in zip(means, sds)), max(m + s for m, s in zip(means, sds))
        pad = 0.15 * (hi - lo) + 1e-3
        ax.set_ylim(lo - pad, hi + pad)
        ax.set_title(f"{LABELS.get(name, name)}: {metrics.get(name, '')}, {len(splits)} split"
                     + ("s" if len(splits) > 1 else ""), fontsize=10)
        ax.set_xticks([])
        ax.tick_params(labelsize=8)
    fig.legend([plt.Line2D([], [], marker="o", ls="", color=c) for _, _, c in rows], [t for _, t, _ in rows],
               loc="lower center", ncol=len(rows), fontsize=8.5, frameon=False)
    fig.tight_layout(rect=(0, 0.5 / (2.9 * nrows + 0.5), 1, 1))
    fig.savefig(png, dpi=110)
    plt.close(fig)
    return png


def setup(app):
    app.add_config_value("sktag_results_dir", None, "env")
    app.add_directive("sktag-table", TableDirective)
    app.add_directive("sktag-figure", FigureDirective)
    app.add_directive("sktag-hybrid", HybridDirective)
    app.add_directive("sktag-provenance", ProvenanceDirective)
    app.add_directive("sktag-archive", ArchiveDirective)
    app.connect("env-get-outdated", _outdated)
    app.connect("env-purge-doc", _purge)
    app.connect("env-merge-info", _merge)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
