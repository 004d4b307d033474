"""``TabularBenchmark``: a search space that *is* a list of labelled architectures.

Search strategies see encodings and features only; a label becomes visible one architecture at
a time through ``Session.query`` (each query counted, repeats free), which is how a tabular
benchmark replaces training. ``regret`` is the best label of the table minus the best label
found so far. Mutations land on the table: ``nearest`` picks the unqueried entry closest to a
mutated encoding (``encoding_distance``), ties broken at random.
"""
from __future__ import annotations

import dataclasses
import random
from typing import Optional, Sequence

import numpy as np

from autobert.rank.benchmark import FlexiEncoding


def encoding_distance(a: FlexiEncoding, b: FlexiEncoding) -> int:
    """Fields that differ: hidden size, and per layer slot operation, heads, FFN dim and depth
    (a layer only one of them has counts as 4 differences)."""
    d = int(a.hidden != b.hidden)
    for i in range(max(len(a.layers), len(b.layers))):
        if i >= len(a.layers) or i >= len(b.layers):
            d += 4
        else:
            d += sum(x != y for x, y in zip(a.layers[i], b.layers[i]))
    return d


@dataclasses.dataclass(frozen=True)
class TabularBenchmark:
    encodings: tuple[FlexiEncoding, ...]
    labels: np.ndarray        # (n,) higher = better
    features: np.ndarray      # (n, F) label-free encoding of each architecture (for surrogates)

    def __post_init__(self):
        n = len(self.encodings)
        if self.labels.shape != (n,) or self.features.shape[0] != n:
            raise ValueError(f"need {n} labels and feature rows, got {self.labels.shape} and {self.features.shape}")

    def __len__(self) -> int:
        return len(self.encodings)

    @property
    def best(self) -> float:
        return float(self.labels.max())

    def session(self) -> "Session":
        return Session(self)

    def nearest(self, target: FlexiEncoding, exclude: "set[int]", rng: random.Random) -> Optional[int]:
        """The index of an entry outside ``exclude`` closest to ``target`` (None when all are excluded)."""
        best, ties = None, []
        for i, enc in enumerate(self.encodings):
            if i in exclude:
                continue
            d = encoding_distance(target, enc)
            if best is None or d < best:
                best, ties = d, [i]
            elif d == best:
                ties.append(i)
        return rng.choice(ties) if ties else None


class Session:
    """One search's view of the table: the queries made so far, in order."""

    def __init__(self, bench: TabularBenchmark):
        self.bench = bench
        self.order: list[int] = []
        self.seen: set[int] = set()

    def query(self, i: int) -> float:
        """The label of entry i (counted once; asking again is free)."""
        if i not in self.seen:
            self.seen.add(i)
            self.order.append(i)
        return float(self.bench.labels[i])

    @property
    def count(self) -> int:
        return len(self.order)

    def regret_curve(self) -> np.ndarray:
        """(queries,) best label of the table minus the best label found after each query."""
        found = np.maximum.accumulate(self.bench.labels[self.order])
        return self.bench.best - found


def pad_curve(curve: Sequence[float], budget: int) -> np.ndarray:
    """A regret curve carried to ``budget`` queries (a search that ran out of table keeps its last value)."""
    curve = np.asarray(curve, float)
    if len(curve) >= budget:
        return curve[:budget]
    return np.concatenate([curve, np.full(budget - len(curve), curve[-1] if len(curve) else np.nan)])
