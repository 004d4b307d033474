"""Seeded random attention graphs: ``random_graph(rng, max_nodes)`` always returns a valid Graph
(well-formed and not degenerate: rejection sampling over ``autobert.graph.validity``).

Generation is top-down by symbolic shape: to make a tensor of shape s the generator picks an
op whose result has shape s and recurses into its operands' shapes. Depth is bounded so
outputs stay finite in float64 on unit-scale inputs (repeated growth ops such as square/exp
chains otherwise overflow). Minimum op costs per shape — (N,d): 0 (a leaf), (d,N): 1,
(N,N)/(d,d): 2 — keep every choice inside the node budget.
"""
from __future__ import annotations

import random
from collections import Counter
from typing import Optional

from autobert.graph import ops as O
from autobert.graph import shapes as S
from autobert.graph.errors import GraphError
from autobert.graph.graph import Graph
from autobert.graph.validity import validity

MAX_DEPTH = 6
MAX_DRAWS = 1000  # a valid graph is drawn >= 95% of the time: this bound is never reached in practice
_MIN_COST = {S.ND: 0, S.DN: 1, S.NN: 2, S.DD: 2}
# For each result shape: the matmul operand shape pairs that produce it.
_MATMUL_PAIRS = {
    S.ND: [(S.NN, S.ND), (S.ND, S.DD)],
    S.DN: [(S.DN, S.NN), (S.DD, S.DN)],
    S.NN: [(S.ND, S.DN)],
    S.DD: [(S.DN, S.ND)],
}


class _Builder:
    def __init__(self, rng: random.Random, budget: int):
        self.rng, self.budget = rng, budget
        self.nodes: list[tuple[str, tuple[int, ...]]] = []

    def add(self, op: str, args: tuple[int, ...] = ()) -> int:
        if op not in O.INPUTS:
            self.budget -= 1
        self.nodes.append((op, args))
        return len(self.nodes) - 1

    def leaf(self) -> int:
        return self.add(self.rng.choice(O.INPUTS))

    def minimal(self, shape: S.Shape) -> int:
        """The cheapest sub-graph of ``shape`` (costs exactly _MIN_COST[shape] ops)."""
        if shape == S.ND:
            return self.leaf()
        if shape == S.DN:
            return self.add("transpose", (self.leaf(),))
        if shape == S.NN:
            a = self.leaf()
            return self.add("matmul", (a, self.add("transpose", (self.leaf(),))))
        a = self.add("transpose", (self.leaf(),))
        return self.add("matmul", (a, self.leaf()))

    def make(self, shape: S.Shape, depth: int) -> int:
        """A sub-graph of ``shape`` using at most ``self.budget`` ops."""
        rng, room = self.rng, self.budget - _MIN_COST[shape]
        if depth >= MAX_DEPTH or room <= 0:
            return self.minimal(shape)
        choices: list[tuple[str, float]] = []
        if shape == S.ND:
            choices.append(("leaf", 3.0 if depth >= 2 else 0.5))
        choices += [("unary", 2.0), ("softmax", 0.4 if shape[1] == "N" else 0.1)]
        if shape in (S.DN, S.NN, S.DD):
            choices.append(("transpose", 0.5))
        if room >= 1 + _MIN_COST[shape]:
            choices.append(("binary", 1.0))
        pairs = [p for p in _MATMUL_PAIRS[shape] if _MIN_COST[p[0]] + _MIN_COST[p[1]] + 1 <= self.budget]
        if pairs:
            choices.append(("matmul", 3.0 if depth == 0 else 1.5))
        kind = rng.choices([c[0] for c in choices], weights=[c[1] for c in choices])[0]
        if kind == "leaf":
            return self.leaf()
        if kind == "transpose":
            return self.add("transpose", (self.child(S.transpose_rule(shape), depth, 1),))
        if kind == "softmax":
            return self.add("softmax", (self.child(shape, depth, 1),))
        if kind == "unary":
            return self.add(rng.choice(O.UNARY_ELEMENTWISE), (self.child(shape, depth, 1),))
        if kind == "binary":  # reserve this node and the second operand's minimum cost
            a = self.child(shape, depth, 1 + _MIN_COST[shape])
            return self.add(rng.choice(O.BINARY_ELEMENTWISE), (a, self.child(shape, depth, 1)))
        left, right = rng.choice(pairs)
        a = self.child(left, depth, 1 + _MIN_COST[right])
        return self.add("cosine" if rng.random() < 0.15 else "matmul", (a, self.child(right, depth, 1)))

    def child(self, shape: S.Shape, depth: int, reserve: int) -> int:
        """An operand sub-graph, keeping ``reserve`` ops of the budget for what comes after it."""
        self.budget -= reserve
        node = self.make(shape, depth + 1)
        self.budget += reserve
        return node


def random_graph(rng: random.Random, max_nodes: int = 12, rejected: Optional[Counter] = None) -> Graph:
    """A random valid graph with at most ``max_nodes`` op nodes (>= 1), drawn from ``rng``.

    Draws that are degenerate (``autobert.graph.validity``) or simplify to a bare input are
    redrawn; ``rejected`` (a Counter), when given, counts them by kind ("degenerate", "trivial").
    """
    if not isinstance(rng, random.Random):
        raise TypeError(f"rng must be a random.Random, got {type(rng).__name__}")
    if max_nodes < 1:
        raise GraphError(f"max_nodes must be >= 1, got {max_nodes}")
    rejected = Counter() if rejected is None else rejected
    for _ in range(MAX_DRAWS):
        b = _Builder(rng, max_nodes)
        out = b.make(S.OUTPUT_SHAPE, 0)
        g = Graph(b.nodes, out)
        if g.num_ops < 1:  # a bare Q, K or V is not an attention graph
            rejected["trivial"] += 1
        elif not validity(g).ok:
            rejected["degenerate"] += 1
        else:
            return g
    raise GraphError(f"no valid random graph within {max_nodes} nodes in {MAX_DRAWS} draws")
