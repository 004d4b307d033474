"""Parameter-free cost of a graph: floating-point operations per head for given N and d."""
from __future__ import annotations

from autobert.graph import ops as O
from autobert.graph import shapes as S
from autobert.graph.graph import Graph

# Approximate FLOPs per element of the result for elementwise / row ops.
_ELEMENT_COST = {"softmax": 5, "transpose": 0}


def flops(graph: Graph, n: int, d: int) -> int:
    """FLOPs of one head: a (p,q)@(q,r) matmul counts 2pqr; cosine adds 3 per operand element
    for the normalisation; softmax 5 per element; other ops 1 per element; transposes are free."""
    total = 0
    for i, (op, args) in enumerate(graph.nodes):
        if op in O.INPUTS:
            continue
        rows, cols = S.concrete(graph.shapes[i], n, d)
        kind = O.OPS[op].kind
        if kind in ("matmul", "cosine"):
            inner = S.concrete(graph.shapes[args[0]], n, d)[1]
            total += 2 * rows * cols * inner
            if kind == "cosine":
                total += 3 * inner * (rows + cols)
        else:
            total += _ELEMENT_COST.get(op, 1) * rows * cols
    return total
