"""Audit a search run on inputs the search never saw: degenerate layers and repeated functions.

    python -m autobert.search.audit RUN_DIR [RUN_DIR ...]

Every evaluated (done) candidate's attention layers are run in float64 on three draws of Q, K, V
of another seed and size than the project's probe (``autobert.graph.probe``): a layer is
degenerate there when its output is non-finite, or when an input it reads changes no output on
any of the draws (a constant output changes for none). Architectures are compared by their
layers' outputs on these draws (rounded to ``SIGNIFICANT`` digits): the count of distinct
functions should equal the count of evaluated candidates.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

import torch

from autobert.graph import Graph, eager
from autobert.model.config import ArchConfig, AttentionLayer
from autobert.search.runner import DB_FILE
from autobert.search.store import SearchStore

SEED, N, D, DRAWS, SIGNIFICANT = 777, 11, 6, 3, 6


def _draws(seed: int) -> list[list[torch.Tensor]]:
    """DRAWS x (q, k, v), each (1, 2, N, D) float64."""
    gen = torch.Generator().manual_seed(seed)
    return [[torch.randn(1, 2, N, D, generator=gen, dtype=torch.float64) for _ in range(3)] for _ in range(DRAWS)]


def layer_problem(graph: Graph, draws, others) -> str | None:
    """Why ``graph`` is degenerate on these draws, or None."""
    outs = [eager(graph, *d) for d in draws]
    if not all(bool(torch.isfinite(o).all()) for o in outs):
        return "non-finite output"
    for j, name in enumerate("QKV"):
        if name not in graph.inputs_used:
            continue
        moved = False
        for d, o, other in zip(draws, outs, others):
            changed = list(d)
            changed[j] = other[j]
            moved |= float((eager(graph, *changed) - o).abs().max()) > 1e-9 * float(o.abs().max())
        if not moved:
            return f"input {name} changes nothing"
    return None


def layer_function(graph: Graph, draws) -> str:
    words = [f"{v:.{SIGNIFICANT - 1}e}" for d in draws for v in eager(graph, *d).flatten().tolist()]
    return hashlib.sha256(",".join(words).encode()).hexdigest()[:16]


def audit_run(run_dir) -> dict:
    """{"evaluated", "with_degenerate_layer", "distinct_functions", "problems": [...]} of one run."""
    draws, others = _draws(SEED), _draws(SEED + 1)
    with SearchStore(Path(run_dir) / DB_FILE) as store:
        rows = [dict(r) for r in store.rows() if r["status"] == "done"]
    problems, functions = [], set()
    for row in rows:
        arch = ArchConfig.from_json(row["arch_json"])
        parts = []
        for i, layer in enumerate(arch.layers):
            if isinstance(layer, AttentionLayer):
                problem = layer_problem(layer.graph, draws, others)
                if problem:
                    problems.append({"id": row["id"], "layer": i, "expr": layer.graph.to_expr(), "problem": problem})
                parts.append(layer_function(layer.graph, draws))
            else:
                parts.append(json.dumps(layer.to_dict(), sort_keys=True))
        functions.add(tuple(parts))
    return {"run": str(run_dir), "evaluated": len(rows),
            "with_degenerate_layer": len({p["id"] for p in problems}), "distinct_functions": len(functions),
            "problems": problems}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m autobert.search.audit", description=__doc__.split("\n")[0])
    p.add_argument("runs", nargs="+", metavar="RUN_DIR")
    p.add_argument("--json", help="also write the audit to this file")
    args = p.parse_args(argv)
    results = []
    for run in args.runs:
        if not (Path(run) / DB_FILE).is_file():
            print(f"error: {run} is not a search run folder (no {DB_FILE})", file=sys.stderr)
            return 2
        r = audit_run(run)
        results.append(r)
        print(f"{run}: {r['evaluated']} evaluated, {r['with_degenerate_layer']} with a degenerate layer, "
              f"{r['distinct_functions']} distinct functions")
        for problem in r["problems"][:10]:
            print(f"  #{problem['id']} layer {problem['layer']}: {problem['problem']}: {problem['expr']}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
