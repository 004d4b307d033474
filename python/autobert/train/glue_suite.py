"""Fine-tune on every GLUE task present in a folder: ``finetune_glue``.

Tasks are tried in leaderboard order; one without its folder, train split or dev split is skipped
with a note (recorded in results.json/md) rather than failing the suite. Each task writes into
``out/<task>/``; test predictions of all tasks go to ``out/submission/`` and are zipped into
``out/submission.zip``. The dev-set average over the tasks run is reported as "GLUE (dev, k
tasks)": it is not the leaderboard score unless all nine tasks are present.
"""
from __future__ import annotations

import json
import logging
import os
import shutil
import time
from pathlib import Path
from typing import Callable, Optional, Sequence

from autobert.glue import GLUE_SCORE_TASKS, GlueFileNotFoundError, get_config, glue_score, zip_submission

from autobert.model import ArchConfig

from .finetune import RESULTS_FILE, FinetuneConfig, ModelSource, finetune
from .run_config import write_text_atomic
from .run_lock import RunLock
from .tokenizer import WordPieceTokenizer

__all__ = ["finetune_glue", "suite_markdown"]

log = logging.getLogger(__name__)


def finetune_glue(model: ModelSource, glue_dir: "str | os.PathLike", tokenizer: WordPieceTokenizer,
                  config: FinetuneConfig, out_dir: "str | os.PathLike", *, tasks: Optional[Sequence[str]] = None,
                  progress: Optional[Callable[[dict], None]] = None) -> dict:
    """Run ``finetune`` on each task (default: the nine GLUE tasks, those present in ``glue_dir``).

    Returns the results.json document: {"tasks": {name: finetune result}, "skipped": {name: reason},
    "glue_dev_average": float or None, "submission_zip": path or None, "wall_s": float}.
    """
    out_dir = Path(out_dir)
    names = [get_config(t).name for t in (tasks if tasks is not None else GLUE_SCORE_TASKS)]
    if not Path(glue_dir).is_dir():
        raise GlueFileNotFoundError(f"GLUE folder not found: {glue_dir} (expected glue_data/ with one folder per "
                                    f"task, or one task's folder)")
    created = not out_dir.exists()
    out_dir.mkdir(parents=True, exist_ok=True)
    lock = RunLock(out_dir).acquire()
    try:
        return _suite(model, glue_dir, tokenizer, config, out_dir, names, progress)
    except (ValueError, OSError):
        if created and not any(out_dir.glob(f"*/{RESULTS_FILE}")):  # bad input before any result: no folder
            shutil.rmtree(out_dir, ignore_errors=True)
        raise
    finally:
        lock.release()


def _suite(model, glue_dir, tokenizer, config: FinetuneConfig, out_dir: Path, names: list, progress) -> dict:
    config.save(out_dir)
    t0 = time.perf_counter()
    done, skipped = {}, {}
    for name in names:
        finished = _finished_task(out_dir / name, model, config)
        if finished is not None:  # an earlier, interrupted call of the same suite finished it
            log.info("%s: reusing the finished result in %s", name, out_dir / name)
            done[name] = finished
            continue
        try:
            done[name] = finetune(name, model, glue_dir, tokenizer, config, out_dir / name,
                                  submission_dir=out_dir / "submission", progress=progress)
        except GlueFileNotFoundError as e:  # includes MissingTrainSplit
            skipped[name] = str(e)
        if name in skipped:
            log.warning("skipping %s (%s)", name, skipped[name])
    if not done:
        raise GlueFileNotFoundError(f"no GLUE task could be run from {glue_dir}: "
                                    + "; ".join(f"{k}: {v}" for k, v in skipped.items()))
    doc = {"model": str(model), "glue_dir": str(glue_dir), "tasks": done, "skipped": skipped,
           "glue_dev_average": _average(done), "submission_zip": None}
    if (out_dir / "submission").is_dir() and any(r["submission"] for r in done.values()):
        doc["submission_zip"] = str(zip_submission(out_dir / "submission", out_dir / "submission.zip"))
    doc["wall_s"] = time.perf_counter() - t0
    write_text_atomic(out_dir / "results.md", suite_markdown(doc) + "\n")
    write_text_atomic(out_dir / RESULTS_FILE, json.dumps(doc, indent=2) + "\n")
    return doc


def _finished_task(task_dir: Path, model, config: FinetuneConfig) -> Optional[dict]:
    """The task's results.json when it was finished with this model and config, else None."""
    path = task_dir / RESULTS_FILE
    if not path.is_file() or not (task_dir / FinetuneConfig.FILE_NAME).is_file():
        return None
    try:
        result = json.loads(path.read_text(encoding="utf-8"))
        same = not config.differences(FinetuneConfig.load(task_dir / FinetuneConfig.FILE_NAME))
    except ValueError as e:
        log.warning("%s unreadable (%s); the task runs again", path, e)
        return None
    source = "fresh:" + model.fingerprint() if isinstance(model, ArchConfig) else str(model)
    return result if same and result.get("model") == source else None


def _average(done: dict) -> Optional[float]:
    """Dev-set GLUE-style average (fraction) over the tasks run, from the mean metrics over seeds."""
    per_cfg = {}
    for result in done.values():
        for cfg, stats in result["summary"].items():
            per_cfg[cfg] = {m: s["mean"] for m, s in stats.items() if m != "score"}
    return glue_score(per_cfg) if per_cfg else None


def suite_markdown(doc: dict) -> str:
    """Markdown: one row per task (its metrics as mean ± std, in percent), notes for skipped tasks."""
    lines = ["| task | metric(s), dev, mean ± std over seeds | score | train examples | lr |",
             "|---|---|---|---|---|"]
    for name, r in doc["tasks"].items():
        for cfg, stats in r["summary"].items():
            cells = ", ".join(f"{m} {100 * s['mean']:.1f} ± {100 * s['std']:.1f}"
                              for m, s in stats.items() if m != "score")
            n_train = f"{r['n_train']}" + (f" of {r['n_train_full']}" if r["n_train"] != r["n_train_full"] else "")
            lines.append(f"| {cfg} | {cells} | {100 * stats['score']['mean']:.1f} | {n_train} | {r['best_lr']:g} |")
    avg = doc.get("glue_dev_average")
    if avg is not None:
        lines.append(f"| **GLUE (dev, {len(doc['tasks'])} tasks)** | | **{100 * avg:.1f}** | | |")
    if doc["skipped"]:
        lines.append("")
        lines.extend(f"- skipped {why}" for why in doc["skipped"].values())
    if doc.get("submission_zip"):
        lines.append(f"\nTest predictions: {doc['submission_zip']}")
    return "\n".join(lines)
