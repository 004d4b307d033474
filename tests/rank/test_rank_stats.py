"""Rank statistics of the proxy table: hand-computed precision, non-finite handling, paired differences."""
import math

import numpy as np
import pytest

from autobert.rank.evaluate import evaluate_proxies
from autobert.rank.stats import paired_difference, precision_at_top, rank_metrics, rankable, split_halves
from autobert.search.rankcorr import kendall_tau


def test_precision_at_top_by_hand():
    labels = [10, 9, 8, 7, 6, 5, 4, 3, 2, 1]
    assert precision_at_top([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], labels, 0.2) == 0.0
    assert precision_at_top([10, 1, 9, 2, 3, 4, 5, 6, 7, 8], labels, 0.2) == 0.5  # top-2 {0, 2} vs {0, 1}
    assert precision_at_top(labels, labels, 0.3) == 1.0
    with pytest.raises(ValueError, match="fraction"):
        precision_at_top(labels, labels, 0.0)


def test_non_finite_scores_rank_last_or_first():
    np.testing.assert_array_equal(rankable([2.0, -math.inf, math.nan, 5.0, math.inf]), [2.0, 1.0, 1.0, 5.0, 6.0])
    m = rank_metrics([1.0, 2.0, -math.inf, 4.0], [1.0, 2.0, 0.0, 4.0], k=2, fraction=0.5, n_boot=10)
    assert m["kendall_tau"] == 1.0 and m["precision@top50%"] == 1.0 and m["ndcg@2"] == 1.0


def test_paired_difference_cancels_shared_noise():
    rng = np.random.default_rng(0)
    y = rng.standard_normal(200)
    a = y + 0.5 * rng.standard_normal(200)
    same = paired_difference(a, a.copy(), y, n_boot=200)
    assert same["difference"] == 0.0 and same["ci"] == (0.0, 0.0)
    worse = a + 2.0 * rng.standard_normal(200)
    d = paired_difference(a, worse, y, n_boot=200)
    assert d["difference"] == pytest.approx(kendall_tau(a, y) - kendall_tau(worse, y))
    assert d["ci"][0] > 0


def test_evaluate_reports_the_anchor_difference_and_halves():
    y = np.arange(40.0)
    table = {"good": y + 1, "anchor": y[::-1].copy()}
    out = evaluate_proxies(table, y, anchor="anchor", n_boot=50)
    assert out["best"] == "good" and out["proxies"]["good"]["kendall_tau"] == 1.0
    assert out["proxies"]["good"]["vs_anchor"]["kendall_tau"]["difference"] == pytest.approx(2.0)
    assert "vs_anchor" not in out["proxies"]["anchor"] and out["proxies"]["good"]["kendall_tau_halves"] == [1.0, 1.0]
    a, b = split_halves(41, seed=0)
    assert len(a) == 20 and len(b) == 21 and set(a) | set(b) == set(range(41))
