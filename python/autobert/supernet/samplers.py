"""Child samplers for supernet training: each call returns the next architecture (a tuple of layer choices).

``UniformSampler`` draws every child independently. ``SingleChangeSampler`` changes one layer
(another graph, one op of a graph, another kernel, or attention <-> conv) between consecutive
children, so consecutive updates of the shared weights interfere less.
"""
from __future__ import annotations

import random
from typing import Optional, Sequence

from autobert.model.config import LayerChoice
from autobert.model.space import SearchSpace


class UniformSampler:
    """Independent uniform draws from ``space`` with ``rng`` (a random.Random)."""

    def __init__(self, space: SearchSpace, rng: random.Random):
        if not isinstance(rng, random.Random):
            raise TypeError(f"rng must be a random.Random, got {type(rng).__name__}")
        self.space, self.rng = space, rng

    def __call__(self) -> tuple[LayerChoice, ...]:
        return self.space.sample(self.rng)

    def __iter__(self):
        return self

    def __next__(self) -> tuple[LayerChoice, ...]:
        return self()


class SingleChangeSampler(UniformSampler):
    """First child ``start`` (or a uniform draw); every later child differs from the previous in one layer."""

    def __init__(self, space: SearchSpace, rng: random.Random, start: Optional[Sequence[LayerChoice]] = None):
        super().__init__(space, rng)
        if start is not None:
            space.check(start)
        self._start = None if start is None else tuple(start)
        self.current: Optional[tuple[LayerChoice, ...]] = None

    def __call__(self) -> tuple[LayerChoice, ...]:
        if self.current is None:
            self.current = self._start if self._start is not None else self.space.sample(self.rng)
        else:
            self.current = self.space.neighbour(self.current, self.rng)
        return self.current
