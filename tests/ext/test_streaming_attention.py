"""streaming_attention (C++ kernel and eager fallback) vs a float64 reference built from
run_program + torch ops: forward, q/k/v gradients, masks, odd sizes, float32 error budget,
non-contiguous inputs, opcheck and bad input."""
import math

import pytest
import torch

import autobert_ext
from autobert_ext import reference as R
from autobert_ext.program import BY_NAME, Program
from autobert_ext.streaming_attention import _attention_backward_op, _attention_op

OP = {name: o.code for name, o in BY_NAME.items()}
C = 0.3  # score scale used by every test program


def prog(n_inputs, body, out=None):
    """Program from [(name, a, b, imm)]; registers numbered in order after the inputs."""
    instrs = tuple((OP[name], n_inputs + i, a, b, float(imm)) for i, (name, a, b, imm) in enumerate(body))
    return Program(n_inputs, instrs, (out if out is not None else n_inputs + len(body) - 1,))


# (score f, derivative (s, g) -> g * f'(s)), hand-written.
SCORES = {
    "scaled": (prog(1, [("mulc", 0, -1, C)]), prog(2, [("mulc", 1, -1, C)])),
    "identity": (Program(1, (), (0,)), Program(2, (), (1,))),
    "tanh": (prog(1, [("mulc", 0, -1, C), ("tanh", 1, -1, 0)]),
             prog(2, [("mulc", 0, -1, C), ("tanh", 2, -1, 0), ("square", 3, -1, 0), ("mulc", 4, -1, -1.0),
                      ("addc", 5, -1, 1.0), ("mul", 6, 1, 0), ("mulc", 7, -1, C)])),
    # t = softsign(sqrt(c s)) + gelu(c s): safe sqrt, softsign and gelu chained and summed.
    "sqrt_softsign_gelu": (
        prog(1, [("mulc", 0, -1, C), ("sqrt", 1, -1, 0), ("softsign", 2, -1, 0), ("gelu", 1, -1, 0),
                 ("add", 3, 4, 0)]),
        prog(2, [("mulc", 0, -1, C),                                                  # r2 = u
                 ("abs", 2, -1, 0), ("addc", 3, -1, 1e-6), ("rsqrt", 4, -1, 0), ("mulc", 5, -1, 0.5),  # r6 sqrt'(u)
                 ("sqrt", 2, -1, 0), ("abs", 7, -1, 0), ("addc", 8, -1, 1.0), ("square", 9, -1, 0),
                 ("recip", 10, -1, 0),                                                # r11 softsign'(sqrt u)
                 ("mul", 6, 11, 0), ("dgelu", 2, -1, 0), ("add", 12, 13, 0), ("mul", 14, 1, 0),
                 ("mulc", 15, -1, C)])),
    # t = relu(c s) + 0.1 s + 0.05 s^2: the derivative reads a constant and s itself next to g.
    "relu_poly": (
        prog(1, [("mulc", 0, -1, C), ("relu", 1, -1, 0), ("mulc", 0, -1, 0.1), ("square", 0, -1, 0),
                 ("mulc", 4, -1, 0.05), ("add", 2, 3, 0), ("add", 6, 5, 0)]),
        prog(2, [("const", -1, -1, 0.1), ("mul", 1, 2, 0),                  # r3 = 0.1 g
                 ("gtc", 0, -1, 0.0), ("mulc", 4, -1, C), ("mul", 1, 5, 0),  # r6 = c [s > 0] g
                 ("add", 6, 3, 0), ("mul", 1, 0, 0), ("mulc", 8, -1, 0.1),  # r9 = 0.1 s g
                 ("add", 7, 9, 0)])),
}


def reference(q, k, v, score, norm, mask):
    """(B, H, N, d) eager attention, the one reference (``autobert_ext.reference``); its autograd
    checks the kernels' hand-written backward."""
    return R.streaming_attention(q, k, v, score, norm, mask)[0]


