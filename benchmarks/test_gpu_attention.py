"""gpu_attention suite: generated Triton attention kernels and the masked AdamW on one CUDA GPU.

bf16, B=8, H=12, d=64, N in {512, 1024, 4096} (AUTOBERT_BENCH_N=512,1024 restricts). Cases:
  standard/N=<n>/<fwd|fwd+bwd>   score mulc(1/sqrt(d)), no mask
      triton      autobert_ext.streaming_attention (the Triton backend, the default on CUDA)
      sdpa_flash  F.scaled_dot_product_attention, flash backend (baseline)
  <graph>/N=<n>/fwd+bwd          searched score graphs, key padding mask on (lengths N/2..N)
      triton      the streaming kernel with the score program inlined
      eager       autobert_ext.reference (torch ops + run_program in float32, (N, N) materialised; baseline)
      compiled    torch.compile of the eager graph (compile time excluded by warm-up)
      flex        FlexAttention score_mod = the program, block mask (softmax graphs only)
  compile/B=1,H=1,N=128/fwd+bwd
      cold        first call of a never-seen graph: generate source + Triton compile, fwd and bwd
      cache_hit   a call of an already-compiled graph (the per-call overhead); baseline cold
  adamw/85M params/step
      device_copy      torch._foreach_copy_ of the parameters (baseline: the bandwidth bound)
      torch_fused      torch.optim.AdamW(fused=True).step()
      autobert_masked  autobert_ext.fused_masked_adamw_ on CUDA tensors (skipped until built)
      each records gb_per_s (bytes a step must move / median).
Every test is marked gpu and skipped without CUDA. Run: pytest benchmarks/test_gpu_attention.py
"""
import math
import os
import random

import pytest
import torch
import torch.nn.functional as F

from autobert.fusion import ProgramBuilder
from autobert.graph.ops import OPS
from autobert_ext.program import Program, run_program
from autobert_ext import reference, streaming_attention

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]

SUITE = "gpu_attention"
B, H, D, DT = 8, 12, 64, torch.bfloat16
SIZES = [int(n) for n in os.environ.get("AUTOBERT_BENCH_N", "512,1024,4096").split(",")]
ROUNDS = {512: 20, 1024: 10, 4096: 5}
# Searched score graphs over s = q.k: (op, argument indices), index 0 = s, i = node i; and the norm.
GRAPHS = {
    "gelu_tanh": ([("scale", [0]), ("gelu", [1]), ("tanh", [2])], "softmax"),
    "div_gelu_softplus": ([("scale", [0]), ("gelu", [1]), ("softplus", [1]), ("div", [2, 3])], "softmax"),
    "softplus_sqrt_softsign": ([("scale", [0]), ("softplus", [1]), ("sqrt", [2]), ("softsign", [3])], "softmax"),
    "tanh_sum": ([("scale", [0]), ("tanh", [1])], "none"),
}


def triton_streaming_attention(q, k, v, f, fb, norm, mask=None):
    if os.environ.get("AUTOBERT_BACKEND", "triton") != "triton":
        pytest.skip("the triton cases need AUTOBERT_BACKEND unset or triton")
    return streaming_attention(q, k, v, f, fb, norm, mask)


def reference_streaming_attention(q, k, v, f, norm, mask):
    return reference.streaming_attention(q, k, v, f, norm, mask)[0]


def score_programs(nodes, d):
    """(f, f_bwd) of a score graph: f(s); f_bwd(s, g) = g * f'(s) by reverse accumulation."""
    def lower(b):
        regs = [0]
        for name, args in nodes:
            regs.append(OPS[name].lower(b, [regs[a] for a in args], d))
        return regs

    fb = ProgramBuilder(1)
    f = fb.build([lower(fb)[-1]])
    bb = ProgramBuilder(2)
    regs = lower(bb)
    grads = {len(nodes): 1}
    for i in reversed(range(len(nodes))):
        if i + 1 in grads:
            name, args = nodes[i]
            for a, dx in zip(args, OPS[name].derive(bb, [regs[a] for a in args], regs[i + 1], grads[i + 1], d)):
                grads[a] = bb.emit("add", grads[a], dx) if a in grads else dx
    return f, bb.build([grads[0]])


