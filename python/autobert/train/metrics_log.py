"""Training metrics written as they come: ``metrics.jsonl`` (one JSON object per record),
``metrics.csv`` (fixed columns, for spreadsheets) and TensorBoard events when tensorboard is
installed. Records carry ``step`` and ``kind`` ("train" or "eval"); on resume the files are cut
back to the checkpoint's step so a resumed run's log reads like an uninterrupted one.
"""
from __future__ import annotations

import csv
import json
import logging
import math
from pathlib import Path
from typing import Optional

__all__ = ["MetricsLog", "read_metrics", "CSV_COLUMNS"]

log = logging.getLogger(__name__)

CSV_COLUMNS = ("step", "kind", "loss", "perplexity", "lr", "grad_norm", "tokens_per_s", "tokens_seen", "elapsed_s")


def read_metrics(path: "str | Path", kind: Optional[str] = None) -> list[dict]:
    """Records of a ``metrics.jsonl`` (optionally only one ``kind``), in file order.

    A last line without its newline (the process was killed while writing it) is skipped."""
    out = []
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            if not line.endswith("\n"):
                log.warning("%s: dropping an unfinished last record", path)
                break
            if line.strip():
                rec = json.loads(line)
                if kind is None or rec.get("kind") == kind:
                    out.append(rec)
    return out


def _tensorboard_writer(folder: Path):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except (ImportError, ModuleNotFoundError):  # tensorboard is optional
        log.debug("tensorboard not installed; no event files")
        return None
    return SummaryWriter(str(folder))


class MetricsLog:
    """Appends records to the run folder's metric files. ``enabled=False`` (non-zero ranks) writes nothing."""

    def __init__(self, out_dir: "str | Path", *, enabled: bool = True, resume_step: Optional[int] = None):
        self.enabled = enabled
        self.jsonl = Path(out_dir) / "metrics.jsonl"
        self.csv = Path(out_dir) / "metrics.csv"
        self._tb = None
        if not enabled:
            return
        if resume_step is None:
            kept = []
        else:
            kept = [r for r in read_metrics(self.jsonl) if r["step"] <= resume_step] if self.jsonl.exists() else []
        self._rewrite(kept)
        self._tb = _tensorboard_writer(Path(out_dir) / "tensorboard")

    def _rewrite(self, records: list[dict]) -> None:
        # Written aside and renamed: a kill now leaves either the old files or the new ones.
        for path, fill in ((self.jsonl, lambda f: f.writelines(json.dumps(r) + "\n" for r in records)),
                           (self.csv, lambda f: self._csv_all(f, records))):
            tmp = path.with_name(path.name + ".tmp")
            with open(tmp, "w", encoding="utf-8", newline="") as f:
                fill(f)
            tmp.replace(path)

    def _csv_all(self, f, records: list[dict]) -> None:
        w = csv.writer(f)
        w.writerow(CSV_COLUMNS)
        w.writerows(self._csv_row(r) for r in records)

    @staticmethod
    def _csv_row(rec: dict) -> list:
        return ["" if rec.get(c) is None else rec[c] for c in CSV_COLUMNS]

    def write(self, record: dict) -> None:
        """Append one record (needs ``step`` and ``kind``; other keys as in ``CSV_COLUMNS`` or extra)."""
        if not self.enabled:
            return
        with open(self.jsonl, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")
        with open(self.csv, "a", encoding="utf-8", newline="") as f:
            csv.writer(f).writerow(self._csv_row(record))
        if self._tb is not None:
            for key, value in record.items():
                if key not in ("step", "kind") and isinstance(value, (int, float)) and math.isfinite(value):
                    self._tb.add_scalar(f"{record['kind']}/{key}", value, record["step"])

    def close(self) -> None:
        if self._tb is not None:
            self._tb.close()
            self._tb = None
