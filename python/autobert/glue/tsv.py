"""Reading GLUE TSV files the way the official tooling does, with errors that name path:line.

GLUE files are read with ``csv.QUOTE_NONE`` semantics: a field is everything between tabs, quotes
included (sentences such as ``"100 percent behind George Bush"`` carry stray, unbalanced quotes
that a quoting reader would glue across lines). Lines end at ``\\n`` only (``\\r\\n`` is accepted);
other Unicode line breaks inside a sentence stay part of it. A UTF-8 BOM before the header (MRPC)
is dropped, and a missing final newline (CoLA dev) is fine.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from .errors import GlueFormatError
from .tasks import SplitSpec

__all__ = ["Table", "read_table"]

log = logging.getLogger(__name__)


@dataclass
class Table:
    """Rows of one file: ``columns`` maps a column name to its field position; ``rows`` holds
    (1-based line number in the file, fields) for every data row kept."""

    path: Path
    columns: dict[str, int]
    rows: list[tuple[int, list[str]]]
    skipped: int = 0  # malformed rows dropped (only with strict=False)


def _decode(path: Path) -> str:
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise GlueFormatError(path, line, f"not valid UTF-8 ({e.reason} at byte {e.start})",
                              "UTF-8 text as download_glue_data.py writes it") from None


def _split_lines(text: str) -> list[str]:
    # str.splitlines would also break on \x0b, \x1c, \u2028, ... which can occur inside GLUE text.
    lines = text.split("\n")
    while lines and lines[-1].strip("\r") == "":   # final newline(s): no data row there
        lines.pop()
    return [ln[:-1] if ln.endswith("\r") else ln for ln in lines]


def read_table(path: str | Path, spec: SplitSpec, *, strict: bool = True) -> Table:
    """Split ``path`` into fields and check it against ``spec``.

    With a header, the columns ``spec.required`` must be named in it (any order) and every data row
    must have as many fields as the header. Without a header, rows must have ``len(spec.columns)``
    fields. ``strict=False`` drops (and logs) rows with the wrong field count or blank lines instead
    of raising; a bad header always raises.
    """
    path = Path(path)
    lines = _split_lines(_decode(path))
    first_data = 0
    if spec.has_header:
        if not lines:
            raise GlueFormatError(path, 1, "file is empty, no header line", spec.describe())
        # A second BOM or stray spaces around names are tolerated: names are what matters.
        header = [name.strip().lstrip("\ufeff").strip() for name in lines[0].split("\t")]
        columns: dict[str, int] = {}
        for i, name in enumerate(header):
            columns.setdefault(name, i)
        missing = [c for c in spec.required if c not in columns]
        if missing:
            raise GlueFormatError(path, 1, f"header lacks column(s) {missing}; found {header}", spec.describe())
        width = len(header)
        first_data = 1
    else:
        columns = {name: i for i, name in enumerate(spec.columns)}
        width = len(spec.columns)

    rows: list[tuple[int, list[str]]] = []
    skipped = 0
    for idx in range(first_data, len(lines)):
        lineno = idx + 1
        fields = lines[idx].split("\t")
        if len(fields) != width:
            problem = ("blank line" if lines[idx] == "" else
                       f"{len(fields)} tab-separated field(s), expected {width}")
            if strict:
                raise GlueFormatError(path, lineno, problem, spec.describe())
            skipped += 1
            log.warning("%s:%d: %s; row skipped", path, lineno, problem)
            continue
        rows.append((lineno, fields))
    return Table(path, columns, rows, skipped)
