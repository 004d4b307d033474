"""``Outcome``: the result of evaluating one candidate, and ``evaluate_safely`` which never raises.

An evaluator is any callable ``arch (ArchConfig) -> fitness`` or ``-> (fitness, metrics dict)``;
fitness is a loss (lower is better). Whatever goes wrong — an exception, a NaN/inf fitness, a
constraint the evaluator checks — becomes a ``failed`` outcome with the reason, so one bad
candidate never stops the search.
"""
from __future__ import annotations

import dataclasses
import logging
import math
import time
import traceback
from typing import Any, Callable, Optional

log = logging.getLogger(__name__)


class CandidateFailed(Exception):
    """Raised by an evaluator to fail a candidate with a reason (e.g. over a latency budget)."""


@dataclasses.dataclass(frozen=True)
class Outcome:
    status: str                          # "done" or "failed"
    fitness: Optional[float] = None      # the loss; None when failed
    reason: Optional[str] = None         # why it failed
    metrics: dict = dataclasses.field(default_factory=dict)  # evaluator extras (timings, perplexity, ...)
    seconds: float = 0.0                 # wall time of the evaluation


def evaluate_safely(evaluator: Callable[[Any], Any], arch) -> Outcome:
    """Run ``evaluator(arch)`` and turn any failure into ``Outcome(status="failed", reason=...)``."""
    start = time.perf_counter()
    try:
        result = evaluator(arch)
    except CandidateFailed as e:
        return Outcome("failed", reason=str(e), seconds=time.perf_counter() - start)
    except Exception as e:  # noqa: BLE001 — any evaluator error fails only this candidate
        log.warning("candidate %s failed: %s", arch.fingerprint(), e)
        log.debug("%s", traceback.format_exc())
        return Outcome("failed", reason=f"exception: {type(e).__name__}: {e}"[:500],
                       seconds=time.perf_counter() - start)
    seconds = time.perf_counter() - start
    fitness, metrics = result if isinstance(result, tuple) else (result, {})
    try:
        fitness = float(fitness)
    except (TypeError, ValueError):
        return Outcome("failed", reason=f"fitness is not a number: {fitness!r}"[:500], seconds=seconds)
    if not math.isfinite(fitness):
        return Outcome("failed", reason=f"non-finite fitness {fitness}", metrics=dict(metrics), seconds=seconds)
    return Outcome("done", fitness=fitness, metrics=dict(metrics), seconds=seconds)
