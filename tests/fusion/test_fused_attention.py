"""fused_attention == eager (outputs and q/k/v gradients) for the library and random graphs,
with and without padding masks, odd sizes, non-contiguous inputs; custom-op checks; bad input."""
import random

import pytest
import torch
from numerics import assert_close_to_reference

import autobert_ext
from autobert.fusion import fused_attention, plan
from autobert.graph import eager, library, random_graph


def _inputs(b, h, n, d, dtype, seed, masked, contiguous=True):
    gen = torch.Generator().manual_seed(seed)
    if contiguous:
        qkv = [torch.randn(b, h, n, d, generator=gen, dtype=torch.float64) for _ in range(3)]
    else:  # (B, N, H, d) storage viewed as (B, H, N, d), as after a head split
        qkv = [torch.randn(b, n, h, d, generator=gen, dtype=torch.float64).transpose(1, 2) for _ in range(3)]
    mask = None
    if masked:
        mask = torch.rand(b, n, generator=gen) > 0.3
        mask[:, 0] = True
        if b > 1:
            mask[-1] = False  # one fully padded sequence
    grad = torch.randn(b, h, n, d, generator=gen, dtype=torch.float64)
    return qkv, mask, grad


def _run(fn, graph, qkv, mask, grad, dtype):
    leaves = [t.to(dtype).requires_grad_() for t in qkv]
    out = fn(graph, *leaves, mask)
    grads = torch.autograd.grad(out, leaves, grad.to(dtype), allow_unused=True)
    return [out.detach()] + [g if g is not None else torch.zeros_like(x) for g, x in zip(grads, leaves)]


def check_graph(graph, b=2, h=2, n=13, d=7, seed=0, masked=True, contiguous=True, dtype=torch.float32, ulps=100.0):
    qkv, mask, grad = _inputs(b, h, n, d, dtype, seed, masked, contiguous)
    ref = _run(eager, graph, qkv, mask, grad, torch.float64)
    same = _run(eager, graph, qkv, mask, grad, dtype)
    got = _run(fused_attention, graph, qkv, mask, grad, dtype)
    if mask is not None:  # outputs at padded query rows are unspecified: compare real rows only
        rows = mask[:, None, :, None].expand(b, h, n, d)
        ref[0], same[0], got[0] = ref[0][rows], same[0][rows], got[0][rows]
    assert torch.isfinite(got[0]).all()
    for name, a, e, r in zip(("out", "dq", "dk", "dv"), got, same, ref):
        assert_close_to_reference(a, e, r, f"{graph.to_expr()} {name}", ulps=ulps)


@pytest.mark.parametrize("name", sorted(library))
@pytest.mark.parametrize("n, d", [(1, 7), (13, 40), (97, 7)])
@pytest.mark.parametrize("masked", [False, True])
def test_library_graph(name, n, d, masked):
    check_graph(library[name], n=n, d=d, masked=masked)


@pytest.mark.parametrize("name", ["standard", "abz_sqrt_key_qkv", "linear", "cosine"])
def test_non_contiguous_inputs(name):
    check_graph(library[name], n=13, d=40, contiguous=False)


@pytest.mark.parametrize("name", ["standard", "abz_sqrt_score", "linear"])
def test_float64(name):
    check_graph(library[name], n=13, d=7, dtype=torch.float64)


def test_random_graphs():
    """>= 500 seeded random graphs, masked and unmasked, odd sizes."""
    rng = random.Random(1234)
    sizes = [(1, 7), (13, 7), (13, 40), (37, 7)]
    failures = []
    for i in range(520):
        g = random_graph(rng, 10)
        n, d = sizes[i % len(sizes)]
        try:
            # A wider floor than the library graphs' 100 ulps: random chains divide by near-zero values
            # (e.g. div(x, gelu(V))), and there the C++ interpreter's float32 rounding (FMA contraction,
            # <= 2-ulp exp/erf/log1p) lands up to ~3x further from float64 than eager's op-by-op rounding.
            check_graph(g, b=2, h=1, n=n, d=d, seed=i, masked=i % 2 == 0, ulps=300.0)
        except AssertionError as e:
            failures.append(str(e).splitlines()[0])
    assert not failures, f"{len(failures)} of 520 graphs differ:\n" + "\n".join(failures[:20])


def test_same_result_on_every_call_and_cached_plan():
    g = library["abz_sqrt_score"]
    (q, k, v), mask, _ = _inputs(2, 2, 13, 8, torch.float32, 0, True)
    a = fused_attention(g, q.float(), k.float(), v.float(), mask)
    b = fused_attention(g, q.float(), k.float(), v.float(), mask)
    assert torch.equal(a, b)
    assert plan(g, 8) is plan(g, 8)


@pytest.mark.parametrize("name", ["standard", "linear", "cosine", "abz_sqrt_key_qkv"])
def test_opcheck(name):
    from autobert_ext.fused_attention import _fused_attention_op
    (q, k, v), mask, _ = _inputs(2, 2, 5, 4, torch.float64, 3, True)
    plan_json = plan(library[name], 4).json
    for m in (None, mask):
        args = (plan_json, q.requires_grad_(), k.requires_grad_(), v.requires_grad_(), m)
        torch.library.opcheck(_fused_attention_op, args)


def _via_custom_op(graph, q, k, v, mask):
    from autobert_ext.fused_attention import _fused_attention_op
    return _fused_attention_op(plan(graph, q.shape[-1]).json, q, k, v, mask)[0]


