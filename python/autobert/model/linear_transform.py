"""``LinearTransform``: FlexiBERT's LT operations, a 2-D DFT or DCT of each head's (N, d) block.

x -> input projection -> per head a separable transform over the sequence and head-dim axes ->
(B, N, hidden). ``dft`` keeps the real part of the 2-D FFT (FNet's mixing); ``dct`` is the DCT-II.
Both are orthonormal ("ortho" scaling), so the output scale does not grow with N or d. The
transforms hold no weights: heads choose the block size the transform mixes. Padded positions are
zeroed after the projection, so they never contribute to a real token's output.
"""
from __future__ import annotations

import functools
import math
from typing import Optional

import torch
from torch import nn

from autobert.model.weighted_attention import merge_heads, split_heads

KINDS = ("dft", "dct")


@functools.lru_cache(maxsize=64)
def _dct_basis(n: int) -> torch.Tensor:
    k = torch.arange(n, dtype=torch.float64)[:, None]
    j = torch.arange(n, dtype=torch.float64)[None, :]
    basis = torch.cos(math.pi * (2 * j + 1) * k / (2 * n)) * math.sqrt(2.0 / n)  # (n, n): row k, column j
    basis[0] /= math.sqrt(2.0)
    return basis


def dct_matrix(n: int, dtype: torch.dtype = torch.float32, device=None) -> torch.Tensor:
    """The orthonormal DCT-II matrix C (n, n): ``C @ x`` transforms x along its first axis."""
    return _dct_basis(n).to(dtype=dtype, device=device)


def dct2(x: torch.Tensor) -> torch.Tensor:
    """Orthonormal 2-D DCT-II over the last two axes of (..., N, d)."""
    n, d = x.shape[-2:]
    return dct_matrix(n, x.dtype, x.device) @ x @ dct_matrix(d, x.dtype, x.device).T


def dft2_real(x: torch.Tensor) -> torch.Tensor:
    """Real part of the orthonormal 2-D DFT over the last two axes of (..., N, d)."""
    return torch.fft.fft2(x, norm="ortho").real


class LinearTransform(nn.Module):
    """x (B, N, hidden), key_padding_mask (B, N) bool (True = real) or None -> (B, N, hidden)."""

    def __init__(self, hidden: int, heads: int, kind: str):
        super().__init__()
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
        if hidden % heads:
            raise ValueError(f"hidden ({hidden}) must be divisible by heads ({heads})")
        self.hidden, self.heads, self.kind = hidden, heads, kind
        self.in_proj = nn.Linear(hidden, hidden)

    def forward(self, x: torch.Tensor, key_padding_mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        x = self.in_proj(x)
        if key_padding_mask is not None:
            x = x.masked_fill(~key_padding_mask[:, :, None], 0.0)
        blocks = split_heads(x, self.heads)  # (B, H, N, d)
        out = dft2_real(blocks) if self.kind == "dft" else dct2(blocks)
        return merge_heads(out)

    def extra_repr(self) -> str:
        return f"hidden={self.hidden}, heads={self.heads}, kind={self.kind!r}"
