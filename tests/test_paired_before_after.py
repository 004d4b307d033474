"""The paired before/after script's interval of a median ratio (benchmarks/paired_before_after.py)."""
import importlib.util
import random
from pathlib import Path

_SPEC = importlib.util.spec_from_file_location(
    "paired_before_after", Path(__file__).resolve().parents[1] / "benchmarks" / "paired_before_after.py")
paired = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(paired)


def test_median_ci_uses_the_binomial_order_statistics():
    # n = 30: [x_(10), x_(21)] (coverage 0.957); n = 15: [x_(4), x_(12)]; n = 6: the whole range.
    assert paired.median_ci(list(range(1, 31))) == (10, 21)
    assert paired.median_ci(list(range(15, 0, -1))) == (4, 12)
    assert paired.median_ci([6, 1, 5, 2, 4, 3]) == (1, 6)
    assert paired.median_ci([2.0]) == (2.0, 2.0)


def test_median_ci_covers_the_median_at_the_stated_rate():
    rng = random.Random(0)
    trials, n = 2000, 20
    hits = sum(lo <= 0.0 <= hi for lo, hi in (paired.median_ci([rng.gauss(0, 1) for _ in range(n)])
                                                for _ in range(trials)))
    assert 0.95 <= hits / trials <= 0.995  # exact coverage for n = 20 is 0.9586
