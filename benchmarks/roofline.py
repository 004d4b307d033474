"""How far can attention go on this machine? The GEMM roofline of the fused_attention suite.

Every streaming graph needs at least the two (N x N x d) GEMMs of attention forward (Q K^T and
P V) and four more backward (dV, dP, dQ, dK), whatever the score function: 4*B*H*N^2*d FLOPs
forward, 12*B*H*N^2*d forward+backward (no recomputation counted, no score/exp work counted).
At the machine's best measured fp32 GEMM rate those FLOPs take ``bound_s``; no implementation can
beat eager by more than ``max_ratio = eager median / bound_s``. The script measures that rate
(torch.mm of 2048^3, and torch.bmm of the suite's own (B*H, N, d) x (B*H, d, N) shapes; the best
of them is the peak), reads results/fused_attention-<device>.json and writes
results/fused_attention_roofline-<device>.json and its table in benchmarks/README.md.

    python benchmarks/roofline.py [--rounds 15]

Run it on a quiet machine, like the suite (the same malloc and thread settings: conftest.py).
"""
import argparse
import json
import os
import time

import torch

from conftest import RESULTS, device_name, median_seconds, slug, write_readme_section  # this folder: the suites' settings

SUITE = "fused_attention"
MARK_START, MARK_END = "<!-- roofline:fused_attention -->", "<!-- /roofline:fused_attention -->"


def gemm_rates(shapes: list[list[int]], rounds: int) -> dict[str, float]:
    """FLOP/s of torch.mm 2048^3 and of torch.bmm at each suite shape (B, H, N, d)."""
    a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
    rates = {"mm 2048x2048x2048": 2 * 2048**3 / median_seconds(lambda: torch.mm(a, b), rounds)}
    for B, H, N, d in shapes:
        q, kt = torch.randn(B * H, N, d), torch.randn(B * H, d, N)
        rates[f"bmm ({B * H}, {N}, {d}) x ({B * H}, {d}, {N})"] = (
            2 * B * H * N * N * d / median_seconds(lambda: torch.bmm(q, kt), rounds))
    return rates


def min_flops(shape: list[int], mode: str) -> int:
    """The GEMM FLOPs any implementation of a streaming graph performs (see the module docstring)."""
    B, H, N, d = shape
    return (4 if mode == "fwd" else 12) * B * H * N * N * d


def roofline(records: list[dict], peak: float) -> list[dict]:
    """One row per streaming case with eager and fused medians."""
    by_case: dict[str, dict[str, dict]] = {}
    for r in records:
        by_case.setdefault(r["case"], {})[r["variant"]] = r
    rows = []
    for case, variants in by_case.items():
        eager, fused = variants.get("eager"), variants.get("fused")
        if not eager or not fused or fused.get("plan") != "streaming":
            continue
        mode = case.rsplit("/", 1)[1]
        flops = min_flops(fused["shapes"], mode)
        bound = flops / peak
        rows.append({"case": case, "eager_s": eager["median_s"], "fused_s": fused["median_s"], "bound_s": bound,
                     "fused_ratio": eager["median_s"] / fused["median_s"], "max_ratio": eager["median_s"] / bound,
                     "fused_share_of_peak": bound / fused["median_s"]})
    return rows


def markdown(doc: dict) -> str:
    lines = ["Written by `python benchmarks/roofline.py` from the suite's results: the GEMM work any "
             "implementation of a streaming graph must do (forward: Q K^T and P V, 4·B·H·N²·d FLOPs; "
             "forward+backward: six such GEMMs, 12·B·H·N²·d, no recomputation counted) at the best fp32 GEMM "
             "rate measured on the machine. *bound × eager* is the most any kernel could gain over eager; "
             "*fused at % of peak* is that GEMM work's rate in the fused kernel (the fused backward "
             "recomputes Q K^T, a seventh GEMM, so its true rate is 7/6 of the figure).\n",
             f"**{doc['device']}** · torch {doc['torch']} · {doc['threads']} threads · {doc['date']} · peak "
             f"{doc['peak_flops'] / 1e9:.0f} GFLOP/s ({doc['peak_from']}) · "
             f"[`results/{doc['file']}`](results/{doc['file']})\n",
             "| case | eager ms | fused ms | GEMM bound ms | fused × eager | bound × eager | fused at % of peak |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for r in doc["rows"]:
        lines.append(f"| {r['case']} | {r['eager_s'] * 1e3:.3g} | {r['fused_s'] * 1e3:.3g} | {r['bound_s'] * 1e3:.3g} | "
                     f"{r['fused_ratio']:.2f} | {r['max_ratio']:.2f} | {100 * r['fused_share_of_peak']:.0f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--rounds", type=int, default=15, help="timed GEMM calls per shape (median)")
    args = p.parse_args()
    device = device_name("cpu")
    src = os.path.join(RESULTS, f"{SUITE}-{slug(device)}.json")
    with open(src) as f:
        suite = json.load(f)
    if suite["threads"] != torch.get_num_threads():
        raise SystemExit(f"{src} was measured with {suite['threads']} threads, this process has "
                         f"{torch.get_num_threads()}: set OMP_NUM_THREADS to match")
    shapes = sorted({tuple(r["shapes"]) for r in suite["records"]})
    rates = gemm_rates([list(s) for s in shapes], args.rounds)
    peak_from = max(rates, key=rates.get)
    name = f"{SUITE}_roofline-{slug(device)}.json"
    doc = {"suite": SUITE, "device": device, "torch": torch.__version__, "threads": torch.get_num_threads(),
           "date": time.strftime("%Y-%m-%d"), "loadavg_1m": round(os.getloadavg()[0], 2),
           "gemm_flops": rates, "peak_flops": rates[peak_from], "peak_from": peak_from, "file": name,
           "suite_date": suite["date"], "rows": roofline(suite["records"], rates[peak_from])}
    with open(os.path.join(RESULTS, name), "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")
    write_readme_section(MARK_START, MARK_END, "### GEMM roofline of the streaming graphs\n\n" + markdown(doc))
    print(markdown(doc))


if __name__ == "__main__":
    main()
