"""elementwise (C++ kernel and eager fallback) vs run_program in float64: every opcode, multi-output
programs, gradients through a backward program, float32 error budget, odd sizes, non-contiguous
inputs, opcheck and bad input."""
import pytest
import torch

import autobert_ext
from autobert_ext.elementwise import _elementwise_op
from autobert_ext.program import BY_NAME, OPCODES, Program, encode, run_program

OP = {name: o.code for name, o in BY_NAME.items()}
IMM = {"mulc": -0.7, "addc": 0.4, "const": 1.25, "gtc": 0.3, "ltc": -0.2, "fma": 0.6}


def single_op_program(o):
    """r2 = op(r0[, r1][, imm]) over two inputs (unused ones are ignored)."""
    return Program(2, ((o.code, 2, 0 if o.arity >= 1 else -1, 1 if o.arity == 2 else -1, IMM.get(o.name, 0.0)),), (2,))


def inputs_for(name, shape, dtype=torch.float64, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(shape, generator=g, dtype=torch.float64) * 3
    y = torch.randn(shape, generator=g, dtype=torch.float64) * 3
    if name == "eq":  # make some pairs equal so both outcomes occur
        y.view(-1)[::3] = x.view(-1)[::3]
    if name == "softplus":  # cross softplus's linear threshold (20)
        x = x * 10
    return x.to(dtype), y.to(dtype)


@pytest.fixture(params=["cpp", "eager"])
def backend(request, monkeypatch):
    if request.param == "cpp" and not autobert_ext.available():
        pytest.skip("autobert_ext._C is not built")
    monkeypatch.setenv("AUTOBERT_BACKEND", request.param)
    return request.param


@pytest.mark.parametrize("name", [o.name for o in OPCODES])
def test_every_opcode_float64(backend, name):
    o = BY_NAME[name]
    prog = single_op_program(o)
    x, y = inputs_for(name, (3, 37))
    want = run_program(prog, [x, y])[0]
    (got,) = autobert_ext.elementwise(prog, None, [x, y])
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12, equal_nan=True)


@pytest.mark.parametrize("name", [o.name for o in OPCODES])
def test_every_opcode_float32_error_budget(name):
    """error(kernel fp32) <= 2 * error(eager fp32) + floor, both measured against float64."""
    o = BY_NAME[name]
    prog = single_op_program(o)
    x, y = inputs_for(name, (1031,), seed=1)
    exact = run_program(prog, [x, y])[0]
    eager = run_program(prog, [x.float(), y.float()])[0].double()
    (kern,) = autobert_ext.elementwise(prog, None, [x.float(), y.float()])
    finite = torch.isfinite(exact)
    assert torch.equal(torch.isfinite(kern.double()), finite)
    scale = exact[finite].abs().clamp_min(1.0)
    err_k = ((kern.double() - exact)[finite].abs() / scale).max()
    err_e = ((eager - exact)[finite].abs() / scale).max()
    assert err_k <= 2 * err_e + 2e-6


# A 2-input, 3-output program: out0 = tanh(x) * y + 0.5, out1 = x (an input passed through),
# out2 = out0 (a register listed twice), exercising every output placement of the interpreter.
TWO_BY_THREE = Program(2, ((OP["tanh"], 2, 0, -1, 0.0), (OP["fma"], 3, 2, 1, 0.5)), (3, 0, 3))
# d out0/dx = (1 - tanh^2 x) y, d out0/dy = tanh x; out1 = x; out2 = out0.
# inputs: x=r0, y=r1, g0=r2, g1=r3, g2=r4.
TWO_BY_THREE_BWD = Program(5, (
    (OP["add"], 5, 2, 4, 0.0),            # g = g0 + g2
    (OP["tanh"], 6, 0, -1, 0.0), (OP["square"], 7, 6, -1, 0.0), (OP["mulc"], 8, 7, -1, -1.0),
    (OP["addc"], 9, 8, -1, 1.0), (OP["mul"], 10, 9, 1, 0.0), (OP["mul"], 11, 10, 5, 0.0),
    (OP["add"], 12, 11, 3, 0.0),          # dx
    (OP["mul"], 13, 6, 5, 0.0),           # dy
), (12, 13))


@pytest.mark.parametrize("shape", [(1,), (13,), (97, 7), (2, 3, 40, 5), (5000,)])
def test_multi_output_forward_and_grads(backend, shape):
    g = torch.Generator().manual_seed(2)
    x, y = (torch.randn(shape, generator=g, dtype=torch.float64, requires_grad=True) for _ in range(2))
    gouts = [torch.randn(shape, generator=g, dtype=torch.float64) for _ in range(3)]
    want = run_program(TWO_BY_THREE, [x, y])
    want_grads = torch.autograd.grad(want, (x, y), gouts)
    got = autobert_ext.elementwise(TWO_BY_THREE, TWO_BY_THREE_BWD, [x, y])
    assert len(got) == 3
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
    got_grads = torch.autograd.grad(got, (x, y), gouts)
    for a, b in zip(got_grads, want_grads):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


def test_gradcheck(backend):
    g = torch.Generator().manual_seed(3)
    x, y = (torch.randn(4, 5, generator=g, dtype=torch.float64, requires_grad=True) for _ in range(2))
    assert torch.autograd.gradcheck(lambda a, b: autobert_ext.elementwise(TWO_BY_THREE, TWO_BY_THREE_BWD, [a, b]),
                                    (x, y))


def test_program_without_instructions(backend):
    x = torch.randn(2, 3, dtype=torch.float64, requires_grad=True)
    (out,) = autobert_ext.elementwise(Program(1, (), (0,)), Program(2, (), (1,)), [x])
    assert torch.equal(out, x) and out.data_ptr() != x.data_ptr()
    g = torch.randn_like(x)
    out.backward(g)
    assert torch.equal(x.grad, g)


