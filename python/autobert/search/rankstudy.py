"""``run_rankcorr``: does the BIWS proxy rank architectures like stand-alone training does?

Samples M distinct architectures from the search space, scores each through the warmed-up
supernet (the search's fitness) and trains each from scratch for S steps, then compares the two
rankings (``rank_correlation``: Kendall tau, Spearman rho, NDCG@k with bootstrap CIs, and parameter
count as a baseline ranker). Stand-alone training also gives the cost study: how many steps (and
seconds) training from scratch needs to reach the loss the BIWS proxy reached.
"""
from __future__ import annotations

import json
import logging
import random
import time
from pathlib import Path
from typing import Callable, Optional

import torch

from autobert.model.heads import ForMaskedLM
from autobert.search.config import SearchConfig
from autobert.search.rankcorr import rank_correlation
from autobert.search.mutation import describe_layers
from autobert.search.runner import SUPERNET_FILE, _biws_evaluator
from autobert.train.schedule import adamw

log = logging.getLogger(__name__)


def _standalone(evaluator, arch, steps: int, eval_every: int, seed: int) -> dict:
    """Train ``arch`` from scratch; held-out loss every ``eval_every`` steps and the time per step."""
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = ForMaskedLM(arch)
    opt = adamw(model, lr=evaluator.cfg.child_lr, weight_decay=0.01)
    curve, train_seconds, done = [], 0.0, 0
    while done < steps:
        chunk = min(eval_every, steps - done)
        start = time.perf_counter()
        evaluator.train_child(model, chunk, seed + done, optimizer=opt)
        train_seconds += time.perf_counter() - start
        done += chunk
        curve.append((done, evaluator.score(model)))
    return {"curve": curve, "loss": curve[-1][1], "seconds_per_step": train_seconds / steps}


def _steps_to_reach(curve, target: float) -> Optional[int]:
    return next((s for s, loss in curve if loss <= target), None)


def run_rankcorr(out_dir, config: SearchConfig, *, n_archs: int = 20, steps: int = 1000, eval_every: int = 100,
                 run_dir=None, k: int = 5, seed: int = 0,
                 progress: Optional[Callable[..., None]] = None) -> dict:
    """Run the study, write ``rankcorr.json`` into ``out_dir`` and return it.

    Args:
        config: data, sizes and BIWS settings (a search run's config.json when ``run_dir`` is given).
        run_dir: reuse that search run's warmed-up supernet; otherwise warm one up (saved in ``out_dir``).
        n_archs, steps: M architectures, S stand-alone steps each.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    progress = progress or (lambda event, **info: None)
    evaluator = _biws_evaluator(config)
    ckpt = Path(run_dir) / SUPERNET_FILE if run_dir is not None else out_dir / "supernet.pt"
    warmup_seconds = None
    if ckpt.exists():
        evaluator.load(ckpt)
    else:
        total = config.biws.warmup_steps
        stats = evaluator.warm_up(progress=lambda s, loss: progress("warmup", step=s, total=total, loss=loss))
        warmup_seconds = stats["seconds"]
        evaluator.save(ckpt)
    rng, seen, rows = random.Random(f"rankcorr/{seed}"), set(), []
    while len(rows) < n_archs:
        arch = evaluator.base.replace(layers=evaluator.space.sample(rng))
        if arch.fingerprint() in seen:
            continue
        seen.add(arch.fingerprint())
        start = time.perf_counter()
        proxy, metrics = evaluator(arch)
        biws_seconds = time.perf_counter() - start
        alone = _standalone(evaluator, arch, steps, eval_every, seed=seed + len(rows))
        reach = _steps_to_reach(alone["curve"], proxy)
        rows.append({"fingerprint": arch.fingerprint(), "layers": describe_layers(arch.layers),
                     "params": arch.num_parameters("mlm"), "proxy_loss": proxy, "biws_seconds": biws_seconds,
                     "standalone_loss": alone["loss"], "standalone_curve": alone["curve"],
                     "standalone_seconds_per_step": alone["seconds_per_step"], "steps_to_reach_proxy": reach})
        progress("arch", index=len(rows), total=n_archs, proxy=proxy, standalone=alone["loss"])
    result = _summarise(rows, k, seed, warmup_seconds, config)
    (out_dir / "rankcorr.json").write_text(json.dumps(result, indent=2))
    return result


def _summarise(rows: list, k: int, seed: int, warmup_seconds, config: SearchConfig) -> dict:
    stats = rank_correlation([r["proxy_loss"] for r in rows], [r["standalone_loss"] for r in rows],
                             [r["params"] for r in rows], k=min(k, len(rows)), seed=seed)
    ratios, censored = [], 0
    for r in rows:
        reach = r["steps_to_reach_proxy"]
        steps = reach if reach is not None else r["standalone_curve"][-1][0]  # a lower bound when never reached
        censored += reach is None
        ratios.append(steps * r["standalone_seconds_per_step"] / r["biws_seconds"])
    cost = {"median_speedup": float(sorted(ratios)[len(ratios) // 2]), "speedups": ratios,
            "never_reached": censored,
            "note": "speedup = seconds from scratch to the proxy's held-out loss / seconds of one BIWS evaluation; "
                    "architectures that never reached it within the stand-alone steps count with all steps "
                    "(a lower bound)"}
    if warmup_seconds is not None:
        cost["warmup_seconds"] = warmup_seconds
    return {"config": config.to_dict(), "stats": stats, "cost": cost, "archs": rows}
