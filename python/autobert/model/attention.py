"""``GraphAttention``: multi-head attention whose per-head computation is an attention graph.

Projections are allocated only for the inputs that influence the graph's output
(``autobert.graph.live_inputs``): a graph that never reads V has no W_V, and neither has one that
reads V only where it cannot matter (``mul(Q, div(V, V))``). The per-head computation is
``autobert.fusion.fused_attention``, the one entry point that becomes the fused kernels without an
API change; ``attend`` may be set per module to another function of the same signature (the
Hugging Face models set the graph's eager reference for ``attn_implementation="eager"``).
"""
from __future__ import annotations

from typing import Callable, Iterable, Optional

import torch
from torch import nn

from autobert.fusion import fused_attention
from autobert.graph import Graph, live_inputs

INPUTS = ("Q", "K", "V")


class GraphAttention(nn.Module):
    """x (B, N, hidden), key_padding_mask (B, N) bool (True = real) or None -> (B, N, hidden).

    Args:
        hidden, heads: model width and head count (head dim d = hidden // heads).
        graph: the per-head attention graph.
        projections: which of "Q", "K", "V" get a projection; default ``live_inputs(graph)``. The supernet
            allocates all three so any graph can be activated (``set_graph``).
    """

    #: (graph, q, k, v, key_padding_mask) -> (B, H, N, d); an instance attribute overrides it.
    attend: Callable = staticmethod(fused_attention)

    def __init__(self, hidden: int, heads: int, graph: Graph, projections: Optional[Iterable[str]] = None):
        super().__init__()
        if hidden % heads:
            raise ValueError(f"hidden ({hidden}) must be divisible by heads ({heads})")
        self.hidden, self.heads = hidden, heads
        allocated = frozenset(live_inputs(graph) if projections is None else projections)
        if not allocated <= set(INPUTS):
            raise ValueError(f"projections must be a subset of {INPUTS}, got {sorted(allocated)}")
        for name in INPUTS:  # a missing projection is None, so state_dict has no entry for it
            setattr(self, f"{name.lower()}_proj", nn.Linear(hidden, hidden) if name in allocated else None)
        self.out_proj = nn.Linear(hidden, hidden)
        self.set_graph(graph)

    @property
    def projections(self) -> frozenset[str]:
        """The inputs that have a projection."""
        return frozenset(n for n in INPUTS if getattr(self, f"{n.lower()}_proj") is not None)

    def set_graph(self, graph: Graph) -> None:
        """Run ``graph`` from now on; it may read only inputs that have a projection."""
        if not isinstance(graph, Graph):
            raise TypeError(f"graph must be an autobert.graph.Graph, got {type(graph).__name__}")
        live = live_inputs(graph)
        if not live:
            raise ValueError(f"graph {graph.to_expr()} has a constant output (no input influences it): "
                             "it cannot be an attention layer")
        missing = live - self.projections
        if missing:
            raise ValueError(f"graph {graph.to_expr()} reads {sorted(missing)}, which this layer has no "
                             f"projection for (it has {sorted(self.projections)})")
        self.graph = graph
        self.live = tuple(name for name in INPUTS if name in live)  # fixed per graph: nothing to trace per call

    def _split(self, proj: nn.Linear, x: torch.Tensor) -> torch.Tensor:
        """(B, N, hidden) -> (B, H, N, d)."""
        b, n, _ = x.shape
        return proj(x).view(b, n, self.heads, -1).transpose(1, 2)  # (B, H, N, d)

    def forward(self, x: torch.Tensor, key_padding_mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        heads = {name: self._split(getattr(self, f"{name.lower()}_proj"), x) for name in self.live}
        # An input that cannot influence the output is never needed: any tensor of the right shape
        # stands in for it, so its projection is not computed.
        stand_in = next(iter(heads.values()))
        q, k, v = (heads.get(name, stand_in) for name in INPUTS)
        out = self.attend(self.graph, q, k, v, key_padding_mask)  # (B, H, N, d)
        b, _, n, _ = out.shape
        return self.out_proj(out.transpose(1, 2).reshape(b, n, self.hidden))  # (B, N, hidden)

    def extra_repr(self) -> str:
        return f"hidden={self.hidden}, heads={self.heads}, graph={self.graph.to_expr()!r}"
