"""The Triton streaming attention kernels (forward and dq, dk, dv), through
``autobert_ext.streaming_attention`` with AUTOBERT_BACKEND=triton, against the float64 reference.

Score programs f and their derivative programs f_bwd are built from the graph ops' bytecode
rules (``lower`` / ``derive``), as the fusion planner does. Errors are relative to
max(|ref|, 1) entrywise; the fp32 kernel may err at most twice as much as the fp32 eager
oracle plus a small floor.
"""
import math

import pytest
import torch

pytest.importorskip("triton")

from autobert.fusion import ProgramBuilder  # noqa: E402
from autobert.graph.ops import OPS  # noqa: E402
import autobert_ext.triton.config as triton_config  # noqa: E402
from autobert_ext import reference as R  # noqa: E402
from autobert_ext import streaming_attention  # noqa: E402
from autobert_ext.triton import AttentionConfig  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore:.*encountered in:RuntimeWarning")  # interpreter's numpy
DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
# On NVIDIA GPUs Triton lowers fp32 tl.exp to ex2.approx (relative error ~|x| * 6e-8, ~1.3e-6 at
# x = 20); the interpreter's numpy exp is exact to an ulp.
FLOOR = 2e-6 if DEVICE == "cpu" else 8e-6
SMALL = AttentionConfig(16, 16, 1, 1, 16, 16, 1, 1)  # several tiles per row/column: exercises tails

# Score graphs over s: (op, argument indices), index 0 = s, index i = node i.
SCORES = {
    "standard": [("scale", [0])],
    # sqrt of softplus, not of s: sqrt' = 0.5 / sqrt(|x|) makes dq/dk near s = 0 hinge on the
    # rounding of s itself, which differs between any two fp32 matmuls (not a kernel error).
    "sqrt_softsign": [("scale", [0]), ("softplus", [1]), ("sqrt", [2]), ("softsign", [3])],
    "gelu_tanh": [("scale", [0]), ("gelu", [1]), ("tanh", [2])],
    "div_gelu_softplus": [("scale", [0]), ("gelu", [1]), ("softplus", [1]), ("div", [2, 3])],
    "max_log_sigmoid": [("scale", [0]), ("log", [1]), ("sigmoid", [1]), ("max", [2, 3]), ("mul", [4, 1])],
}


