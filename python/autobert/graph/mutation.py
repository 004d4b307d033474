"""Seeded mutation operators on attention graphs: insert, replace, delete an op, rewire an input.

Every operator returns a new valid Graph (graphs are immutable values) that differs from the
parent and is not degenerate (``autobert.graph.validity``; rejected mutants are redrawn); ``op``
lets the caller (OP-NAS's operation priority) choose the op a mutation uses, and the mutant then
contains it.
"""
from __future__ import annotations

import dataclasses
import random
from collections import Counter
from typing import Optional

from autobert.graph import ops as O
from autobert.graph import shapes as S
from autobert.graph.errors import GraphError
from autobert.graph.graph import Graph
from autobert.graph.validity import validity

KINDS = ("insert", "replace", "delete", "rewire")
# Ops a mutation may introduce (what OP-NAS assigns priorities to).
MUTATION_OPS: tuple[str, ...] = O.UNARY_ELEMENTWISE + O.BINARY_ELEMENTWISE + ("softmax", "transpose", "matmul", "cosine")
_SHAPE_KEEPING_UNARY = O.UNARY_ELEMENTWISE + ("softmax",)


@dataclasses.dataclass(frozen=True)
class Mutation:
    """What a mutation did: ``kind`` in KINDS, the op it introduced (None for delete/rewire), the node."""

    kind: str
    op: Optional[str]
    node: int


def _rebuild(g: Graph, nodes: list, output: int, max_nodes: int, op: Optional[str],
             rejected: Counter) -> Optional[Graph]:
    """The mutant, or None (counted in ``rejected``) when it is invalid, too big, equal to its parent
    after simplification, degenerate, or lost the op it was to introduce (simplified away)."""
    try:
        child = Graph(nodes, output)
    except GraphError:
        return None
    if child.num_ops > max_nodes or child == g:
        return None
    if op is not None and child.op_counts().get(op, 0) == 0:
        rejected["simplified"] += 1
        return None
    if child.num_ops < 1:
        rejected["trivial"] += 1
        return None
    if not validity(child).ok:
        rejected["degenerate"] += 1
        return None
    return child


def _op_nodes(g: Graph) -> list[int]:
    return [i for i, (op, _) in enumerate(g.nodes) if op not in O.INPUTS]


def _insert(g, rng, op, max_nodes):
    """Put ``op`` on the output edge of a node x: unary x -> op(x); binary elementwise x -> op(x, y);
    matmul/cosine x -> op(x, P) or op(P, x) with P a square node of fitting shape; transpose only on
    square (N,N)/(d,d) nodes. y and P are nodes defined before x (or new leaves), so no cycle forms."""
    op = op or rng.choice(MUTATION_OPS)
    target = rng.randrange(len(g.nodes))
    shape = g.shapes[target]
    nodes = list(g.nodes)
    earlier = range(target + 1)  # nodes that cannot depend on target
    if op in O.BINARY_ELEMENTWISE:
        partners = [j for j in earlier if g.shapes[j] == shape]
        if shape == S.ND:  # a leaf not yet used is a valid partner too
            partners += [len(nodes) + k for k in range(3)]
            nodes += [(x, ()) for x in O.INPUTS]
        new_args = (target, rng.choice(partners))
    elif op in ("matmul", "cosine"):
        right = [(target, j) for j in earlier if g.shapes[j] == (shape[1], shape[1])]
        left = [(j, target) for j in earlier if g.shapes[j] == (shape[0], shape[0])]
        if not right + left:
            return None, None
        new_args = rng.choice(right + left)
    elif op == "transpose" and shape[0] != shape[1]:
        return None, None
    else:
        new_args = (target,)
    new = len(nodes)
    nodes.append((op, new_args))
    # Redirect the users of ``target`` (and the output) to the new node.
    nodes = [(o, tuple(new if (a == target and i < len(g.nodes)) else a for a in args))
             for i, (o, args) in enumerate(nodes[:-1])] + [nodes[-1]]
    output = new if g.output == target else g.output
    # The new node sits at the end but its users come before it: re-sort topologically.
    return _toposorted(nodes, output), target


def _toposorted(nodes, output):
    """Re-number nodes so arguments precede users (iterative DFS from the output)."""
    order, seen, stack = [], set(), [(output, False)]
    while stack:
        i, done = stack.pop()
        if done:
            order.append(i)
            continue
        if i in seen:
            continue
        seen.add(i)
        stack.append((i, True))
        stack.extend((a, False) for a in nodes[i][1])
    pos = {old: new for new, old in enumerate(order)}
    return [(nodes[i][0], tuple(pos[a] for a in nodes[i][1])) for i in order], pos[output]


