"""Stand-alone MLM training of one architecture from scratch: how a search's answer is judged.

``train_standalone(arch, data, config, seed)`` trains a fresh ``ForMaskedLM`` for ``config.steps``
AdamW steps (linear warm-up, linear decay, gradient clipping) and scores it on held-out blocks
every ``eval_every`` steps. The training seed fixes the initial weights, the batch order and the
masks; for one seed the batches and masks are the same for every architecture (common random
numbers), so differences between architectures trained with one seed come from the architectures.
"""
from __future__ import annotations

import dataclasses
import json
import math
import time
from pathlib import Path
from typing import Callable, Optional

import torch

from autobert.model.config import ArchConfig
from autobert.model.heads import ForMaskedLM
from autobert.train import MaskingIds, evaluate_mlm, mlm_step
from autobert.train.run_config import JsonConfig, check_float, check_int
from autobert.train.schedule import adamw, warmup_linear_decay, warmup_steps_for


@dataclasses.dataclass(frozen=True)
class StandaloneConfig(JsonConfig):
    """How every model of a comparison is trained (the same for all of them)."""

    FILE_NAME = "standalone_config.json"

    steps: int = 2000            # optimizer steps (equal for every model)
    batch_size: int = 16         # blocks per step
    lr: float = 1e-3             # peak learning rate
    warmup_ratio: float = 0.1    # linear warm-up over this fraction of the steps, then linear decay to 0
    weight_decay: float = 0.01
    clip_norm: float = 1.0
    eval_every: int = 250        # held-out loss every this many steps (the learning curve)
    eval_blocks: int = 512       # held-out blocks scored (masks fixed by the evaluation seed)
    eval_seed: int = 1234        # masks of the held-out blocks: the same for every model and seed

    def __post_init__(self):
        for name, lo in (("steps", 1), ("batch_size", 1), ("eval_every", 1), ("eval_blocks", 1), ("eval_seed", 0)):
            check_int("StandaloneConfig", name, getattr(self, name), lo)
        check_float("StandaloneConfig", "lr", self.lr, 0.0, 1.0, lo_open=True)
        check_float("StandaloneConfig", "warmup_ratio", self.warmup_ratio, 0.0, 1.0)
        check_float("StandaloneConfig", "weight_decay", self.weight_decay, 0.0, 1.0)
        check_float("StandaloneConfig", "clip_norm", self.clip_norm, 0.0, math.inf, lo_open=True)


@dataclasses.dataclass(frozen=True)
class MLMBlocks:
    """Token blocks of one vocabulary: what stand-alone training reads."""

    train: torch.Tensor    # (num_train, seq_len) long
    heldout: torch.Tensor  # (num_heldout, seq_len) long
    masking: MaskingIds


def train_standalone(arch: ArchConfig, data: MLMBlocks, config: StandaloneConfig, seed: int,
                     progress: Optional[Callable[[int, float], None]] = None) -> dict:
    """Train ``arch`` from scratch; returns {"curve": [[step, held-out loss], ...], "loss", "perplexity",
    "seconds", "tokens_per_second"} (tokens/s of the training steps alone). ``progress(step, loss)``
    is called after every held-out evaluation."""
    if arch.vocab_size != data.masking.vocab_size:
        raise ValueError(f"architecture vocab_size {arch.vocab_size} != data vocabulary {data.masking.vocab_size}")
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = ForMaskedLM(arch)
        opt = adamw(model, lr=config.lr, weight_decay=config.weight_decay)
        sched = warmup_linear_decay(opt, warmup_steps_for(config.steps, config.warmup_ratio), config.steps)
        gen = torch.Generator().manual_seed(seed)
        heldout = data.heldout[:config.eval_blocks]
        curve, train_seconds = [], 0.0
        model.train()
        for step in range(1, config.steps + 1):
            start = time.perf_counter()
            idx = torch.randint(len(data.train), (config.batch_size,), generator=gen)
            mlm_step(model, data.train[idx], opt, data.masking, generator=gen, clip_norm=config.clip_norm,
                     scheduler=sched)
            train_seconds += time.perf_counter() - start
            if step % config.eval_every == 0 or step == config.steps:
                loss = evaluate_mlm(model, heldout, batch_size=64, seed=config.eval_seed, masking=data.masking)["loss"]
                curve.append([step, loss])
                if progress is not None:
                    progress(step, loss)
    tokens = config.steps * config.batch_size * data.train.shape[1]
    loss = curve[-1][1]
    return {"curve": curve, "loss": loss, "perplexity": math.exp(min(loss, 50.0)), "seconds": train_seconds,
            "tokens_per_second": tokens / train_seconds}


def train_cached(file: Path, arch: ArchConfig, data: MLMBlocks, config: StandaloneConfig, seed: int,
                 progress: Optional[Callable[[int, float], None]] = None) -> dict:
    """``train_standalone``'s result, reused from ``file`` when it holds the same architecture and config
    (written atomically, so an interrupted comparison continues where it stopped)."""
    if file.is_file():
        doc = json.loads(file.read_text())
        if doc.get("arch") == arch.to_dict() and doc.get("config") == config.to_dict():
            return doc["result"]
    result = train_standalone(arch, data, config, seed, progress=progress)
    file.parent.mkdir(parents=True, exist_ok=True)
    tmp = file.with_suffix(".tmp")
    tmp.write_text(json.dumps({"arch": arch.to_dict(), "config": config.to_dict(), "result": result}))
    tmp.replace(file)
    return result
