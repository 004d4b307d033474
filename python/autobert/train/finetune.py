"""GLUE fine-tuning of one task: ``FinetuneConfig`` and ``finetune``.

A run trains a ``ForSequenceClassification`` (regression head for STS-B) whose backbone starts
from a pretrained model folder (or a fresh ``ArchConfig``), once per (learning rate, seed), and
scores the dev split with ``autobert.glue.compute_metrics``. The learning rate with the best mean
dev score over seeds is kept (only one lr: no choice); the run with the best dev score among its
seeds writes the test predictions (``write_submission``). Results: ``results.json`` (every run)
and ``results.md`` (mean ± sample std over seeds) in ``out_dir``.

A task whose folder has no train split (QNLI in some GLUE copies) raises ``MissingTrainSplit``;
``finetune_glue`` turns that into a skip with a note.
"""
from __future__ import annotations

import copy
import dataclasses
import json
import logging
import math
import os
import time
from pathlib import Path
from typing import Callable, Optional, Union

import numpy as np
import torch

from autobert.glue import (GlueFileNotFoundError, compute_metrics, get_config, load_task, task_score,
                           write_submission)
from autobert.model import ArchConfig, ForSequenceClassification, from_pretrained

from .finetune_loop import predict, train_one
from .run_config import JsonConfig, check_bool, check_choice, check_float, check_int, write_text_atomic
from .tokenizer import WordPieceTokenizer

__all__ = ["FinetuneConfig", "finetune", "load_backbone", "MissingTrainSplit", "EVAL_CONFIGS", "summarize_runs",
           "RESULTS_FILE"]

log = logging.getLogger(__name__)

#: Dev/test configs scored for a training task (MNLI trains once, is scored on both halves).
EVAL_CONFIGS = {"mnli": ("mnli_matched", "mnli_mismatched")}
_TEST_ONLY = {"mnli": ("ax",)}  # test sets predicted with another task's model (AX with MNLI's)


RESULTS_FILE = "results.json"  # written last, atomically: a task folder holding it is finished


class MissingTrainSplit(GlueFileNotFoundError):
    """The task folder has no train split, so nothing can be fine-tuned."""


@dataclasses.dataclass(frozen=True)
class FinetuneConfig(JsonConfig):
    """How to fine-tune; written to ``<out>/finetune_config.json``. Invalid values raise ValueError."""

    FILE_NAME = "finetune_config.json"

    lr: float = 1e-4                       # peak learning rate (ignored when lr_grid is given)
    lr_grid: tuple = ()                    # learning rates to try; best mean dev score over seeds wins
    epochs: int = 3
    batch_size: int = 32
    eval_batch_size: int = 128
    warmup_ratio: float = 0.1              # linear warmup fraction, then linear decay to 0
    weight_decay: float = 0.01
    clip_norm: Optional[float] = 1.0
    max_length: int = 128                  # tokens per example incl. specials (pairs truncated longest-first)
    seeds: tuple = (0, 1, 2)               # one run per seed (head init, dropout, batch order)
    max_train_examples: Optional[int] = None  # seeded subsample of the train split (None: all)
    max_eval_examples: Optional[int] = None   # first n dev rows only (None: all; use for smoke runs)
    data_seed: int = 0                     # seed of the train subsample
    predict_test: bool = True              # write test predictions (submission files)
    precision: str = "auto"                # "auto" (bf16 autocast on GPU), "fp32", "bf16"

    def __post_init__(self):
        o = "FinetuneConfig"
        for name in ("epochs", "batch_size", "eval_batch_size"):
            check_int(o, name, getattr(self, name), 1)
        check_int(o, "max_length", self.max_length, 4)
        check_int(o, "data_seed", self.data_seed, 0)
        check_int(o, "max_train_examples", self.max_train_examples, 1, optional=True)
        check_int(o, "max_eval_examples", self.max_eval_examples, 1, optional=True)
        check_float(o, "lr", self.lr, 0.0, 1.0, lo_open=True)
        check_float(o, "warmup_ratio", self.warmup_ratio, 0.0, 1.0)
        check_float(o, "weight_decay", self.weight_decay, 0.0, 1.0)
        check_float(o, "clip_norm", self.clip_norm, 0.0, float("inf"), lo_open=True, optional=True)
        check_choice(o, "precision", self.precision, ("auto", "fp32", "bf16"))
        object.__setattr__(self, "lr_grid", tuple(self.lr_grid))
        object.__setattr__(self, "seeds", tuple(self.seeds))
        for lr in self.lr_grid:
            check_float(o, "lr_grid[]", lr, 0.0, 1.0, lo_open=True)
        if not self.seeds or len(set(self.seeds)) != len(self.seeds):
            raise ValueError(f"FinetuneConfig.seeds must be distinct ints, at least one, got {self.seeds!r}")
        for s in self.seeds:
            check_int(o, "seeds[]", s, 0)
        check_bool(o, "predict_test", self.predict_test)

    @property
    def learning_rates(self) -> tuple:
        return self.lr_grid or (self.lr,)


