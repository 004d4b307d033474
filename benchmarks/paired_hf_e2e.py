"""Paired check of the hf_e2e headline ratios: two implementations of one model run alternately,
round by round (who goes first alternates too), so machine-load drift hits both alike; reports
the median of the per-round time ratios (baseline / candidate, > 1: the candidate is faster) with
p20/p80.

    python benchmarks/paired_hf_e2e.py [--rounds 9] [--batch 8] [--sizes 512] [--threads T] [--out PATH]

Pairs: bert-base sdpa vs autobert (issue 14's target: >= 1.0x), abz-base eager vs autobert (target:
>= 2x), minilm sdpa vs autobert; float32 unless --dtype says otherwise. abz-base also times its
"no-attention" floor in the same rounds (every graph replaced by out = V): eager / floor is the
largest end-to-end ratio any attention kernel could reach. Results go to
benchmarks/results/hf_e2e_paired-<device>.json unless --out says otherwise.
"""
import argparse
import json
import os
import statistics
import time

import torch

import hf_models as M
from conftest import RESULTS, device_name, slug  # this folder: the suites' malloc tuning and device naming

PAIRS = (("bert-base", "sdpa", "autobert"), ("abz-base", "eager", "autobert"), ("minilm", "sdpa", "autobert"))
FLOOR = {"abz-base": "no-attention"}


def _time(name: str, dtype: torch.dtype, implementation: str, ids, mask) -> float:
    model = M.use(name, dtype, implementation)
    t0 = time.perf_counter()
    M.forward(model, ids, mask)
    return time.perf_counter() - t0


def paired(name: str, dtype: torch.dtype, base: str, cand: str, batch: int, n: int, rounds: int) -> dict:
    ids, mask = M.inputs(batch, n)
    impls = [base, cand] + ([FLOOR[name]] if name in FLOOR else [])
    for impl in impls:
        _time(name, dtype, impl, ids, mask)  # warm-up
    times = {impl: [] for impl in impls}
    for r in range(rounds):
        for impl in (impls if r % 2 == 0 else impls[::-1]):  # alternate who goes first
            times[impl].append(_time(name, dtype, impl, ids, mask))
    ratios = sorted(b / c for b, c in zip(times[base], times[cand]))
    q = statistics.quantiles(ratios, n=5, method="inclusive")
    case = {"case": f"{name}/{str(dtype).replace('torch.', '')}/B={batch}/N={n}", "baseline": base,
            "candidate": cand, "rounds": rounds, "baseline_median_s": statistics.median(times[base]),
            "candidate_median_s": statistics.median(times[cand]), "ratio_median": statistics.median(ratios),
            "ratio_p20": q[0], "ratio_p80": q[3], "loadavg_1m": round(os.getloadavg()[0], 2)}
    if name in FLOOR:
        floor = times[FLOOR[name]]
        case.update(floor_variant=FLOOR[name], floor_median_s=statistics.median(floor),
                    baseline_over_floor_median=statistics.median(b / f for b, f in zip(times[base], floor)))
    return case


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--sizes", default="512")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--rounds", type=int, default=9)
    p.add_argument("--dtype", default="float32")
    p.add_argument("--models", default=",".join(name for name, _, _ in PAIRS))
    p.add_argument("--threads", type=int, default=torch.get_num_threads(), help="torch threads (default: all cores)")
    p.add_argument("--out", default=None, help="results JSON (default: results/hf_e2e_paired-<device>.json)")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    dtype, wanted = getattr(torch, args.dtype), args.models.split(",")
    cases = []
    for name, base, cand in PAIRS:
        if name not in wanted:
            continue
        for n in (int(s) for s in args.sizes.split(",")):
            cases.append(paired(name, dtype, base, cand, args.batch, n, args.rounds))
            print(json.dumps(cases[-1]), flush=True)
    doc = {"suite": "hf_e2e_paired", "device": device_name(), "torch": torch.__version__,
           "threads": torch.get_num_threads(), "date": time.strftime("%Y-%m-%d"), "cases": cases}
    out = args.out or os.path.join(RESULTS, f"hf_e2e_paired-{slug(device_name())}.json")
    with open(out, "w") as f:
        json.dump(doc, f, indent=2)
        f.write("\n")


if __name__ == "__main__":
    main()
