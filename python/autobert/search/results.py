"""What a run found: the best architectures and the Pareto front (parameters vs fitness).

Both are read from the database, so they can be (re)written at any time, also for a killed run.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

from autobert.model.config import ArchConfig
from autobert.search.mutation import describe_layers
from autobert.search.store import SearchStore


def pareto_front(points: Sequence[tuple[float, float]]) -> list[int]:
    """Indices of the points no other point dominates (both coordinates minimised), sorted by the first.

    A point dominates another when it is <= in both coordinates and < in at least one.
    """
    order = sorted(range(len(points)), key=lambda i: (points[i][0], points[i][1]))
    front, best_y = [], float("inf")
    for i in order:
        if points[i][1] < best_y:  # cheaper or equal-cost points came first: only a strictly lower y survives
            front.append(i)
            best_y = points[i][1]
    return front


def candidate_summary(row) -> dict:
    """A done row as a JSON-able dict with the architecture and one expression per layer."""
    arch = ArchConfig.from_json(row["arch_json"])
    out = {"fingerprint": row["fingerprint"], "fitness": row["fitness"], "params": row["params"],
           "flops": row["flops"], "generation": row["generation"], "id": row["id"],
           "layers": describe_layers(arch.layers), "arch": arch.to_dict()}
    metrics = json.loads(row["metrics_json"] or "{}")
    if "glue_score" in metrics:  # the quick GLUE proxy was on: the two parts of the fitness
        out.update({k: metrics[k] for k in ("mlm_loss", "glue_task", "glue_score", "glue_metrics") if k in metrics})
    return out


def best_architectures(store: SearchStore, k: int = 5) -> list[dict]:
    return [candidate_summary(r) for r in store.best(k)]


def pareto_architectures(store: SearchStore) -> list[dict]:
    done = [r for r in store.rows() if r["status"] == "done"]
    front = pareto_front([(float(r["params"]), float(r["fitness"])) for r in done])
    return [candidate_summary(done[i]) for i in front]


def write_results(run_dir, store: SearchStore, k: int = 5) -> dict:
    """Write ``best.json`` (top ``k``) and ``pareto.json`` into ``run_dir``; returns both."""
    run_dir = Path(run_dir)
    out = {"best": best_architectures(store, k), "pareto": pareto_architectures(store)}
    for name, value in out.items():
        tmp = run_dir / f"{name}.json.tmp"
        tmp.write_text(json.dumps(value, indent=2))
        tmp.replace(run_dir / f"{name}.json")
    return out