def make(shape, dtype=torch.float64, seed=0, mask_kind=None):
    g = torch.Generator().manual_seed(seed)
    q, k, v = (torch.randn(shape, generator=g, dtype=torch.float64).to(dtype) for _ in range(3))
    B, _, N, _ = shape
    mask = None
    if mask_kind == "random":  # a fully padded row in the last batch entry, a real key in the first
        mask = torch.rand(B, N, generator=g) > 0.3
        mask[0, 0] = True
        if B > 1:
            mask[-1] = False
    elif mask_kind == "prefix":  # leading keys padded; for N > 128 a whole key block, which the kernel skips
        mask = torch.zeros(B, N, dtype=torch.bool)
        mask[:, 128 if N > 128 else N // 2:] = True
    return q, k, v, mask


def grads(fn, q, k, v, gout):
    q, k, v = (t.detach().clone().requires_grad_() for t in (q, k, v))
    out = fn(q, k, v)
    return (out,) + torch.autograd.grad(out, (q, k, v), gout)


def use_backend(monkeypatch, backend):
    if backend == "cpp" and not autobert_ext.available():
        pytest.skip("autobert_ext._C is not built")
    monkeypatch.setenv("AUTOBERT_BACKEND", backend)


@pytest.fixture(params=["cpp", "eager"])
def backend(request, monkeypatch):
    use_backend(monkeypatch, request.param)
    return request.param


@pytest.fixture
def cpp(monkeypatch):
    use_backend(monkeypatch, "cpp")


SHAPES = [(2, 2, 1, 7), (1, 2, 13, 7), (2, 1, 97, 40), (1, 1, 150, 16)]
# The kernel gets the whole matrix; the eager fallback (the same formulas in torch) a corner of it.
CASES = [(b, shape, mask_kind, norm, name)
         for b in ("cpp", "eager") for shape in SHAPES for mask_kind in (None, "random", "prefix")
         for norm in ("softmax", "none") for name in SCORES
         if b == "cpp" or (shape in SHAPES[1:3] and mask_kind != "prefix" and name in ("scaled", "tanh"))]


@pytest.mark.parametrize("backend_name,shape,mask_kind,norm,name", CASES)
def test_matches_float64_reference(monkeypatch, backend_name, shape, mask_kind, norm, name):
    use_backend(monkeypatch, backend_name)
    score, score_bwd = SCORES[name]
    q, k, v, mask = make(shape, seed=hash((shape, name)) % 1000, mask_kind=mask_kind)
    gout = torch.randn(shape, dtype=torch.float64)
    want = grads(lambda a, b, c: reference(a, b, c, score, norm, mask), q, k, v, gout)
    got = grads(lambda a, b, c: autobert_ext.streaming_attention(a, b, c, score, score_bwd, norm, mask), q, k, v, gout)
    for w, g, what in zip(want, got, ("out", "dq", "dk", "dv")):
        torch.testing.assert_close(g, w, rtol=1e-9, atol=1e-9, msg=lambda m: f"{what}: {m}")


def _err(x, ref):
    return ((x.double() - ref).abs().max() / ref.abs().max().clamp_min(1.0)).item()


@pytest.mark.parametrize("shape", [(2, 2, 13, 7), (1, 2, 97, 40), (1, 1, 200, 64)])
@pytest.mark.parametrize("norm", ["softmax", "none"])
@pytest.mark.parametrize("name", ["scaled", "sqrt_softsign_gelu"])
def test_float32_error_within_eager_budget(cpp, shape, norm, name):
    """error(kernel fp32) <= 2 * error(eager fp32) + floor, errors against float64."""
    score, score_bwd = SCORES[name]
    q, k, v, mask = make(shape, seed=7, mask_kind="random")
    gout = torch.randn(shape, dtype=torch.float64)
    exact = grads(lambda a, b, c: reference(a, b, c, score, norm, mask), q, k, v, gout)
    f32 = [t.float() for t in (q, k, v)]
    eager = grads(lambda a, b, c: reference(a, b, c, score, norm, mask), *f32, gout.float())
    kern = grads(lambda a, b, c: autobert_ext.streaming_attention(a, b, c, score, score_bwd, norm, mask), *f32,
                 gout.float())
    for e, kr, x, what in zip(eager, kern, exact, ("out", "dq", "dk", "dv")):
        assert kr.dtype == torch.float32
        assert _err(kr, x) <= 2 * _err(e, x) + 1e-5, what


def test_gradcheck(backend):
    score, score_bwd = SCORES["tanh"]
    q, k, v, mask = make((1, 2, 5, 3), seed=3, mask_kind="random")
    mask = torch.tensor([[True, False, True, True, False]])
    for norm in ("softmax", "none"):
        inputs = tuple(t.clone().requires_grad_() for t in (q, k, v))
        assert torch.autograd.gradcheck(
            lambda a, b, c: autobert_ext.streaming_attention(a, b, c, score, score_bwd, norm, mask), inputs)


def test_fully_masked_rows_are_zero_and_grads_finite(backend):
    score, score_bwd = SCORES["scaled"]
    q, k, v, _ = make((2, 2, 9, 8), seed=1)
    mask = torch.ones(2, 9, dtype=torch.bool)
    mask[1] = False
    q, k, v = (t.requires_grad_() for t in (q, k, v))
    out = autobert_ext.streaming_attention(q, k, v, score, score_bwd, "softmax", mask)
    assert torch.equal(out[1], torch.zeros_like(out[1]))
    out.sum().backward()
    for t in (q, k, v):
        assert torch.isfinite(t.grad).all()
        assert torch.equal(t.grad[1], torch.zeros_like(t.grad[1]))


@pytest.mark.parametrize("mask_kind", [None, "random"])
def test_huge_scores_give_finite_gradients(backend, mask_kind):
    """Scores ~1e21 (a key chain that blows up, found by fuzzing): half an ulp of a score is ~1e14,
    so a backward that rounds the recomputed scaled score differently from the forward had
    exp(t - lse) = inf and inf * 0 = NaN in dq, dk and dv. The saturated softmax is one-hot:
    out and dv agree with float64, and dq, dk stay finite."""
    score, score_bwd = SCORES["scaled"]
    q, k, v, mask = make((2, 2, 37, 3), seed=186, mask_kind=mask_kind)
    q, k = q * 300, k * 1e19
    gout = torch.randn(q.shape, dtype=torch.float64)
    if mask is not None:  # nothing flows back from padded query rows (dO = 0 there: inf * 0 was NaN)
        gout = gout * mask[:, None, :, None]
    exact = grads(lambda a, b, c: reference(a, b, c, score, "softmax", mask), q, k, v, gout)
    f32 = [t.float() for t in (q, k, v)]
    got = grads(lambda a, b, c: autobert_ext.streaming_attention(a, b, c, score, score_bwd, "softmax", mask), *f32,
                gout.float())
    for g, what in zip(got, ("out", "dq", "dk", "dv")):
        assert torch.isfinite(g).all(), what
    rows = slice(None) if mask is None else mask[:, None, :, None].expand_as(exact[0])
    torch.testing.assert_close(got[0][rows].double(), exact[0][rows], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(got[3].double(), exact[3], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("d", [3, 16, 40])
@pytest.mark.parametrize("n", [1, 5])
def test_saturated_softmax_backward_cancels_exactly(cpp, n, d):
    """A one-hot softmax row has dP_ij = D_i exactly (O_i = V_j): the kernel's D = dO . O must be
    rounded like the dP GEMM so that dS, hence dq and dk, are exactly 0 as in eager; an ulp of
    |dO||V| left over (seen at d = 16, found by fuzzing) came back times |K| in dq and dk."""
    score, score_bwd = SCORES["scaled"]
    q, k, v, _ = make((1, 2, n, d), dtype=torch.float32, seed=n * d)
    q, k, v = q * 300, k * 300, v * 300
    for t in (q, k, v):
        t.requires_grad_()
    out = autobert_ext.streaming_attention(q, k, v, score, score_bwd, "softmax")
    p = torch.softmax(C * (q @ k.transpose(-1, -2)).detach().double(), -1)
    assert ((p == 0) | (p == 1)).all()  # the premise: every row saturated
    out.backward(torch.randn(out.shape, generator=torch.Generator().manual_seed(1)))
    assert torch.equal(q.grad, torch.zeros_like(q)) and torch.equal(k.grad, torch.zeros_like(k))


def test_non_contiguous_inputs(backend):
    score, score_bwd = SCORES["tanh"]
    g = torch.Generator().manual_seed(5)
    # (B, N, H, d) projections viewed as (B, H, N, d): the usual Hugging Face layout.
    q, k, v = (torch.randn(2, 11, 3, 8, generator=g, dtype=torch.float64).transpose(1, 2) for _ in range(3))
    assert not q.is_contiguous()
    want = reference(q, k, v, score, "softmax", None)
    got = autobert_ext.streaming_attention(q, k, v, score, score_bwd)
    torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("d", [16, 12])  # 16: V rows are whole vectors and read in place; 12 is padded
def test_strided_views_read_in_place_equal_contiguous_copies(d):
    """The forward reads strided q/k/v rows in place: bit-identical to running on contiguous copies."""
    if autobert_ext._C is None:
        pytest.skip("needs the compiled extension")
    score, _ = SCORES["tanh"]
    g = torch.Generator().manual_seed(6)
    qkv = torch.randn(2, 24, 3, 3, d, generator=g)  # one fused (B, N, 3, H, d) projection
    q, k, v = (qkv[:, :, i].transpose(1, 2) for i in range(3))
    mask = torch.ones(2, 24, dtype=torch.bool)
    mask[0, 20:] = False
    ints, floats = autobert_ext.program.encode(score)
    run = torch.ops.autobert_kernels.streaming_attention
    out, lse = run(q, k, v, mask, ints, floats, "softmax")
    want_out, want_lse = run(q.contiguous(), k.contiguous(), v.contiguous(), mask, ints, floats, "softmax")
    assert torch.equal(out, want_out) and torch.equal(lse, want_lse)
    assert out.is_contiguous()
    # a broadcast (zero-stride) key tensor is read in place too
    k1 = k[:, :1].expand(-1, 3, -1, -1)
    out, _ = run(q, k1, v, mask, ints, floats, "softmax")
    assert torch.equal(out, run(q, k1.contiguous(), v, mask, ints, floats, "softmax")[0])


def test_standard_attention_matches_sdpa(backend):
    q, k, v, mask = make((2, 3, 70, 32), dtype=torch.float32, seed=2, mask_kind="random")
    mask[-1, 5] = True  # keep every row valid: SDPA gives NaN for fully masked rows
    score = prog(1, [("mulc", 0, -1, 1 / math.sqrt(32))])
    want = torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=mask[:, None, None, :])
    got = autobert_ext.streaming_attention(q, k, v, score, None, "softmax", mask)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


@pytest.mark.skipif(not autobert_ext.available(), reason="autobert_ext._C is not built")
def test_bfloat16_computes_in_float32():
    score, score_bwd = SCORES["tanh"]
    q, k, v, mask = make((1, 2, 33, 16), dtype=torch.bfloat16, seed=4, mask_kind="random")
    got = autobert_ext.streaming_attention(q, k, v, score, score_bwd, "softmax", mask)
    want = reference(q.float(), k.float(), v.float(), score, "softmax", mask)
    assert got.dtype == torch.bfloat16
    torch.testing.assert_close(got.float(), want, rtol=2e-2, atol=2e-2)


def test_no_score_bwd_raises_on_backward(backend):
    q, k, v, _ = make((1, 1, 4, 4), seed=0)
    q.requires_grad_()
    out = autobert_ext.streaming_attention(q, k, v, SCORES["scaled"][0], None)
    with pytest.raises(RuntimeError, match="not differentiable"):
        out.sum().backward()


def test_traces_under_torch_compile(backend):
    """The ops have fake impls and registered autograd, so a compiled graph (AOT autograd) runs them."""
    score, score_bwd = SCORES["tanh"]
    q, k, v, mask = make((1, 2, 9, 8), seed=6, mask_kind="random")

    def f(a, b, c):
        return autobert_ext.streaming_attention(a, b, c, score, score_bwd, "softmax", mask).sum()

    compiled = torch.compile(f, backend="aot_eager", fullgraph=True)
    want = grads(lambda a, b, c: f(a, b, c)[None], q, k, v, torch.ones(1, dtype=torch.float64))
    got = grads(lambda a, b, c: compiled(a, b, c)[None], q, k, v, torch.ones(1, dtype=torch.float64))
    for w, g in zip(want, got):
        torch.testing.assert_close(g, w)


def _op_args(shape=(2, 2, 13, 8), mask_kind="random", name="tanh", norm="softmax", dtype=torch.float64):
    score, score_bwd = SCORES[name]
    q, k, v, mask = make(shape, dtype=dtype, seed=0, mask_kind=mask_kind)
    return (q, k, v, mask, *autobert_ext.encode(score), *autobert_ext.encode(score_bwd), norm)


@pytest.mark.parametrize("backend_name,norm,mask_kind", [("cpp", "softmax", None), ("cpp", "softmax", "random"),
                                                         ("cpp", "none", "random"), ("eager", "softmax", "random")])
def test_opcheck(monkeypatch, backend_name, norm, mask_kind):
    use_backend(monkeypatch, backend_name)
    q, k, v, mask, *rest = _op_args(mask_kind=mask_kind, norm=norm)
    q, k, v = (t.requires_grad_() for t in (q, k, v))
    torch.library.opcheck(_attention_op, (q, k, v, mask, *rest))
    out, lse = _attention_op(q.detach(), k.detach(), v.detach(), mask, *rest)
    gout = torch.randn_like(out)
    torch.library.opcheck(_attention_backward_op, (q.detach(), k.detach(), v.detach(), mask, out, lse, gout, *rest))


def _bad_calls():
    q, k, v, mask, si, sf, bi, bf, norm = _op_args()
    bad_prog = [1, 1, 1, 999, 1, 0, -1, 1]  # unknown opcode
    return {
        "rank": ((q[0], k[0], v[0], None, si, sf, bi, bf, norm), "rank"),
        "B": ((q, k[:1], v[:1], None, si, sf, bi, bf, norm), "same shape"),
        "H": ((q, k[:, :1], v, None, si, sf, bi, bf, norm), "same shape"),
        "N": ((q, k[:, :, :5], v[:, :, :5], None, si, sf, bi, bf, norm), "same shape"),
        "d": ((q, k[..., :3], v, None, si, sf, bi, bf, norm), "same shape"),
        "mask_shape": ((q, k, v, mask[:, :4], si, sf, bi, bf, norm), "key_padding_mask"),
        "mask_dtype": ((q, k, v, mask.float(), si, sf, bi, bf, norm), "bool"),
        "dtype_mix": ((q, k.float(), v, None, si, sf, bi, bf, norm), "dtype"),
        "int": ((q.long(), k.long(), v.long(), None, si, sf, bi, bf, norm), "floating"),
        "opcode": ((q, k, v, None, bad_prog, [0.0], bi, bf, norm), "opcode"),
        "truncated": ((q, k, v, None, si[:-1], sf, bi, bf, norm), "encoding"),
        "arity": ((q, k, v, None, bi, bf, bi, bf, norm), "inputs"),
        "ssa": ((q, k, v, None, [1, 1, 1, 5, 7, 0, -1, 1], [1.0], bi, bf, norm), "SSA"),
        "norm": ((q, k, v, None, si, sf, bi, bf, "sparsemax"), "norm"),
    }


@pytest.mark.parametrize("case", list(_bad_calls()))
def test_bad_input_raises_clearly(backend, case):
    args, match = _bad_calls()[case]
    with pytest.raises((RuntimeError, ValueError), match=match):
        _attention_op(*args)


@pytest.mark.skipif(not autobert_ext.available(), reason="autobert_ext._C is not built")
@pytest.mark.parametrize("case", list(_bad_calls()))
def test_bad_input_raises_in_the_binding_too(case):
    """The C++ binding validates on its own (callers may bypass the Python checks)."""
    (q, k, v, mask, si, sf, _bi, _bf, norm), match = _bad_calls()[case]
    with pytest.raises((RuntimeError, ValueError)):
        torch.ops.autobert_kernels.streaming_attention(q, k, v, mask, si, sf, norm)
