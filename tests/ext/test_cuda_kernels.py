"""CUDA implementations of the kernel ops of autobert_ext._C (torch.ops.autobert_kernels.elementwise,
fused_softmax / fused_softmax_backward, fused_masked_adamw_ on CUDA tensors) against the CPU kernels and float64 / eager references: every opcode, multi-output
programs, masks (incl. fully padded rows and strided masks), odd and large sizes, reduced precision,
non-contiguous inputs, non-default streams, the public custom ops' routing, and bad input.

All tests need a CUDA GPU (marked ``gpu``: tests/conftest.py skips them without one) and a build of
``_C`` with CUDA kernels (skipped otherwise).
"""
import pytest
import torch

import autobert_ext
from autobert_ext import _loader
from autobert_ext.masked_adamw import masked_adamw_reference_
from autobert_ext.program import BY_NAME, OPCODES, Program, encode, run_program

from adamw_state import bits, make_state
from softmax_programs import OP, POST, POST_BWD, PRE, PRE_BWD, reference

pytestmark = pytest.mark.gpu

IMM = {"mulc": -0.7, "addc": 0.4, "const": 1.25, "gtc": 0.3, "ltc": -0.2, "fma": 0.6}
DEV = "cuda"


@pytest.fixture
def C(monkeypatch):
    """The kernel ops of a _C with CUDA kernels (the dispatcher runs the CPU or the CUDA implementation
    by the tensors' device); AUTOBERT_BACKEND unset so public ops route to them."""
    if not _loader.with_cuda():
        pytest.skip(f"autobert_ext._C has no CUDA kernels ({_loader.load_error() or 'built without CUDA'})")
    monkeypatch.delenv("AUTOBERT_BACKEND", raising=False)
    return getattr(torch.ops, _loader.NAMESPACE)


def cuda(ts):
    return [t.to(DEV) for t in ts]


def rel_err(got, exact):
    """max |got - exact| / max(|exact|, 1) over the entries where exact is finite."""
    finite = torch.isfinite(exact)
    if not finite.any():
        return 0.0
    return ((got.double() - exact)[finite].abs() / exact[finite].abs().clamp_min(1.0)).max().item()


# ---- elementwise ---------------------------------------------------------------------------------

def single_op_program(o):
    """r2 = op(r0[, r1][, imm]) over two inputs (unused ones are ignored)."""
    return Program(2, ((o.code, 2, 0 if o.arity >= 1 else -1, 1 if o.arity == 2 else -1, IMM.get(o.name, 0.0)),), (2,))


