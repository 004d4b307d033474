"""Random graphs and mutants: always valid, seeded, finite in float64 (hypothesis, >= 1000 examples)."""
import random

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from autobert.graph import (KINDS, MUTATION_OPS, GraphError, eager, library, mutate, mutate_with_info, parse,
                            random_graph)


def _finite_fwd_bwd(g, seed):
    gen = torch.Generator().manual_seed(seed)
    q, k, v = (torch.randn(2, 2, 6, 4, generator=gen, dtype=torch.float64, requires_grad=True) for _ in range(3))
    mask = torch.tensor([[True] * 6, [True] * 4 + [False] * 2])
    out = eager(g, q, k, v, mask)
    out.backward(torch.randn(out.shape, generator=gen, dtype=torch.float64))
    assert torch.isfinite(out).all(), g.to_expr()
    for t in (q, k, v):
        assert t.grad is None or torch.isfinite(t.grad).all(), g.to_expr()


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), max_nodes=st.integers(1, 16))
def test_random_graphs_valid_and_finite(seed, max_nodes):
    g = random_graph(random.Random(seed), max_nodes)
    assert 1 <= g.num_ops <= max_nodes
    assert g.shapes[g.output] == ("N", "d")
    assert parse(g.to_expr()) == g
    _finite_fwd_bwd(g, seed)


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), kind=st.sampled_from(KINDS + (None,)))
def test_mutants_valid_different_and_finite(seed, kind):
    rng = random.Random(seed)
    parent = random_graph(rng, 10) if seed % 3 else rng.choice(list(library.values()))
    try:
        child, info = mutate_with_info(parent, rng, kind=kind, max_nodes=12)
    except GraphError as e:
        assert kind == "delete" and "no valid delete" in str(e)  # nothing deletable, e.g. matmul(Q, ...) only
        return
    assert child != parent and child.num_ops <= 12
    assert info.kind == (kind or info.kind)
    _finite_fwd_bwd(child, seed)


def test_generation_and_mutation_are_seeded():
    a = [random_graph(random.Random(s), 12).fingerprint() for s in range(20)]
    b = [random_graph(random.Random(s), 12).fingerprint() for s in range(20)]
    assert a == b
    m1 = mutate(library["standard"], random.Random(3))
    m2 = mutate(library["standard"], random.Random(3))
    assert m1 == m2


@pytest.mark.parametrize("op", MUTATION_OPS)
def test_mutation_with_a_chosen_op_uses_it(op):
    rng = random.Random(0)
    parent = library["standard"]
    child, info = mutate_with_info(parent, rng, op=op)
    assert info.op == op and child != parent
    assert child.op_counts().get(op, 0) >= 1


def test_long_mutation_chains_stay_valid():
    rng = random.Random(7)
    g = library["standard"]
    for i in range(300):
        g = mutate(g, rng, max_nodes=12)
        assert g.num_ops <= 12
    _finite_fwd_bwd(g, 0)


def test_bad_mutation_arguments():
    rng = random.Random(0)
    with pytest.raises(GraphError, match="unknown mutation kind"):
        mutate(library["standard"], rng, kind="explode")
    with pytest.raises(GraphError, match="cannot be introduced"):
        mutate(library["standard"], rng, op="Q")
    with pytest.raises(GraphError, match="max_nodes must be >= 1"):
        random_graph(rng, 0)
    with pytest.raises(TypeError):
        random_graph(0, 5)
