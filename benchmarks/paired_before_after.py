"""Paired before/after check of the CPU benchmark cases: two checkouts of the project (e.g. main
before a refactor and the branch after it) time the same cases in alternating processes, round by
round (who goes first alternates too), so machine-load drift hits both alike.

    python benchmarks/paired_before_after.py --before DIR --after DIR [--rounds 5]
        [--sizes 128,512,1024,2048] [--out PATH]

Each DIR is a checkout with its extension built in place (``autobert_ext/_C*.so``). Cases: the
fused variant of every fused_attention case (each library graph x N x fwd / fwd+bwd; the eager
baselines do not run project kernels) and the fused variants of the masked_adamw suite. The case
definitions are this folder's suite modules, imported by both sides. Per case and round the
median of a few calls is kept; the result is the median of the per-round ratios before / after
(> 1: the after checkout is faster) with p20/p80 and a distribution-free 95% interval of that median
(order statistics). A case "holds" when its median ratio is >= 0.95; it is "slower" when even the
interval's upper end is below 0.95 (slower by more than 5% beyond the timing noise).
Results go to benchmarks/results/before_after-<device>.json unless --out says otherwise.
"""
import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
HOLDS = 0.95  # "within 5% of the old speed or better"


def median_ci(xs: list[float], level: float = 0.95) -> tuple[float, float]:
    """[x_(k), x_(n-k+1)] of the sorted values for the largest k with 2 P(Binomial(n, 1/2) < k) <= 1 - level:
    an interval holding the median with probability >= level, whatever the distribution."""
    xs, n = sorted(xs), len(xs)
    k, tail = 0, 0.0
    while k < n // 2 and 2 * (tail + math.comb(n, k) / 2 ** n) <= 1 - level:
        tail += math.comb(n, k) / 2 ** n
        k += 1
    return (xs[k - 1], xs[n - k]) if k else (xs[0], xs[-1])


def _calls(n: int) -> int:
    return {128: 20, 512: 8, 1024: 4}.get(n, 2)


def _worker(sizes: list[int]) -> dict[str, float]:
    """Runs in a child whose PYTHONPATH points at one checkout; returns {case: median seconds}."""
    sys.path.insert(0, HERE)
    import torch

    from conftest import median_seconds  # importing it tunes malloc and threads, as in the suites
    import test_fused_attention as FA
    import test_masked_adamw as MA
    from autobert.graph import library

    out = {}
    for name in sorted(library):
        for n in sizes:
            for mode in ("fwd", "fwd+bwd"):
                fn = FA._call(FA.fused_attention, library[name], n, mode)
                out[f"fused_attention/{name}/N={n}/{mode}"] = median_seconds(fn, _calls(n))
    problem = MA.make_problem()
    with torch.no_grad():
        for variant in ("fused_masked", "fused_full"):
            out[f"masked_adamw/{variant}"] = median_seconds(MA.VARIANTS[variant](problem), 10)
    return out


def _run_side(checkout: str, sizes: list[int]) -> dict[str, float]:
    root = os.path.abspath(checkout)
    env = dict(os.environ, PYTHONPATH=f"{root}/python:{root}")
    proc = subprocess.run([sys.executable, os.path.abspath(__file__), "--worker", "--sizes",
                           ",".join(map(str, sizes))], env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"benchmark worker for {checkout} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _git_head(checkout: str) -> str:
    proc = subprocess.run(["git", "-C", checkout, "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    return proc.stdout.strip() or "unknown"


def paired(before: str, after: str, sizes: list[int], rounds: int) -> list[dict]:
    times = {"before": [], "after": []}
    for r in range(rounds):
        sides = (("before", before), ("after", after))
        for label, checkout in (sides if r % 2 == 0 else sides[::-1]):
            times[label].append(_run_side(checkout, sizes))
        print(f"round {r + 1}/{rounds} done", file=sys.stderr)
    cases = []
    for case in times["before"][0]:
        b = [t[case] for t in times["before"]]
        a = [t[case] for t in times["after"]]
        ratios = sorted(x / y for x, y in zip(b, a))
        q = statistics.quantiles(ratios, n=5, method="inclusive") if len(ratios) > 1 else [ratios[0]] * 4
        lo, hi = median_ci(ratios)
        cases.append({"case": case, "before_median_s": statistics.median(b), "after_median_s": statistics.median(a),
                      "ratio_median": statistics.median(ratios), "ratio_p20": q[0], "ratio_p80": q[3],
                      "ratio_ci95": [lo, hi], "holds": statistics.median(ratios) >= HOLDS, "slower": hi < HOLDS})
    return cases


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--before", help="checkout timed as 'before'")
    ap.add_argument("--after", help="checkout timed as 'after'")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--sizes", default="128,512,1024,2048")
    ap.add_argument("--out")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    if args.worker:
        print(json.dumps(_worker(sizes)))
        return
    if not (args.before and args.after):
        ap.error("--before and --after are required")
    for d in (args.before, args.after):
        if not os.path.isdir(os.path.join(d, "autobert_ext")):
            ap.error(f"{d}: not a checkout of the project (no autobert_ext/ folder)")
    sys.path.insert(0, HERE)
    from conftest import RESULTS, device_name, slug

    t0 = time.time()
    cases = paired(args.before, args.after, sizes, args.rounds)
    ratios = [c["ratio_median"] for c in cases]
    doc = {"device": device_name(), "threads": os.cpu_count(), "rounds": args.rounds,
           "before": {"path": os.path.abspath(args.before), "commit": _git_head(args.before)},
           "after": {"path": os.path.abspath(args.after), "commit": _git_head(args.after)},
           "criterion": f"median per-round ratio before/after >= {HOLDS}",
           "cases_holding": sum(c["holds"] for c in cases), "cases": len(cases),
           "cases_slower": sum(c["slower"] for c in cases),
           "worst_ratio": min(ratios), "median_ratio": statistics.median(ratios),
           "loadavg_1m": round(os.getloadavg()[0], 2), "wall_s": round(time.time() - t0, 1), "results": cases}
    out = args.out or os.path.join(RESULTS, f"before_after-{slug(device_name())}.json")
    with open(out, "w") as f:
        json.dump(doc, f, indent=1)
    for c in cases:
        lo, hi = c["ratio_ci95"]
        print(f"{c['case']:<55} {c['ratio_median']:.3f} [{c['ratio_p20']:.3f}, {c['ratio_p80']:.3f}] "
              f"ci95 [{lo:.3f}, {hi:.3f}]{'' if c['holds'] else '  < ' + str(HOLDS)}{'  SLOWER' if c['slower'] else ''}")
    print(f"{doc['cases_holding']}/{doc['cases']} cases hold; {doc['cases_slower']} slower beyond the noise; "
          f"worst {doc['worst_ratio']:.3f}; wrote {out}")


if __name__ == "__main__":
    main()
