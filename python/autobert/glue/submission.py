"""GLUE test-set submission files (what gluebenchmark.com accepts) and the zip to upload.

One TSV per config, named as the server expects (CoLA.tsv, SST-2.tsv, MRPC.tsv, STS-B.tsv, QQP.tsv,
MNLI-m.tsv, MNLI-mm.tsv, QNLI.tsv, RTE.tsv, WNLI.tsv, AX.tsv), each::

    index<TAB>prediction
    0<TAB>entailment
    ...

Rows are in test-file order; ``index`` is the 0-based row number (the test files' own index column
counts the same way). Predictions are written as label strings of the task's vocabulary ("0"/"1",
entailment/not_entailment, contradiction/entailment/neutral), STS-B as scores clipped to [0, 5]
with three decimals. Every file is written to a temporary name in the same folder and moved into
place with os.replace, so a crash never leaves a half-written file behind.
"""
from __future__ import annotations

import contextlib
import logging
import os
import tempfile
import zipfile
from pathlib import Path
from typing import Iterator

import numpy as np

from .metrics import as_1d_array
from .tasks import CONFIGS, ConfigSpec, get_config

__all__ = ["write_submission", "zip_submission", "SUBMISSION_FILES", "format_predictions"]

log = logging.getLogger(__name__)

#: Official submission file names, one per entry of the GLUE server (MNLI has two, "mnli" is matched).
SUBMISSION_FILES: tuple[str, ...] = tuple(dict.fromkeys(c.submission for c in CONFIGS.values()))

_HEADER = "index\tprediction"


@contextlib.contextmanager
def _atomic_path(target: Path) -> Iterator[Path]:
    """Yield a temp path beside ``target``; on success it replaces ``target``, on error it vanishes."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, target)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def format_predictions(task: str, predictions) -> list[str]:
    """Prediction strings as they go into the submission file (label names, or STS-B scores)."""
    config = get_config(task)
    names = config.task.label_names
    if isinstance(predictions, (list, tuple)) and predictions and all(isinstance(p, str) for p in predictions):
        if names is None:
            raise ValueError(f"{config.name} predictions must be numbers, got strings")
        bad = [p for p in predictions if p not in names]
        if bad:
            raise ValueError(f"{config.name}: {bad[0]!r} is not a label; expected one of {list(names)}")
        return list(predictions)
    arr = as_1d_array(predictions, "predictions")
    if names is None:
        arr = arr.astype(np.float64)
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"{config.name}: predictions contain NaN or inf")
        # Gold scores lie in [0, 5]; clipping can only improve the correlation of out-of-range outputs.
        return [f"{v:.3f}" for v in np.clip(arr, 0.0, 5.0)]
    if arr.dtype.kind == "f":
        if not np.all(np.isfinite(arr)) or np.any(arr != np.round(arr)):
            raise ValueError(f"{config.name} predictions must be class indices (argmax of the logits)")
    idx = arr.astype(np.int64)
    bad = (idx < 0) | (idx >= len(names))
    if np.any(bad):
        i = int(np.argmax(bad))
        raise ValueError(f"{config.name}: predictions[{i}] = {arr[i]} is not a class index (0..{len(names) - 1})")
    return [names[i] for i in idx]


def write_submission(task: str, predictions, out_dir: str | Path, *,
                     expected_rows: int | str | None = "official") -> Path:
    """Write one task's official test prediction file into ``out_dir``; returns its path.

    Args:
        task: config/folder name; "mnli"/"mnli_matched"/"MNLI-m" -> MNLI-m.tsv,
            "mnli_mismatched"/"MNLI-mm" -> MNLI-mm.tsv, "ax" -> AX.tsv.
        predictions: one per test row in file order: class indices (ints; arrays/tensors fine) or
            label strings; floats for STS-B.
        expected_rows: "official" checks the GLUE test size (e.g. 1104 for AX); an int checks that
            number (e.g. ``len(load_task(task, dir, "test"))``); None skips the check.

    Raises:
        ValueError: wrong row count, out-of-range class, non-finite score; nothing is written then.
    """
    config: ConfigSpec = get_config(task)
    lines = format_predictions(config.name, predictions)
    expected = config.test_rows if expected_rows == "official" else expected_rows
    if isinstance(expected, str):
        raise ValueError(f"expected_rows must be 'official', an int or None, got {expected_rows!r}")
    if expected is not None and len(lines) != expected:
        raise ValueError(f"{config.submission}: {len(lines)} predictions but the {config.name} test set "
                         f"has {expected} rows")
    target = Path(out_dir) / config.submission
    with _atomic_path(target) as tmp:
        with open(tmp, "w", encoding="utf-8", newline="\n") as f:
            f.write(_HEADER + "\n")
            f.writelines(f"{i}\t{p}\n" for i, p in enumerate(lines))
    log.info("wrote %s (%d rows)", target, len(lines))
    return target


def zip_submission(out_dir: str | Path, zip_path: str | Path | None = None, *,
                   require_all: bool = False) -> Path:
    """Zip the official submission files found in ``out_dir`` (flat, at the archive root).

    Args:
        out_dir: folder that write_submission wrote to; other files in it are left out.
        zip_path: archive to write (default ``out_dir/submission.zip``), replaced atomically.
        require_all: raise unless all 11 files are there (the GLUE server wants every one).

    Returns:
        The archive path.
    """
    out_dir = Path(out_dir)
    if not out_dir.is_dir():
        raise FileNotFoundError(f"submission folder not found: {out_dir}")
    present = [name for name in SUBMISSION_FILES if (out_dir / name).is_file()]
    missing = [name for name in SUBMISSION_FILES if name not in present]
    if not present:
        raise FileNotFoundError(f"no submission files in {out_dir}; expected some of {list(SUBMISSION_FILES)}")
    if missing:
        if require_all:
            raise FileNotFoundError(f"{out_dir} lacks submission files {missing}")
        log.warning("submission zip without %s (the GLUE server expects all %d files)", missing,
                    len(SUBMISSION_FILES))
    for name in present:
        with open(out_dir / name, encoding="utf-8") as f:
            if f.readline().rstrip("\r\n") != _HEADER:
                raise ValueError(f"{out_dir / name}:1: header is not {_HEADER!r}")
    target = Path(zip_path) if zip_path is not None else out_dir / "submission.zip"
    with _atomic_path(target) as tmp:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            for name in present:
                zf.write(out_dir / name, arcname=name)
    log.info("wrote %s with %d file(s)", target, len(present))
    return target
