"""``Graph``: an immutable attention graph (a DAG of primitive ops over Q, K, V) in canonical form.

Canonical form: exact algebraic identities simplified (``autobert.graph.simplify``: ``max(x, x)``
is x, ``add(V, sub(K, K))`` is V, ...), only nodes that reach the output (dead nodes removed),
operands of commutative ops ordered, shared sub-expressions merged (CSE), nodes numbered in a
deterministic post-order. Two graphs that compute the same tree therefore have equal
``to_json()`` and ``fingerprint()``, which the search uses as dedup key and the kernels as
cache key. Every invalid input raises ``GraphError`` naming the node and what was expected.
"""
from __future__ import annotations

import hashlib
import json
from typing import Iterable, Optional, Sequence

from autobert.graph import ops as O
from autobert.graph import shapes as S
from autobert.graph.errors import GraphError
from autobert.graph.simplify import DagBuilder

SCHEMA_VERSION = 1
MAX_NODES = 128  # op nodes (Q, K, V not counted) in the canonical graph
MAX_RAW_NODES = 4096  # nodes accepted in a raw document before canonicalisation
MAX_JSON_CHARS = 1_000_000
MAX_EXPR_CHARS = 1_000_000

Node = tuple[str, tuple[int, ...]]  # (op name or "Q"/"K"/"V", argument node indices)


def _node_label(i: int, op: str, labels: Optional[Sequence[str]]) -> str:
    return labels[i] if labels is not None else f"node {i} ({op})"


def _check_structure(nodes: Sequence[Node], output: int, labels: Optional[Sequence[str]]) -> None:
    """Ops known, arities right, arguments defined before use (so no cycles), output in range."""
    if not nodes:
        raise GraphError("graph has no nodes (expected at least an input and an output)")
    if len(nodes) > MAX_RAW_NODES:
        raise GraphError(f"graph has {len(nodes)} nodes; at most {MAX_RAW_NODES} are accepted")
    for i, (op, args) in enumerate(nodes):
        where = _node_label(i, op, labels)
        if op in O.INPUTS:
            if args:
                raise GraphError(f"{where}: input {op} takes no arguments, got {len(args)}")
            continue
        if op not in O.OPS:
            raise GraphError(f"{where}: unknown op {op!r}; known ops: {', '.join(sorted(O.OPS))}, inputs Q, K, V")
        spec = O.OPS[op]
        if len(args) != spec.arity:
            raise GraphError(f"{where}: {op} takes {spec.arity} argument(s), got {len(args)}")
        for j, a in enumerate(args):
            if not isinstance(a, int) or isinstance(a, bool):
                raise GraphError(f"{where}: argument {j} must be a node index (int), got {a!r}")
            if not 0 <= a < i:
                raise GraphError(f"{where}: argument {j} refers to node {a}, which is not defined before it "
                                 "(arguments must refer to earlier nodes; forward references and cycles are invalid)")
    if not isinstance(output, int) or isinstance(output, bool) or not 0 <= output < len(nodes):
        raise GraphError(f"output {output!r} is not a node index in 0..{len(nodes) - 1}")


def _infer_shapes(nodes: Sequence[Node], labels: Optional[Sequence[str]]) -> list[S.Shape]:
    shp: list[S.Shape] = []
    for i, (op, args) in enumerate(nodes):
        if op in O.INPUTS:
            shp.append(S.INPUT_SHAPE)
            continue
        try:
            shp.append(O.OPS[op].shape_rule(*(shp[a] for a in args)))
        except ValueError as e:
            raise GraphError(f"{_node_label(i, op, labels)}: {e}") from None
    return shp


def _canonicalise(nodes: Sequence[Node], output: int) -> tuple[tuple[Node, ...], int]:
    """Exact simplification, CSE, commutative ordering, dead-node removal and deterministic numbering."""
    dag = DagBuilder()
    rep: list[int] = []
    for op, args in nodes:  # arguments precede their users: one forward sweep
        rep.append(dag.add(op, tuple(rep[a] for a in args)))
    return dag.export(rep[output])