def _inputs(n, b=B, h=H, masked=True):
    g = torch.Generator(device="cuda").manual_seed(n)
    q, k, v, do = (torch.randn(b, h, n, D, device="cuda", dtype=DT, generator=g) for _ in range(4))
    lengths = torch.randint(n // 2, n + 1, (b,), device="cuda", generator=g)
    lengths[0] = n
    mask = torch.arange(n, device="cuda")[None, :] < lengths[:, None] if masked else None  # (B, N)
    return [t.requires_grad_() for t in (q, k, v)], do, mask


def _runner(attend, qkv, do, mode):
    def run():
        if mode == "fwd":
            with torch.no_grad():
                attend(*qkv)
        else:
            torch.autograd.grad(attend(*qkv), qkv, do)
        torch.cuda.synchronize()
    return run


def _bench(benchmark, bench_record, peak_memory, fn, *, n, case, variant, baseline, **extra):
    try:
        fn()  # warm-up: Triton / torch.compile compilation, allocator
        peak = peak_memory(fn, device="cuda")
        benchmark.pedantic(fn, rounds=ROUNDS.get(n, 5), warmup_rounds=1, iterations=1)
    except torch.cuda.OutOfMemoryError:
        torch.cuda.empty_cache()
        pytest.skip(f"{variant} at N={n}: out of GPU memory")
    return bench_record(benchmark, suite=SUITE, case=case, variant=variant, baseline=baseline,
                        shapes=f"B={B},H={H},N={n},d={D}", dtype=DT, peak_mem_bytes=peak, device="cuda", **extra)


@pytest.mark.parametrize("mode", ["fwd", "fwd+bwd"])
@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("variant", ["sdpa_flash", "triton"])
def test_standard(benchmark, bench_record, peak_memory, variant, n, mode):
    qkv, do, _ = _inputs(n, masked=False)
    if variant == "triton":
        f, fb = score_programs([("scale", [0])], D)

        def attend(q, k, v):
            return triton_streaming_attention(q, k, v, f, fb, "softmax")
    else:
        from torch.nn.attention import SDPBackend, sdpa_kernel

        def attend(q, k, v):
            with sdpa_kernel(SDPBackend.FLASH_ATTENTION):
                return F.scaled_dot_product_attention(q, k, v)
    _bench(benchmark, bench_record, peak_memory, _runner(attend, qkv, do, mode), n=n,
           case=f"standard/N={n}/{mode}", variant=variant, baseline="sdpa_flash")


_COMPILED = {}


def _searched_attend(variant, graph, mask):
    nodes, norm = GRAPHS[graph]
    f, fb = score_programs(nodes, D)
    if variant == "triton":
        return lambda q, k, v: triton_streaming_attention(q, k, v, f, fb, norm, mask)
    if variant == "eager":
        return lambda q, k, v: reference_streaming_attention(q, k, v, f, norm, mask)
    if variant == "compiled":
        if graph not in _COMPILED:
            _COMPILED[graph] = torch.compile(lambda q, k, v, m: reference_streaming_attention(q, k, v, f, norm, m))
        compiled = _COMPILED[graph]
        return lambda q, k, v: compiled(q, k, v, mask)
    # FlexAttention: softmax only, raw scores (scale=1.0), padded keys through a block mask.
    if norm != "softmax":
        pytest.skip("FlexAttention always normalises with softmax: norm='none' is not expressible")
    from torch.nn.attention.flex_attention import create_block_mask, flex_attention
    flex = _COMPILED.setdefault("flex", torch.compile(flex_attention))
    n = mask.shape[1]
    block_mask = create_block_mask(lambda b, h, qi, ki: mask[b, ki], mask.shape[0], None, n, n, device="cuda")

    def score_mod(s, b, h, qi, ki):
        return run_program(f, [s])[0]
    return lambda q, k, v: flex(q, k, v, score_mod=score_mod, block_mask=block_mask, scale=1.0)


@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("graph", list(GRAPHS))
@pytest.mark.parametrize("variant", ["eager", "triton", "compiled", "flex"])
def test_searched_graph(benchmark, bench_record, peak_memory, variant, graph, n):
    qkv, do, mask = _inputs(n)
    attend = _searched_attend(variant, graph, mask)
    try:
        fn = _runner(attend, qkv, do, "fwd+bwd")
        fn()
    except torch.cuda.OutOfMemoryError:
        torch.cuda.empty_cache()
        pytest.skip(f"{variant} at N={n}: out of GPU memory")
    except Exception as e:  # torch.compile / flex cannot express every program: report, don't fail the suite
        if variant in ("compiled", "flex"):
            pytest.skip(f"{variant} failed on {graph}: {type(e).__name__}: {str(e)[:200]}")
        raise
    _bench(benchmark, bench_record, peak_memory, fn, n=n, case=f"{graph}/N={n}/fwd+bwd", variant=variant,
           baseline="eager", norm=GRAPHS[graph][1])


def _tanh_programs(c: float) -> tuple[Program, Program]:
    """f(s) = tanh(c s) and f_bwd(s, g) = g (1 - tanh(c s)^2) c."""
    f = Program(1, ((5, 1, 0, -1, c), (13, 2, 1, -1, 0.0)), (2,))
    fb = Program(2, ((5, 2, 0, -1, c), (13, 3, 2, -1, 0.0), (4, 4, 3, -1, 0.0), (2, 5, 4, -1, 0.0),
                     (6, 6, 5, -1, 1.0), (19, 7, 1, 6, 0.0), (5, 8, 7, -1, c)), (8,))
    return f, fb


COMPILE_CASE = "compile/B=1,H=1,N=128/fwd+bwd"


def test_compile_cold(benchmark, bench_record):
    qkv, do, mask = _inputs(128, b=1, h=1)
    rng = random.Random(os.urandom(8))  # a fresh immediate per round: a source no cache has seen

    def setup():
        return _tanh_programs(rng.uniform(0.05, 0.25)), {}

    def run(f, fb):
        torch.autograd.grad(triton_streaming_attention(*qkv, f, fb, "softmax", mask), qkv, do)
        torch.cuda.synchronize()
    benchmark.pedantic(run, setup=setup, rounds=3, iterations=1)
    bench_record(benchmark, suite=SUITE, case=COMPILE_CASE, variant="cold", baseline="cold",
                 shapes="B=1,H=1,N=128,d=64", dtype=DT, device="cuda")


def test_compile_cache_hit(benchmark, bench_record):
    qkv, do, mask = _inputs(128, b=1, h=1)
    f, fb = _tanh_programs(1 / math.sqrt(D))

    def run():
        torch.autograd.grad(triton_streaming_attention(*qkv, f, fb, "softmax", mask), qkv, do)
        torch.cuda.synchronize()
    run()
    benchmark.pedantic(run, rounds=50, warmup_rounds=2, iterations=1)
    bench_record(benchmark, suite=SUITE, case=COMPILE_CASE, variant="cache_hit", baseline="cold",
                 shapes="B=1,H=1,N=128,d=64", dtype=DT, device="cuda")


@pytest.fixture(scope="module")
def adamw_problem():
    """BERT-base-like fp32 parameter list (48 x 768^2 + 24 x 768*3072 = 85M), grads, moments, 50% masks."""
    g = torch.Generator(device="cuda").manual_seed(0)
    shapes = [(768, 768)] * 48 + [(768, 3072)] * 24
    mk = lambda scale: [torch.randn(s, device="cuda", generator=g) * scale for s in shapes]  # noqa: E731
    return {"params": mk(1.0), "grads": mk(1.0), "exp_avgs": mk(0.1),
            "exp_avg_sqs": [t.abs() for t in mk(0.01)],
            "masks": [torch.rand(s, device="cuda", generator=g) < 0.5 for s in shapes],
            "numel": sum(math.prod(s) for s in shapes)}


def _adamw_fn(variant, pb):
    if variant == "device_copy":
        dst = [torch.empty_like(p) for p in pb["params"]]
        return lambda: torch._foreach_copy_(dst, pb["params"]), 2 * 4
    if variant == "torch_fused":
        params = [torch.nn.Parameter(p.clone()) for p in pb["params"]]
        for p, g in zip(params, pb["grads"]):
            p.grad = g
        opt = torch.optim.AdamW(params, lr=1e-3, weight_decay=0.01, fused=True)
        opt.step()  # allocate the state outside the timed calls
        return opt.step, 7 * 4  # read p, g, m, v; write p, m, v
    from autobert_ext import fused_masked_adamw_

    def step():
        fused_masked_adamw_(pb["params"], pb["grads"], pb["exp_avgs"], pb["exp_avg_sqs"], pb["masks"],
                            step=10, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.01)
    try:
        step()
    except RuntimeError as e:
        pytest.skip(f"no CUDA masked AdamW in this build: {str(e)[:200]}")
    return step, 7 * 4 + 1  # + the mask byte


@pytest.mark.parametrize("variant", ["device_copy", "torch_fused", "autobert_masked"])
def test_masked_adamw_bandwidth(benchmark, bench_record, peak_memory, adamw_problem, variant):
    step, bytes_per_elem = _adamw_fn(variant, adamw_problem)

    def run():
        with torch.no_grad():
            step()
        torch.cuda.synchronize()
    run()
    peak = peak_memory(run, device="cuda")
    benchmark.pedantic(run, rounds=20, warmup_rounds=2, iterations=1)
    numel = adamw_problem["numel"]
    rec = bench_record(benchmark, suite=SUITE, case=f"adamw/{numel / 1e6:.0f}M params/step", variant=variant,
                       baseline="device_copy", shapes="48x(768,768)+24x(768,3072)", dtype=torch.float32,
                       peak_mem_bytes=peak, device="cuda", active_fraction=0.5 if variant == "autobert_masked" else 1.0)
    if rec is not None:
        rec["gb_per_s"] = bytes_per_elem * numel / rec["median_s"] / 1e9