def _replace(g, rng, op):
    cands = []
    for i in _op_nodes(g):
        cur = g.nodes[i][0]
        for group in (_SHAPE_KEEPING_UNARY, O.BINARY_ELEMENTWISE, ("matmul", "cosine")):
            if cur in group:
                cands += [(i, o) for o in group if o != cur and (op is None or o == op)]
    if not cands:
        return None, None
    i, new_op = rng.choice(cands)
    nodes = list(g.nodes)
    nodes[i] = (new_op, nodes[i][1])
    return (nodes, g.output), i


def _delete(g, rng):
    """Remove a shape-keeping node: unary -> its operand; binary elementwise -> one operand."""
    cands = [i for i in _op_nodes(g) if g.nodes[i][0] in _SHAPE_KEEPING_UNARY + O.BINARY_ELEMENTWISE]
    if not cands:
        return None, None
    i = rng.choice(cands)
    keep = rng.choice(g.nodes[i][1])
    nodes = [(o, tuple(keep if a == i else a for a in args)) for o, args in g.nodes]
    return (nodes, keep if g.output == i else g.output), i


def _rewire(g, rng):
    """Point one argument of an op node at another earlier node (or leaf) of the same shape."""
    cands = []
    for i in _op_nodes(g):
        for slot, a in enumerate(g.nodes[i][1]):
            alts = [j for j in range(i) if j != a and g.shapes[j] == g.shapes[a]]
            if g.shapes[a] == S.ND:
                alts += [x for x in O.INPUTS if g.nodes[a][0] != x]
            cands += [(i, slot, alt) for alt in alts]
    if not cands:
        return None, None
    i, slot, alt = rng.choice(cands)
    nodes = list(g.nodes)
    if isinstance(alt, str):  # a leaf: append it and re-sort
        nodes.append((alt, ()))
        alt = len(nodes) - 1
    args = list(nodes[i][1])
    args[slot] = alt
    nodes[i] = (nodes[i][0], tuple(args))
    return _toposorted(nodes, g.output), i


def mutate_with_info(graph: Graph, rng: random.Random, *, kind: Optional[str] = None, op: Optional[str] = None,
                     max_nodes: int = 12, tries: int = 64,
                     rejected: Optional[Counter] = None) -> tuple[Graph, Mutation]:
    """Like ``mutate``, also returning what was done; ``rejected`` (a Counter) counts the mutants
    redrawn because they were degenerate ("degenerate"), simplified to a bare input ("trivial") or
    lost the chosen op to simplification ("simplified")."""
    rejected = Counter() if rejected is None else rejected
    if kind is not None and kind not in KINDS:
        raise GraphError(f"unknown mutation kind {kind!r}; expected one of {', '.join(KINDS)}")
    if op is not None and op not in MUTATION_OPS:
        raise GraphError(f"op {op!r} cannot be introduced by a mutation; expected one of {', '.join(MUTATION_OPS)}")
    for _ in range(tries):
        k = kind or rng.choice(KINDS if op is None else ("insert", "replace"))
        if k == "insert":
            built, where = _insert(graph, rng, op, max_nodes)
        elif k == "replace":
            built, where = _replace(graph, rng, op)
        elif k == "delete":
            built, where = _delete(graph, rng)
        else:
            built, where = _rewire(graph, rng)
        if built is None:
            continue
        child = _rebuild(graph, *built, max_nodes=max_nodes, op=op if k in ("insert", "replace") else None,
                         rejected=rejected)
        if child is not None:
            return child, Mutation(k, op if k in ("insert", "replace") else None, where)
    raise GraphError(f"no valid {kind or 'any'} mutation{'' if op is None else ' with op ' + op} of "
                     f"{graph.to_expr()} within {max_nodes} nodes after {tries} tries")


def mutate(graph: Graph, rng: random.Random, *, kind: Optional[str] = None, op: Optional[str] = None,
           max_nodes: int = 12) -> Graph:
    """A valid mutant of ``graph`` differing from it.

    Args:
        kind: one of "insert", "replace", "delete", "rewire" (random when None).
        op: the op to introduce (insert/replace only); random when None.
        max_nodes: the mutant's op-node limit.
    Raises GraphError when no such mutation exists (e.g. deleting from a graph with nothing deletable).
    """
    return mutate_with_info(graph, rng, kind=kind, op=op, max_nodes=max_nodes)[0]
