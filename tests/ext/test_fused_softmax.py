"""fused_softmax (C++ kernel and eager fallback) vs a float64 reference built from run_program +
torch ops: forward, input gradients, masks incl. a fully padded row, odd sizes, float32 error
budget, non-contiguous inputs, opcheck and bad input."""
import pytest
import torch

import autobert_ext
from autobert_ext import reference as R
from autobert_ext.fused_softmax import _fused_softmax_backward_op, _fused_softmax_op
from autobert_ext.program import Program, encode

from softmax_programs import POST, POST_BWD, PRE, PRE_BWD, reference

def make(shape, n=2, dtype=torch.float64, seed=0, masked=False):
    g = torch.Generator().manual_seed(seed)
    xs = [(torch.randn(shape, generator=g, dtype=torch.float64) * 2).to(dtype) for _ in range(n)]
    mask = None
    if masked:
        mask = torch.rand(shape[0], shape[-1], generator=g) > 0.3
        mask[0, 0] = True
        if shape[0] > 1:
            mask[-1] = False  # a batch entry whose rows have no valid column
    return xs, mask


@pytest.fixture(params=["cpp", "eager"])
def backend(request, monkeypatch):
    if request.param == "cpp" and not autobert_ext.available():
        pytest.skip("autobert_ext._C is not built")
    monkeypatch.setenv("AUTOBERT_BACKEND", request.param)
    return request.param


def fwd_and_grads(fn, xs, gout):
    xs = [x.detach().clone().requires_grad_() for x in xs]
    out = fn(xs)
    return [out] + list(torch.autograd.grad(out, xs, gout))


SHAPES = [(2, 3, 5, 1), (2, 2, 4, 13), (3, 1, 7, 97), (2, 3, 97), (13, 40)]


# A key mask needs a batch axis: rank-2 inputs run unmasked only.
@pytest.mark.parametrize("shape,masked", [(s, m) for s in SHAPES for m in (False, True) if len(s) >= 3 or not m])
def test_matches_float64_reference(backend, shape, masked):
    xs, mask = make(shape, seed=len(shape) * 100 + shape[-1], masked=masked)
    gout = torch.randn(shape, dtype=torch.float64)
    want = fwd_and_grads(lambda t: reference(PRE, POST, t, mask), xs, gout)
    got = fwd_and_grads(lambda t: autobert_ext.fused_softmax(PRE, PRE_BWD, POST, POST_BWD, t, mask), xs, gout)
    for w, g, what in zip(want, got, ("out", "da", "db")):
        torch.testing.assert_close(g, w, rtol=1e-10, atol=1e-10, msg=lambda m: f"{what}: {m}")


def test_identity_programs_are_plain_softmax(backend):
    (x,), mask = make((2, 2, 6, 11), n=1, masked=True)
    x.requires_grad_()
    out = autobert_ext.fused_softmax(None, None, None, None, [x], mask)
    want = reference(Program(1, (), (0,)), Program(1, (), (0,)), [x], mask)
    torch.testing.assert_close(out, want)
    g = torch.randn_like(out)
    (gx,) = torch.autograd.grad(out, x, g)
    (gw,) = torch.autograd.grad(want, x, g)
    torch.testing.assert_close(gx, gw)


@pytest.mark.parametrize("shape", [(2, 4, 9, 13), (1, 2, 33, 300)])
def test_float32_error_within_eager_budget(backend, shape):
    xs, mask = make(shape, seed=5, masked=True)
    gout = torch.randn(shape, dtype=torch.float64)
    exact = fwd_and_grads(lambda t: reference(PRE, POST, t, mask), xs, gout)
    xs32 = [x.float() for x in xs]
    eager = fwd_and_grads(lambda t: reference(PRE, POST, t, mask), xs32, gout.float())
    kern = fwd_and_grads(lambda t: autobert_ext.fused_softmax(PRE, PRE_BWD, POST, POST_BWD, t, mask), xs32,
                         gout.float())
    for e, k, x in zip(eager, kern, exact):
        assert k.dtype == torch.float32
        err = lambda a: ((a.double() - x).abs().max() / x.abs().max().clamp_min(1.0)).item()  # noqa: E731
        assert err(k) <= 2 * err(e) + 1e-6


def test_gradcheck(backend):
    xs, mask = make((2, 1, 3, 5), seed=9, masked=True)
    xs = [x.requires_grad_() for x in xs]
    assert torch.autograd.gradcheck(lambda a, b: autobert_ext.fused_softmax(PRE, PRE_BWD, POST, POST_BWD, [a, b], mask),
                                    tuple(xs))