class Graph:
    """An attention graph in canonical form. Build with ``parse``, ``Graph.from_json`` or ``Graph(nodes, output)``.

    Args:
        nodes: sequence of ``(op, args)``; ``op`` is an op name or ``"Q"``/``"K"``/``"V"``; ``args`` are
            indices of earlier nodes.
        output: index of the output node, which must have shape (N,d).
    """

    __slots__ = ("_nodes", "_output", "_shapes", "_json", "_fp")

    def __init__(self, nodes: Iterable[Node], output: int, *, _labels: Optional[Sequence[str]] = None):
        raw = [(op, tuple(args)) for op, args in nodes]
        _check_structure(raw, output, _labels)
        raw_shapes = _infer_shapes(raw, _labels)
        if raw_shapes[output] != S.OUTPUT_SHAPE:
            raise GraphError(f"output {_node_label(output, raw[output][0], _labels)} has shape "
                             f"{S.fmt(raw_shapes[output])}; the output must be {S.fmt(S.OUTPUT_SHAPE)}")
        self._nodes, self._output = _canonicalise(raw, output)
        n_ops = sum(op not in O.INPUTS for op, _ in self._nodes)
        if n_ops > MAX_NODES:
            raise GraphError(f"graph has {n_ops} op nodes after canonicalisation; at most {MAX_NODES} are allowed")
        self._shapes = tuple(_infer_shapes(self._nodes, None))
        self._json: Optional[str] = None
        self._fp: Optional[str] = None

    # ---- structure ----
    @property
    def nodes(self) -> tuple[Node, ...]:
        return self._nodes

    @property
    def output(self) -> int:
        return self._output

    @property
    def shapes(self) -> tuple[S.Shape, ...]:
        """Symbolic shape of each node, e.g. ("N", "N")."""
        return self._shapes

    @property
    def num_ops(self) -> int:
        """Number of op nodes (inputs not counted)."""
        return sum(op not in O.INPUTS for op, _ in self._nodes)

    @property
    def inputs_used(self) -> frozenset[str]:
        """Which of Q, K, V the graph reads (a graph that never reads V needs no W_V)."""
        return frozenset(op for op, _ in self._nodes if op in O.INPUTS)

    def op_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for op, _ in self._nodes:
            if op not in O.INPUTS:
                counts[op] = counts.get(op, 0) + 1
        return counts

    # ---- serialisation ----
    def to_json(self) -> str:
        """Canonical, versioned JSON (compact, sorted keys)."""
        if self._json is None:
            doc = {"schema_version": SCHEMA_VERSION,
                   "nodes": [{"op": op, "args": list(args)} for op, args in self._nodes],
                   "output": self._output}
            self._json = json.dumps(doc, sort_keys=True, separators=(",", ":"))
        return self._json

    def to_dict(self) -> dict:
        return json.loads(self.to_json())

    @classmethod
    def from_json(cls, text: "str | dict") -> "Graph":
        """Parse a JSON document (string or already-decoded dict); GraphError on anything invalid."""
        from autobert.graph.serialize import graph_from_json
        return graph_from_json(text)

    def to_expr(self) -> str:
        """Expression syntax, e.g. ``matmul(softmax(scale(matmul(Q, transpose(K)))), V)``."""
        from autobert.graph.expr import to_expr
        return to_expr(self)

    def fingerprint(self) -> str:
        """16 hex digits of sha256 over the canonical JSON: dedup and kernel-cache key."""
        if self._fp is None:
            self._fp = hashlib.sha256(self.to_json().encode()).hexdigest()[:16]
        return self._fp

    def functional_fingerprint(self) -> str:
        """16 hex digits of the outputs on fixed probe inputs: equal for graphs computing the same
        function (``autobert.graph.functional``), the search's dedup key."""
        from autobert.graph.functional import functional_fingerprint
        return functional_fingerprint(self)

    # ---- value semantics ----
    def __eq__(self, other) -> bool:
        return isinstance(other, Graph) and self.to_json() == other.to_json()

    def __hash__(self) -> int:
        return hash(self.to_json())

    def __repr__(self) -> str:
        return f"Graph({self.to_expr()!r})"

    def __reduce__(self):
        return (Graph.from_json, (self.to_json(),))

    def __setattr__(self, name, value):
        if name in Graph.__slots__ and not hasattr(self, "_fp"):
            object.__setattr__(self, name, value)
        elif name in ("_json", "_fp"):
            object.__setattr__(self, name, value)
        else:
            raise AttributeError("Graph is immutable")