def opcode_inputs(name, shape, seed=0):
    """float32 operands (rounded once, so the float64 reference sees the same values)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(shape, generator=g, dtype=torch.float64) * 3
    y = torch.randn(shape, generator=g, dtype=torch.float64) * 3
    if name == "eq":  # some equal pairs, so both outcomes occur
        y.view(-1)[::3] = x.view(-1)[::3]
    if name == "softplus":  # cross softplus's linear threshold (20)
        x = x * 10
    return x.float(), y.float()


@pytest.mark.parametrize("name", [o.name for o in OPCODES])
def test_elementwise_every_opcode_float32(C, name):
    """error(CUDA) <= 2 * error(eager float32) + floor against float64 on the same float32 operands,
    NaN/inf where the reference has them, and agreement with the CPU kernel."""
    prog = single_op_program(BY_NAME[name])
    x, y = opcode_inputs(name, (1031,), seed=1)
    ints, floats = encode(prog)
    exact = run_program(prog, [x.double(), y.double()])[0]
    eager = run_program(prog, [x, y])[0]
    (got,) = C.elementwise(cuda([x, y]), ints, floats)
    assert got.device.type == "cuda" and got.dtype == torch.float32 and got.shape == x.shape
    got = got.cpu()
    assert torch.equal(torch.isfinite(got), torch.isfinite(exact)), name
    assert torch.equal(torch.isnan(got), torch.isnan(exact)), name
    assert rel_err(got, exact) <= 2 * rel_err(eager, exact) + 2e-6, name
    (want_cpu,) = C.elementwise([x, y], ints, floats)
    torch.testing.assert_close(got, want_cpu, rtol=4e-6, atol=4e-6, equal_nan=True)


# A 2-input, 3-output program: out0 = tanh(x) * y + 0.5, out1 = x (an input passed through),
# out2 = out0 (a register listed twice).
TWO_BY_THREE = Program(2, ((OP["tanh"], 2, 0, -1, 0.0), (OP["fma"], 3, 2, 1, 0.5)), (3, 0, 3))
# inputs x=r0, y=r1, g0=r2, g1=r3, g2=r4 -> (dx, dy)
TWO_BY_THREE_BWD = Program(5, (
    (OP["add"], 5, 2, 4, 0.0),
    (OP["tanh"], 6, 0, -1, 0.0), (OP["square"], 7, 6, -1, 0.0), (OP["mulc"], 8, 7, -1, -1.0),
    (OP["addc"], 9, 8, -1, 1.0), (OP["mul"], 10, 9, 1, 0.0), (OP["mul"], 11, 10, 5, 0.0),
    (OP["add"], 12, 11, 3, 0.0),
    (OP["mul"], 13, 6, 5, 0.0),
), (12, 13))

# (8192 blocks * 256 threads * 4 elements) + 1: the grid-stride loop takes a second step.
ODD_SHAPES = [(1,), (13,), (97, 7), (2, 3, 40, 5), (5000,), (0, 3), (8192 * 1024 + 1,)]


@pytest.mark.parametrize("shape", ODD_SHAPES)
def test_elementwise_multi_output_matches_cpu_kernel(C, shape):
    g = torch.Generator().manual_seed(2)
    x, y = (torch.randn(shape, generator=g) for _ in range(2))
    ints, floats = encode(TWO_BY_THREE)
    got = C.elementwise(cuda([x, y]), ints, floats)
    want = C.elementwise([x, y], ints, floats)
    assert len(got) == 3
    for a, b in zip(got, want):
        torch.testing.assert_close(a.cpu(), b, rtol=4e-6, atol=4e-6)
    assert torch.equal(got[1].cpu(), x)  # a passed-through input is copied exactly
    assert len({t.data_ptr() for t in got if t.numel()}) == (3 if x.numel() else 0)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_elementwise_reduced_precision_matches_cpu_kernel(C, dtype):
    """Both compute in float32 and round once: at most one ulp of the storage dtype apart."""
    g = torch.Generator().manual_seed(3)
    x, y = (torch.randn(3, 1001, generator=g).to(dtype) for _ in range(2))
    ints, floats = encode(TWO_BY_THREE)
    got = C.elementwise(cuda([x, y]), ints, floats)
    want = C.elementwise([x, y], ints, floats)
    eps = torch.finfo(dtype).eps
    for a, b in zip(got, want):
        assert a.dtype == dtype
        torch.testing.assert_close(a.cpu(), b, rtol=eps, atol=eps)


def test_elementwise_non_contiguous_inputs_and_side_stream(C):
    base = torch.randn(64, 96, device=DEV)
    x, y = base.t(), base[:, ::2].repeat(1, 2).t()
    assert not x.is_contiguous() and not y.is_contiguous()
    ints, floats = encode(TWO_BY_THREE)
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        got = C.elementwise([x, y], ints, floats)
    side.synchronize()
    want = run_program(TWO_BY_THREE, [x.double(), y.double()])
    for a, b in zip(got, want):
        assert a.is_contiguous()
        torch.testing.assert_close(a.double(), b, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("shape", [(13,), (4, 33, 7)])
def test_elementwise_public_op_forward_and_grads_on_cuda(C, shape):
    """autobert_ext.elementwise on CUDA tensors routes to the CUDA elementwise kernel, backward included."""
    g = torch.Generator().manual_seed(4)
    x64, y64 = (torch.randn(shape, generator=g, dtype=torch.float64) for _ in range(2))
    gouts = [torch.randn(shape, generator=g, dtype=torch.float64) for _ in range(3)]
    xr, yr = (t.clone().requires_grad_() for t in (x64, y64))
    want = run_program(TWO_BY_THREE, [xr, yr])
    want_grads = torch.autograd.grad(want, (xr, yr), gouts)
    xc, yc = (t.float().to(DEV).requires_grad_() for t in (x64, y64))
    got = autobert_ext.elementwise(TWO_BY_THREE, TWO_BY_THREE_BWD, [xc, yc])
    got_grads = torch.autograd.grad(got, (xc, yc), [t.float().to(DEV) for t in gouts])
    for a, b in zip(list(got) + list(got_grads), list(want) + list(want_grads)):
        assert a.device.type == "cuda"
        torch.testing.assert_close(a.double().cpu(), b, rtol=1e-5, atol=1e-5)


def _bad_elementwise_calls():
    """Built on demand: collection must not touch CUDA (the case names are listed in the test)."""
    x = torch.randn(5, device=DEV)
    ints, floats = encode(TWO_BY_THREE)
    return {
        "cpu input": (([x, x.cpu()], ints, floats), "inputs\\[1\\] is on cpu"),
        "shape": (([x, torch.randn(6, device=DEV)], ints, floats), "inputs\\[1\\] has shape"),
        "dtype": (([x, x.half()], ints, floats), "inputs\\[1\\] has dtype"),
        "float64": (([x.double(), x.double()], ints, floats), "float64"),
        "integer": (([x.int(), x.int()], ints, floats), "expected floating inputs"),
        "arity": (([x], ints, floats), "takes 2 inputs"),
        "malformed": (([x, x], ints[:-1], floats), "malformed forward program"),
        "too many inputs": (([x] * 9, *encode(Program(9, (), (0,)))), "at most 8 inputs"),
    }


@pytest.mark.parametrize("case", ["cpu input", "shape", "dtype", "float64", "integer", "arity", "malformed",
                                  "too many inputs"])
def test_elementwise_bad_input_raises_clearly(C, case):
    args, pattern = _bad_elementwise_calls()[case]
    with pytest.raises((RuntimeError, ValueError), match=pattern):
        C.elementwise(*args)


# ---- fused softmax -------------------------------------------------------------------------------

IDENTITY, IDENTITY_BWD = Program(1, (), (0,)), Program(2, (), (1,))


def reference_fwd_bwd(inputs64, mask, gout64):
    xs = [x.clone().requires_grad_() for x in inputs64]
    out = reference(PRE, POST, xs, mask)
    return [out.detach()] + list(torch.autograd.grad(out, xs, gout64))


def make(shape, seed, masked, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    xs = [(torch.randn(shape, generator=g, dtype=torch.float64) * 2).to(dtype) for _ in range(2)]
    gout = torch.randn(shape, generator=g, dtype=torch.float64).to(dtype)
    mask = None
    if masked:
        mask = torch.rand(shape[0], shape[-1], generator=g) > 0.3
        mask[0, 0] = True
        if shape[0] > 1:
            mask[-1] = False  # a batch entry whose rows have no real key: y = 0 there
    return xs, mask, gout


def softmax_calls(C, xs, mask, gout):
    out = C.fused_softmax(xs, mask, *encode(PRE), *encode(POST))
    grads = C.fused_softmax_backward(xs, mask, gout, *encode(PRE), *encode(POST_BWD), *encode(PRE_BWD))
    return [out] + list(grads)


# Rows of 1, 13 and 97 keys; rows longer than one warp step (128) and than several; many rows.
SOFTMAX_SHAPES = [(2, 3, 5, 1), (2, 2, 4, 13), (3, 1, 7, 97), (2, 3, 97), (13, 40), (2, 2, 3, 1000),
                  (1, 2, 5, 4097), (5, 4, 131, 64)]


@pytest.mark.parametrize("shape,masked", [(s, m) for s in SOFTMAX_SHAPES for m in (False, True) if len(s) >= 3 or not m])
def test_fused_softmax_fwd_bwd_float32(C, shape, masked):
    """CUDA forward and input gradients vs the float64 reference and vs the CPU kernel."""
    xs, mask, gout = make(shape, seed=len(shape) * 100 + shape[-1], masked=masked)
    want = reference_fwd_bwd([x.double() for x in xs], mask, gout.double())
    got = softmax_calls(C, cuda(xs), None if mask is None else mask.to(DEV), gout.to(DEV))
    cpu_kernel = softmax_calls(C, xs, mask, gout)
    for what, g, w, k in zip(("out", "da", "db"), got, want, cpu_kernel):
        assert g.device.type == "cuda" and g.dtype == torch.float32 and g.shape == w.shape
        torch.testing.assert_close(g.cpu().double(), w, rtol=2e-5, atol=2e-6, msg=lambda m: f"{what}: {m}")
        torch.testing.assert_close(g.cpu(), k, rtol=2e-5, atol=2e-6, msg=lambda m: f"{what} vs cpu: {m}")
    if mask is not None and shape[0] > 1:  # fully padded batch entry: out = POST(0) = 0, gradients 0
        for t in got:
            assert torch.equal(t[-1].cpu(), torch.zeros_like(t[-1].cpu()))


def test_fused_softmax_strided_mask_and_identity_programs(C):
    """A (B, C) mask with non-unit strides (read through them), PRE/POST identities, one input."""
    B, H, R, N = 3, 2, 5, 37
    g = torch.Generator().manual_seed(7)
    x = torch.randn(B, H, R, N, generator=g)
    gout = torch.randn(B, H, R, N, generator=g)
    mask = (torch.rand(N, B, generator=g) > 0.4).t()  # strides (1, B)
    mask[:, 0] = True
    assert not mask.is_contiguous()
    ids = (*encode(IDENTITY), *encode(IDENTITY))
    out = C.fused_softmax([x.to(DEV)], mask.to(DEV), *ids)
    assert not mask.to(DEV).is_contiguous()
    want = reference(IDENTITY, IDENTITY, [x.double()], mask)
    torch.testing.assert_close(out.cpu().double(), want, rtol=2e-5, atol=2e-6)
    (gx,) = C.fused_softmax_backward([x.to(DEV)], mask.to(DEV), gout.to(DEV), *encode(IDENTITY),
                                          *encode(IDENTITY_BWD), *encode(IDENTITY_BWD))
    (want_gx,) = C.fused_softmax_backward([x], mask.contiguous(), gout, *encode(IDENTITY), *encode(IDENTITY_BWD),
                                          *encode(IDENTITY_BWD))
    torch.testing.assert_close(gx.cpu(), want_gx, rtol=2e-5, atol=2e-6)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("masked", [False, True])
def test_fused_softmax_reduced_precision_matches_cpu_kernel(C, dtype, masked):
    """bfloat16/float16 storage, float32 compute, one rounding (forward and backward): within one
    ulp of the storage dtype of the CPU kernel (which computes the same way)."""
    xs, mask, gout = make((2, 3, 9, 300), seed=11, masked=masked, dtype=dtype)
    got = softmax_calls(C, cuda(xs), None if mask is None else mask.to(DEV), gout.to(DEV))
    want = softmax_calls(C, xs, mask, gout)
    eps = torch.finfo(dtype).eps
    for what, g, w in zip(("out", "da", "db"), got, want):
        assert g.dtype == dtype
        scale = w.float().abs().max().item()
        torch.testing.assert_close(g.cpu().float(), w.float(), rtol=eps, atol=eps * max(scale, 1e-3),
                                   msg=lambda m: f"{what}: {m}")


def test_fused_softmax_empty_and_public_op_on_cuda(C):
    """Zero-size inputs, and autobert_ext.fused_softmax on CUDA tensors (forward + autograd)."""
    empty = torch.randn(2, 0, 5, device=DEV)
    assert C.fused_softmax([empty], None, *encode(IDENTITY), *encode(IDENTITY)).shape == empty.shape
    xs, mask, gout = make((2, 4, 6, 50), seed=13, masked=True)
    want = reference_fwd_bwd([x.double() for x in xs], mask, gout.double())
    xc = [x.to(DEV).requires_grad_() for x in xs]
    out = autobert_ext.fused_softmax(PRE, PRE_BWD, POST, POST_BWD, xc, mask.to(DEV))
    grads = torch.autograd.grad(out, xc, gout.to(DEV))
    for g, w in zip([out] + list(grads), want):
        assert g.device.type == "cuda"
        torch.testing.assert_close(g.detach().cpu().double(), w, rtol=2e-5, atol=2e-6)


def _bad_softmax_calls():
    x = torch.randn(2, 3, 4, 5, device=DEV)
    mask = torch.ones(2, 5, dtype=torch.bool, device=DEV)
    pre, post = encode(PRE), encode(POST)
    return {
        "cpu input": (([x, x.cpu()], mask, *pre, *post), "inputs\\[1\\] is on cpu"),
        "cpu mask": (([x, x], mask.cpu(), *pre, *post), "key_padding_mask is on cpu"),
        "mask shape": (([x, x], mask[:, :4], *pre, *post), "key_padding_mask must have shape"),
        "mask dtype": (([x, x], mask.float(), *pre, *post), "key_padding_mask must be bool"),
        "float64": (([x.double(), x.double()], mask, *pre, *post), "float64"),
        "rank 1": (([x[0, 0, 0], x[0, 0, 0]], None, *pre, *post), "rank"),
        "pre arity": (([x], None, *pre, *post), "malformed pre program"),
    }


@pytest.mark.parametrize("case", ["cpu input", "cpu mask", "mask shape", "mask dtype", "float64", "rank 1",
                                  "pre arity"])
def test_fused_softmax_bad_input_raises_clearly(C, case):
    args, pattern = _bad_softmax_calls()[case]
    with pytest.raises((RuntimeError, ValueError), match=pattern):
        C.fused_softmax(*args)


def test_fused_softmax_backward_bad_grad_raises_clearly(C):
    x = torch.randn(2, 3, 4, 5, device=DEV)
    args = (*encode(PRE), *encode(POST_BWD), *encode(PRE_BWD))
    with pytest.raises(RuntimeError, match="grad is on cpu"):
        C.fused_softmax_backward([x, x], None, x.cpu(), *args)
    with pytest.raises(RuntimeError, match="grad has shape"):
        C.fused_softmax_backward([x, x], None, x[0], *args)


# ---- masked AdamW --------------------------------------------------------------------------------

HYPER = dict(lr=1e-2, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.1)
# Odd sizes, an empty tensor, more tensors than one launch holds (24) and a tensor longer than one
# launch's chunk table (256 chunks of 65536).
ADAMW_SHAPES = [(1,), (7,), (13,), (97,), (40, 7), (3, 5, 13), (0, 3), (1000,), (4099,)] + [(31,)] * 20 + [
    (256 * 65536 + 4097,)]


def adamw_step_inputs(shapes, dtype, seed):
    g = torch.Generator().manual_seed(seed)
    grads = [torch.randn(s, generator=g, dtype=torch.float64).to(dtype) for s in shapes]
    masks = [None if i % 5 == 0 else torch.rand(s, generator=g) < 0.5 for i, s in enumerate(shapes)]
    return grads, masks


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16, torch.float16])
def test_masked_adamw_matches_cpu_and_keeps_inactive_bits(C, dtype):
    """Several steps with per-tensor step counts: the CUDA kernel vs the CPU kernel (float16: the
    eager reference, which also computes in float32), and inactive entries keep their bits."""
    ps, ms, vs = make_state(ADAMW_SHAPES, dtype, seed=0)
    dev = [cuda(ps), cuda(ms), cuda(vs)]
    host = [ps, ms, vs]
    eps = torch.finfo(dtype).eps
    for step in range(1, 4):
        grads, masks = adamw_step_inputs(ADAMW_SHAPES, dtype, seed=step)
        steps = [step + (i % 3) for i in range(len(ADAMW_SHAPES))]
        before = [bits(t).clone() for t in dev[0] + dev[1] + dev[2]]
        dmasks = [None if m is None else m.to(DEV) for m in masks]
        C.fused_masked_adamw(dev[0], cuda(grads), dev[1], dev[2], dmasks, steps, *HYPER.values())
        if dtype == torch.float16:
            masked_adamw_reference_(host[0], grads, host[1], host[2], masks, steps, *HYPER.values())
        else:
            C.fused_masked_adamw_(host[0], grads, host[1], host[2], masks, steps, *HYPER.values())
        after = dev[0] + dev[1] + dev[2]
        for k, (b, a) in enumerate(zip(before, after)):
            m = dmasks[k % len(ADAMW_SHAPES)]
            if m is not None:
                assert torch.equal(bits(a)[~m], b[~m]), f"inactive entries of tensor {k} changed"
        for d, h in zip(after, host[0] + host[1] + host[2]):
            torch.testing.assert_close(d.cpu(), h, rtol=8 * eps, atol=8 * eps)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_masked_adamw_optimizer_on_cuda_matches_torch_adamw(C, dtype):
    """MaskedAdamW without masks on CUDA parameters (public op -> the CUDA kernel) follows
    torch.optim.AdamW on the same device."""
    shapes = [(13,), (40, 7), (3, 5, 13), (4099,)]
    g = torch.Generator().manual_seed(5)
    init = [torch.randn(s, generator=g, dtype=dtype) for s in shapes]
    ref = [p.to(DEV).requires_grad_() for p in init]
    mine = [p.to(DEV).requires_grad_() for p in init]
    opt_ref = torch.optim.AdamW(ref, lr=1e-2, weight_decay=0.1)
    opt = autobert_ext.MaskedAdamW(mine, lr=1e-2, weight_decay=0.1)
    for _ in range(5):
        for r, q in zip(ref, mine):
            grad = torch.randn(r.shape, generator=g, dtype=dtype).to(DEV)
            r.grad, q.grad = grad.clone(), grad.clone()
        opt_ref.step()
        opt.step()
    eps = torch.finfo(dtype).eps
    for r, q in zip(ref, mine):
        torch.testing.assert_close(q, r, rtol=8 * eps, atol=8 * eps)


def test_masked_adamw_public_op_with_masks_on_cuda(C):
    shapes = [(7,), (40, 7), (0,), (1000,)]
    ps, ms, vs = make_state(shapes, torch.float32, seed=9)
    grads, masks = adamw_step_inputs(shapes, torch.float32, seed=10)
    dev = [cuda(ps), cuda(ms), cuda(vs)]
    autobert_ext.fused_masked_adamw_(dev[0], cuda(grads), dev[1], dev[2],
                                     [None if m is None else m.to(DEV) for m in masks], step=4, **HYPER)
    masked_adamw_reference_(ps, grads, ms, vs, masks, [4], *HYPER.values())
    for d, h in zip(dev[0] + dev[1] + dev[2], ps + ms + vs):
        torch.testing.assert_close(d.cpu(), h, rtol=8e-7, atol=8e-7)


def _bad_adamw_calls():
    p = torch.randn(5, device=DEV)
    t = lambda: torch.randn(5, device=DEV)  # noqa: E731
    return {
        "cpu param": (([p.cpu()], [t().cpu()], [t().cpu()], [t().cpu()], [None], [1]), "params\\[0\\] is on cpu"),
        "cpu mask": (([p], [t()], [t()], [t()], [torch.ones(5, dtype=torch.bool)], [1]),
                     "masks\\[0\\] is on cpu but params\\[0\\] is on cuda"),
        "dtype mix": (([p], [t().double()], [t()], [t()], [None], [1]), "grads\\[0\\] has dtype"),
        "length": (([p], [t(), t()], [t()], [t()], [None], [1]), "grads has 2 tensors"),
        "step 0": (([p], [t()], [t()], [t()], [None], [0]), "steps\\[0\\] is 0"),
        "non-contiguous": (([torch.randn(5, 2, device=DEV).t()], [t().view(1, 5).expand(2, 5)], [t()], [t()],
                            [None], [1]), "params\\[0\\] is not contiguous"),
        "shared": (([p], [t()], [p], [t()], [None], [1]), "are the same memory"),
        "integer": (([p.int()], [t().int()], [t().int()], [t().int()], [None], [1]), "supported dtypes"),
    }


@pytest.mark.parametrize("case", ["cpu param", "cpu mask", "dtype mix", "length", "step 0", "non-contiguous",
                                  "shared", "integer"])
def test_masked_adamw_bad_input_raises_clearly(C, case):
    args, pattern = _bad_adamw_calls()[case]
    with pytest.raises(RuntimeError, match=pattern):
        C.fused_masked_adamw(*args, *HYPER.values())