ModelSource = Union[str, os.PathLike, ArchConfig]


def load_backbone(source: ModelSource) -> tuple[ArchConfig, Optional[dict]]:
    """(architecture, backbone state_dict or None) of a model folder, a pretraining run folder
    (its final model) or an ArchConfig (fresh weights: None)."""
    if isinstance(source, ArchConfig):
        return source, None
    model = from_pretrained(source)  # any head; CheckpointError names the problem
    state = {k: v.clone() for k, v in model.backbone.state_dict().items()}
    return model.config, state


def _subsample(n: int, k: Optional[int], seed: int) -> Optional[list]:
    if k is None or k >= n:
        return None
    g = torch.Generator().manual_seed(seed)
    return sorted(torch.randperm(n, generator=g)[:k].tolist())


def _load_splits(task: str, glue_dir, config: FinetuneConfig) -> dict:
    """{"train": GlueDataset or list, "dev": {cfg: ...}, "test": {cfg: ...}} for one training task."""
    name = get_config(task).name
    folder = get_config(task).task.name
    if not (Path(glue_dir) / folder).is_dir() and not any(Path(glue_dir).glob("*.tsv")):
        raise GlueFileNotFoundError(f"{name}: no {folder} folder in {glue_dir}")
    try:
        train = load_task(name, glue_dir, "train")
    except GlueFileNotFoundError:
        raise MissingTrainSplit(f"{name}: the {folder} folder has no train split "
                                f"({', '.join(sorted(p.name for p in _task_dir(glue_dir, folder).glob('*.tsv')))} only)"
                                ) from None
    idx = _subsample(len(train), config.max_train_examples, config.data_seed)
    train_rows = list(train) if idx is None else [train[i] for i in idx]
    dev, test = {}, {}
    for cfg in EVAL_CONFIGS.get(name, (name,)):
        try:
            d = load_task(cfg, glue_dir, "dev")
            dev[cfg] = list(d)[:config.max_eval_examples] if config.max_eval_examples else list(d)
        except GlueFileNotFoundError as e:
            log.warning("%s: no dev split (%s); it is not scored", cfg, e)
        if config.predict_test:
            test[cfg] = _try_test(cfg, glue_dir)
    for cfg in _TEST_ONLY.get(name, ()):
        if config.predict_test:
            test[cfg] = _try_test(cfg, glue_dir)
    if not dev:
        raise GlueFileNotFoundError(f"{name}: no dev split to score in {glue_dir}")
    return {"name": name, "train": train_rows, "n_train_full": len(train), "dev": dev,
            "test": {k: v for k, v in test.items() if v is not None}, "labels": train.label_names}


