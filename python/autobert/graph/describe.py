"""A readable summary of a graph: canonical form, fingerprint, shapes, cost and eager output stats."""
from __future__ import annotations

import torch

from autobert.graph import shapes as S
from autobert.graph.eager import eager
from autobert.graph.flops import flops
from autobert.graph.graph import Graph
from autobert.graph.validity import live_inputs, validity


def describe(graph: Graph, *, n: int = 128, d: int = 64, batch: int = 2, heads: int = 4, seed: int = 0) -> dict:
    """Summary dict: expr, fingerprint, functional fingerprint, validity, json, nodes (index, op, args, shape), inputs, FLOPs per head
    at (n, d), and stats of the eager output on seeded standard-normal q, k, v (batch, heads, n, d)."""
    gen = torch.Generator().manual_seed(seed)
    q, k, v = (torch.randn(batch, heads, n, d, generator=gen) for _ in range(3))
    with torch.no_grad():
        out = eager(graph, q, k, v)
    finite = torch.isfinite(out)
    vals = out[finite].double()
    v = validity(graph)
    return {
        "expr": graph.to_expr(),
        "fingerprint": graph.fingerprint(),
        "functional_fingerprint": graph.functional_fingerprint(),
        "valid": v.ok,
        "degenerate_reason": v.reason,
        "live_inputs": sorted(live_inputs(graph)),
        "json": graph.to_json(),
        "nodes": [{"index": i, "op": op, "args": list(args), "shape": S.fmt(graph.shapes[i])}
                  for i, (op, args) in enumerate(graph.nodes)],
        "num_ops": graph.num_ops,
        "inputs": sorted(graph.inputs_used),
        "n": n, "d": d,
        "flops_per_head": flops(graph, n, d),
        "output": {"shape": list(out.shape), "finite_fraction": finite.double().mean().item(),
                   "mean": vals.mean().item() if vals.numel() else float("nan"),
                   "std": vals.std().item() if vals.numel() > 1 else float("nan"),
                   "min": vals.min().item() if vals.numel() else float("nan"),
                   "max": vals.max().item() if vals.numel() else float("nan")},
    }


def format_description(info: dict) -> str:
    """The summary as plain text for the terminal."""
    o = info["output"]
    lines = [
        f"expression   {info['expr']}",
        f"fingerprint  {info['fingerprint']} (structure)   {info['functional_fingerprint']} (function)",
        f"valid        {'yes' if info['valid'] else 'no, degenerate: ' + info['degenerate_reason']}",
        f"ops          {info['num_ops']}   inputs read: {', '.join(info['inputs'])}"
        + (f" (influencing the output: {', '.join(info['live_inputs']) or 'none'})"
           if info['live_inputs'] != info['inputs'] else ""),
        f"FLOPs/head   {info['flops_per_head']:,} at N={info['n']}, d={info['d']}",
        "nodes:",
    ]
    for nd in info["nodes"]:
        args = ", ".join(f"%{a}" for a in nd["args"])
        lines.append(f"  %{nd['index']:<3} {nd['shape']:<6} {nd['op']}({args})" if args else
                     f"  %{nd['index']:<3} {nd['shape']:<6} {nd['op']}")
    lines.append(f"eager output {tuple(o['shape'])} on N(0,1) inputs: mean {o['mean']:.4g}  std {o['std']:.4g}  "
                 f"min {o['min']:.4g}  max {o['max']:.4g}  finite {100 * o['finite_fraction']:.1f}%")
    return "\n".join(lines)
