"""Means with 95% confidence intervals, for comparisons over a handful of seeds.

``mean_ci(values)`` is the Student-t interval of the mean; ``paired_ci(a, b)`` the interval of the
mean difference of paired values (a_i - b_i, e.g. two architectures trained with the same seed).
With n values the interval uses t at n - 1 degrees of freedom: 4.30 for 3 seeds, 2.78 for 5.
"""
from __future__ import annotations

import math
from typing import Sequence

# Two-sided 95% quantiles t_{0.975, df} for df = 1..30; the normal 1.96 beyond.
_T975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145,
         2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048,
         2.045, 2.042)


def t975(df: int) -> float:
    if df < 1:
        raise ValueError(f"degrees of freedom must be >= 1, got {df}")
    return _T975[df - 1] if df <= len(_T975) else 1.96


def mean_ci(values: Sequence[float]) -> dict:
    """{"mean", "std", "n", "ci": [lo, hi]} (95% t-interval; [mean, mean] for one value)."""
    xs = [float(v) for v in values]
    if not xs:
        raise ValueError("mean_ci needs at least one value")
    n, mean = len(xs), sum(xs) / len(xs)
    if n == 1:
        return {"mean": mean, "std": 0.0, "n": 1, "ci": [mean, mean]}
    std = math.sqrt(sum((x - mean) ** 2 for x in xs) / (n - 1))
    half = t975(n - 1) * std / math.sqrt(n)
    return {"mean": mean, "std": std, "n": n, "ci": [mean - half, mean + half]}


def paired_ci(a: Sequence[float], b: Sequence[float]) -> dict:
    """``mean_ci`` of a_i - b_i, plus "excludes_zero" (the interval lies on one side of 0)."""
    if len(a) != len(b):
        raise ValueError(f"paired values need equal lengths, got {len(a)} and {len(b)}")
    out = mean_ci([x - y for x, y in zip(a, b)])
    lo, hi = out["ci"]
    out["excludes_zero"] = out["n"] > 1 and (lo > 0 or hi < 0)
    return out
