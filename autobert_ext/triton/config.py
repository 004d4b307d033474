"""Tile configurations of the generated kernels: fixed per dtype and architecture.

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


# Attention tiles per (storage dtype or "tf32", architecture) for head dims <= 64 / <= 128:
# (block_m, block_n, warps, stages) forward, then the same for both backward kernels. Chosen by
# compiling every generated kernel ahead of time (benchmarks/triton_compile.py, results in
# benchmarks/results/triton-compile-sm80.json / -sm90.json) so that no kernel spills and shared
# memory stays under SHARED_BUDGET on both architectures. IEEE float32 has no tensor-core path: its
# dots run on FMA units with every tile in registers, hence the small tiles.
SHARED_BUDGET = 80 * 1024  # bytes per block: two blocks per SM on sm_80 (164 KB) and sm_90 (228 KB)
_ATTENTION_TILES = {
    # kind: {head-dim bound: (fwd, bwd)}
    "half": {64: ((128, 64, 8, 2), (64, 64, 8, 2)), 128: ((64, 64, 8, 2), (32, 64, 8, 2))},
    "tf32": {64: ((64, 64, 4, 2), (32, 32, 8, 2)), 128: ((64, 32, 8, 2), (32, 32, 8, 2))},
    "ieee": {64: ((64, 32, 8, 2), (32, 32, 8, 1)), 128: ((32, 32, 8, 2), (16, 32, 8, 1))},
}


def tile_kind(dtype: str, precision: str = "ieee") -> str:
    """"half" for bfloat16/float16; for float32 its dot precision: "tf32" (tensor cores) or "ieee"."""
    if dtype in ("bfloat16", "float16"):
        return "half"
    if precision not in ("ieee", "tf32"):
        raise ValueError(f"float32 dot precision must be 'ieee' or 'tf32', got {precision!r}")
    return precision


def default_attention_config(head_dim_padded: int, dtype: str = "bfloat16", precision: str = "ieee") -> AttentionConfig:
    """Fixed tiles by padded head dim, storage dtype and float32 dot precision (see _ATTENTION_TILES)."""
    if interpreting():
        return AttentionConfig(64, 64, 1, 1, 64, 64, 1, 1)
    tiles = _ATTENTION_TILES[tile_kind(dtype, precision)]
    bound = 64 if head_dim_padded <= 64 else 128
    if head_dim_padded > 128:  # beyond the measured table: the smallest tiles tl.dot allows
        return AttentionConfig(16, 16, 4, 1, 16, 16, 4, 1)
    (m, n, w, s), (bm, bn, bw, bs) = tiles[bound]
    return AttentionConfig(m, n, w, s, bm, bn, bw, bs)


def float32_precision() -> str:
    """The tl.dot input precision of float32 kernels: "tf32" when torch allows TF32 matmuls
    (``torch.backends.cuda.matmul.allow_tf32``, also set by ``torch.set_float32_matmul_precision``
    "high"/"medium"), else "ieee" (exact float32 products, as an fp32 reference computes)."""
    import torch
    allowed = torch.backends.cuda.matmul.allow_tf32 or torch.get_float32_matmul_precision() != "highest"
    return "tf32" if allowed else "ieee"


def default_row_config() -> RowConfig:
    if interpreting():
        return RowConfig(block=1024, max_row_block=1024, num_warps=1)
    return RowConfig()


DTYPE_NAMES = {"torch.float32": "float32", "torch.float16": "float16", "torch.bfloat16": "bfloat16"}


def dtype_name(dtype) -> str:
    """torch dtype -> the dtype name the generated modules are specialised for."""
    return DTYPE_NAMES[str(dtype)]


def next_pow2(n: int, low: int = 1) -> int:
    return max(low, 1 << max(0, int(n) - 1).bit_length())


def cdiv(a: int, b: int) -> int:
    return -(-a // b)
