"""Lowering of elementwise regions of a graph to op programs, and their derivative programs.

A region is a set of elementwise graph nodes evaluated in one pass. Its forward program reads
the region's external inputs and writes the requested outputs; its backward program reads
(inputs.., grads of outputs..) and writes the gradient of every input, built by reverse-mode
accumulation over the ops' derivative rules (``OpSpec.derive``).
"""
from __future__ import annotations

from typing import Sequence

from autobert.fusion.builder import ProgramBuilder
from autobert.graph import Graph
from autobert.graph import ops as O
from autobert_ext.program import Program


def _forward(b: ProgramBuilder, graph: Graph, members: Sequence[int], inputs: Sequence[int], d: int) -> dict[int, int]:
    """Emit the members' forward code; returns node -> register."""
    reg = {node: i for i, node in enumerate(inputs)}
    for node in members:
        op, args = graph.nodes[node]
        reg[node] = O.OPS[op].lower(b, [reg[a] for a in args], d)
    return reg


def lower_forward(graph: Graph, members: Sequence[int], inputs: Sequence[int], outputs: Sequence[int],
                  d: int) -> Program:
    """Program computing ``outputs`` (graph nodes) from ``inputs`` (graph nodes) through ``members``
    (elementwise nodes in topological order). An output may also be an input (a pass-through)."""
    b = ProgramBuilder(len(inputs))
    reg = _forward(b, graph, members, inputs, d)
    return b.build([reg[o] for o in outputs])


def lower_backward(graph: Graph, members: Sequence[int], inputs: Sequence[int], outputs: Sequence[int],
                   d: int) -> Program:
    """Program (inputs.., g_outputs..) -> (d_inputs..). Forward values are recomputed inside the
    program (cheap elementwise work) so the backward needs only the region's inputs."""
    b = ProgramBuilder(len(inputs) + len(outputs))
    reg = _forward(b, graph, members, inputs, d)
    adj: dict[int, int] = {}

    def accumulate(node: int, g: int) -> None:
        adj[node] = g if node not in adj else b.emit("add", adj[node], g)

    for k, node in enumerate(outputs):
        accumulate(node, len(inputs) + k)
    for node in reversed(members):
        if node not in adj:
            continue
        op, args = graph.nodes[node]
        grads = O.OPS[op].derive(b, [reg[a] for a in args], reg[node], adj[node], d)
        for a, g in zip(args, grads):
            accumulate(a, g)
    zero = None
    outs = []
    for node in inputs:
        if node in adj:
            outs.append(adj[node])
        else:
            zero = zero if zero is not None else b.const(0.0)
            outs.append(zero)
    return b.build(outs)
