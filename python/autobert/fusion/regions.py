"""Elementwise regions: maximal groups of elementwise nodes that can run as one fused pass.

Nodes are visited in topological order. An elementwise node joins the still-open regions of
its elementwise operands (merging them); a region closes when a non-elementwise node (matmul,
softmax, transpose) reads one of its values, because that value must then exist in memory.
Later elementwise users of a closed region start a new region and read the value as an input.
This keeps every region's inputs computed before it, so regions never form a cycle.
"""
from __future__ import annotations

import dataclasses

from autobert.graph import Graph
from autobert.graph import ops as O


@dataclasses.dataclass
class Regions:
    region_of: dict[int, int]  # elementwise node -> region index
    members: list[list[int]]  # per region, nodes in topological order
    inputs: list[list[int]]  # per region, external input nodes (first-use order)
    outputs: list[list[int]]  # per region, members needed outside it (or the graph output)
    consumers: dict[int, list[int]]  # node -> nodes reading it


def _consumers(graph: Graph) -> dict[int, list[int]]:
    users: dict[int, list[int]] = {i: [] for i in range(len(graph.nodes))}
    for i, (_, args) in enumerate(graph.nodes):
        for a in dict.fromkeys(args):
            users[a].append(i)
    return users


def find_regions(graph: Graph) -> Regions:
    parent: dict[int, int] = {}  # union-find over provisional region ids
    closed: set[int] = set()

    def root(r: int) -> int:
        while parent[r] != r:
            parent[r] = parent[parent[r]]
            r = parent[r]
        return r

    prov: dict[int, int] = {}
    for i, (op, args) in enumerate(graph.nodes):
        spec = O.OPS.get(op)
        if spec is None:
            continue
        arg_roots = {root(prov[a]) for a in args if a in prov}
        if not spec.elementwise:
            closed.update(arg_roots)
            continue
        open_roots = sorted(r for r in arg_roots if r not in closed)
        if not open_roots:
            parent[i] = i
            prov[i] = i
            continue
        keep = open_roots[0]
        for r in open_roots[1:]:
            parent[r] = keep
        prov[i] = keep

    users = _consumers(graph)
    index: dict[int, int] = {}
    region_of: dict[int, int] = {}
    members: list[list[int]] = []
    for i in sorted(prov):
        r = root(prov[i])
        if r not in index:
            index[r] = len(members)
            members.append([])
        region_of[i] = index[r]
        members[index[r]].append(i)
    inputs, outputs = [], []
    for r, mem in enumerate(members):
        mset = set(mem)
        ins = []
        for i in mem:
            for a in graph.nodes[i][1]:
                if a not in mset and a not in ins:
                    ins.append(a)
        inputs.append(ins)
        outputs.append([i for i in mem if i == graph.output or any(u not in mset for u in users[i])])
    return Regions(region_of, members, inputs, outputs, users)
