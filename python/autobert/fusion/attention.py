"""``fused_attention``: run an attention graph through the fused kernels."""
from __future__ import annotations

from typing import Optional

import torch

import autobert_ext
from autobert.graph import Graph


def fused_attention(graph: Graph, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                    key_padding_mask: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Per-head q, k, v (B, H, N, d), key_padding_mask (B, N) bool (True = real) -> (B, H, N, d).

    The graph is planned once per (fingerprint, d) and run with fused kernels: as one custom op
    under torch.compile, through a plain autograd.Function otherwise (less per-call overhead, same
    results). AUTOBERT_BACKEND=eager forces the reference kernels.
    """
    return autobert_ext.fused_attention(graph, q, k, v, key_padding_mask)
