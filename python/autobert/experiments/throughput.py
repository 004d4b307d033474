"""Pretraining throughput of architectures measured side by side:

    python -m autobert.experiments.throughput --arch-dir runs/bert_vs_abz --threads 1 2

Each round runs one full pretraining step (80/10/10 masking, sparse MLM loss, backward, clipping,
AdamW, schedule) of every architecture in turn, so a change in machine load hits all of them alike;
the median over rounds is reported as tokens/s. Architectures come from ``<arch-dir>/*/arch.json``
(what bert_vs_abz writes) or ``--arch`` names/JSON files.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import torch

from autobert.model import ArchConfig, ForMaskedLM
from autobert.train import BERT_UNCASED_IDS, adamw, mask_tokens, masked_lm_loss, warmup_linear_decay
from autobert.train.archs import resolve_arch


def _load_archs(args) -> dict:
    archs = {}
    if args.arch_dir:
        for path in sorted(Path(args.arch_dir).glob("*/arch.json")):
            archs[path.parent.name] = ArchConfig.from_json(path.read_text())
    for spec in args.arch or ():
        archs[Path(spec).stem] = resolve_arch(spec, BERT_UNCASED_IDS.vocab_size, max_positions=args.seq_len)
    if not archs:
        raise SystemExit("no architectures: give --arch-dir or --arch")
    return archs


class _Stepper:
    """One model + optimizer; ``step()`` runs a pretraining step and returns its wall time."""

    def __init__(self, arch: ArchConfig, batch: torch.Tensor, seed: int):
        torch.manual_seed(seed)
        self.model = ForMaskedLM(arch).train()
        self.opt = adamw(self.model, 1e-4, 0.01)
        self.sched = warmup_linear_decay(self.opt, 0, 10_000)
        self.batch, self.gen = batch, torch.Generator().manual_seed(seed)

    def step(self) -> float:
        t0 = time.perf_counter()
        inputs, labels = mask_tokens(self.batch, BERT_UNCASED_IDS, generator=self.gen)
        masked_lm_loss(self.model, inputs, labels).backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
        self.opt.step()
        self.sched.step()
        self.opt.zero_grad(set_to_none=True)
        return time.perf_counter() - t0


def measure(archs: dict, batch_size: int, seq_len: int, rounds: int, warmup: int, threads: int) -> dict:
    """{name: {"tokens_per_s": median, "step_s_p20", "step_s_p80"}} with ``threads`` intra-op threads."""
    torch.set_num_threads(threads)
    g = torch.Generator().manual_seed(0)
    batch = torch.randint(1000, BERT_UNCASED_IDS.vocab_size, (batch_size, seq_len), generator=g)  # (B, N)
    steppers = {name: _Stepper(arch, batch, seed=0) for name, arch in archs.items()}
    times = {name: [] for name in archs}
    for r in range(warmup + rounds):
        for name, s in steppers.items():
            dt = s.step()
            if r >= warmup:
                times[name].append(dt)
    out = {}
    for name, ts in times.items():
        q = statistics.quantiles(ts, n=5) if len(ts) >= 2 else [ts[0]] * 4
        med = statistics.median(ts)
        out[name] = {"tokens_per_s": batch_size * seq_len / med, "step_s_median": med, "step_s_p20": q[0],
                     "step_s_p80": q[3], "parameters": archs[name].num_parameters("mlm")}
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m autobert.experiments.throughput", description=__doc__.split("\n")[0])
    p.add_argument("--arch-dir", help="folder with <name>/arch.json (a bert_vs_abz output folder)")
    p.add_argument("--arch", action="append", help="architecture name or JSON file (repeatable)")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--seq-len", type=int, default=128)
    p.add_argument("--rounds", type=int, default=10)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--threads", type=int, nargs="+", default=[torch.get_num_threads()])
    p.add_argument("--out", help="write the results as JSON here")
    args = p.parse_args(argv)
    archs = _load_archs(args)
    results = {"batch_size": args.batch_size, "seq_len": args.seq_len, "rounds": args.rounds,
               "load_average_before": os.getloadavg(), "cpu_count": os.cpu_count(), "torch": torch.__version__}
    for threads in args.threads:
        results[f"threads={threads}"] = measure(archs, args.batch_size, args.seq_len, args.rounds, args.warmup, threads)
        for name, r in results[f"threads={threads}"].items():
            print(f"threads={threads} {name}: {r['tokens_per_s']:,.0f} tokens/s (median step "
                  f"{r['step_s_median']:.3f} s, p20-p80 {r['step_s_p20']:.3f}-{r['step_s_p80']:.3f} s)")
    results["load_average_after"] = os.getloadavg()
    print(f"load average before {results['load_average_before']}, after {results['load_average_after']}")
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