def _task_dir(glue_dir, folder: str) -> Path:
    return Path(glue_dir) / folder if (Path(glue_dir) / folder).is_dir() else Path(glue_dir)


def _try_test(cfg: str, glue_dir):
    try:
        return list(load_task(cfg, glue_dir, "test"))
    except (GlueFileNotFoundError, KeyError) as e:
        log.info("%s: no test split (%s); no submission file", cfg, e)
        return None


def summarize_runs(runs: list, metric_names: dict) -> dict:
    """{cfg: {metric: {"mean", "std", "values"}}} over runs; std is the sample std (ddof=1; 0 for one run)."""
    out = {}
    for cfg, names in metric_names.items():
        out[cfg] = {}
        for m in names + ["score"]:
            vals = [r["dev"][cfg][m] if m != "score" else r["dev_scores"][cfg] for r in runs]
            arr = np.asarray(vals, dtype=np.float64)
            std = float(arr.std(ddof=1)) if len(arr) > 1 else 0.0
            out[cfg][m] = {"mean": float(arr.mean()), "std": std, "values": [float(v) for v in arr]}
    return out


def _rank(score: float) -> float:
    """Sort key of a dev score: a NaN (a diverged STS-B run) ranks below everything."""
    return -math.inf if math.isnan(score) else score


def _device(precision: str):
    dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    bf16 = precision == "bf16" or (precision == "auto" and dev.type == "cuda")
    return dev, bf16


def finetune(task: str, model: ModelSource, glue_dir: "str | os.PathLike", tokenizer: WordPieceTokenizer,
             config: FinetuneConfig, out_dir: "str | os.PathLike", *,
             submission_dir: "str | os.PathLike | None" = None,
             progress: Optional[Callable[[dict], None]] = None) -> dict:
    """Fine-tune ``model`` on one GLUE task for every (lr, seed); score dev; write test predictions.

    Args:
        task: any GLUE task/config spelling ("RTE", "sst2", "STS-B", "mnli").
        model: a model folder (``save_pretrained`` / a pretraining run) or an ArchConfig (no pretraining).
        glue_dir: the GLUE root (``glue_data``) or the task's own folder.
        tokenizer: the tokenizer the model was pretrained with.
        out_dir: gets finetune_config.json, results.json, results.md.
        submission_dir: where the test prediction TSVs go (default ``out_dir/submission``).
        progress: called with {"event": "step"|"run_done", ...} dicts (CLI progress bars).

    Returns:
        The results.json document: {"task", "runs", "summary", "best_lr", "submission", ...}.

    Raises:
        MissingTrainSplit: the task has no train split. CheckpointError: bad model folder.
    """
    out_dir = Path(out_dir)
    submission_dir = Path(submission_dir) if submission_dir is not None else out_dir / "submission"
    data = _load_splits(task, glue_dir, config)
    arch, state = load_backbone(model)
    num_labels = get_config(data["name"]).task.num_labels
    device, bf16 = _device(config.precision)
    out_dir.mkdir(parents=True, exist_ok=True)
    config.save(out_dir)
    t0 = time.perf_counter()
    runs, best = [], {}  # best[lr] = (score, seed, state_dict)
    for lr in config.learning_rates:
        for seed in config.seeds:
            run, trained = _one_run(data, arch, state, num_labels, tokenizer, config, lr, seed, device, bf16, progress)
            runs.append(run)
            if lr not in best or _rank(run["score"]) > _rank(best[lr][0]):
                best[lr] = (run["score"], seed, copy.deepcopy(trained.state_dict()))
    by_lr = {lr: float(np.mean([r["score"] for r in runs if r["lr"] == lr])) for lr in config.learning_rates}
    best_lr = max(config.learning_rates, key=lambda lr: (_rank(by_lr[lr]), -lr))  # ties: the smaller lr
    chosen = [r for r in runs if r["lr"] == best_lr]
    metric_names = {cfg: list(get_config(cfg).metrics) for cfg in data["dev"]}
    source = "fresh:" + arch.fingerprint() if isinstance(model, ArchConfig) else str(model)
    result = {"task": data["name"], "model": source,
              "parameters": arch.num_parameters("classification", num_labels=num_labels),
              "n_train": len(data["train"]), "n_train_full": data["n_train_full"],
              "n_dev": {k: len(v) for k, v in data["dev"].items()}, "best_lr": best_lr, "mean_score_by_lr": by_lr,
              "summary": summarize_runs(chosen, metric_names), "runs": runs, "submission": {},
              "wall_s": None}
    if data["test"]:
        _, seed, sd = best[best_lr]
        result["submission"] = _write_test(data, arch, sd, num_labels, tokenizer, config, device, bf16, submission_dir)
        result["submission_seed"] = seed
    result["wall_s"] = time.perf_counter() - t0
    write_text_atomic(out_dir / "results.md", task_markdown(result) + "\n")
    write_text_atomic(out_dir / RESULTS_FILE, json.dumps(result, indent=2) + "\n")  # last: marks the task done
    log.info("%s: %s", data["name"], task_markdown(result).splitlines()[-1])
    return result


