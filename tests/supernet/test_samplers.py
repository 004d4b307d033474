"""Child samplers: seeded, inside the space, single changes between consecutive children."""
import random

import pytest

from autobert.model import ConvLayer, SearchSpace
from autobert.supernet import SingleChangeSampler, UniformSampler

SPACE = SearchSpace(n_layers=4, kernel_sizes=(1, 3, 7), mutation_prob=0.3)


def test_uniform_sampler_is_seeded():
    a = [UniformSampler(SPACE, random.Random(2))() for _ in range(1)]
    s1, s2 = UniformSampler(SPACE, random.Random(2)), UniformSampler(SPACE, random.Random(2))
    assert [next(s1) for _ in range(5)] == [s2() for _ in range(5)]
    assert a[0] in SPACE
    with pytest.raises(TypeError):
        UniformSampler(SPACE, 3)


def test_single_change_sampler_changes_one_layer_per_step():
    start = (ConvLayer(3),) * 4
    sampler = SingleChangeSampler(SPACE, random.Random(0), start=start)
    prev = sampler()
    assert prev == start
    for _ in range(30):
        cur = sampler()
        assert sum(x != y for x, y in zip(prev, cur)) == 1 and cur in SPACE
        prev = cur
    with pytest.raises(ValueError, match="layers"):
        SingleChangeSampler(SPACE, random.Random(0), start=(ConvLayer(3),))