@pytest.mark.parametrize("name", ["standard", "linear", "cosine", "abz_sqrt_key_qkv"])
def test_eager_path_equals_custom_op(name):
    """Outside torch.compile fused_attention skips the custom-op machinery (an autograd.Function
    over the same bodies, or no autograd at all for inference): outputs and gradients must be
    bitwise those of the registered op. A plan with nothing to fuse (``linear``) runs its torch ops
    under torch autograd instead: same forward, gradients equal up to summation order."""
    qkv, mask, grad = _inputs(2, 3, 13, 8, torch.float32, 4, True)
    fast = _run(fused_attention, library[name], qkv, mask, grad, torch.float32)
    op = _run(_via_custom_op, library[name], qkv, mask, grad, torch.float32)
    plain_autograd = plan(library[name], 8).fuses_nothing
    assert plain_autograd == (name == "linear")
    assert torch.equal(fast[0], op[0])
    for a, b in zip(fast[1:], op[1:]):
        if plain_autograd:
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
        else:
            assert torch.equal(a, b)
    with torch.no_grad():  # inference takes a third path: the output only, nothing saved
        inference = fused_attention(library[name], *[t.float() for t in qkv], mask)
    assert torch.equal(inference, op[0])


def test_double_backward_fails_loudly():
    qkv, mask, _ = _inputs(1, 2, 5, 4, torch.float64, 5, True)
    leaves = [t.requires_grad_() for t in qkv]
    out = fused_attention(library["standard"], *leaves, mask)
    (gq,) = torch.autograd.grad(out.square().sum(), leaves[:1], create_graph=True)
    with pytest.raises(RuntimeError, match="once_differentiable|does not require grad"):
        gq.sum().backward()


def test_compiles_through_the_custom_op():
    """Under torch.compile the registered op (fake impl, registered autograd) is what gets traced
    (planning is Python-side work: a compiled caller passes the plan, planned once beforehand)."""
    graph = library["abz_sqrt_score"]
    qkv, mask, grad = _inputs(1, 2, 9, 8, torch.float64, 6, True)
    p = plan(graph, 8)
    compiled = torch.compile(lambda q, k, v, m: autobert_ext.fused_attention(p.json, q, k, v, m),
                             backend="aot_eager", fullgraph=True)
    want = _run(fused_attention, graph, qkv, mask, grad, torch.float64)
    got = _run(lambda _g, q, k, v, m: compiled(q, k, v, m), graph, qkv, mask, grad, torch.float64)
    for w, g in zip(want, got):
        torch.testing.assert_close(g, w)


def test_eager_backend_override(monkeypatch):
    monkeypatch.setenv("AUTOBERT_BACKEND", "eager")
    check_graph(library["abz_softplus_key"])
    monkeypatch.setenv("AUTOBERT_BACKEND", "bogus")
    with pytest.raises(ValueError, match="AUTOBERT_BACKEND"):
        check_graph(library["standard"])


def test_bad_input():
    g = library["standard"]
    q = torch.randn(2, 2, 5, 4)
    with pytest.raises(ValueError, match=r"q must be a \(B, H, N, d\) tensor"):
        fused_attention(g, q[0], q, q)
    with pytest.raises(ValueError, match=r"must be \(B, H, N, d\) float32/float64/bfloat16/float16"):
        autobert_ext.fused_attention(plan(g, 4), q[0], q[0], q[0])
    with pytest.raises(ValueError, match=r"k has shape \(2, 5, 4\), expected the same shape as q"):
        autobert_ext.fused_attention(plan(g, 4), q, q[0], q)
    with pytest.raises(ValueError, match="k has shape"):
        fused_attention(g, q, q[:, :1], q)
    with pytest.raises(ValueError, match="v has shape"):
        fused_attention(g, q, q, q[..., :3])
    with pytest.raises(ValueError, match="k has dtype torch.float64, expected the dtype of q"):
        fused_attention(g, q, q.double(), q)
    with pytest.raises(ValueError, match="q must be a floating tensor"):
        fused_attention(g, q.int(), q.int(), q.int())
    with pytest.raises(ValueError, match="float32/float64"):
        fused_attention(g, q.half().to(torch.float8_e4m3fn), q.to(torch.float8_e4m3fn), q.to(torch.float8_e4m3fn))
    with pytest.raises(ValueError, match=r"key_padding_mask must have shape \(B, N\) = \(2, 5\)"):
        fused_attention(g, q, q, q, torch.ones(2, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match="bool"):
        fused_attention(g, q, q, q, torch.ones(2, 5))
    with pytest.raises(TypeError, match="a Plan or a plan JSON"):
        autobert_ext.fused_attention(42, q, q, q)
    with pytest.raises(TypeError, match="a Plan or a plan JSON"):  # planning belongs to autobert.fusion
        autobert_ext.fused_attention(g, q, q, q)
    with pytest.raises(TypeError, match="needs an autobert.graph.Graph"):
        fused_attention(plan(g, 4), q, q, q)
    with pytest.raises(ValueError, match="head dim 8"):
        autobert_ext.fused_attention(plan(g, 8), q, q, q)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-GPU error path")
def test_cuda_tensor_without_gpu_is_a_clear_error():
    # CPU torch: "Torch not compiled with CUDA enabled"; CUDA torch without a driver: "Found no NVIDIA
    # driver on your system"; with a driver but no GPU: "No CUDA GPUs are available".
    with pytest.raises((RuntimeError, AssertionError), match="(?i)cuda|torch not compiled|nvidia driver"):
        fused_attention(library["standard"], *(torch.randn(1, 1, 3, 2, device="cuda") for _ in range(3)))
