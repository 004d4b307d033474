"""``fused_attention``: run an attention graph through the fused kernels (eager while planning lands)."""
from __future__ import annotations

from typing import Optional

import torch

from autobert.graph import Graph, eager


def fused_attention(graph: Graph, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                    key_padding_mask: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Per-head q, k, v (B, H, N, d), key_padding_mask (B, N) bool (True = real) -> (B, H, N, d)."""
    return eager(graph, q, k, v, key_padding_mask)
