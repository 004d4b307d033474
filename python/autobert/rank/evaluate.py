"""Judging proxies against benchmark labels: the only place labels meet proxy values.

For every proxy: ``rank_metrics`` (tau-b, rho, NDCG@k, precision in the top fraction, bootstrap
CIs), the paired-bootstrap difference of its tau and rho from the anchor rule's, and its tau on
two random halves of the architectures (a score chosen by looking at all labels should be read
with the half it was not chosen on in mind).
"""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from autobert.rank.stats import paired_difference, rank_metrics, rankable, split_halves
from autobert.search.rankcorr import kendall_tau, spearman_rho

_SPLIT_SEED = 0


def evaluate_proxies(table: Mapping[str, Sequence[float]], labels: Sequence[float], anchor: str = "depth_params",
                     k: int = 10, fraction: float = 0.1, n_boot: int = 1000, seed: int = 0) -> dict:
    """{"proxies": {name: metrics}, "best": name with the highest tau, "anchor": name}."""
    y = np.asarray(labels, float)
    halves = split_halves(len(y), _SPLIT_SEED)
    out = {}
    for name, values in table.items():
        x = rankable(values)
        m = rank_metrics(x, y, k, fraction, n_boot, seed)
        m["kendall_tau_halves"] = [kendall_tau(x[h], y[h]) for h in halves]
        if anchor in table and name != anchor and n_boot:
            base = rankable(table[anchor])
            m[f"vs_{anchor}"] = {"kendall_tau": paired_difference(x, base, y, kendall_tau, n_boot, seed),
                                 "spearman_rho": paired_difference(x, base, y, spearman_rho, n_boot, seed)}
        out[name] = m
    finite = {n: m["kendall_tau"] for n, m in out.items() if np.isfinite(m["kendall_tau"])}
    return {"proxies": out, "best": max(finite, key=finite.get) if finite else None, "anchor": anchor}
