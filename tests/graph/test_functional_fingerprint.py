"""Functional fingerprints: equal for graphs computing the same function, different otherwise."""
import random

import pytest

from autobert.graph import functional_fingerprint, library, parse, random_graph

EQUIVALENT = [
    # commuted operands of commutative ops (canonical form) and of a whole score
    ("matmul(softmax(scale(matmul(Q, transpose(K)))), mul(V, Q))",
     "matmul(softmax(scale(transpose(matmul(K, transpose(Q))))), mul(Q, V))"),
    # double transpose
    ("matmul(softmax(matmul(Q, transpose(transpose(transpose(K))))), V)", "matmul(softmax(matmul(Q, transpose(K))), V)"),
    # a scale (even a double one) that cosine's normalisation removes
    ("matmul(softmax(cosine(scale(scale(Q)), transpose(K))), V)", "cosine"),
    # associativity of add: equal up to rounding
    ("add(add(Q, K), V)", "add(Q, add(K, V))"),
    # (Q K^T) V == Q (K^T V): the linear attention written the other way round
    ("matmul(matmul(relu(Q), transpose(relu(K))), V)", "linear"),
    # softsign(x) == x / (1 + |x|) through the safe division
    ("div(V, add(V, softsign(V)))", "div(V, add(softsign(V), V))"),
    # max(x, x) == x
    ("matmul(softmax(scale(matmul(Q, transpose(K)))), max(V, V))", "standard"),
    # scale(scale(x)) == x / d, wherever the two scales sit: (Q/d) K^T == (Q/sqrt d)(K/sqrt d)^T
    ("matmul(softmax(matmul(scale(scale(Q)), transpose(K))), V)",
     "matmul(softmax(matmul(scale(Q), scale(transpose(K)))), V)"),
]


def _g(text):
    return library[text] if text in library else parse(text)


@pytest.mark.parametrize("a, b", EQUIVALENT)
def test_equivalent_graphs_share_the_functional_fingerprint(a, b):
    assert functional_fingerprint(_g(a)) == functional_fingerprint(_g(b))
    assert _g(a).functional_fingerprint() == functional_fingerprint(_g(a))


def test_structurally_different_but_equal_graphs():
    a, b = parse("matmul(matmul(relu(Q), transpose(relu(K))), V)"), library["linear"]
    assert a.fingerprint() != b.fingerprint() and a.functional_fingerprint() == b.functional_fingerprint()


@pytest.mark.parametrize("a, b", [
    ("V", "scale(V)"),                                     # a scale is a different function (before a projection)
    ("sub(Q, K)", "sub(K, Q)"),
    ("matmul(softmax(scale(matmul(Q, transpose(K)))), V)", "matmul(softmax(matmul(Q, transpose(K))), V)"),
    ("matmul(softmax(scale(matmul(Q, transpose(K)))), V)", "matmul(softmax(scale(matmul(K, transpose(Q)))), V)"),
])
def test_different_functions_differ(a, b):
    assert functional_fingerprint(_g(a)) != functional_fingerprint(_g(b))


def test_library_and_random_functions_are_distinct():
    assert len({g.functional_fingerprint() for g in library.values()}) == len(library)
    rng = random.Random(3)
    graphs = {random_graph(rng, 10) for _ in range(500)}
    functions = {g.functional_fingerprint() for g in graphs}
    # distinct structures may compute one function (that is the point); but not many do
    assert len(functions) >= 0.95 * len(graphs)


def test_stable_across_processes_and_json():
    g = library["abz_sqrt_score"]
    again = type(g).from_json(g.to_json())
    assert again.functional_fingerprint() == g.functional_fingerprint()
    assert library["standard"].functional_fingerprint() == "c60d57557559a501"  # fixed probe: fixed value
