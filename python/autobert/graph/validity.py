"""Which graphs may be evaluated: a *degenerate* graph never reaches a search's evaluation.

A graph is degenerate (DESIGN.md §2) when its output

- is constant in Q, K, V (found structurally, e.g. ``matmul(sub(x, x), V)``, or on the probe: the
  same output for another draw of Q, K, V and zero gradients),
- is non-finite on ordinary inputs (float64 or float32: outputs and gradients on the probe draws),
- or when it reads an input that cannot influence the output (the output and its gradient do not
  change with that input, on all but a negligible fraction ``MIN_INFLUENCE`` of the entries). Such an input is *dead*: ``live_inputs`` leaves it out, so a model built
  from the graph gets no projection for it.

The exact identities are already simplified away by the canonical form (``autobert.graph.simplify``);
what is left for the probe are the numeric ones (``div(K, K)`` is 1 wherever ``|K| >= 1e-6``).
"""
from __future__ import annotations

import dataclasses
import functools
from typing import Optional

import torch

from autobert.graph import ops as O
from autobert.graph.errors import GraphError
from autobert.graph.expr import to_expr
from autobert.graph.graph import Graph
from autobert.graph.probe import probe
from autobert.graph.simplify import constant_kind

RTOL = 1e-9  # "unchanged": differences below this fraction of the values' scale are float64 rounding
# An input (or all three) that moves less than this fraction of the output entries and of its own
# gradient entries counts as dead (constant): ``min(exp(relu(..V..)), Q)`` lets V through on a rare
# entry of one draw and on none of the next. Genuine mixes move far more (max(Q, V): half).
MIN_INFLUENCE = 0.05


@dataclasses.dataclass(frozen=True)
class Validity:
    """``reason`` says why the graph is degenerate (None: valid); ``dead_inputs`` are read but never matter."""

    reason: Optional[str]
    dead_inputs: frozenset[str] = frozenset()

    @property
    def ok(self) -> bool:
        return self.reason is None


def _changed(a: torch.Tensor, b: torch.Tensor) -> float:
    """Fraction of entries where ``a`` and ``b`` differ by more than rounding."""
    scale = max(float(a.abs().max()), float(b.abs().max()))
    return float(((a - b).abs() > RTOL * scale).double().mean())


def _structural_constant(graph: Graph) -> Optional[str]:
    """Why the output is constant by construction (a zero or constant reaching it), or None."""
    kinds: list[Optional[str]] = []
    for op, args in graph.nodes:
        kinds.append(constant_kind(op, args, kinds))
    kind = kinds[graph.output]
    if kind is None:
        return None
    source = next(i for i, k in enumerate(kinds) if k is not None)  # the first constant, in argument order
    what = to_expr(graph, node=source)
    value = "identically 0" if kind == "zero" else "constant"
    return f"constant output: it is {value} ({what} does not depend on Q, K, V)"


def _numeric(graph: Graph) -> Validity:
    r = probe(graph)
    if not all(bool(torch.isfinite(t).all()) for t in r.out.values()):
        return Validity("non-finite output on ordinary inputs (float64 probe)")
    if not all(bool(torch.isfinite(g).all()) for g in r.grad.values()):
        return Validity("non-finite gradient on ordinary inputs (float64 probe)")
    if not r.finite32:
        return Validity("non-finite output or gradient in float32 on ordinary inputs (overflow)")
    # A gradient entry is zero when it is rounding noise next to the larger of the other gradients and
    # the output itself (inputs are O(1)): div(x, x) has gradients of 1e-17, not exactly 0.
    grad_scale = max([float(g.abs().max()) for g in r.grad.values()] + [float(r.out["base"].abs().max())])
    moves = {x: float((r.grad[x].abs() > RTOL * grad_scale).double().mean()) for x in O.INPUTS}
    flat = {x: moves[x] < MIN_INFLUENCE for x in O.INPUTS}
    if _changed(r.out["base"], r.out["other"]) < MIN_INFLUENCE and all(flat.values()):
        return Validity("constant output: the same output for different Q, K, V (probe)", graph.inputs_used)
    dead = frozenset(x for x in graph.inputs_used
                     if flat[x] and _changed(r.out["base"], r.out[x]) < MIN_INFLUENCE)
    if dead:
        names = ", ".join(sorted(dead))
        return Validity(f"dead input: {names} cannot influence the output (probe)", dead)
    return Validity(None)


@functools.lru_cache(maxsize=16384)
def _validity(graph_json: str) -> Validity:
    graph = Graph.from_json(graph_json)
    reason = _structural_constant(graph)
    return Validity(reason, frozenset(graph.inputs_used)) if reason else _numeric(graph)


def validity(graph: Graph) -> Validity:
    """Whether ``graph`` may be evaluated, and why not (cached by canonical JSON)."""
    if not isinstance(graph, Graph):
        raise TypeError(f"graph must be an autobert.graph.Graph, got {type(graph).__name__}")
    return _validity(graph.to_json())


def check_valid(graph: Graph, where: str = "graph") -> None:
    """GraphError naming ``where``, the expression and the reason when ``graph`` is degenerate."""
    v = validity(graph)
    if not v.ok:
        raise GraphError(f"{where} {graph.to_expr()} is degenerate: {v.reason}")


def live_inputs(graph: Graph) -> frozenset[str]:
    """The inputs that influence the output: what a model projects for this graph."""
    return graph.inputs_used - validity(graph).dead_inputs
