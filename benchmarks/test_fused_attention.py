"""fused_attention suite: every library graph, fused vs eager, forward and forward+backward.

fp32, B=2, H=4, d=64, N in {128, 512, 1024, 2048}; cases are "<graph>/N=<n>/<fwd|fwd+bwd>".
Variants:
  eager      autobert.graph.eager (the op-by-op reference; the baseline)
  fused      autobert.fusion.fused_attention (the backend chosen for the device, cpp on CPU)
  sdpa       torch.nn.functional.scaled_dot_product_attention (standard graph only)
  compiled   torch.compile of the eager graph (abz_sqrt_score only; cold compile time recorded: an empty
             Inductor cache folder, in-process kernel caches cleared; the first compile of a process
             also pays Inductor's start-up)
Peak memory = extra memory of one call (see conftest.peak_memory_bytes).
Run: pytest benchmarks/test_fused_attention.py  (AUTOBERT_BENCH_N=128,512 to restrict sizes)
"""
import os
import time

import pytest
import torch
import torch.nn.functional as F

from autobert.fusion import fused_attention, plan
from autobert.graph import eager, library

SUITE = "fused_attention"
B, H, D = 2, 4, 64
SIZES = [int(n) for n in os.environ.get("AUTOBERT_BENCH_N", "128,512,1024,2048").split(",")]
COMPILED_GRAPH = "abz_sqrt_score"


def _rounds(n: int) -> int:
    return {128: 30, 512: 15, 1024: 10}.get(n, 5)


# A fresh process's eager calls at N >= 1024 run up to 1.5x slow for their first ~20 calls (the heap
# and its pages settle; measured: 77, 43, 36, ... 31 ms): warm up with several rounds, not one.
WARMUP_ROUNDS = 3


def _inputs(n: int, grad: bool):
    g = torch.Generator().manual_seed(n)
    qkv = [torch.randn(B, H, n, D, generator=g).requires_grad_(grad) for _ in range(3)]
    mask = torch.ones(B, n, dtype=torch.bool)
    mask[1, n - n // 8:] = False  # the second sequence is padded: masks are on, as in training
    return qkv, mask


def _call(attend, graph, n: int, mode: str):
    qkv, mask = _inputs(n, mode == "fwd+bwd")
    g_out = torch.randn(B, H, n, D)
    if mode == "fwd":
        def run():
            with torch.no_grad():
                return attend(graph, *qkv, mask)
    else:
        def run():
            out = attend(graph, *qkv, mask)
            return torch.autograd.grad(out, qkv, g_out, allow_unused=True)
    return run


def _sdpa(graph, q, k, v, mask):
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask[:, None, None, :])


def _bench(benchmark, bench_record, peak_memory, *, case, variant, fn, n, rounds=None, **extra):
    fn()  # warm-up (plans, allocator, thread pool)
    benchmark.pedantic(fn, rounds=rounds or _rounds(n), warmup_rounds=WARMUP_ROUNDS)
    bench_record(benchmark, suite=SUITE, case=case, variant=variant, baseline="eager",
                 shapes=[B, H, n, D], dtype="float32", peak_mem_bytes=peak_memory(fn), **extra)


@pytest.mark.parametrize("mode", ["fwd", "fwd+bwd"])
@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("name", sorted(library))
@pytest.mark.parametrize("variant", ["eager", "fused"])
def test_graph(benchmark, bench_record, peak_memory, variant, name, n, mode):
    attend = eager if variant == "eager" else fused_attention
    kind = plan(library[name], D).kind
    # General graphs are 10-100x cheaper than streaming ones at the same N (no (N, N) work), and
    # timings of 0.2-15 ms calls drift more: four times the rounds costs little.
    rounds = _rounds(n) * (4 if kind == "general" else 1)
    _bench(benchmark, bench_record, peak_memory, case=f"{name}/N={n}/{mode}", variant=variant,
           fn=_call(attend, library[name], n, mode), n=n, rounds=rounds, plan=kind)


@pytest.mark.parametrize("mode", ["fwd", "fwd+bwd"])
@pytest.mark.parametrize("n", SIZES)
def test_standard_vs_sdpa(benchmark, bench_record, peak_memory, n, mode):
    _bench(benchmark, bench_record, peak_memory, case=f"standard/N={n}/{mode}", variant="sdpa",
           fn=_call(_sdpa, None, n, mode), n=n)


def _clear_inductor_memory_caches() -> None:
    """Kernels compiled for an earlier case stay loaded in this process, keyed by source: drop them."""
    from torch._inductor import codecache
    for name in ("PyCodeCache", "CppCodeCache", "CppPythonBindingsCodeCache", "CppWrapperCodeCache"):
        cache = getattr(codecache, name, None)
        if cache is not None and hasattr(cache, "cache_clear"):
            cache.cache_clear()


@pytest.mark.parametrize("mode", ["fwd", "fwd+bwd"])
@pytest.mark.parametrize("n", SIZES)
def test_torch_compile(benchmark, bench_record, peak_memory, n, mode, tmp_path, monkeypatch):
    # A cold compile: an empty Inductor cache folder (its on-disk FX-graph, AOT-autograd and C++
    # caches would otherwise turn a second run's "cold" compile into a cache hit).
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path / "inductor"))
    _clear_inductor_memory_caches()
    torch._dynamo.reset()
    graph = library[COMPILED_GRAPH]
    compiled = torch.compile(lambda q, k, v, m: eager(graph, q, k, v, m), dynamic=False)
    fn = _call(lambda _g, q, k, v, m: compiled(q, k, v, m), graph, n, mode)
    t0 = time.perf_counter()
    fn()  # the cold compile (forward, and backward for fwd+bwd)
    cold = time.perf_counter() - t0
    _bench(benchmark, bench_record, peak_memory, case=f"{COMPILED_GRAPH}/N={n}/{mode}", variant="compiled",
           fn=fn, n=n, cold_compile_s=cold)
