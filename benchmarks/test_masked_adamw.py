"""masked_adamw suite: one BIWS shared-weight update of a 10M-parameter supernet.

Case: 10M float32 parameters in 50 tensors of varied odd sizes, a random half of the entries
active (as a sampled child marks them). Variants:
  torch_adamw_foreach  torch.optim.AdamW(foreach=True).step() on all params (baseline: what an
                       unmasked step costs)
  fused_masked         autobert_ext.fused_masked_adamw_ (C++ kernel), masked
  fused_full           the same kernel with masks=None (every entry active)
  python_slices        per tensor: gather the active entries (masked_select), one foreach AdamW
                       on the gathered lists, scatter back (masked_scatter_): the obvious
                       pure-PyTorch masked update
  eager_masked         autobert_ext's torch.where fallback (AUTOBERT_BACKEND=eager)
Target: fused_masked >= 1.5x torch_adamw_foreach.
"""
import os

import pytest
import torch
from torch.optim.adamw import adamw as adamw_functional

import autobert_ext
from autobert_ext import fused_masked_adamw_

SUITE, CASE, BASELINE = "masked_adamw", "10M params, 50 tensors, 50% active", "torch_adamw_foreach"
HYPER = dict(lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.01)
ROUNDS = {"eager_masked": 8, "python_slices": 10}


@pytest.fixture(scope="module")
def problem():
    return make_problem()


def make_problem() -> dict:
    """50 tensors (sizes log-uniform, odd, summing to ~10M), grads, moments and 50% random masks."""
    g = torch.Generator().manual_seed(0)
    raw = torch.exp(torch.empty(50).uniform_(0, 3.5, generator=g))
    sizes = [int(s) | 1 for s in (raw / raw.sum() * 10_000_000)]
    params = [torch.randn(n, generator=g) for n in sizes]
    return {
        "sizes": sizes,
        "params": params,
        "grads": [torch.randn(n, generator=g) for n in sizes],
        "exp_avgs": [0.1 * torch.randn(n, generator=g) for n in sizes],
        "exp_avg_sqs": [0.01 * torch.rand(n, generator=g) for n in sizes],
        "masks": [torch.rand(n, generator=g) < 0.5 for n in sizes],
    }


def _fused(pb, masked):
    masks = pb["masks"] if masked else None
    return lambda: fused_masked_adamw_(pb["params"], pb["grads"], pb["exp_avgs"], pb["exp_avg_sqs"],
                                       masks, step=10, **HYPER)


def _torch_foreach(pb):
    params = [p.clone().requires_grad_() for p in pb["params"]]
    for p, g in zip(params, pb["grads"]):
        p.grad = g
    opt = torch.optim.AdamW(params, lr=HYPER["lr"], betas=(HYPER["beta1"], HYPER["beta2"]),
                            eps=HYPER["eps"], weight_decay=HYPER["weight_decay"], foreach=True)
    opt.step()  # allocate the state outside the timed calls
    return opt.step


def _python_slices(pb):
    steps = [torch.tensor(9.0) for _ in pb["params"]]

    def run():
        ks = pb["masks"]
        gathered = [[torch.masked_select(t, k) for t, k in zip(pb[name], ks)]
                    for name in ("params", "grads", "exp_avgs", "exp_avg_sqs")]
        adamw_functional(*gathered, [], steps, foreach=True, amsgrad=False, maximize=False,
                         beta1=HYPER["beta1"], beta2=HYPER["beta2"], lr=HYPER["lr"],
                         weight_decay=HYPER["weight_decay"], eps=HYPER["eps"])
        for name, new in zip(("params", "exp_avgs", "exp_avg_sqs"), (gathered[0], gathered[2], gathered[3])):
            for t, k, x in zip(pb[name], ks, new):
                t.masked_scatter_(k, x)
    return run


def _eager(pb):
    fn = _fused(pb, masked=True)

    def run():
        old = os.environ.get("AUTOBERT_BACKEND")
        os.environ["AUTOBERT_BACKEND"] = "eager"
        try:
            fn()
        finally:
            if old is None:
                del os.environ["AUTOBERT_BACKEND"]
            else:
                os.environ["AUTOBERT_BACKEND"] = old
    return run


VARIANTS = {
    "torch_adamw_foreach": _torch_foreach,
    "fused_masked": lambda pb: _fused(pb, masked=True),
    "fused_full": lambda pb: _fused(pb, masked=False),
    "python_slices": _python_slices,
    "eager_masked": _eager,
}


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_masked_adamw_step(benchmark, bench_record, peak_memory, problem, variant):
    if variant.startswith("fused") and not autobert_ext.available():
        pytest.skip("autobert_ext._C not built")
    fn = VARIANTS[variant](problem)
    with torch.no_grad():
        peak = peak_memory(fn)
        benchmark.pedantic(fn, rounds=ROUNDS.get(variant, 30), warmup_rounds=2, iterations=1)
    numel = sum(problem["sizes"])
    bench_record(benchmark, suite=SUITE, case=CASE, variant=variant, baseline=BASELINE,
                 shapes=f"{len(problem['sizes'])} tensors, {numel / 1e6:.1f}M",
                 dtype=torch.float32, peak_mem_bytes=peak, numel=numel,
                 active_fraction=round(sum(int(k.sum()) for k in problem["masks"]) / numel, 4),
                 backend="eager" if variant == "eager_masked" else ("cpp" if variant.startswith("fused") else "torch"))
