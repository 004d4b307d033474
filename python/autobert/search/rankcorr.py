"""Rank statistics for judging a proxy ranker: Kendall tau-b, Spearman rho, NDCG@k, bootstrap CIs.

Conventions: ``kendall_tau`` and ``spearman_rho`` equal ``scipy.stats.kendalltau`` (tau-b) and
``scipy.stats.spearmanr`` (average ranks for ties). ``ndcg_at_k(relevance, scores, k)`` follows
scikit-learn's ``ndcg_score`` with linear gains and log2 discounts; ties in ``scores`` are broken
by position (stable), and a list whose ideal DCG is 0 scores 0.
"""
from __future__ import annotations

import math
import random
from typing import Callable, Optional, Sequence

import numpy as np


def _pairs(x: Sequence[float], y: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError(f"x and y must be 1-D of equal length, got {x.shape} and {y.shape}")
    if len(x) < 2:
        raise ValueError("need at least 2 items to rank")
    return x, y


def kendall_tau(x: Sequence[float], y: Sequence[float]) -> float:
    """Kendall's tau-b (ties in either list handled); NaN when a list is constant."""
    x, y = _pairs(x, y)
    dx = np.sign(x[:, None] - x[None, :])  # (n, n)
    dy = np.sign(y[:, None] - y[None, :])
    iu = np.triu_indices(len(x), k=1)
    dx, dy = dx[iu], dy[iu]
    s = float((dx * dy).sum())
    denom = math.sqrt(float((dx != 0).sum()) * float((dy != 0).sum()))
    return s / denom if denom else float("nan")


def average_ranks(x: Sequence[float]) -> np.ndarray:
    """1-based ranks, ties given their mean rank (scipy.stats.rankdata's 'average')."""
    x = np.asarray(x, dtype=float)
    order = np.argsort(x, kind="mergesort")
    ranks = np.empty(len(x), dtype=float)
    i = 0
    while i < len(x):
        j = i
        while j + 1 < len(x) and x[order[j + 1]] == x[order[i]]:
            j += 1
        ranks[order[i:j + 1]] = (i + j) / 2.0 + 1.0
        i = j + 1
    return ranks


def spearman_rho(x: Sequence[float], y: Sequence[float]) -> float:
    """Spearman's rho: Pearson correlation of the average ranks; NaN when a list is constant."""
    x, y = _pairs(x, y)
    rx, ry = average_ranks(x), average_ranks(y)
    rx, ry = rx - rx.mean(), ry - ry.mean()
    denom = math.sqrt(float((rx ** 2).sum() * (ry ** 2).sum()))
    return float((rx * ry).sum()) / denom if denom else float("nan")


def ndcg_at_k(relevance: Sequence[float], scores: Sequence[float], k: int) -> float:
    """NDCG@k of ranking items by ``scores`` (higher first) against true ``relevance`` (>= 0, higher better)."""
    rel, sc = _pairs(relevance, scores)
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    if (rel < 0).any():
        raise ValueError("relevance must be >= 0")
    discount = 1.0 / np.log2(np.arange(2, min(k, len(rel)) + 2))
    top = np.argsort(-sc, kind="mergesort")[:k]
    ideal = np.sort(rel)[::-1][:k]
    idcg = float((ideal * discount[:len(ideal)]).sum())
    return float((rel[top] * discount[:len(top)]).sum()) / idcg if idcg > 0 else 0.0


def bootstrap_ci(stat: Callable[[np.ndarray, np.ndarray], float], x: Sequence[float], y: Sequence[float],
                 n_boot: int = 1000, alpha: float = 0.05, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap CI of ``stat(x, y)`` over resampled (x_i, y_i) pairs; NaN resamples are skipped."""
    x, y = _pairs(x, y)
    rng = random.Random(seed)
    n, values = len(x), []
    for _ in range(n_boot):
        idx = np.array([rng.randrange(n) for _ in range(n)])
        v = stat(x[idx], y[idx])
        if not math.isnan(v):
            values.append(v)
    if not values:
        return float("nan"), float("nan")
    lo, hi = np.quantile(values, [alpha / 2, 1 - alpha / 2])
    return float(lo), float(hi)


def rank_correlation(proxy_loss: Sequence[float], true_loss: Sequence[float], params: Optional[Sequence[int]] = None,
                     k: int = 5, n_boot: int = 1000, seed: int = 0) -> dict:
    """How well ``proxy_loss`` ranks architectures by ``true_loss`` (both lower = better).

    Returns {"n", "kendall_tau", "spearman_rho", "ndcg@k", each with a "_ci" 95% bootstrap interval,
    and "params_baseline": the same statistics for ranking by parameter count (more = better)}.
    """
    proxy, true = np.asarray(proxy_loss, float), np.asarray(true_loss, float)
    out = {"n": len(proxy), "k": k, **_stats(proxy, true, k, n_boot, seed)}
    if params is not None:
        out["params_baseline"] = _stats(-np.asarray(params, float), true, k, n_boot, seed)
    return out


def _stats(pred_loss: np.ndarray, true_loss: np.ndarray, k: int, n_boot: int, seed: int) -> dict:
    def ndcg(p, t):
        return ndcg_at_k(t.max() - t, -p, k)  # relevance: how far below the worst true loss
    out = {}
    for name, fn in (("kendall_tau", kendall_tau), ("spearman_rho", spearman_rho), (f"ndcg@{k}", ndcg)):
        out[name] = fn(pred_loss, true_loss)
        out[name + "_ci"] = bootstrap_ci(fn, pred_loss, true_loss, n_boot=n_boot, seed=seed)
    return out
