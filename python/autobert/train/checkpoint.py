"""Resumable training checkpoints: ``<run>/checkpoint/`` holds

* ``config.json`` + ``model.safetensors`` — the model, as ``save_pretrained`` writes it (so a
  checkpoint is also a loadable model folder);
* ``trainer_state.pt`` — optimizer and scheduler state and the number of finished steps;
* ``rng_rank<r>.pt`` — per process: the torch CPU (and CUDA) RNG states that drive dropout, and
  the masking generator's state.

With all of it restored, the resumed run draws the same masks and dropout and takes the same
updates as the uninterrupted one. A checkpoint is written to ``checkpoint.tmp`` and swapped in by
renames, so a crash while saving leaves the previous checkpoint readable.
"""
from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import Optional

import torch
from torch import nn

from autobert.model import from_pretrained, save_pretrained

from .distributed import DistContext, barrier

__all__ = ["save_checkpoint", "load_checkpoint", "find_checkpoint", "CHECKPOINT_DIR"]

log = logging.getLogger(__name__)

CHECKPOINT_DIR = "checkpoint"
_STATE = "trainer_state.pt"


def _rng_state(gen: torch.Generator) -> dict:
    state = {"torch": torch.get_rng_state(), "masking": gen.get_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state()
    return state


def save_checkpoint(run_dir: Path, ctx: DistContext, *, model: nn.Module, optimizer, scheduler,
                    step: int, mask_generator: torch.Generator) -> Path:
    """Write the checkpoint after ``step`` finished optimizer steps (every rank must call it)."""
    final, tmp, old = run_dir / CHECKPOINT_DIR, run_dir / (CHECKPOINT_DIR + ".tmp"), run_dir / (CHECKPOINT_DIR + ".old")
    if ctx.is_main:
        shutil.rmtree(tmp, ignore_errors=True)
        try:
            save_pretrained(model, tmp)
            torch.save({"step": step, "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                        "world_size": ctx.world_size}, tmp / _STATE)
        except BaseException:  # a full disk: drop the half-written copy, the previous checkpoint stands
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    barrier(ctx)  # the folder exists before other ranks add their RNG files
    torch.save(_rng_state(mask_generator), tmp / f"rng_rank{ctx.rank}.pt")
    barrier(ctx)
    if ctx.is_main:
        if final.exists():
            shutil.rmtree(old, ignore_errors=True)
            final.rename(old)
        tmp.rename(final)
        shutil.rmtree(old, ignore_errors=True)
        log.info("checkpoint at step %d -> %s", step, final)
    barrier(ctx)
    return final


def find_checkpoint(run_dir: Path) -> Optional[Path]:
    """The run's checkpoint folder (or the previous one, if a save was cut off mid-swap)."""
    for name in (CHECKPOINT_DIR, CHECKPOINT_DIR + ".old"):
        p = run_dir / name
        if (p / _STATE).is_file():
            return p
    return None


def load_checkpoint(path: Path, ctx: DistContext, *, model: nn.Module, optimizer, scheduler,
                    mask_generator: torch.Generator) -> int:
    """Restore everything ``save_checkpoint`` wrote into the given objects; returns the step."""
    state = torch.load(path / _STATE, map_location="cpu", weights_only=True)
    if state.get("world_size", 1) != ctx.world_size:
        raise ValueError(f"{path} was written by {state.get('world_size')} process(es); resuming with "
                         f"{ctx.world_size} would change the data order and the losses")
    saved = from_pretrained(path, expected=type(model))
    model.load_state_dict(saved.state_dict())
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    rng_file = path / f"rng_rank{ctx.rank}.pt"
    if not rng_file.is_file():
        raise FileNotFoundError(f"{rng_file} missing: the checkpoint is incomplete")
    rng = torch.load(rng_file, map_location="cpu", weights_only=True)
    torch.set_rng_state(rng["torch"])
    mask_generator.set_state(rng["masking"])
    if "cuda" in rng and ctx.device.type == "cuda":
        torch.cuda.set_rng_state(rng["cuda"], ctx.device)
    log.info("resumed from %s at step %d", path, state["step"])
    return int(state["step"])
