"""The Triton elementwise and row-softmax kernels (forward and gradients), through the family ops
with AUTOBERT_BACKEND=triton, against the float64 references."""
import pytest
import torch

pytest.importorskip("triton")

from autobert.fusion import ProgramBuilder  # noqa: E402
from autobert.graph.ops import OPS  # noqa: E402
import autobert_ext.triton.config as triton_config  # noqa: E402
from autobert_ext import elementwise, fused_softmax  # noqa: E402
from autobert_ext import reference as R  # noqa: E402
from autobert_ext.fused_softmax import _IDENTITY  # noqa: E402
from autobert_ext.program import run_program  # noqa: E402
from autobert_ext.triton import RowConfig  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore:.*encountered in:RuntimeWarning")  # interpreter's numpy
DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
# On NVIDIA GPUs Triton lowers fp32 tl.exp to ex2.approx (relative error ~|x| * 6e-8, ~1.3e-6 at
# x = 20); the interpreter's numpy exp is exact to an ulp.
FLOOR = 1e-6 if DEVICE == "cpu" else 4e-6
TWO_PASS = RowConfig(block=1024, max_row_block=16, num_warps=1)  # rows longer than 16 take two passes


@pytest.fixture(autouse=True, scope="module")
def _cache_dir(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AUTOBERT_CACHE_DIR", str(tmp_path_factory.mktemp("triton_cache")))
        mp.setenv("AUTOBERT_BACKEND", "triton")
        yield


@pytest.fixture
def row_config(monkeypatch):
    """Sets the row tiles of the Triton launchers (None: the default)."""
    def use(config):
        if config is not None:
            monkeypatch.setattr(triton_config, "default_row_config", lambda: config)
    return use


def reference_fused_softmax(pre, post, xs, mask=None):
    return R.fused_softmax(pre or _IDENTITY, post or _IDENTITY, xs, mask)


def programs(nodes, n_inputs, d=16):
    """(fwd, bwd) of a one-output graph: nodes (op, argument indices), indices < n_inputs are inputs.

    bwd maps (x_1..x_n, g) -> (dx_1..dx_n) by reverse accumulation of the ops' derivative rules.
    """
    def lower(b):
        regs = list(range(n_inputs))
        for name, args in nodes:
            regs.append(OPS[name].lower(b, [regs[a] for a in args], d))
        return regs

    fb = ProgramBuilder(n_inputs)
    fwd = fb.build([lower(fb)[-1]])
    bb = ProgramBuilder(n_inputs + 1)
    regs = lower(bb)
    last = len(regs) - 1
    grads = {last: n_inputs}
    for i in reversed(range(n_inputs, last + 1)):
        if i not in grads:
            continue
        name, args = nodes[i - n_inputs]
        for a, dx in zip(args, OPS[name].derive(bb, [regs[a] for a in args], regs[i], grads[i], d)):
            grads[a] = bb.emit("add", grads[a], dx) if a in grads else dx
    zero = None
    outs = []
    for j in range(n_inputs):
        if j not in grads:
            zero = zero if zero is not None else bb.const(0.0)
        outs.append(grads.get(j, zero))
    return fwd, bb.build(outs)


def _relerr(x, ref):
    return float(((x.double() - ref).abs() / ref.abs().clamp(min=1.0)).max()) if ref.numel() else 0.0


def _grads(fn, inputs64, dtype, device, gout):
    xs = [t.to(dtype).to(device).requires_grad_() for t in inputs64]
    out = fn(xs)
    outs = out if isinstance(out, (list, tuple)) else [out]
    gouts = [g.to(dtype).to(device) for g in gout]
    grads = torch.autograd.grad(outs, xs, gouts, allow_unused=True)
    return [o.detach().cpu() for o in outs] + [g.cpu() if g is not None else torch.zeros_like(x.cpu())
                                               for g, x in zip(grads, xs)]


def _compare(got, eager, ref, names):
    for name, g, e, r in zip(names, got, eager, ref):
        assert g.shape == r.shape, name
        err_k, err_e = _relerr(g, r), _relerr(e, r)
        assert err_k <= 2 * err_e + FLOOR, f"{name}: kernel error {err_k:.3g} vs eager fp32 {err_e:.3g}"


def test_elementwise_gradients():
    # out = softsign(gelu(x0) * x1) - x0
    fwd, bwd = programs([("gelu", [0]), ("mul", [2, 1]), ("softsign", [3]), ("sub", [4, 0])], 2)
    gen = torch.Generator().manual_seed(0)
    x0 = torch.randn(5, 37, generator=gen, dtype=torch.float64)
    x1 = torch.randn(5, 37, generator=gen, dtype=torch.float64)
    g = [torch.randn(5, 37, generator=gen, dtype=torch.float64)]
    ref = _grads(lambda xs: run_program(fwd, xs), [x0, x1], torch.float64, "cpu", g)
    eager = _grads(lambda xs: run_program(fwd, xs), [x0, x1], torch.float32, "cpu", g)
    got = _grads(lambda xs: elementwise(fwd, bwd, xs), [x0, x1], torch.float32, DEVICE, g)
    _compare(got, eager, ref, ["out", "dx0", "dx1"])


def test_elementwise_multi_output_and_empty():
    fwd, _ = programs([("tanh", [0]), ("mul", [1, 0])], 1)
    two = type(fwd)(1, fwd.instrs, (1, 2))  # outputs tanh(x) and tanh(x) * x
    x = torch.randn(7, 3, device=DEVICE)
    a, b = elementwise(two, None, [x])
    torch.testing.assert_close(a.cpu(), torch.tanh(x.cpu()), rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(b.cpu(), torch.tanh(x.cpu()) * x.cpu(), rtol=1e-6, atol=1e-6)
    with pytest.raises(RuntimeError, match="AUTOBERT_BACKEND=triton cannot run elementwise"):
        elementwise(fwd, None, [x.double()])
    empty = elementwise(fwd, None, [torch.empty(0, 4, device=DEVICE)])[0]
    assert empty.shape == (0, 4)


# PRE: scale(x0) + x1 (attention scores plus a bias); POST: tanh(y) * y.
PRE = [("scale", [0]), ("add", [2, 1])]
POST = [("tanh", [0]), ("mul", [1, 0])]


@pytest.mark.parametrize("N,masked,config", [(1, True, None), (13, False, None), (13, True, None),
                                             (37, True, None), (37, True, TWO_PASS), (37, False, TWO_PASS)])
def test_fused_softmax_pre_post(N, masked, config, row_config):
    pre, pre_bwd = programs(PRE, 2)
    post, post_bwd = programs(POST, 1)
    gen = torch.Generator().manual_seed(N)
    B, H, R = 2, 2, 5
    x0 = torch.randn(B, H, R, N, generator=gen, dtype=torch.float64) * 4
    x1 = torch.randn(B, 1, 1, N, generator=gen, dtype=torch.float64).expand(B, H, R, N)  # a bias
    g = [torch.randn(B, H, R, N, generator=gen, dtype=torch.float64)]
    mask = None
    if masked:
        mask = torch.rand(B, N, generator=gen) > 0.4
        mask[0, 0], mask[1] = True, False  # batch 1: rows without any real key
    m_dev = mask.to(DEVICE) if mask is not None else None

    def oracle(xs):
        return reference_fused_softmax(pre, post, xs, mask)

    ref = _grads(oracle, [x0, x1], torch.float64, "cpu", g)
    eager = _grads(oracle, [x0, x1], torch.float32, "cpu", g)
    row_config(config)
    got = _grads(lambda xs: fused_softmax(pre, pre_bwd, post, post_bwd, xs, m_dev), [x0, x1], torch.float32, DEVICE, g)
    _compare(got, eager, ref, ["out", "dx0", "dx1"])
    if masked:
        assert bool((got[0][1] == 0).all()), "POST(0) = 0: rows without real keys must output 0"
        assert bool((got[1][:, :, :, ~mask[0]] == 0).all()), "padded keys get no gradient"


@pytest.mark.parametrize("config", [None, TWO_PASS])
def test_fused_softmax_identity_programs(config, row_config):
    gen = torch.Generator().manual_seed(5)
    x = torch.randn(3, 4, 37, generator=gen, dtype=torch.float64)
    g = [torch.randn(3, 4, 37, generator=gen, dtype=torch.float64)]
    mask = torch.rand(3, 37, generator=gen) > 0.5
    ref = _grads(lambda xs: reference_fused_softmax(None, None, xs, mask), [x], torch.float64, "cpu", g)
    eager = _grads(lambda xs: reference_fused_softmax(None, None, xs, mask), [x], torch.float32, "cpu", g)
    row_config(config)
    got = _grads(lambda xs: fused_softmax(None, None, None, None, xs, mask.to(DEVICE)), [x], torch.float32, DEVICE, g)
    _compare(got, eager, ref, ["out", "dx"])


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_fused_softmax_half_long_rows(dtype):
    pre, pre_bwd = programs(PRE, 2)
    post, post_bwd = programs(POST, 1)
    gen = torch.Generator().manual_seed(0)
    x0 = torch.randn(4, 12, 64, 5000, generator=gen, dtype=torch.float64) * 4  # rows > 4096: two passes
    x1 = torch.randn(4, 1, 1, 5000, generator=gen, dtype=torch.float64).expand(4, 12, 64, 5000)
    g = [torch.randn(4, 12, 64, 5000, generator=gen, dtype=torch.float64)]
    mask = (torch.rand(4, 5000, generator=gen) > 0.2).cuda()
    oracle = lambda xs: reference_fused_softmax(pre, post, xs, mask)  # noqa: E731
    ref = _grads(oracle, [x0, x1], torch.float64, "cuda", g)
    eager = _grads(oracle, [x0, x1], dtype, "cuda", g)
    got = _grads(lambda xs: fused_softmax(pre, pre_bwd, post, post_bwd, xs, mask), [x0, x1], dtype, "cuda", g)
    for gt, e, r in zip(got, eager, ref):
        assert _relerr(gt, r) <= 2 * _relerr(e, r) + 1e-2
