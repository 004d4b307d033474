"""SearchSpace: seeded draws inside the space, single-layer neighbours, membership errors."""
import random

import pytest

from autobert.graph import library
from autobert.model import AttentionLayer, ConvLayer, SearchSpace


def test_sample_is_seeded_and_inside_the_space():
    space = SearchSpace(n_layers=6, kernel_sizes=(3, 7, 15))
    a, b = space.sample(random.Random(5)), space.sample(random.Random(5))
    assert a == b and len(a) == 6 and a in space
    draws = [layer for s in range(30) for layer in space.sample(random.Random(s))]
    assert {type(x) for x in draws} == {AttentionLayer, ConvLayer}
    assert {x.kernel for x in draws if isinstance(x, ConvLayer)} <= {3, 7, 15}
    assert all(x.graph in space.graphs for x in draws if isinstance(x, AttentionLayer))


def test_random_graphs_respect_max_nodes():
    space = SearchSpace(n_layers=4, conv_prob=0.0, random_graph_prob=1.0, max_nodes=5)
    for s in range(10):
        arch = space.sample(random.Random(s))
        assert all(layer.graph.num_ops <= 5 for layer in arch)
        assert arch in space


def test_neighbour_changes_exactly_one_layer():
    space = SearchSpace(n_layers=5, kernel_sizes=(3, 5, 9), mutation_prob=0.5)
    rng = random.Random(0)
    arch = space.sample(rng)
    for _ in range(40):
        nxt = space.neighbour(arch, rng)
        assert sum(x != y for x, y in zip(arch, nxt)) == 1
        assert nxt in space
        arch = nxt


def test_validation_and_membership_errors():
    with pytest.raises(ValueError, match="n_layers"):
        SearchSpace(n_layers=0)
    with pytest.raises(ValueError, match="kernel"):
        SearchSpace(n_layers=2, kernel_sizes=(4,))
    with pytest.raises(ValueError, match="conv_prob"):
        SearchSpace(n_layers=2, conv_prob=1.5)
    with pytest.raises(ValueError, match="graphs"):
        SearchSpace(n_layers=2, graphs=("not a graph(",))
    space = SearchSpace(n_layers=2, graphs=("standard", "linear"), kernel_sizes=(3,))
    assert space.graphs == (library["standard"], library["linear"])
    with pytest.raises(ValueError, match="layers"):
        space.check((ConvLayer(3),))
    with pytest.raises(ValueError, match=r"layers\[1\].*kernel 5"):
        space.check((ConvLayer(3), ConvLayer(5)))
    with pytest.raises(ValueError, match=r"layers\[0\].*not one of"):
        space.check((AttentionLayer("abz_sqrt_score"), ConvLayer(3)))
    with pytest.raises(TypeError, match="random.Random"):
        space.sample(3)