@pytest.fixture(autouse=True, scope="module")
def _cache_dir(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AUTOBERT_CACHE_DIR", str(tmp_path_factory.mktemp("triton_cache")))
        mp.setenv("AUTOBERT_BACKEND", "triton")
        yield


def reference_streaming_attention(q, k, v, score, norm, mask):
    return R.streaming_attention(q, k, v, score, norm, mask)[0]


def score_programs(nodes, d):
    """(f, f_bwd): f maps s -> score; f_bwd maps (s, g) -> g * f'(s) by reverse accumulation."""
    def lower(b):
        regs = [0]
        for name, args in nodes:
            regs.append(OPS[name].lower(b, [regs[a] for a in args], d))
        return regs

    fb = ProgramBuilder(1)
    f = fb.build([lower(fb)[-1]])
    bb = ProgramBuilder(2)  # registers: 0 = s, 1 = g
    regs = lower(bb)
    grads = {len(nodes): 1}
    for i in reversed(range(len(nodes))):
        if i + 1 not in grads:
            continue
        name, args = nodes[i]
        dxs = OPS[name].derive(bb, [regs[a] for a in args], regs[i + 1], grads[i + 1], d)
        for a, dx in zip(args, dxs):
            grads[a] = bb.emit("add", grads[a], dx) if a in grads else dx
    return f, bb.build([grads[0]])


def _relerr(x, ref):
    return float(((x.double() - ref).abs() / ref.abs().clamp(min=1.0)).max()) if ref.numel() else 0.0


def _mask(B, N, gen, fully_masked_row=True):
    m = torch.rand(B, N, generator=gen) > 0.3
    m[:, 0] = True
    if fully_masked_row and B > 1:
        m[-1] = False  # a sequence with no real token: its rows must come out 0
    return m


def _check(B, H, N, d, score, norm, masked, config=None, seed=0):
    gen = torch.Generator().manual_seed(seed)
    f, fb = score_programs(SCORES[score], d)
    q, k, v = (torch.randn(B, H, N, d, generator=gen, dtype=torch.float64) for _ in range(3))
    do = torch.randn(B, H, N, d, generator=gen, dtype=torch.float64)
    mask = _mask(B, N, gen) if masked else None

    def run(fn, dtype, device):
        xs = [t.to(dtype).to(device).requires_grad_() for t in (q, k, v)]
        m = mask.to(device) if mask is not None else None
        out = fn(*xs, m)
        grads = torch.autograd.grad(out, xs, do.to(dtype).to(device))
        return [t.detach().cpu() for t in (out, *grads)]

    def oracle(q_, k_, v_, m):
        return reference_streaming_attention(q_, k_, v_, f, norm, m)

    def kernel(q_, k_, v_, m):
        return streaming_attention(q_, k_, v_, f, fb, norm, m)

    ref = run(oracle, torch.float64, "cpu")
    eager = run(oracle, torch.float32, "cpu")
    with pytest.MonkeyPatch.context() as mp:
        if config is not None:
            mp.setattr(triton_config, "default_attention_config", lambda *a: config)
        got = run(kernel, torch.float32, DEVICE)
    for name, g, e, r in zip(("out", "dq", "dk", "dv"), got, eager, ref):
        assert g.shape == r.shape and g.dtype == torch.float32
        assert bool(torch.isfinite(g).all()), f"{name}: non-finite values"
        err_k, err_e = _relerr(g, r), _relerr(e, r)
        assert err_k <= 2 * err_e + FLOOR, f"{name}: kernel error {err_k:.3g} vs eager fp32 {err_e:.3g}"
    if mask is not None and B > 1:
        assert bool((got[0][-1] == 0).all()), "a query row without real keys must output 0"
        assert bool((got[2][:, :, ~mask[0]] == 0).all()) and bool((got[3][:, :, ~mask[0]] == 0).all()), \
            "padded keys must get zero dk / dv"
    return got


@pytest.mark.parametrize("N,d,masked", [(1, 7, False), (1, 7, True), (13, 40, False), (13, 40, True), (37, 7, True)])
def test_standard_softmax(N, d, masked):
    _check(2, 2, N, d, "standard", "softmax", masked)


@pytest.mark.parametrize("score", ["sqrt_softsign", "gelu_tanh", "div_gelu_softplus", "max_log_sigmoid"])
def test_searched_scores_softmax(score):
    _check(2, 2, 13, 40, score, "softmax", masked=True)


@pytest.mark.parametrize("score,masked", [("standard", False), ("standard", True), ("gelu_tanh", True)])
def test_norm_none(score, masked):
    _check(2, 2, 13, 7, score, "none", masked)


@pytest.mark.parametrize("norm", ["softmax", "none"])
def test_multi_tile_tails(norm):
    # N = 37 over 16-wide tiles: three query and three key tiles, ragged in both; d = 40 pads to 64.
    _check(2, 1, 37, 40, "sqrt_softsign", norm, masked=True, config=SMALL)


def test_noncontiguous_inputs():
    gen = torch.Generator().manual_seed(3)
    f, fb = score_programs(SCORES["standard"], 8)
    base = torch.randn(2, 13, 2, 3, 8, generator=gen)  # (B, N, H, qkv, d): strided q/k/v views
    q, k, v = (base[:, :, :, i].transpose(1, 2).to(DEVICE) for i in range(3))
    mask = torch.ones(2, 13, dtype=torch.bool)
    mask[1, 9:] = False
    out = streaming_attention(q, k, v, f, fb, "softmax", mask.to(DEVICE))
    ref = reference_streaming_attention(q.cpu().double(), k.cpu().double(), v.cpu().double(), f, "softmax", mask)
    assert _relerr(out.cpu(), ref) < 1e-5


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("norm", ["softmax", "none"])
def test_half_precision_large(dtype, norm):
    B, H, N, d = 2, 4, 1000, 64
    gen = torch.Generator().manual_seed(1)
    f, fb = score_programs(SCORES["gelu_tanh" if norm == "none" else "standard"], d)
    q, k, v = (torch.randn(B, H, N, d, generator=gen, dtype=torch.float64) for _ in range(3))
    do = torch.randn(B, H, N, d, generator=gen, dtype=torch.float64) / math.sqrt(N)
    mask = _mask(B, N, gen)

    def run(fn, dt):
        xs = [t.to(dt).cuda().requires_grad_() for t in (q, k, v)]
        out = fn(*xs)
        return [t.double().cpu() for t in (out, *torch.autograd.grad(out, xs, do.to(dt).cuda()))]

    ref = run(lambda a, b, c: reference_streaming_attention(a, b, c, f, norm, mask.cuda()), torch.float64)
    eager = run(lambda a, b, c: reference_streaming_attention(a, b, c, f, norm, mask.cuda()), dtype)
    got = run(lambda a, b, c: streaming_attention(a, b, c, f, fb, norm, mask.cuda()), dtype)
    for g, e, r in zip(got, eager, ref):
        assert _relerr(g, r) <= 2 * _relerr(e, r) + 1e-2
