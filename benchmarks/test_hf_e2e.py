"""hf_e2e suite: encoder inference end to end through transformers 5 (models: see hf_models.py).

Cases "<model>/<dtype>/B=<b>/N=<n>", batch 1/8/32 x sequence 128/512 x float32/bfloat16, CPU,
eval, no_grad; a quarter of each batch is padded by N/8 (so the masks are live from B=8 on).
Variants are attention implementations: eager | sdpa | autobert for the BERT models (baseline
sdpa), eager | autobert for the searched-style abz-base (baseline eager: the same graphs op by op).
Each record adds tokens/s (B*N / median) and p50/p99 latency over the rounds (with few rounds p99
is the slowest one). Rounds: enough for ~AUTOBERT_BENCH_HF_SECONDS (default 20) s, at least 3.
Run: pytest benchmarks/test_hf_e2e.py; restrict with AUTOBERT_BENCH_HF_MODELS=bert-base,minilm,abz-base,
AUTOBERT_BENCH_HF_DTYPES=float32,bfloat16, AUTOBERT_BENCH_HF_BATCH=1,8,32, AUTOBERT_BENCH_N=128,512; AUTOBERT_BENCH_THREADS sets the torch threads.
"""
import math
import os
import statistics
import time

import pytest
import torch

pytest.importorskip("transformers", minversion="5")
import hf_models as M  # noqa: E402

SUITE = "hf_e2e"


def _env(name: str, default: str) -> list[str]:
    return [s.strip() for s in os.environ.get(name, default).split(",") if s.strip()]


MODEL_NAMES = _env("AUTOBERT_BENCH_HF_MODELS", ",".join(M.MODELS))
DTYPES = _env("AUTOBERT_BENCH_HF_DTYPES", "float32,bfloat16")
BATCHES = [int(b) for b in _env("AUTOBERT_BENCH_HF_BATCH", "1,8,32")]
SIZES = [int(n) for n in _env("AUTOBERT_BENCH_N", "128,512") if int(n) <= 512]
SECONDS = float(os.environ.get("AUTOBERT_BENCH_HF_SECONDS", "20"))
# On a machine shared with other jobs, one thread per process gives steadier numbers than
# OpenMP threads competing for the same cores; the thread count is recorded with the results.
torch.set_num_threads(int(os.environ.get("AUTOBERT_BENCH_THREADS", torch.get_num_threads())))
MODEL_DTYPES = [(m, dt) for m in MODEL_NAMES for dt in DTYPES]
IMPLEMENTATIONS = sorted({impl for m in MODEL_NAMES for impl in M.IMPLEMENTATIONS[m]})


def _percentile(data: list[float], q: float) -> float:
    return statistics.quantiles(data, n=100, method="inclusive")[round(q * 100) - 1] if len(data) > 1 else data[0]


# The top decorator varies fastest: the implementations of one case run back to back, so a change
# in machine load between cases does not fall between the variants they compare.
@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("batch", BATCHES)
@pytest.mark.parametrize("name,dtype", MODEL_DTYPES, ids=["/".join(c) for c in MODEL_DTYPES])
def test_encoder_inference(benchmark, bench_record, peak_memory, name, dtype, implementation, batch, n):
    if implementation not in M.IMPLEMENTATIONS[name]:
        pytest.skip(f"{name} has no {implementation!r} implementation")
    model = M.use(name, getattr(torch, dtype), implementation)
    ids, mask = M.inputs(batch, n)

    def run():
        return M.forward(model, ids, mask)

    run()  # warm-up: thread pool, allocator, fused-attention plans
    t0 = time.perf_counter()
    peak = peak_memory(run)  # a second untimed call: extra memory, and the time that sizes the rounds
    rounds = max(3, min(30, math.ceil(SECONDS / max(time.perf_counter() - t0, 1e-6))))
    benchmark.pedantic(run, rounds=rounds, warmup_rounds=0)
    data = sorted(benchmark.stats.stats.data) if benchmark.stats else []
    if not data:
        return
    median = statistics.median(data)
    bench_record(benchmark, suite=SUITE, case=f"{name}/{dtype}/B={batch}/N={n}", variant=implementation,
                 baseline=M.BASELINE[name], shapes=[batch, n], dtype=dtype, peak_mem_bytes=peak,
                 tokens_per_s=batch * n / median, p50_s=median, p99_s=_percentile(data, 0.99))
