"""Recognising streaming attention: out = post(norm(f(Q' K'^T)) V') (DESIGN.md §3).

Q', K', V' are "pre values": (N,d) nodes computed from Q, K, V by elementwise ops only. The
score S = matmul(Q', transpose(K')) (or cosine); f is a region of elementwise nodes whose only
input is S; norm is a softmax over keys or nothing; att = matmul(P, V'); post is an elementwise
region over att and pre values. The (N,N) nodes (S, f's nodes, P) must have no other users, since
the streaming kernel never materialises them.
"""
from __future__ import annotations

import dataclasses
from typing import Optional

from autobert.fusion.regions import _consumers
from autobert.graph import Graph
from autobert.graph import ops as O

NN, ND = ("N", "N"), ("N", "d")


@dataclasses.dataclass
class StreamingMatch:
    q_node: int
    k_node: int
    v_node: int
    cosine: bool
    score_node: int  # S
    score_members: list[int]  # f's nodes in topological order
    score_output: int  # f(S) (== score_node when f is the identity)
    norm: str  # "softmax" | "none"
    att_node: int
    pre_members: list[int]  # elementwise nodes computing Q', K', V' and post's pre values
    pre_members_inputs: list[int]  # the leaves they read
    pre_outputs: list[int]  # the pre values the plan needs as tensors (q, k, v nodes + post inputs)
    post_members: list[int]
    post_inputs: list[int]  # att + pre values read by post


def _pre_values(graph: Graph) -> set[int]:
    """Nodes computable from Q, K, V by elementwise ops alone."""
    pre: set[int] = set()
    for i, (op, args) in enumerate(graph.nodes):
        if op in O.INPUTS or (O.OPS[op].elementwise and all(a in pre for a in args)):
            pre.add(i)
    return pre


def _ancestors_within(graph: Graph, start: int, allowed: set[int]) -> list[int]:
    seen, stack = set(), [start]
    while stack:
        i = stack.pop()
        if i in seen or i not in allowed:
            continue
        seen.add(i)
        stack.extend(graph.nodes[i][1])
    return sorted(seen)


def match_streaming(graph: Graph) -> Optional[StreamingMatch]:
    users = _consumers(graph)
    pre = _pre_values(graph)
    for att, (op, args) in enumerate(graph.nodes):
        if op != "matmul" or graph.shapes[args[0]] != NN or args[1] not in pre:
            continue
        m = _match_at(graph, users, pre, att)
        if m is not None:
            return m
    return None


def _match_at(graph: Graph, users, pre: set[int], att: int) -> Optional[StreamingMatch]:
    p_node, v_node = graph.nodes[att][1]
    if users[p_node] != [att]:
        return None
    norm, t_node = "none", p_node
    if graph.nodes[p_node][0] == "softmax":
        norm, t_node = "softmax", graph.nodes[p_node][1][0]
    # Walk f back from t_node: elementwise (N,N) nodes down to a single matmul/cosine S.
    score_members, stack, s_nodes = set(), [t_node], set()
    while stack:
        i = stack.pop()
        op, args = graph.nodes[i]
        if op in ("matmul", "cosine"):
            s_nodes.add(i)
        elif op in O.OPS and O.OPS[op].elementwise and graph.shapes[i] == NN:
            if i not in score_members:
                score_members.add(i)
                stack.extend(args)
        else:
            return None
    if len(s_nodes) != 1:
        return None
    (s_node,) = s_nodes
    s_op, (q_node, kt_node) = graph.nodes[s_node]
    if graph.nodes[kt_node][0] != "transpose" or q_node not in pre:
        return None
    k_node = graph.nodes[kt_node][1][0]
    if k_node not in pre:
        return None
    # The (N,N) intermediates must not be read by anything outside the streaming core.
    core_nn = score_members | {s_node, p_node}
    inner = core_nn | {att}
    for i in core_nn | {kt_node}:
        if any(u not in inner for u in users[i]):
            return None
    # Post: every node after att must be elementwise over att and pre values.
    post_members, post_inputs = [], [att]
    for i in range(att + 1, len(graph.nodes)):
        op, args = graph.nodes[i]
        if i in pre or i in inner:
            continue
        if not (op in O.OPS and O.OPS[op].elementwise):
            return None
        for a in args:
            if a not in post_members and a not in post_inputs:
                if a != att and a not in pre:
                    return None
                post_inputs.append(a)
        post_members.append(i)
    covered = set(post_members) | inner | {kt_node} | pre
    if graph.output not in covered or any(i not in covered for i in range(len(graph.nodes))):
        return None
    if not post_members and graph.output != att:
        return None
    needed = list(dict.fromkeys([q_node, k_node, v_node] + [a for a in post_inputs if a != att]))
    pre_members = sorted({n for x in needed for n in _ancestors_within(graph, x, pre)
                          if graph.nodes[n][0] not in O.INPUTS})
    leaves = sorted({a for n in pre_members for a in graph.nodes[n][1] if graph.nodes[a][0] in O.INPUTS})
    return StreamingMatch(q_node, k_node, v_node, s_op == "cosine", s_node,
                          sorted(score_members), t_node, norm, att, pre_members, leaves, needed,
                          post_members, post_inputs)

