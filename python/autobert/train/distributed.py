"""Process-group set-up for runs launched by ``torchrun`` (one process per device).

Without ``WORLD_SIZE`` > 1 in the environment everything runs in one process and the helpers are
no-ops. On CPU the backend is gloo, on CUDA nccl with one GPU per ``LOCAL_RANK``.
"""
from __future__ import annotations

import dataclasses
import logging
import os

import torch
import torch.distributed as dist

__all__ = ["DistContext", "init_distributed", "barrier", "mean_across_ranks"]

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class DistContext:
    rank: int                 # global rank; 0 writes logs, checkpoints and the final model
    world_size: int           # number of processes
    device: torch.device      # this process's device
    initialized_here: bool    # whether init_distributed created the process group (and should destroy it)

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    def close(self) -> None:
        if self.initialized_here and dist.is_initialized():
            dist.destroy_process_group()


def init_distributed(device: "str | torch.device | None" = None) -> DistContext:
    """Join the torchrun process group when WORLD_SIZE > 1; pick this process's device.

    ``device`` None means CUDA (``cuda:LOCAL_RANK``) when available, else CPU.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if device is None:
        device = torch.device(f"cuda:{local_rank}" if torch.cuda.is_available() else "cpu")
    device = torch.device(device)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    if world <= 1:
        return DistContext(0, 1, device, False)
    created = False
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
        created = True
    rank = dist.get_rank()
    log.info("distributed: rank %d of %d on %s (%s)", rank, dist.get_world_size(), device, dist.get_backend())
    return DistContext(rank, dist.get_world_size(), device, created)


def barrier(ctx: DistContext) -> None:
    if ctx.distributed:
        dist.barrier()


def mean_across_ranks(ctx: DistContext, value: float) -> float:
    """The mean of a float over all ranks (the value itself in one process)."""
    if not ctx.distributed:
        return value
    t = torch.tensor([value], dtype=torch.float64, device=ctx.device)
    dist.all_reduce(t)
    return float(t) / ctx.world_size
