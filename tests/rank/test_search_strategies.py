"""Search strategies on a synthetic tabular benchmark with a known optimum: budgets, regret curves,
OP-NAS priority bookkeeping, and surrogate guidance beating random search."""
import random

import numpy as np
import pytest

from autobert.rank.mutation_arms import ARMS, Choices, mutate
import functools

from autobert.rank.strategies import STRATEGIES, boshnas, opnas, random_search
from autobert.rank.tabular import encoding_distance, pad_curve

from synthetic import synthetic_benchmark


# A smaller, faster ensemble: the tests check the search logic, not the surrogate's best settings.
FAST = {**STRATEGIES, "boshnas": functools.partial(boshnas, members=3, epochs=80)}


@pytest.fixture(scope="module")
def bench():
    return synthetic_benchmark()


@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_every_strategy_queries_distinct_entries_within_budget(bench, name):
    session = FAST[name](bench, 25, random.Random(1))
    assert session.count == 25 == len(set(session.order))
    curve = session.regret_curve()
    assert curve.shape == (25,) and (np.diff(curve) <= 0).all() and (curve >= 0).all()
    assert curve[-1] == pytest.approx(bench.best - bench.labels[session.order].max())


@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_the_whole_table_finds_the_known_optimum(name):
    small = synthetic_benchmark(n=30, seed=2)
    session = FAST[name](small, 100, random.Random(0))  # budget beyond the table: stops at 30
    assert session.count == 30 and session.regret_curve()[-1] == 0.0


def test_surrogate_guidance_beats_random_on_a_smooth_table(bench):
    final = {name: np.mean([fn(bench, 20, random.Random(r)).regret_curve()[-1] for r in range(4)])
             for name, fn in (("random", random_search), ("boshnas", FAST["boshnas"]))}
    assert final["boshnas"] < final["random"]


def test_opnas_priority_learns_from_every_child(bench, monkeypatch):
    seen = []
    from autobert.search.priority import OpPriority
    real = OpPriority.update
    monkeypatch.setattr(OpPriority, "update", lambda self, arm, reward, failed=False: (
        seen.append((arm, reward)), real(self, arm, reward, failed))[-1])
    opnas(bench, 30, random.Random(0), population=10)
    assert len(seen) == 20 and {a for a, _ in seen} <= set(ARMS)


def test_mutations_change_their_field_and_land_near(bench):
    rng = random.Random(0)
    choices = Choices.of(bench.encodings)
    assert choices.hidden == (128, 256) and choices.depth == (2, 4)
    parent = bench.encodings[0]
    for arm in ARMS:
        child = mutate(parent, arm, choices, rng)
        assert child != parent and encoding_distance(child, parent) >= 1
        if arm == "hidden":
            assert child.hidden != parent.hidden and child.layers == parent.layers
        if arm == "depth":
            assert len(child.layers) != len(parent.layers)
    i = bench.nearest(parent, exclude=set(), rng=rng)
    assert i == 0  # an entry is nearest to itself
    assert bench.nearest(parent, exclude=set(range(len(bench))), rng=rng) is None
    with pytest.raises(ValueError, match="unknown arm"):
        mutate(parent, "colour", choices, rng)


def test_pad_curve():
    np.testing.assert_array_equal(pad_curve([3.0, 1.0], 4), [3.0, 1.0, 1.0, 1.0])
    np.testing.assert_array_equal(pad_curve([3.0, 1.0, 0.0], 2), [3.0, 1.0])
