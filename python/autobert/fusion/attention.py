"""``fused_attention``: plan an attention graph and run the plan through the fused kernels."""
from __future__ import annotations

from typing import Optional

import torch

import autobert_ext
from autobert.fusion.planner import plan
from autobert.graph import Graph


def fused_attention(graph: Graph, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                    key_padding_mask: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Per-head q, k, v (B, H, N, d), key_padding_mask (B, N) bool (True = real) -> (B, H, N, d).

    The graph is planned once per (fingerprint, d) and the plan (plain data) runs with fused
    kernels: as one custom op under torch.compile, through a plain autograd.Function otherwise
    (less per-call overhead, same results). AUTOBERT_BACKEND=eager forces the reference kernels.
    """
    if not isinstance(graph, Graph):
        raise TypeError(f"fused_attention needs an autobert.graph.Graph, got {type(graph).__name__} "
                        "(a Plan or its JSON goes to autobert_ext.fused_attention)")
    if not isinstance(q, torch.Tensor) or q.dim() != 4:
        got = tuple(q.shape) if isinstance(q, torch.Tensor) else type(q).__name__
        raise ValueError(f"fused_attention: q must be a (B, H, N, d) tensor, got {got}")
    if torch.compiler.is_compiling():  # the planner parses JSON, which Dynamo cannot trace
        return autobert_ext.fused_attention(_plan_json(graph.to_json(), q.shape[-1]), q, k, v, key_padding_mask)
    return autobert_ext.fused_attention(plan(graph, q.shape[-1]), q, k, v, key_padding_mask)


@torch.compiler.assume_constant_result
def _plan_json(graph_json: str, d: int) -> str:
    """The plan JSON of a graph at head dim d: one constant per (graph, d) in a compiled graph."""
    return plan(Graph.from_json(graph_json), d).json
