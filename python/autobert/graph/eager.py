"""The eager reference: evaluates a graph op by op with torch (any dtype, autograd works).

It is the oracle every fused kernel is tested against (DESIGN.md §5).
"""
from __future__ import annotations

from typing import Optional

import torch

from autobert.graph import ops as O
from autobert.graph.graph import Graph


def check_inputs(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                 key_padding_mask: Optional[torch.Tensor]) -> None:
    """q, k, v: (B, H, N, d) of one dtype and device; key_padding_mask: (B, N) bool or None."""
    for name, t in (("q", q), ("k", k), ("v", v)):
        if not isinstance(t, torch.Tensor):
            raise ValueError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
        if t.dim() != 4:
            raise ValueError(f"{name} must have shape (B, H, N, d), got {tuple(t.shape)}")
        if not t.is_floating_point():
            raise ValueError(f"{name} must be a floating-point tensor, got {t.dtype}")
    if not (q.shape == k.shape == v.shape):
        raise ValueError(f"q, k, v must have the same shape (B, H, N, d), got {tuple(q.shape)}, "
                         f"{tuple(k.shape)}, {tuple(v.shape)}")
    if not (q.dtype == k.dtype == v.dtype):
        raise ValueError(f"q, k, v must have one dtype, got {q.dtype}, {k.dtype}, {v.dtype}")
    if not (q.device == k.device == v.device):
        raise ValueError(f"q, k, v must be on one device, got {q.device}, {k.device}, {v.device}")
    if key_padding_mask is not None:
        B, _, N, _ = q.shape
        if not isinstance(key_padding_mask, torch.Tensor) or key_padding_mask.dtype != torch.bool:
            raise ValueError("key_padding_mask must be a bool tensor (True = real token)")
        if tuple(key_padding_mask.shape) != (B, N):
            raise ValueError(f"key_padding_mask must have shape (B, N) = ({B}, {N}), "
                             f"got {tuple(key_padding_mask.shape)}")
        if key_padding_mask.device != q.device:
            raise ValueError(f"key_padding_mask is on {key_padding_mask.device}, q on {q.device}")


def eager(graph: Graph, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
          key_padding_mask: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Run ``graph`` on per-head q, k, v (B, H, N, d) -> (B, H, N, d).

    key_padding_mask (B, N) bool, True = real token: padded positions never contribute to a
    reduction over the sequence axis. Outputs at padded query rows are unspecified but finite.
    """
    if not isinstance(graph, Graph):
        raise TypeError(f"graph must be an autobert.graph.Graph, got {type(graph).__name__}")
    check_inputs(q, k, v, key_padding_mask)
    ctx = O.EvalContext(d=q.shape[-1], mask=key_padding_mask)
    inputs = {"Q": q, "K": k, "V": v}
    vals: list[torch.Tensor] = []
    for op, args in graph.nodes:
        if op in inputs:
            vals.append(inputs[op])
            continue
        vals.append(O.OPS[op].eager([vals[a] for a in args], [graph.shapes[a] for a in args], ctx))
    return vals[graph.output]
