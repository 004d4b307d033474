"""Expression syntax: nested calls over Q, K, V, e.g. ``matmul(softmax(scale(matmul(Q, transpose(K)))), V)``.

The parser and printer are iterative (no recursion), so 10,000-deep nesting gives a
GraphError about size rather than a RecursionError. Shared sub-expressions are merged by
the Graph's canonicalisation, so a tree written twice becomes one DAG.
"""
from __future__ import annotations

import re

from autobert.graph.errors import GraphError
from autobert.graph.graph import MAX_EXPR_CHARS, MAX_RAW_NODES, Graph

_TOKEN = re.compile(r"\s*(?:([A-Za-z_][A-Za-z0-9_]*)|(\()|(\))|(,)|(\S))")


def _tokens(text: str):
    """Yields (kind, value, position); kind in name ( ) , end."""
    pos = 0
    while True:
        m = _TOKEN.match(text, pos)
        if m is None:  # only whitespace left
            yield "end", "", len(text)
            return
        name, lp, rp, comma, bad = m.groups()
        start = m.start(m.lastindex)
        if bad is not None:
            raise GraphError(f"unexpected character {bad!r} at position {start}; expected an op name, "
                             "Q, K, V, '(', ')' or ','")
        kind = "name" if name else "(" if lp else ")" if rp else ","
        yield kind, m.group(m.lastindex), start
        pos = m.end()


def parse(text: str) -> Graph:
    """Parse an expression into a canonical Graph; GraphError names the position of any problem."""
    if not isinstance(text, str):
        raise GraphError(f"expression must be a string, got {type(text).__name__}")
    if len(text) > MAX_EXPR_CHARS:
        raise GraphError(f"expression is {len(text)} characters; at most {MAX_EXPR_CHARS} are accepted")
    if not text.strip():
        raise GraphError("empty expression; expected e.g. 'matmul(softmax(scale(matmul(Q, transpose(K)))), V)'")
    nodes: list[tuple[str, tuple[int, ...]]] = []
    labels: list[str] = []
    # Each frame: [op name, position, argument node indices]. A name followed by '(' opens a frame.
    stack: list[list] = []
    result: int | None = None
    toks = _tokens(text)
    kind, val, pos = next(toks)

    def add(op, args, at):
        if len(nodes) >= MAX_RAW_NODES:
            raise GraphError(f"expression has more than {MAX_RAW_NODES} nodes (reached at position {at}); "
                             f"at most {MAX_RAW_NODES} are accepted")
        nodes.append((op, tuple(args)))
        labels.append(f"{op} at position {at}")
        return len(nodes) - 1

    while True:
        if kind != "name":
            what = "end of input" if kind == "end" else repr(val)
            raise GraphError(f"expected an op name or Q, K, V at position {pos}, got {what}")
        name, name_pos = val, pos
        kind, val, pos = next(toks)
        if kind == "(":
            stack.append([name, name_pos, []])
            kind, val, pos = next(toks)
            if kind == ")":
                raise GraphError(f"{name} at position {name_pos} has no arguments")
            continue
        idx = add(name, (), name_pos)  # a leaf: Q, K, V (anything else is reported by Graph)
        while True:  # close finished calls
            if not stack:
                result = idx
                break
            stack[-1][2].append(idx)
            if kind == ",":
                kind, val, pos = next(toks)
                break
            if kind == ")":
                op, at, args = stack.pop()
                idx = add(op, args, at)
                kind, val, pos = next(toks)
                continue
            what = "end of input" if kind == "end" else repr(val)
            raise GraphError(f"expected ',' or ')' at position {pos} to continue {stack[-1][0]} "
                             f"(opened at position {stack[-1][1]}), got {what}")
        if result is not None:
            break
    if kind != "end":
        raise GraphError(f"unexpected {val!r} at position {pos} after a complete expression")
    return Graph(nodes, result, _labels=labels)


def to_expr(graph: Graph, max_chars: int = MAX_EXPR_CHARS, node: "int | None" = None) -> str:
    """Print a graph (or the sub-expression of one of its nodes) as an expression; shared
    sub-expressions are written out each time."""
    text: list[str] = []
    for op, args in graph.nodes:  # arguments precede users: build strings bottom-up
        s = op if not args else f"{op}({', '.join(text[a] for a in args)})"
        if len(s) > max_chars:
            raise GraphError(f"expression of this graph exceeds {max_chars} characters "
                             "(heavy sub-expression sharing); use to_json() instead")
        text.append(s)
    return text[graph.output if node is None else node]
