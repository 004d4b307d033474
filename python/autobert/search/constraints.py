"""Resource constraints on candidates: parameters, FLOPs at a sequence length, measured latency.

Parameter and FLOP limits are checked from the config alone before anything is evaluated; a
violating child is *recorded as failed* with the reason (not silently resampled), so the database
shows what the search tried and the op that produced it is penalised like any failure. Latency
needs a model, so the evaluator measures it (``measure_latency_ms``) before training. A time limit
on a whole evaluation (``max_eval_seconds``) is enforced by the executors (``evaluate_safely``).
"""
from __future__ import annotations

import dataclasses
import time
from typing import Optional

import torch

from autobert.model.config import ArchConfig


def _positive_or_none(name: str, value) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0):
        raise ValueError(f"Constraints.{name} must be a positive number or None, got {value!r}")


@dataclasses.dataclass(frozen=True)
class Constraints:
    """Limits a candidate must meet; None = no limit."""

    max_params: Optional[int] = None       # backbone + MLM head parameters
    max_flops: Optional[int] = None        # backbone forward FLOPs for one sequence of ``seq_len`` tokens
    seq_len: int = 128                     # sequence length the FLOP (and latency) limit refers to
    max_latency_ms: Optional[float] = None  # measured forward latency of one batch (see measure_latency_ms)
    latency_batch: int = 8                 # batch size of the latency measurement
    max_eval_seconds: Optional[float] = None  # wall time one evaluation may take (a hung candidate fails)

    def __post_init__(self):
        for name in ("max_params", "max_flops", "max_latency_ms", "max_eval_seconds"):
            _positive_or_none(name, getattr(self, name))
        for name in ("seq_len", "latency_batch"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ValueError(f"Constraints.{name} must be an int >= 1, got {v!r}")

    def static_violation(self, arch: ArchConfig) -> Optional[str]:
        """The reason ``arch`` breaks the parameter or FLOP limit, or None."""
        if self.max_params is not None:
            params = arch.num_parameters("mlm")
            if params > self.max_params:
                return f"constraint: {params} parameters > max_params {self.max_params}"
        if self.max_flops is not None:
            flops = arch.flops(self.seq_len)
            if flops > self.max_flops:
                return f"constraint: {flops} FLOPs at seq_len {self.seq_len} > max_flops {self.max_flops}"
        return None

    def latency_violation(self, model: torch.nn.Module, seed: int = 0) -> Optional[str]:
        """The reason ``model`` is over the latency limit, or None (no limit: nothing is measured)."""
        if self.max_latency_ms is None:
            return None
        ms = measure_latency_ms(model, self.seq_len, self.latency_batch, seed=seed)
        if ms > self.max_latency_ms:
            return f"constraint: latency {ms:.2f} ms > max_latency_ms {self.max_latency_ms}"
        return None


def measure_latency_ms(model: torch.nn.Module, seq_len: int, batch: int = 8, repeats: int = 5,
                       seed: int = 0) -> float:
    """Median forward time in milliseconds of ``model`` on a random (batch, seq_len) input, after one warm-up."""
    gen = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, model.config.vocab_size, (batch, seq_len), generator=gen)
    ids = ids.to(next(model.parameters()).device)
    was_training = model.training
    model.eval()
    times = []
    # CUDA launches are asynchronous: wait for the kernels, or the time is only the launch cost.
    sync = torch.cuda.synchronize if ids.is_cuda else (lambda: None)
    with torch.no_grad():
        model(ids)  # warm-up: first call pays allocation and planning
        for _ in range(repeats):
            sync()
            start = time.perf_counter()
            model(ids)
            sync()
            times.append((time.perf_counter() - start) * 1e3)
    model.train(was_training)
    return sorted(times)[len(times) // 2]
