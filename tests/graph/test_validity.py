"""Degenerate graphs are found with their reason; random graphs and mutants are never degenerate.

The independent check of generated graphs uses inputs other than the probe's (another seed,
another N and d), so it does not merely repeat the probe.
"""
import random
from collections import Counter

import pytest
import torch

from autobert.graph import (GraphError, check_valid, eager, library, live_inputs, mutate_with_info, parse,
                            random_graph, validity)
from autobert.graph.mutation import KINDS


@pytest.mark.parametrize("name", sorted(library))
def test_library_graphs_are_valid(name):
    assert validity(library[name]).ok and live_inputs(library[name]) == library[name].inputs_used


@pytest.mark.parametrize("expr, reason", [
    # the search's own former best: matmul(0, .) hidden behind cosine and square
    ("matmul(sub(cosine(Q, transpose(square(K))), cosine(Q, transpose(square(K)))), softsign(V))",
     "constant output: it is identically 0"),
    ("softsign(matmul(Q, matmul(transpose(sub(scale(K), scale(K))), V)))", "constant output"),  # (d,N) zero
    ("tanh(mul(V, sub(relu(K), relu(K))))", "constant output"),
    ("relu(neg(abs(V)))", "constant output: the same output for different Q, K, V"),  # 0 for every input
    ("sigmoid(sub(exp(Q), exp(Q)))", "constant output: it is constant"),               # 0.5 everywhere
    ("square(square(square(square(square(square(matmul(matmul(Q, transpose(K)), V)))))))",  # x^64
     "non-finite output or gradient in float32"),
])
def test_degenerate_patterns_have_their_reason(expr, reason):
    v = validity(parse(expr))
    assert not v.ok and reason in v.reason, v.reason


def test_float64_overflow_is_non_finite():
    # exp is capped at 20, so float64 needs growth by squaring: (x^2)^2 ... overflows 1e308
    g = parse("square(square(square(square(square(square(square(square(square(matmul(matmul(Q, "
              "transpose(K)), V))))))))))")
    assert validity(g).reason.startswith("non-finite output on ordinary inputs")


@pytest.mark.parametrize("expr, dead", [
    ("mul(V, div(K, K))", {"K"}),                                              # div(K, K) = 1 for |K| >= 1e-6
    ("matmul(softmax(sub(matmul(Q, transpose(K)), matmul(Q, transpose(K)))), V)", {"Q", "K"}),  # mean of V
    ("add(V, relu(neg(abs(K))))", {"K"}),
    ("div(Q, sub(K, K))", {"K"}),                                              # Q / 1e-6 whatever K is
])
def test_dead_inputs_are_found_and_dropped(expr, dead):
    g = parse(expr)
    v = validity(g)
    assert not v.ok and v.reason.startswith("dead input") and v.dead_inputs == dead
    assert live_inputs(g) == g.inputs_used - dead


def test_check_valid_names_the_graph():
    with pytest.raises(GraphError, match=r"layer 2 .* is degenerate: constant output"):
        check_valid(parse("tanh(mul(V, sub(K, K)))"), "layer 2")
    check_valid(library["standard"])


def _independent_check(g, seed):
    """Finite, and every input it reads changes the output on some of 3 draws (so it is not constant):
    on inputs other than the probe's (another seed, N = 9, d = 3)."""
    gen = torch.Generator().manual_seed(10_000 + seed)
    draws = [[torch.randn(1, 2, 9, 3, generator=gen, dtype=torch.float64) for _ in range(3)] for _ in range(3)]
    for base in draws:
        assert torch.isfinite(eager(g, *base)).all(), g.to_expr()
    for j, name in enumerate("QKV"):
        if name not in g.inputs_used:
            continue
        moved = False
        for base in draws:
            out = eager(g, *base)
            changed = list(base)
            changed[j] = torch.randn(1, 2, 9, 3, generator=gen, dtype=torch.float64)
            moved |= float((eager(g, *changed) - out).abs().max()) > 1e-9 * float(out.abs().max())
        assert moved, f"{name} is dead in {g.to_expr()}"


@pytest.mark.slow
def test_ten_thousand_generated_graphs_are_valid():
    """5,000 random graphs and 5,000 mutants (of random and library parents, every kind)."""
    rng, rejected = random.Random(2024), Counter()
    for i in range(5000):
        g = random_graph(rng, 1 + i % 12, rejected=rejected)
        _independent_check(g, i)
        parent = g if i % 3 else rng.choice(list(library.values()))
        try:
            child, _ = mutate_with_info(parent, rng, kind=KINDS[i % len(KINDS)], max_nodes=12, rejected=rejected)
        except GraphError:  # e.g. nothing to delete in matmul(Q, ...) graphs: no mutant drawn
            continue
        _independent_check(child, i + 5000)
    assert rejected["degenerate"] > 0  # the rejection is exercised, not vacuous


def test_generation_reports_rejections():
    rejected = Counter()
    rng = random.Random(5)
    for _ in range(300):
        random_graph(rng, 10, rejected=rejected)
    assert set(rejected) <= {"degenerate", "trivial"} and sum(rejected.values()) > 0
