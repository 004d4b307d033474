"""Tile configurations of the generated kernels: fixed defaults, and the autotune search lists.

A config is part of the cache key (it is written into the generated module), so one kernel
specification with two configs gives two modules. Defaults favour a recent NVIDIA GPU (A100 /
H100, head dim <= 128); under the CPU interpreter, where every program instance costs about a
millisecond, big tiles keep the instance count low.
"""
from __future__ import annotations

import dataclasses
import os


def interpreting() -> bool:
    """True when Triton runs kernels on the CPU interpreter (TRITON_INTERPRET=1)."""
    return os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")


def _pow2(name: str, value: int, low: int) -> None:
    if value < low or value & (value - 1):
        raise ValueError(f"{name} must be a power of two >= {low}, got {value}")


def _warps(name: str, value: int) -> None:
    if value not in (1, 2, 4, 8, 16):
        raise ValueError(f"{name} must be 1, 2, 4, 8 or 16, got {value}")


@dataclasses.dataclass(frozen=True)
class AttentionConfig:
    """Tiles of the streaming attention kernels (tl.dot needs every tile side >= 16)."""

    block_m: int = 128  # forward: query rows per program
    block_n: int = 64  # forward: keys per inner-loop step
    num_warps: int = 4  # forward
    num_stages: int = 2  # forward software pipelining depth
    bwd_block_m: int = 64  # backward: query rows per step (dK/dV) or per program (dQ)
    bwd_block_n: int = 64  # backward: keys per program (dK/dV) or per step (dQ)
    bwd_num_warps: int = 4
    bwd_num_stages: int = 2

    def __post_init__(self):
        for f in ("block_m", "block_n", "bwd_block_m", "bwd_block_n"):
            _pow2(f"AttentionConfig.{f}", getattr(self, f), 16)
        for f in ("num_warps", "bwd_num_warps"):
            _warps(f"AttentionConfig.{f}", getattr(self, f))
        for f in ("num_stages", "bwd_num_stages"):
            if getattr(self, f) < 1:
                raise ValueError(f"AttentionConfig.{f} must be >= 1, got {getattr(self, f)}")


@dataclasses.dataclass(frozen=True)
class RowConfig:
    """Tiles of the elementwise (1-D) and row-softmax kernels."""

    block: int = 1024  # elementwise: elements per program
    max_row_block: int = 4096  # softmax: row chunk; a row up to this long is read once
    num_warps: int = 4

    def __post_init__(self):
        _pow2("RowConfig.block", self.block, 16)
        _pow2("RowConfig.max_row_block", self.max_row_block, 16)
        _warps("RowConfig.num_warps", self.num_warps)


def default_attention_config(head_dim_padded: int) -> AttentionConfig:
    """Fixed tiles by padded head dim (register budget of the fp32 accumulators)."""
    if interpreting():
        return AttentionConfig(64, 64, 1, 1, 64, 64, 1, 1)
    if head_dim_padded <= 64:
        return AttentionConfig(128, 64, 4, 3, 64, 64, 4, 2)
    if head_dim_padded <= 128:
        return AttentionConfig(128, 64, 8, 2, 64, 64, 8, 2)
    return AttentionConfig(64, 32, 8, 1, 32, 32, 8, 1)


def default_row_config() -> RowConfig:
    if interpreting():
        return RowConfig(block=1024, max_row_block=1024, num_warps=1)
    return RowConfig()


# Autotune search lists (opt-in, for a final architecture): (BLOCK_M, BLOCK_N, warps, stages).
AUTOTUNE_FWD = ((128, 64, 4, 3), (128, 128, 8, 2), (64, 64, 4, 3), (128, 32, 4, 4), (64, 32, 2, 4))
AUTOTUNE_BWD = ((64, 64, 4, 2), (32, 64, 4, 2), (64, 32, 4, 2), (128, 64, 8, 2), (32, 32, 2, 3))
