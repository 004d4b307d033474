"""Exact simplification in the canonical form: identities removed, values and gradients unchanged."""
import random

import pytest
import torch

from autobert.graph import Graph, eager, library, parse, random_graph
from autobert.graph import ops as O
from autobert.graph import shapes as S


@pytest.mark.parametrize("expr, simplified", [
    ("max(V, V)", "V"),
    ("min(tanh(K), tanh(K))", "tanh(K)"),
    ("transpose(transpose(matmul(Q, matmul(transpose(K), V))))", "matmul(Q, matmul(transpose(K), V))"),
    ("neg(neg(V))", "V"),
    ("abs(abs(V))", "abs(V)"),
    ("relu(relu(V))", "relu(V)"),
    ("abs(relu(V))", "relu(V)"),
    ("relu(abs(V))", "abs(V)"),
    ("abs(neg(V))", "abs(V)"),
    ("square(neg(V))", "square(V)"),
    ("abs(square(V))", "square(V)"),
    ("add(Q, neg(V))", "sub(Q, V)"),
    ("add(neg(V), Q)", "sub(Q, V)"),
    ("sub(Q, neg(V))", "add(Q, V)"),
    ("add(V, sub(K, K))", "V"),
    ("sub(V, sub(K, K))", "V"),
    ("sub(tanh(sub(Q, Q)), V)", "neg(V)"),
    ("add(V, mul(K, sub(Q, Q)))", "V"),
    ("add(V, matmul(softmax(matmul(Q, transpose(K))), sub(K, K)))", "V"),
    ("matmul(softmax(scale(matmul(Q, transpose(K)))), max(add(V, sub(Q, Q)), V))", "standard"),
])
def test_identities_are_simplified(expr, simplified):
    want = library[simplified] if simplified in library else parse(simplified)
    assert parse(expr) == want
    assert parse(expr).fingerprint() == want.fingerprint()


def test_simplification_drops_inputs_it_removes():
    g = parse("matmul(softmax(scale(matmul(Q, transpose(Q)))), add(V, sub(K, K)))")
    assert g.inputs_used == {"Q", "V"}


def test_graphs_without_identities_keep_their_canonical_form():
    for g in library.values():  # library fingerprints are cache keys and stored in run databases
        assert Graph(g.nodes, g.output).to_json() == g.to_json()
    assert parse("matmul(softmax(sub(matmul(Q, transpose(K)), matmul(K, transpose(Q)))), V)").num_ops == 7


def _raw_eval(nodes, output, q, k, v, mask):
    """Evaluate an uncanonicalised node list op by op (the graph as written)."""
    ctx = O.EvalContext(d=q.shape[-1], mask=mask)
    inputs, shapes, vals = {"Q": q, "K": k, "V": v}, [], []
    for op, args in nodes:
        if op in inputs:
            shapes.append(S.ND)
            vals.append(inputs[op])
            continue
        shapes.append(O.OPS[op].shape_rule(*(shapes[a] for a in args)))
        vals.append(O.OPS[op].eager([vals[a] for a in args], [shapes[a] for a in args], ctx))
    return vals[output]


def _identity_rich_graph(rng):
    """A random graph with identities planted: x -> max(x, x) / neg(neg(x)) / add(x, sub(y, y)) ..."""
    g = random_graph(rng, 8)
    nodes, remap = [], {}
    for i, (op, args) in enumerate(g.nodes):
        nodes.append((op, tuple(remap[a] for a in args)))
        x = len(nodes) - 1
        trick = rng.randrange(5)
        if trick == 1:
            nodes.append(("max", (x, x)))
        elif trick == 2:
            nodes += [("neg", (x,)), ("neg", (x + 1,))]
        elif trick == 3:
            nodes += [("sub", (x, x)), ("add", (x, x + 1))]
        elif trick == 4 and g.shapes[i] == S.ND:
            nodes += [("sub", (0, 0)), ("abs", (x + 1,)), ("mul", (x + 2, x)), ("sub", (x, x + 3))]
        remap[i] = len(nodes) - 1
    return nodes, remap[g.output], g


def test_simplified_graph_computes_the_same_values_and_gradients():
    rng = random.Random(0)
    for seed in range(150):
        nodes, output, plain = _identity_rich_graph(rng)
        g = Graph(nodes, output)
        assert g == plain  # every planted identity is gone
        gen = torch.Generator().manual_seed(seed)
        ins = [torch.randn(2, 2, 6, 5, generator=gen, dtype=torch.float64, requires_grad=True) for _ in range(3)]
        mask = torch.tensor([[True] * 6, [True] * 4 + [False] * 2])
        a = _raw_eval(nodes, output, *ins, mask)
        w = torch.randn(a.shape, generator=gen, dtype=torch.float64)
        ga = torch.autograd.grad((a * w).sum(), ins, allow_unused=True)
        ins2 = [t.detach().clone().requires_grad_() for t in ins]
        b = eager(g, *ins2, mask)
        gb = torch.autograd.grad((b * w).sum(), ins2, allow_unused=True)
        torch.testing.assert_close(b, a, rtol=0, atol=0, equal_nan=True)
        for x, y in zip(ga, gb):
            x = torch.zeros_like(ins[0]) if x is None else x
            y = torch.zeros_like(ins[0]) if y is None else y
            torch.testing.assert_close(y, x, rtol=1e-12, atol=1e-12, equal_nan=True)