def _one_run(data, arch, state, num_labels, tokenizer, config, lr, seed, device, bf16, progress):
    torch.manual_seed(seed)  # head (and, without pretraining, backbone) initialisation
    model = ForSequenceClassification(arch, num_labels=num_labels)
    if state is not None:
        model.backbone.load_state_dict(state)
    model.to(device)
    t0 = time.perf_counter()
    step_progress = None if progress is None else \
        (lambda rec: progress({"event": "step", "task": data["name"], "lr": lr, "seed": seed, **rec}))
    train_loss = train_one(model, data["train"], tokenizer, config, lr=lr, seed=seed, device=device, bf16=bf16,
                           progress=step_progress)
    dev, scores = {}, {}
    for cfg, rows in data["dev"].items():
        preds = predict(model, rows, tokenizer, config, device=device, bf16=bf16, regression=num_labels == 1)
        dev[cfg] = compute_metrics(cfg, preds, [r.label for r in rows])
        scores[cfg] = task_score(cfg, dev[cfg])
    score = float(np.mean(list(scores.values())))
    run = {"lr": lr, "seed": seed, "dev": dev, "dev_scores": scores, "score": score, "train_loss": train_loss,
           "seconds": time.perf_counter() - t0}
    log.info("%s lr=%g seed=%d: dev %s (%.1f s)", data["name"], lr, seed, dev, run["seconds"])
    if progress is not None:
        progress({"event": "run_done", "task": data["name"], **run})
    return run, model


def _write_test(data, arch, state_dict, num_labels, tokenizer, config, device, bf16, submission_dir) -> dict:
    model = ForSequenceClassification(arch, num_labels=num_labels)
    model.load_state_dict(state_dict)
    model.to(device)
    written = {}
    for cfg, rows in data["test"].items():
        preds = predict(model, rows, tokenizer, config, device=device, bf16=bf16, regression=num_labels == 1)
        path = write_submission(cfg, preds, submission_dir, expected_rows=len(rows))
        written[cfg] = str(path)
    return written


def _fmt(stat: dict) -> str:
    return f"{100 * stat['mean']:.1f} ± {100 * stat['std']:.1f}"


def task_markdown(result: dict) -> str:
    """A markdown table of one task's dev metrics (percent, mean ± std over seeds)."""
    rows = ["| task | metric | dev (mean ± std) | seeds | lr |", "|---|---|---|---|---|"]
    n_seeds = len([r for r in result["runs"] if r["lr"] == result["best_lr"]])
    for cfg, stats in result["summary"].items():
        for m, stat in stats.items():
            if m != "score":
                rows.append(f"| {cfg} | {m} | {_fmt(stat)} | {n_seeds} | {result['best_lr']:g} |")
    return "\n".join(rows)
