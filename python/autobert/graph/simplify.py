"""Exact algebraic simplification, part of every graph's canonical form.

``DagBuilder`` builds a DAG node by node (arguments before users): shared sub-expressions are
merged (CSE), commutative operands ordered, and each new node is first rewritten by ``RULES``.
A rule applies only where the rewritten graph computes the same values and gradients bit for bit
on finite inputs, so simplification never changes what a graph computes; it changes what the
graph *reads* (``add(V, sub(K, K))`` is ``V``: K is no longer an input) and makes equal functions
equal values. The identities covered:

- idempotent / involutive: ``max(x, x)``, ``min(x, x)`` -> x; ``transpose(transpose(x))``,
  ``neg(neg(x))`` -> x; ``abs(abs(x))``, ``relu(relu(x))``, ``abs(relu(x))``, ``relu(abs(x))``,
  ``abs(square(x))`` -> the inner node; ``abs(neg(x))`` -> ``abs(x)``; ``square(neg(x))``,
  ``square(abs(x))`` -> ``square(x)``;
- signs: ``add(x, neg(y))`` -> ``sub(x, y)``; ``sub(x, neg(y))`` -> ``add(x, y)``;
- zeros: ``sub(x, x)`` is 0, and so is every op of a zero that maps 0 to 0 (``neg``, ``abs``,
  ``square``, ``scale``, ``softsign``, ``sqrt``, ``log``, ``tanh``, ``relu``, ``gelu``,
  ``transpose``, ``mul`` / ``matmul`` / ``cosine`` with a zero operand, ``div`` of a zero);
  ``add(x, 0)``, ``sub(x, 0)`` -> x, ``sub(0, x)`` -> ``neg(x)``, ``mul(x, 0)`` -> the zero.

A zero stays in the graph only where nothing absorbs it; a graph whose *output* is constant is
then degenerate (``autobert.graph.validity``), which ``constant_kind`` lets it say structurally.
"""
from __future__ import annotations

import hashlib
from typing import Callable, Optional, Union

from autobert.graph import ops as O

Node = tuple[str, tuple[int, ...]]
Rewrite = Union[None, int, Node]  # no change | an existing node | a node to build instead

#: unary ops with f(0) == 0 exactly (sqrt and log are sign-odd: sign(0) = 0).
ZERO_PRESERVING = frozenset({"neg", "abs", "square", "scale", "softsign", "sqrt", "log", "tanh", "relu", "gelu",
                             "transpose"})
_INVOLUTIONS = frozenset({"transpose", "neg"})
# outer(inner(x)) -> inner(x): the outer op changes nothing on the inner op's values
_ABSORBED = {("abs", "abs"), ("relu", "relu"), ("abs", "relu"), ("relu", "abs"), ("abs", "square")}
_SIGN_BLIND = {"abs": "abs", "square": "square"}  # f(-x) == f(x), and square(|x|) == square(x)


def constant_kind(op: str, args: tuple[int, ...], kinds: list[Optional[str]]) -> Optional[str]:
    """What is known of node ``op(args)`` without inputs: "zero", "constant" (some other fixed value,
    e.g. ``exp`` of a zero, or ``div(x, x)``, which is 1 wherever ``|x| >= 1e-6``) or None."""
    if op in O.INPUTS:
        return None
    arg_kinds = [kinds[a] for a in args]
    if op == "sub" and args[0] == args[1]:
        return "zero"
    if op == "div" and args[0] == args[1]:
        return "constant"
    if op in ZERO_PRESERVING and arg_kinds[0] == "zero":
        return "zero"
    if op in ("mul", "matmul", "cosine") and "zero" in arg_kinds:
        return "zero"
    if op == "div" and arg_kinds[0] == "zero":
        return "zero"
    if op in ("add", "sub", "max", "min") and arg_kinds == ["zero", "zero"]:
        return "zero"
    if all(k is not None for k in arg_kinds):
        return "constant"
    return None


def _rewrite(dag: "DagBuilder", op: str, args: tuple[int, ...]) -> Rewrite:
    """One rule application to ``op(args)`` (args already simplified), or None."""
    nodes, zero = dag.nodes, dag.is_zero
    if len(args) == 1:
        (a,) = args
        inner_op, inner_args = nodes[a]
        if op in _INVOLUTIONS and inner_op == op:
            return inner_args[0]
        if (op, inner_op) in _ABSORBED:
            return a
        if op in _SIGN_BLIND and inner_op in ("neg", "abs"):
            return (_SIGN_BLIND[op], inner_args)
        if op in ZERO_PRESERVING and op != "transpose" and zero(a):
            return a
        return None
    if op not in ("add", "sub", "mul", "max", "min"):
        return None
    a, b = args
    if op in ("max", "min"):
        return a if a == b else None
    if op == "mul":
        return a if zero(a) else b if zero(b) else None
    if zero(b):
        return a
    if zero(a):
        return b if op == "add" else ("neg", (b,))
    if nodes[b][0] == "neg":
        return ("sub" if op == "add" else "add", (a, nodes[b][1][0]))
    if op == "add" and nodes[a][0] == "neg":
        return ("sub", (b, nodes[a][1][0]))
    return None


RULES: Callable[["DagBuilder", str, tuple[int, ...]], Rewrite] = _rewrite


class DagBuilder:
    """Builds a simplified, CSE'd DAG; ``add`` returns the index of the node that computes ``op(args)``."""

    _MAX_REWRITES = 64  # each rule shrinks the graph, so a chain of rewrites is short; this only guards

    def __init__(self):
        self.nodes: list[Node] = []
        self.keys: list[str] = []
        self.kinds: list[Optional[str]] = []
        self._index: dict[str, int] = {}

    def is_zero(self, i: int) -> bool:
        return self.kinds[i] == "zero"

    def add(self, op: str, args: tuple[int, ...]) -> int:
        for _ in range(self._MAX_REWRITES):
            args = self._ordered(op, args)  # before the rules: they must not depend on operand order
            r = None if op in O.INPUTS else RULES(self, op, args)
            if r is None:
                break
            if isinstance(r, int):
                return r
            op, args = r
        return self._intern(op, args)

    def _ordered(self, op: str, args: tuple[int, ...]) -> tuple[int, ...]:
        if op in O.OPS and O.OPS[op].commutative:
            return tuple(sorted(args, key=lambda a: self.keys[a]))
        return args

    def _intern(self, op: str, args: tuple[int, ...]) -> int:
        body = op if op in O.INPUTS else f"{op}({','.join(self.keys[a] for a in args)})"
        key = hashlib.sha1(body.encode()).hexdigest()
        if key not in self._index:
            self._index[key] = len(self.nodes)
            self.nodes.append((op, args))
            self.keys.append(key)
            self.kinds.append(constant_kind(op, args, self.kinds))
        return self._index[key]

    def export(self, output: int) -> tuple[tuple[Node, ...], int]:
        """The nodes reaching ``output`` in canonical numbering: post-order DFS, operands in order."""
        new_index: dict[int, int] = {}
        out_nodes: list[Node] = []
        stack: list[tuple[int, bool]] = [(output, False)]
        while stack:
            i, expanded = stack.pop()
            if i in new_index:
                continue
            if not expanded:
                stack.append((i, True))
                stack.extend((a, False) for a in reversed(self.nodes[i][1]))
                continue
            new_index[i] = len(out_nodes)
            out_nodes.append((self.nodes[i][0], tuple(new_index[a] for a in self.nodes[i][1])))
        return tuple(out_nodes), new_index[output]
