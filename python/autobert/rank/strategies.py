"""Search strategies on a ``TabularBenchmark``; each queries labels one architecture at a time.

- ``random``: entries in a seeded random order;
- ``evolution``: regularised evolution (aging population, tournament selection), the mutation arm
  drawn uniformly; a child is the unqueried entry nearest to the mutated parent;
- ``opnas``: the same with the arm drawn by OP-NAS's UCB operation priority
  (``autobert.search.priority.OpPriority``), rewarded with child label minus parent label;
- ``boshnas``: surrogate-guided (BOSHNAS-style): a few random queries, then each query is the
  unqueried entry of highest upper confidence bound under the surrogate refitted on every label so far.

Every strategy is ``fn(bench, budget, rng, **options) -> Session`` and stops at ``budget`` queries
or when the table is exhausted.
"""
from __future__ import annotations

import collections
import random
from typing import Callable

import numpy as np

from autobert.rank.mutation_arms import ARMS, Choices, mutate
from autobert.rank.surrogate import make_surrogate, ucb
from autobert.rank.tabular import Session, TabularBenchmark
from autobert.search.priority import OpPriority


def random_search(bench: TabularBenchmark, budget: int, rng: random.Random) -> Session:
    session = bench.session()
    order = list(range(len(bench)))
    rng.shuffle(order)
    for i in order[:budget]:
        session.query(i)
    return session


def _unqueried_random(bench: TabularBenchmark, session: Session, rng: random.Random) -> int:
    return rng.choice([i for i in range(len(bench)) if i not in session.seen])


def regularized_evolution(bench: TabularBenchmark, budget: int, rng: random.Random, population: int = 10,
                          sample: int = 3, priority: "OpPriority | None" = None) -> Session:
    """Regularised evolution; with ``priority`` the arm is drawn by it and it learns from each child."""
    session, choices = bench.session(), Choices.of(bench.encodings)
    alive: collections.deque = collections.deque()  # (index, label), oldest first
    budget = min(budget, len(bench))
    while session.count < min(population, budget):
        i = _unqueried_random(bench, session, rng)
        alive.append((i, session.query(i)))
    while session.count < budget:
        parent, parent_y = max(rng.sample(list(alive), min(sample, len(alive))), key=lambda m: m[1])
        arm = priority.sample(rng) if priority is not None else rng.choice(ARMS)
        child = bench.nearest(mutate(bench.encodings[parent], arm, choices, rng), session.seen, rng)
        child_y = session.query(child)
        if priority is not None:
            priority.update(arm, child_y - parent_y)
        alive.append((child, child_y))
        if len(alive) > population:
            alive.popleft()
    return session


def opnas(bench: TabularBenchmark, budget: int, rng: random.Random, c: float = 0.5, temperature: float = 0.5,
          **options) -> Session:
    """Regularised evolution with OP-NAS's operation priority over the FlexiBERT arms (rewards in
    units of their running standard deviation)."""
    priority = OpPriority(ARMS, c=c, temperature=temperature, reward_norm="std")
    return regularized_evolution(bench, budget, rng, priority=priority, **options)


def boshnas(bench: TabularBenchmark, budget: int, rng: random.Random, initial: int = 10, beta: float = 0.5,
            surrogate: str = "ensemble", **surrogate_options) -> Session:
    """Surrogate-guided search: ``initial`` random queries, then argmax of mean + beta * std under the
    surrogate (``make_surrogate(surrogate, **surrogate_options)``) refitted after every query."""
    session = bench.session()
    budget = min(budget, len(bench))
    while session.count < min(initial, budget):
        session.query(_unqueried_random(bench, session, rng))
    while session.count < budget:
        seen = np.array(session.order)
        model = make_surrogate(surrogate, seed=rng.randrange(2 ** 31), **surrogate_options)
        model.fit(bench.features[seen], bench.labels[seen])
        pool = np.array([i for i in range(len(bench)) if i not in session.seen])
        mean, std = model.predict(bench.features[pool])
        session.query(int(pool[int(np.argmax(ucb(mean, std, beta)))]))
    return session


STRATEGIES: dict[str, Callable[..., Session]] = {"random": random_search, "evolution": regularized_evolution,
                                                  "opnas": opnas, "boshnas": boshnas}