def test_non_contiguous_inputs(backend):
    g = torch.Generator().manual_seed(4)
    a, b = (torch.randn(2, 17, 3, 6, generator=g, dtype=torch.float64).transpose(1, 2) for _ in range(2))
    mask = torch.rand(2, 6, generator=g) > 0.2
    want = reference(PRE, POST, [a, b], mask)
    got = autobert_ext.fused_softmax(PRE, PRE_BWD, POST, POST_BWD, [a, b], mask)
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)


@pytest.mark.skipif(not autobert_ext.available(), reason="autobert_ext._C is not built")
def test_reference_gradients_are_zero_on_fully_padded_rows():
    """The eager reference under autograd (the oracle of the Triton tests): a row without a real
    column has output 0 and zero, not NaN, gradients."""
    xs, mask = make((2, 3, 4, 6), masked=True)
    x = xs[0].requires_grad_()
    y = R.masked_softmax(x, mask)
    (g,) = torch.autograd.grad((y * torch.randn_like(y)).sum(), x)
    assert bool(torch.isfinite(g).all()) and bool((g[-1] == 0).all()) and bool((y[-1] == 0).all())


def test_bfloat16_computes_in_float32():
    xs, mask = make((2, 2, 5, 19), dtype=torch.bfloat16, seed=6, masked=True)
    got = autobert_ext.fused_softmax(PRE, PRE_BWD, POST, POST_BWD, xs, mask)
    want = reference(PRE, POST, [x.float() for x in xs], mask)
    assert got.dtype == torch.bfloat16
    torch.testing.assert_close(got.float(), want, rtol=1e-2, atol=1e-2)


def test_missing_derivative_raises_on_backward(backend):
    xs, _ = make((2, 3, 4))
    xs[0].requires_grad_()
    out = autobert_ext.fused_softmax(PRE, PRE_BWD, POST, None, xs)
    with pytest.raises(RuntimeError, match="not differentiable"):
        out.sum().backward()


def _args(masked=True):
    xs, mask = make((2, 3, 4, 9), seed=1, masked=masked)
    return xs, mask, [*encode(PRE), *encode(PRE_BWD), *encode(POST), *encode(POST_BWD)]


@pytest.mark.parametrize("masked", [False, True])
def test_opcheck(backend, masked):
    xs, mask, progs = _args(masked)
    xs = [x.requires_grad_() for x in xs]
    torch.library.opcheck(_fused_softmax_op, (xs, mask, *progs))
    g = torch.randn_like(xs[0])
    bwd_args = ([x.detach() for x in xs], mask, g, *encode(PRE), *encode(POST_BWD), *encode(PRE_BWD))
    torch.library.opcheck(_fused_softmax_backward_op, bwd_args)


def _bad_calls():
    xs, mask, progs = _args()
    a, b = xs
    pre_i, pre_f = progs[0], progs[1]
    rest = progs[2:]
    return {
        "no_inputs": (([], None, *progs), "at least one"),
        "count": (([a], None, *progs), "inputs"),
        "rank": (([a[0, 0, 0], b[0, 0, 0]], None, *progs), "rank"),
        "shape": (([a, b[..., :4]], None, *progs), "shape"),
        "dtype_mix": (([a, b.float()], None, *progs), "dtype"),
        "int": (([a.long(), b.long()], None, *progs), "floating"),
        "mask_shape": (([a, b], mask[:, :3], *progs), "key_padding_mask"),
        "mask_dtype": (([a, b], mask.float(), *progs), "bool"),
        "mask_rank2_input": (([a[0, 0], b[0, 0]], mask[:, :9], *progs), "rank >= 3"),
        "pre_opcode": (([a, b], None, [2, 1, 1, 99, 2, 0, 1, 2], [0.0], *rest), "opcode"),
        "pre_length": (([a, b], None, pre_i[:-2], pre_f, *rest), "encoding"),
        "post_arity": (([a, b], None, pre_i, pre_f, *progs[2:4], *encode(PRE), *progs[6:]), "post"),
    }


@pytest.mark.parametrize("case", list(_bad_calls()))
def test_bad_input_raises_clearly(backend, case):
    args, match = _bad_calls()[case]
    with pytest.raises((RuntimeError, ValueError), match=match):
        _fused_softmax_op(*args)


@pytest.mark.skipif(not autobert_ext.available(), reason="autobert_ext._C is not built")
@pytest.mark.parametrize("case", list(_bad_calls()))
def test_bad_input_raises_in_the_binding_too(case):
    (inputs, mask, pre_i, pre_f, _pbi, _pbf, post_i, post_f, _qbi, _qbf), _ = _bad_calls()[case]
    with pytest.raises((RuntimeError, ValueError)):
        torch.ops.autobert_kernels.fused_softmax(inputs, mask, pre_i, pre_f, post_i, post_f)
