"""A training-free toy fitness over architectures, for tests and quick demonstrations.

``OpCountFitness(target)``: per layer, the L1 distance between the layer graph's op counts and
the target graph's (a conv layer counts as the target's op count + 1 away). The optimum, 0, is
every layer computing a graph with exactly the target's op counts — reachable by mutations from
standard BERT, so an evolution that works must find it.
"""
from __future__ import annotations

from autobert.model.config import ArchConfig, AttentionLayer, as_graph


class OpCountFitness:
    """arch (ArchConfig) -> distance (float >= 0, lower is better) to ``target`` (graph, name or expression)."""

    def __init__(self, target="abz_sqrt_key_qkv"):
        self.target = as_graph(target, "OpCountFitness.target")
        self.counts = self.target.op_counts()

    def layer_distance(self, layer) -> int:
        if not isinstance(layer, AttentionLayer):
            return self.target.num_ops + 1
        counts = layer.graph.op_counts()
        return sum(abs(counts.get(op, 0) - self.counts.get(op, 0)) for op in set(counts) | set(self.counts))

    def __call__(self, arch: ArchConfig) -> float:
        return float(sum(self.layer_distance(layer) for layer in arch.layers))
