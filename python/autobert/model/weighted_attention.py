"""``WeightedMultiplicativeAttention`` (FlexiBERT's SA-WMA) and the per-head layout helpers.

Scores are ``(Q_h W_h) K_h^T / sqrt(d)`` with a learned d x d matrix ``W_h`` per head; the rest is
standard attention (softmax over keys, weighted sum of values, output projection), run through
``autobert.fusion.fused_attention`` with the standard graph on the transformed queries.
"""
from __future__ import annotations

import math
from typing import Optional

import torch
from torch import nn

from autobert.fusion import fused_attention
from autobert.graph import library


def split_heads(x: torch.Tensor, heads: int) -> torch.Tensor:
    """(B, N, hidden) -> (B, H, N, d)."""
    b, n, _ = x.shape
    return x.view(b, n, heads, -1).transpose(1, 2)


def merge_heads(x: torch.Tensor) -> torch.Tensor:
    """(B, H, N, d) -> (B, N, H * d)."""
    b, h, n, d = x.shape
    return x.transpose(1, 2).reshape(b, n, h * d)


class WeightedMultiplicativeAttention(nn.Module):
    """x (B, N, hidden), key_padding_mask (B, N) bool (True = real) or None -> (B, N, hidden)."""

    def __init__(self, hidden: int, heads: int):
        super().__init__()
        if hidden % heads:
            raise ValueError(f"hidden ({hidden}) must be divisible by heads ({heads})")
        self.hidden, self.heads = hidden, heads
        d = hidden // heads
        self.q_proj, self.k_proj, self.v_proj, self.out_proj = (nn.Linear(hidden, hidden) for _ in range(4))
        # Variance-preserving: Q W keeps the scale of Q, so at initialisation WMA scores have the
        # scale of SDP scores instead of being ~50x flatter under BERT's N(0, 0.02).
        self.weight = nn.Parameter(torch.randn(heads, d, d) / math.sqrt(d))  # (H, d, d)

    def queries_keys_values(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The per-head (B, H, N, d) tensors the standard graph sees: Q W, K, V."""
        q = torch.matmul(split_heads(self.q_proj(x), self.heads), self.weight)  # (B, H, N, d) @ (H, d, d)
        return q, split_heads(self.k_proj(x), self.heads), split_heads(self.v_proj(x), self.heads)

    def forward(self, x: torch.Tensor, key_padding_mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        q, k, v = self.queries_keys_values(x)
        out = fused_attention(library["standard"], q, k, v, key_padding_mask)  # (B, H, N, d)
        return self.out_proj(merge_heads(out))

    def extra_repr(self) -> str:
        return f"hidden={self.hidden}, heads={self.heads}"