def test_unused_output_grads(backend):
    x, y = (torch.randn(6, dtype=torch.float64, requires_grad=True) for _ in range(2))
    out0, _, _ = autobert_ext.elementwise(TWO_BY_THREE, TWO_BY_THREE_BWD, [x, y])
    out0.sum().backward()
    torch.testing.assert_close(y.grad, torch.tanh(x.detach()))


def test_non_contiguous_and_outputs_fresh(backend):
    base = torch.randn(8, 12, dtype=torch.float64)
    x, y = base.t(), base[:, ::2].repeat(1, 2).t()
    assert not x.is_contiguous()
    outs = autobert_ext.elementwise(TWO_BY_THREE, None, [x, y])
    for a, b in zip(outs, run_program(TWO_BY_THREE, [x, y])):
        torch.testing.assert_close(a, b)
    assert outs[1].data_ptr() != x.data_ptr() and outs[0].data_ptr() != outs[2].data_ptr()


@pytest.mark.skipif(not autobert_ext.available(), reason="autobert_ext._C is not built")
def test_bfloat16_computes_in_float32():
    x, y = (torch.randn(257).bfloat16() for _ in range(2))
    outs = autobert_ext.elementwise(TWO_BY_THREE, None, [x, y])
    want = run_program(TWO_BY_THREE, [x.float(), y.float()])
    assert outs[0].dtype == torch.bfloat16
    torch.testing.assert_close(outs[0].float(), want[0].bfloat16().float())


def test_no_bwd_raises_on_backward(backend):
    x = torch.randn(5, requires_grad=True)
    (out,) = autobert_ext.elementwise(single_op_program(BY_NAME["tanh"]), None, [x, x])
    with pytest.raises(RuntimeError, match="not differentiable"):
        out.sum().backward()


def test_opcheck(backend):
    x, y = (torch.randn(3, 7, dtype=torch.float64, requires_grad=True) for _ in range(2))
    args = ([x, y], *encode(TWO_BY_THREE), *encode(TWO_BY_THREE_BWD))
    torch.library.opcheck(_elementwise_op, args)
    torch.library.opcheck(_elementwise_op, ([x.detach(), y.detach()], *encode(single_op_program(BY_NAME["exp"])), [], []))


def _bad_calls():
    x = torch.randn(4, 5)
    fi, ff = encode(TWO_BY_THREE)
    bi, bf = encode(TWO_BY_THREE_BWD)
    return {
        "no_inputs": (([], fi, ff, bi, bf), "at least one"),
        "count": (([x], fi, ff, [], []), "inputs"),
        "shape": (([x, x[:, :3]], fi, ff, [], []), "shape"),
        "dtype_mix": (([x, x.double()], fi, ff, [], []), "dtype"),
        "int": (([x.long(), x.long()], fi, ff, [], []), "floating"),
        "opcode": (([x], [1, 1, 1, 77, 1, 0, -1, 1], [0.0], [], []), "opcode"),
        "ssa": (([x], [1, 1, 1, 2, 3, 0, -1, 1], [0.0], [], []), "SSA"),
        "source": (([x], [1, 1, 1, 17, 1, 0, 4, 1], [0.0], [], []), "not defined"),
        "output": (([x], [1, 1, 1, 2, 1, 0, -1, 9], [0.0], [], []), "out of range"),
        "length": (([x], [1, 1, 1, 2, 1, 0], [0.0], [], []), "encoding"),
        "floats": (([x], [1, 1, 1, 2, 1, 0, -1, 1], [], [], []), "encoding"),
        "short": (([x], [1], [], [], []), "too short"),
        "no_outputs": (([x], [1, 0, 0], [], [], []), "no outputs"),
        "bwd_arity": (([x, x], fi, ff, fi, ff), "backward"),
    }


@pytest.mark.parametrize("case", list(_bad_calls()))
def test_bad_input_raises_clearly(backend, case):
    args, match = _bad_calls()[case]
    with pytest.raises((RuntimeError, ValueError), match=match):
        _elementwise_op(*args)


@pytest.mark.skipif(not autobert_ext.available(), reason="autobert_ext._C is not built")
@pytest.mark.parametrize("case", [c for c in _bad_calls() if c != "bwd_arity"])
def test_bad_input_raises_in_the_binding_too(case):
    (inputs, fi, ff, _bi, _bf), _match = _bad_calls()[case]
    with pytest.raises((RuntimeError, ValueError)):
        torch.ops.autobert_kernels.elementwise(inputs, fi, ff)


def test_signed_zero_immediates_are_distinct_programs(backend):
    """Programs are cached by encoding: -0.0 and 0.0 must not share an entry (1/(x*-0) = -inf)."""
    x = torch.rand(4, dtype=torch.float64) + 0.5
    pos, neg = (Program(1, ((OP["mulc"], 1, 0, -1, z), (OP["recip"], 2, 1, -1, 0.0)), (2,)) for z in (0.0, -0.0))
    assert torch.equal(autobert_ext.elementwise(pos, None, [x])[0], torch.full_like(x, float("inf")))
    assert torch.equal(autobert_ext.elementwise(neg, None, [x])[0], torch.full_like(x, float("-inf")))


def test_unknown_backend_env_is_rejected(monkeypatch):
    monkeypatch.setenv("AUTOBERT_BACKEND", "fortran")
    with pytest.raises(ValueError, match="AUTOBERT_BACKEND"):
        autobert_ext.elementwise(TWO_BY_THREE, None, [torch.randn(3), torch.randn(3)])
