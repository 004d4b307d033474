"""Every op of the registry: forward against its formula, gradcheck in float64, and the bytecode
lowering + derivative rule against eager autograd."""
import math

import pytest
import torch

from autobert.fusion import ProgramBuilder
from autobert.graph import OPS, GraphError, eager, parse
from autobert.graph.ops import EvalContext
from autobert_ext.program import run_program

D = 5


def _rand(*shape, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=g, dtype=torch.float64) * 1.5


# Independent formulas written from DESIGN.md §2 (not from the registry).
FORMULA = {
    "neg": lambda x: -x, "abs": lambda x: x.abs(), "square": lambda x: x * x,
    "scale": lambda x: x / math.sqrt(D),
    "logsigmoid": lambda x: torch.log(1 / (1 + torch.exp(-x))),
    "softsign": lambda x: x / (1 + x.abs()),
    "sqrt": lambda x: torch.sign(x) * (torch.sqrt(x.abs() + 1e-6) - 1e-3),
    "log": lambda x: torch.sign(x) * torch.log(1 + x.abs()),
    "exp": lambda x: torch.exp(torch.where(x < 20, x, torch.full_like(x, 20.0))),
    "sigmoid": lambda x: 1 / (1 + torch.exp(-x)),
    "tanh": lambda x: (torch.exp(x) - torch.exp(-x)) / (torch.exp(x) + torch.exp(-x)),
    "relu": lambda x: torch.where(x > 0, x, torch.zeros_like(x)),
    "gelu": lambda x: 0.5 * x * (1 + torch.erf(x / math.sqrt(2))),
    "softplus": lambda x: torch.where(x > 20, x, torch.log(1 + torch.exp(x))),
    "add": lambda x, y: x + y, "sub": lambda x, y: x - y, "mul": lambda x, y: x * y,
    "max": lambda x, y: torch.where(x > y, x, y), "min": lambda x, y: torch.where(x < y, x, y),
    "div": lambda x, y: x / (torch.where(y >= 0, 1.0, -1.0) * y.abs().clamp(min=1e-6)),
}
ELEMENTWISE = [n for n, o in OPS.items() if o.elementwise]


def test_registry_covers_design_ops():
    design = {"neg", "abs", "square", "transpose", "scale", "softmax", "logsigmoid", "softsign", "sqrt", "log",
              "exp", "sigmoid", "tanh", "relu", "gelu", "softplus", "add", "sub", "mul", "max", "min", "div",
              "matmul", "cosine"}
    assert set(OPS) == design
    for name, spec in OPS.items():
        assert spec.formula and spec.arity in (1, 2)
        assert (spec.lower is not None) == spec.elementwise and (spec.derive is not None) == spec.elementwise


@pytest.mark.parametrize("name", ELEMENTWISE)
def test_elementwise_forward_matches_formula(name):
    spec = OPS[name]
    xs = [_rand(3, 4, seed=s) for s in range(spec.arity)]
    xs[0][0, 0] = 0.0  # exact zero: the safe ops' conventions matter there
    if name in ("exp", "softplus"):
        xs[0][0, 1] = 25.0  # past the clamp / threshold
    if name == "div":
        xs[1][0, 0] = 0.0  # sign(0) = +1: x / 1e-6
        xs[1][1, 1] = 3e-7
    got = spec.eager(xs, [("N", "d")] * spec.arity, EvalContext(d=D))
    torch.testing.assert_close(got, FORMULA[name](*xs), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", ELEMENTWISE)
def test_elementwise_gradcheck(name):
    spec = OPS[name]
    xs = [_rand(3, 4, seed=s + 7).requires_grad_() for s in range(spec.arity)]
    if name == "div":  # keep clear of the clamp's kink, where finite differences are meaningless
        with torch.no_grad():
            xs[1].copy_(xs[1].sign() * (xs[1].abs() + 0.3))
    assert torch.autograd.gradcheck(lambda *a: spec.eager(a, [("N", "d")] * spec.arity, EvalContext(d=D)), xs)


@pytest.mark.parametrize("name", ELEMENTWISE)
def test_lowering_and_derivative_rule_match_autograd(name):
    """The bytecode form (code-emission hook) and the derivative rule equal eager + autograd,
    including at exact zeros and past clamps, where the conventions must agree."""
    spec = OPS[name]
    xs = [_rand(4, 6, seed=s + 3) for s in range(spec.arity)]
    xs[0][0, :3] = torch.tensor([0.0, 25.0, -25.0], dtype=torch.float64)
    if spec.arity == 2:
        xs[1][0, 0] = xs[0][0, 0]  # a tie for max/min
        xs[1][1, 0] = 0.0
        xs[1][1, 1] = 1e-8
    g = _rand(4, 6, seed=11)
    b = ProgramBuilder(spec.arity)
    y = spec.lower(b, list(range(spec.arity)), D)
    fwd = b.build([y])
    bb = ProgramBuilder(spec.arity + 2)  # inputs: x.., y, g
    grads = spec.derive(bb, list(range(spec.arity)), spec.arity, spec.arity + 1, D)
    bwd = bb.build(grads)
    leaves = [x.clone().requires_grad_() for x in xs]
    ref = spec.eager(leaves, [("N", "d")] * spec.arity, EvalContext(d=D))
    ref.backward(g)
    (out,) = run_program(fwd, xs)
    torch.testing.assert_close(out, ref.detach(), rtol=1e-12, atol=1e-12)
    got = run_program(bwd, xs + [out, g])
    for i, leaf in enumerate(leaves):
        torch.testing.assert_close(got[i], leaf.grad, rtol=1e-10, atol=1e-12)


def _qkv(n=6, d=D, seed=0, grad=False):
    return [_rand(2, 3, n, d, seed=seed + i).requires_grad_(grad) for i in range(3)]


def test_structural_ops_forward():
    q, k, v = _qkv()
    torch.testing.assert_close(eager(parse("transpose(transpose(Q))"), q, k, v), q)
    s = q @ k.transpose(-1, -2)
    torch.testing.assert_close(eager(parse("matmul(softmax(matmul(Q, transpose(K))), V)"), q, k, v),
                               torch.softmax(s, -1) @ v)
    # softmax over d (an (N,d) tensor): no masking involved
    torch.testing.assert_close(eager(parse("softmax(Q)"), q, k, v), torch.softmax(q, -1))
    qn = q / torch.sqrt((q * q).sum(-1, keepdim=True) + 1e-12)
    kn = k / torch.sqrt((k * k).sum(-1, keepdim=True) + 1e-12)
    torch.testing.assert_close(eager(parse("matmul(cosine(Q, transpose(K)), V)"), q, k, v),
                               (qn @ kn.transpose(-1, -2)) @ v)


@pytest.mark.parametrize("expr", ["matmul(softmax(matmul(Q, transpose(K))), V)", "matmul(cosine(Q, transpose(K)), V)",
                                  "matmul(Q, matmul(transpose(K), V))", "softmax(transpose(softmax(transpose(Q))))",
                                  "matmul(Q, cosine(transpose(K), V))"])
@pytest.mark.parametrize("masked", [False, True])
def test_structural_ops_gradcheck(expr, masked):
    q, k, v = _qkv(n=5, d=3, grad=True)
    mask = torch.tensor([[True, True, False, True, False], [True] * 5]) if masked else None
    g = parse(expr)
    assert torch.autograd.gradcheck(lambda a, b, c: eager(g, a, b, c, mask), (q, k, v))


def test_unknown_op_is_graph_error():
    with pytest.raises(GraphError, match="unknown op 'frobnicate'"):
        parse("frobnicate(Q)")
