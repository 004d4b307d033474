"""The planner: Graph -> Plan (autobert_ext.plan), classifying streaming attention vs general graphs.

Streaming attention (DESIGN.md §3): out = post(norm(f(Q' K'^T)) V') where Q', K', V' are
elementwise functions of Q, K, V, f is an elementwise score program and norm is a softmax over
keys or nothing. It becomes: one elementwise pre step, [rownorm for cosine], one streaming step
(no (N, N) tensor) and one elementwise post step.

Every other graph is split into fused segments: maximal elementwise regions become one
elementwise step each, a softmax absorbs the region that feeds it as its pre program, matmuls
go to BLAS (a transpose is a free view). Planning compiles nothing and takes well under 5 ms.
"""
from __future__ import annotations

import functools
from typing import Optional

from autobert.fusion.lowering import lower_backward, lower_forward
from autobert.fusion.regions import Regions, find_regions
from autobert.fusion.streaming import match_streaming
from autobert.graph import Graph
from autobert.graph import ops as O
from autobert_ext.plan import Plan
from autobert_ext.plan_steps import Elementwise, Matmul, Rownorm, Softmax, Step, Streaming, Transpose

_SHAPE = {("N", "d"): "Nd", ("d", "N"): "dN", ("N", "N"): "NN", ("d", "d"): "dd"}


def plan(graph: Graph, d: int) -> Plan:
    """The fused plan of ``graph`` for head dimension ``d`` (cached per fingerprint and d)."""
    if not isinstance(graph, Graph):
        raise TypeError(f"plan() needs an autobert.graph.Graph, got {type(graph).__name__}")
    if d < 1:
        raise ValueError(f"head dimension d must be >= 1, got {d}")
    return _plan_cached(graph.to_json(), d)


@functools.lru_cache(maxsize=4096)
def _plan_cached(graph_json: str, d: int) -> Plan:
    graph = Graph.from_json(graph_json)
    return _plan_streaming(graph, d) or _plan_general(graph, d)


class _Values:
    """Value numbering: graph node -> plan value id, with symbolic shapes."""

    def __init__(self, graph: Graph):
        self.graph, self.shapes, self.of = graph, ["Nd", "Nd", "Nd"], {}
        for i, (op, _) in enumerate(graph.nodes):
            if op in O.INPUTS:
                self.of[i] = O.INPUTS.index(op)

    def new(self, node: Optional[int], shape: Optional[str] = None) -> int:
        self.shapes.append(shape or _SHAPE[self.graph.shapes[node]])
        vid = len(self.shapes) - 1
        if node is not None:
            self.of[node] = vid
        return vid


def _elementwise_step(graph, vals, members, inputs, outputs, d) -> Step:
    outs = tuple(vals.new(o) for o in outputs)
    return Elementwise(tuple(vals.of[i] for i in inputs), outs,
                program=lower_forward(graph, members, inputs, outputs, d),
                program_bwd=lower_backward(graph, members, inputs, outputs, d))


def _plan_streaming(graph: Graph, d: int) -> Optional[Plan]:
    m = match_streaming(graph)
    if m is None:
        return None
    vals, steps = _Values(graph), []
    pre_nodes = [n for n in m.pre_outputs if graph.nodes[n][0] not in O.INPUTS]
    if pre_nodes:
        leaves = [i for i in m.pre_members_inputs]
        steps.append(_elementwise_step(graph, vals, m.pre_members, leaves, pre_nodes, d))
    q_in, k_in = vals.of[m.q_node], vals.of[m.k_node]
    if m.cosine:
        q_n, k_n = vals.new(None, "Nd"), vals.new(None, "Nd")
        steps += [Rownorm((q_in,), (q_n,)), Rownorm((k_in,), (k_n,))]
        q_in, k_in = q_n, k_n
    s_node = m.score_node
    score = lower_forward(graph, m.score_members, [s_node], [m.score_output], d)
    score_bwd = lower_backward(graph, m.score_members, [s_node], [m.score_output], d)
    att = vals.new(m.att_node)
    steps.append(Streaming((q_in, k_in, vals.of[m.v_node]), (att,), score=score, score_bwd=score_bwd,
                           norm=m.norm, masked=True))
    if m.post_members:
        steps.append(_elementwise_step(graph, vals, m.post_members, m.post_inputs, [graph.output], d))
    return Plan("streaming", d, tuple(steps), tuple(vals.shapes), vals.of[graph.output], graph.fingerprint())


def _plan_general(graph: Graph, d: int) -> Plan:
    regions: Regions = find_regions(graph)
    vals, steps, emitted = _Values(graph), [], set()

    def emit_region(r: int) -> None:
        if r in emitted:
            return
        emitted.add(r)
        steps.append(_elementwise_step(graph, vals, regions.members[r], regions.inputs[r], regions.outputs[r], d))

    for node, (op, args) in enumerate(graph.nodes):
        spec = O.OPS.get(op)
        if spec is None or spec.elementwise:
            continue
        arg_regions = [regions.region_of.get(a) for a in args]
        fused_pre = (op == "softmax" and arg_regions[0] is not None and arg_regions[0] not in emitted
                     and regions.outputs[arg_regions[0]] == [args[0]] and regions.consumers[args[0]] == [node])
        for r in arg_regions:
            if r is not None and not (fused_pre and r == arg_regions[0]):
                emit_region(r)
        masked = graph.shapes[args[0]][1] == "N"
        if op == "softmax":
            if fused_pre:
                r = arg_regions[0]
                emitted.add(r)
                ins, members = regions.inputs[r], regions.members[r]
                pre = lower_forward(graph, members, ins, [args[0]], d)
                pre_bwd = lower_backward(graph, members, ins, [args[0]], d)
            else:
                ins = [args[0]]
                pre, pre_bwd = lower_forward(graph, [], ins, ins, d), lower_backward(graph, [], ins, ins, d)
            ident, ident_bwd = lower_forward(graph, [], [node], [node], d), lower_backward(graph, [], [node], [node], d)
            steps.append(Softmax(tuple(vals.of[i] for i in ins), (vals.new(node),), program=pre,
                                 program_bwd=pre_bwd, post=ident, post_bwd=ident_bwd, masked=masked))
        elif op == "transpose":
            steps.append(Transpose((vals.of[args[0]],), (vals.new(node),)))
        else:  # matmul / cosine
            steps.append(Matmul((vals.of[args[0]], vals.of[args[1]]), (vals.new(node),), masked=masked,
                                cosine=op == "cosine"))
    for r in range(len(regions.members)):
        emit_region(r)
    return Plan("general", d, tuple(steps), tuple(vals.shapes), vals.of[graph.output], graph.fingerprint())
