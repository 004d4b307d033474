"""How well a score ranks architectures against their labels (both higher = better).

Kendall tau-b, Spearman rho and NDCG@k come from ``autobert.search.rankcorr`` (one implementation
of each in the project); this module adds the precision of the top fraction, the per-proxy table
with 95% percentile-bootstrap CIs, and the *paired* bootstrap of the difference between two
scores (the same resampled architectures for both, so their shared noise cancels).
NDCG relevance is ``label - min(label)``: the worst architecture of the set has relevance 0.
"""
from __future__ import annotations

import math
import random
from typing import Callable, Mapping, Sequence

import numpy as np

from autobert.search.rankcorr import bootstrap_ci, kendall_tau, ndcg_at_k, spearman_rho

Stat = Callable[[np.ndarray, np.ndarray], float]


def rankable(values: Sequence[float]) -> np.ndarray:
    """values as float64 with -inf / NaN (a proxy that could not score a model) ranked below every finite
    value and +inf above, as finite numbers the rank statistics can order."""
    x = np.asarray(values, float).copy()
    finite = x[np.isfinite(x)]
    lo, hi = (finite.min(), finite.max()) if finite.size else (0.0, 0.0)
    x[np.isnan(x) | (x == -np.inf)] = lo - 1.0
    x[x == np.inf] = hi + 1.0
    return x


def precision_at_top(scores: Sequence[float], labels: Sequence[float], fraction: float = 0.1) -> float:
    """|top ``fraction`` by score  ∩  top ``fraction`` by label| / size of the top (ties broken by position)."""
    scores, labels = np.asarray(scores, float), np.asarray(labels, float)
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"fraction must be in (0, 1], got {fraction!r}")
    k = max(1, int(round(fraction * len(scores))))
    top_s = set(np.argsort(-scores, kind="mergesort")[:k].tolist())
    top_l = set(np.argsort(-labels, kind="mergesort")[:k].tolist())
    return len(top_s & top_l) / k


def statistics(k: int = 10, fraction: float = 0.1) -> dict[str, Stat]:
    """The named statistics of a (scores, labels) pair reported for every proxy."""
    def ndcg(s, y):
        return ndcg_at_k(y - y.min(), s, k)

    def precision(s, y):
        return precision_at_top(s, y, fraction)
    return {"kendall_tau": kendall_tau, "spearman_rho": spearman_rho, f"ndcg@{k}": ndcg,
            f"precision@top{round(fraction * 100)}%": precision}


def rank_metrics(scores: Sequence[float], labels: Sequence[float], k: int = 10, fraction: float = 0.1,
                 n_boot: int = 1000, seed: int = 0) -> dict:
    """{statistic: value, statistic + "_ci": (lo, hi)} for one score against the labels."""
    s, y = rankable(scores), np.asarray(labels, float)
    out = {"n": len(s)}
    for name, fn in statistics(k, fraction).items():
        out[name] = fn(s, y)
        out[name + "_ci"] = bootstrap_ci(fn, s, y, n_boot=n_boot, seed=seed) if n_boot else (math.nan, math.nan)
    return out


def paired_difference(a: Sequence[float], b: Sequence[float], labels: Sequence[float], stat: Stat = kendall_tau,
                      n_boot: int = 1000, seed: int = 0) -> dict:
    """stat(a, labels) - stat(b, labels) and its 95% paired-bootstrap CI (same resamples for both)."""
    a, b, y = rankable(a), rankable(b), np.asarray(labels, float)

    def diff(idx_a, idx_b):  # bootstrap_ci resamples (index, index) pairs; both scores use the same rows
        rows = idx_a.astype(int)
        return stat(a[rows], y[rows]) - stat(b[rows], y[rows])
    index = np.arange(len(y), dtype=float)
    lo, hi = bootstrap_ci(diff, index, index, n_boot=n_boot, seed=seed)
    return {"difference": stat(a, y) - stat(b, y), "ci": (lo, hi)}


def metrics_table(scores: Mapping[str, Sequence[float]], labels: Sequence[float], k: int = 10,
                  fraction: float = 0.1, n_boot: int = 1000, seed: int = 0) -> dict[str, dict]:
    """``rank_metrics`` of every named score."""
    return {name: rank_metrics(values, labels, k, fraction, n_boot, seed) for name, values in scores.items()}


def split_halves(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A seeded random split of range(n) into two halves (sorted index arrays)."""
    order = list(range(n))
    random.Random(seed).shuffle(order)
    return np.sort(order[: n // 2]), np.sort(order[n // 2:])
