"""Paired check of the hf_patch suite: unpatched (SDPA) and patched ("standard") bert-base run
alternately, round by round, so machine-load drift hits both alike; reports the median of the
per-round time ratios (> 1: patched is faster) with p20/p80.

    python benchmarks/paired_hf_patch.py [--rounds 7] [--out PATH]

The allocator and thread settings are the suites' (benchmarks/conftest.py); results go to
benchmarks/results/hf_patch_paired-<device>.json unless --out says otherwise.
"""
import argparse
import copy
import json
import os
import statistics
import time

import torch
from transformers import BertConfig, BertModel

from autobert.model import patch_attention
from conftest import RESULTS, device_name, slug  # this folder: the suites' malloc tuning and device naming


def _inputs(n: int, batch: int):
    g = torch.Generator().manual_seed(n)
    ids = torch.randint(1000, 30000, (batch, n), generator=g)
    mask = torch.ones(batch, n, dtype=torch.long)
    mask[: batch // 4, n - n // 8:] = 0  # as in test_hf_patch.py
    return ids, mask


def _time(model, ids, mask) -> float:
    t0 = time.perf_counter()
    with torch.no_grad():
        model(input_ids=ids, attention_mask=mask)
    return time.perf_counter() - t0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--sizes", default="128,512")
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--out", default=None, help="results JSON (default: results/hf_patch_paired-<device>.json)")
    args = p.parse_args()
    torch.manual_seed(0)
    base = BertModel(BertConfig(attn_implementation="sdpa"), add_pooling_layer=False).eval()
    patched = copy.deepcopy(base)
    patch_attention(patched, "standard")
    cases = []
    for n in (int(s) for s in args.sizes.split(",")):
        ids, mask = _inputs(n, args.batch)
        _time(base, ids, mask), _time(patched, ids, mask)  # warm-up
        pairs = []
        for r in range(args.rounds):
            order = (base, patched) if r % 2 == 0 else (patched, base)  # alternate who goes first
            t = {id(m): _time(m, ids, mask) for m in order}
            pairs.append((t[id(base)], t[id(patched)]))
        ratios = sorted(b / q for b, q in pairs)
        q = statistics.quantiles(ratios, n=5)
        case = {"case": f"bert-base/B={args.batch}/N={n}", "rounds": args.rounds,
                "hf_sdpa_median_s": statistics.median(b for b, _ in pairs),
                "patched_standard_median_s": statistics.median(q_ for _, q_ in pairs),
                "ratio_median": statistics.median(ratios), "ratio_p20": q[0], "ratio_p80": q[3]}
        cases.append(case)
        print(json.dumps(case))
    doc = {"suite": "hf_patch_paired", "device": device_name(),
           "torch": torch.__version__, "threads": torch.get_num_threads(), "loadavg_1m": os.getloadavg()[0],
           "date": time.strftime("%Y-%m-%d"), "cases": cases}
    out = args.out or os.path.join(RESULTS, f"hf_patch_paired-{slug(device_name())}.json")
    with open(out, "w") as f:
        json.dump(doc, f, indent=2)


if __name__ == "__main__":
    main()
