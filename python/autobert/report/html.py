"""``write_report``: one self-contained HTML file (figures embedded as PNG data URIs) for search runs."""
from __future__ import annotations

import base64
import html
import logging
from pathlib import Path
from typing import Optional, Sequence

from autobert.model.atomic import atomic_write
from autobert.model.config import ArchConfig
from autobert.report import plots
from autobert.report.data import RunData, load_run
from autobert.search.mutation import describe_layers

log = logging.getLogger(__name__)
_BEST_DRAWN = 3  # architectures drawn per run


def _img(png: bytes, alt: str) -> str:
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{base64.b64encode(png).decode()}">'


_REDRAWN = ("degenerate", "functional duplicate", "duplicate")


def _run_table(runs: Sequence[RunData]) -> str:
    head = ("<tr><th>run</th><th>strategy</th><th>done</th><th>failed</th><th>best loss</th><th>seed</th>"
            + "".join(f"<th>redrawn: {k}</th>" for k in _REDRAWN) + "</tr>")
    body = []
    for r in runs:
        done = [x for x in r.rows if x["status"] == "done"]
        failed = sum(x["status"] == "failed" for x in r.rows)
        best = min((x["fitness"] for x in done), default=float("nan"))
        redrawn = "".join(f"<td>{r.rejected.get(k, 0)}</td>" for k in _REDRAWN)
        body.append(f"<tr><td>{html.escape(r.name)}</td><td>{r.strategy}</td><td>{len(done)}</td>"
                    f"<td>{failed}</td><td>{best:.4f}</td><td>{r.config.seed}</td>{redrawn}</tr>")
    note = ("<p>Redrawn: proposals discarded before evaluation, and drawn again: a degenerate graph "
            "(constant or non-finite output, an input that cannot matter), or an architecture whose "
            "structure or function (functional fingerprint) was already proposed.</p>")
    return f"<table>{head}{''.join(body)}</table>{note}"


def _best_section(run: RunData) -> str:
    done = sorted((x for x in run.rows if x["status"] == "done"), key=lambda x: (x["fitness"], x["id"]))
    parts = [f"<h3>{html.escape(run.name)}: best architectures</h3>"]
    for rank, row in enumerate(done[:_BEST_DRAWN], 1):
        arch = ArchConfig.from_json(row["arch_json"])
        layers = "".join(f"<li><code>{html.escape(s)}</code></li>" for s in describe_layers(arch.layers))
        parts.append(f"<p>#{rank}: loss {row['fitness']:.4f}, {row['params']} parameters, "
                     f"fingerprint <code>{row['fingerprint']}</code></p><ol start=0>{layers}</ol>")
        parts.append(_img(plots.architecture(arch, f"#{rank} loss {row['fitness']:.4f}"), f"architecture {rank}"))
    failed = [x for x in run.rows if x["status"] == "failed"]
    if failed:
        reasons = "".join(f"<li>#{x['id']}: {html.escape(str(x['reason']))}</li>" for x in failed[:10])
        parts.append(f"<p>{len(failed)} failed candidate(s), e.g.:</p><ul>{reasons}</ul>")
    return "".join(parts)


def write_report(run_dirs: Sequence, out: Optional[str] = None) -> Path:
    """Write the HTML report of ``run_dirs`` (default file: ``<first run>/report.html``); returns its path."""
    runs = [load_run(d) for d in run_dirs]
    if not runs:
        raise ValueError("no run folder given")
    path = Path(out) if out else runs[0].path / "report.html"
    sections = ["<h2>Runs</h2>", _run_table(runs),
                "<h2>Best fitness</h2>", _img(plots.best_fitness(runs), "best fitness"),
                "<h2>Pareto front</h2>", _img(plots.pareto(runs), "pareto front"),
                "<h2>Operation priority</h2>"]
    for r in runs:
        if r.strategy == "opnas":
            sections += [_img(plots.op_priority(r), f"op priority {r.name}"),
                         _img(plots.op_priority_map(r), f"op priority per arm {r.name}")]
    if not any(r.strategy == "opnas" for r in runs):
        sections.append("<p>No OP-NAS run among these (the priority is uniform or unused).</p>")
    sections += ["<h2>Best architectures</h2>"] + [_best_section(r) for r in runs]
    doc = ("<!doctype html><html><head><meta charset='utf-8'><title>autobert search report</title><style>"
           "body{font-family:sans-serif;max-width:1100px;margin:auto}img{max-width:100%}"
           "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 8px}</style></head><body>"
           f"<h1>autobert search report</h1>{''.join(sections)}</body></html>")
    # atomically: a search killed while writing its report leaves the previous report, not half of one
    atomic_write(path, lambda tmp: tmp.write_text(doc, encoding="utf-8"))
    log.info("report written to %s", path)
    return path
