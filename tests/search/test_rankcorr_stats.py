"""Rank statistics against scipy (and NDCG against hand-computed values)."""
import math

import numpy as np
import pytest
from scipy import stats

from autobert.search import bootstrap_ci, kendall_tau, ndcg_at_k, rank_correlation, spearman_rho


@pytest.mark.parametrize("seed", range(5))
def test_kendall_and_spearman_match_scipy(seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=23)
    y = x + rng.normal(size=23)
    if seed % 2:  # ties in both lists
        x, y = np.round(x), np.round(y * 2) / 2
    assert kendall_tau(x, y) == pytest.approx(stats.kendalltau(x, y).statistic, abs=1e-12)
    assert spearman_rho(x, y) == pytest.approx(stats.spearmanr(x, y).statistic, abs=1e-12)


def test_known_values():
    assert kendall_tau([1, 2, 3, 4], [1, 2, 3, 4]) == 1.0
    assert kendall_tau([1, 2, 3, 4], [4, 3, 2, 1]) == -1.0
    assert spearman_rho([1, 2, 3], [1, 3, 2]) == pytest.approx(0.5)
    assert math.isnan(kendall_tau([1, 1, 1], [1, 2, 3]))


def test_ndcg_hand_computed():
    rel = [3, 2, 0, 1]
    assert ndcg_at_k(rel, [4, 3, 2, 1], k=4) == pytest.approx(
        (3 + 2 / math.log2(3) + 0 / 2 + 1 / math.log2(5)) / (3 + 2 / math.log2(3) + 1 / 2 + 0 / math.log2(5)))
    assert ndcg_at_k(rel, [10, 5, 0, 1], k=2) == 1.0
    assert ndcg_at_k(rel, [0, 0, 9, 0], k=1) == 0.0
    assert ndcg_at_k([0, 0], [1, 2], k=2) == 0.0


def test_bootstrap_ci_contains_statistic_and_is_seeded():
    rng = np.random.default_rng(0)
    x = rng.normal(size=30)
    y = x + 0.5 * rng.normal(size=30)
    lo, hi = bootstrap_ci(kendall_tau, x, y, n_boot=300, seed=3)
    assert lo <= kendall_tau(x, y) <= hi
    assert (lo, hi) == bootstrap_ci(kendall_tau, x, y, n_boot=300, seed=3)


def test_rank_correlation_report_and_params_baseline():
    true = np.array([5.0, 4.0, 3.0, 2.0, 1.0, 0.5])
    proxy = true + np.array([0.1, -0.1, 0.2, 0.0, -0.2, 0.1])
    params = [1, 2, 3, 4, 5, 6]  # more parameters, lower loss: a perfect baseline here
    out = rank_correlation(proxy, true, params, k=3, n_boot=50)
    assert out["kendall_tau"] == pytest.approx(stats.kendalltau(proxy, true).statistic)
    assert out["params_baseline"]["kendall_tau"] == pytest.approx(1.0)
    assert out["ndcg@3"] == pytest.approx(1.0)
    assert len(out["kendall_tau_ci"]) == 2
