"""`load_task`: one split of a GLUE task as a list of Examples."""
from __future__ import annotations

import logging
import math
from pathlib import Path

from .errors import GlueFileNotFoundError, GlueFormatError
from .example import Example, GlueDataset
from .tasks import ConfigSpec, SplitSpec, get_config, resolve_split
from .tsv import Table, read_table

__all__ = ["load_task", "find_split_file"]

log = logging.getLogger(__name__)


def _expected_files(config: ConfigSpec) -> str:
    return ", ".join(f"{s.files[0]} ({name})" for name, s in config.task.splits.items())


def find_split_file(task: str, task_dir: str | Path, split: str) -> Path:
    """Path of the TSV holding ``split`` of ``task`` under ``task_dir``.

    ``task_dir`` is the task's own folder (``glue_data/RTE``); the ``glue_data`` root holding the task
    folder is accepted too. Raises GlueFileNotFoundError listing the files such a folder should hold.
    """
    config = get_config(task)
    key = resolve_split(config, split)
    spec = config.task.splits[key]
    task_dir = Path(task_dir)
    folder = config.task.name
    if not task_dir.is_dir():
        raise GlueFileNotFoundError(
            f"GLUE task folder not found: {task_dir} (a {folder} folder holds {_expected_files(config)})")
    candidates = [task_dir, task_dir / folder] + ([task_dir / "AX"] if config.name == "ax" else [])
    for d in candidates:
        for name in spec.files:
            if (d / name).is_file():
                return d / name
    # Report the task subfolder when the user pointed at the glue_data root.
    look = task_dir / folder if (task_dir / folder).is_dir() else task_dir
    found = sorted(p.name for p in look.iterdir())
    raise GlueFileNotFoundError(
        f"no {' or '.join(spec.files)} for {config.name} split {key!r} in {look}; "
        f"a {folder} folder holds {_expected_files(config)}; found {found}")


def load_task(task: str, task_dir: str | Path | None, split: str = "train", *,
              strict: bool = True) -> GlueDataset:
    """Load one split of a GLUE task.

    Args:
        task: HF glue config name (cola, sst2, mrpc, stsb, qqp, mnli, mnli_matched, mnli_mismatched,
            qnli, rte, wnli, ax) or folder name (CoLA, SST-2, ..., MNLI-m, MNLI-mm, AX, diagnostic).
        task_dir: the task's folder as download_glue_data.py writes it (or the glue_data root).
            None loads from the Hugging Face `datasets` cache instead (needs `datasets` installed).
        split: train, dev, test; for MNLI also dev_matched, dev_mismatched, test_matched,
            test_mismatched ("dev"/"test" mean the matched half for mnli, the mismatched half for
            mnli_mismatched). HF names ("validation", ...) work too.
        strict: raise GlueFormatError on a row with the wrong number of fields (default). With False
            such rows are logged and skipped; header, label and score errors still raise.

    Returns:
        GlueDataset of Example(text_a, text_b, label, guid) in file order. ``label`` is the class
        index into ``dataset.label_names`` (float for STS-B, None on test splits).

    Raises:
        KeyError: unknown task or split. GlueFileNotFoundError: missing folder/file.
        GlueFormatError: malformed file, naming ``path:line`` and the expected layout.
    """
    config = get_config(task)
    key = resolve_split(config, split)
    if task_dir is None:
        from .hf_source import load_hf_task  # lazy: `datasets` is optional and heavy
        return load_hf_task(config.name, key)
    path = find_split_file(config.name, task_dir, key)
    spec = config.task.splits[key]
    table = read_table(path, spec, strict=strict)
    examples = _to_examples(table, spec, config.task.label_names)
    if table.skipped:
        log.warning("%s: skipped %d malformed row(s)", path, table.skipped)
    if spec.rows is not None and len(examples) != spec.rows:
        # Subsets and re-splits are legitimate, so this is only worth a note.
        log.info("%s: %d rows (official %s %s has %d)", path, len(examples), config.task.name, key, spec.rows)
    return GlueDataset(examples, config=config.name, task=config.task.name, split=key,
                       label_names=config.task.label_names, source=str(path))


def _to_examples(table: Table, spec: SplitSpec, label_names: tuple[str, ...] | None) -> list[Example]:
    cols = table.columns
    ia, ib = cols[spec.text_a], (cols[spec.text_b] if spec.text_b else None)
    il = cols[spec.label] if spec.label else None
    ig = cols[spec.guid] if spec.guid else None
    label_index = {name: i for i, name in enumerate(label_names)} if label_names else None
    out: list[Example] = []
    for row_no, (lineno, f) in enumerate(table.rows):
        label = None
        if il is not None:
            label = _parse_label(f[il].strip(), label_index, table.path, lineno, spec.label)
        guid = f[ig].strip() if ig is not None else str(row_no)
        out.append(Example(f[ia], None if ib is None else f[ib], label, guid))
    return out


def _parse_label(raw: str, label_index: dict[str, int] | None, path: Path, lineno: int,
                 column: str) -> int | float:
    if label_index is not None:
        try:
            return label_index[raw]
        except KeyError:
            raise GlueFormatError(path, lineno, f"unknown label {raw!r} in column {column!r}",
                                  f"one of {sorted(label_index)}") from None
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise GlueFormatError(path, lineno, f"bad float {raw!r} in column {column!r}",
                              "a finite similarity score such as 3.800")
    return value
