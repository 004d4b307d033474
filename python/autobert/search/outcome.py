"""``Outcome``: the result of evaluating one candidate, and ``evaluate_safely`` which never raises.

An evaluator is any callable ``arch (ArchConfig) -> fitness`` or ``-> (fitness, metrics dict)``;
fitness is a loss (lower is better). Whatever goes wrong — an exception, a NaN/inf fitness, a
constraint the evaluator checks, running out of memory, exceeding the time limit — becomes a
``failed`` outcome with the reason, so one bad candidate never stops the search.
"""
from __future__ import annotations

import contextlib
import dataclasses
import gc
import logging
import math
import signal
import threading
import time
import traceback
from typing import Any, Callable, Optional

import torch

log = logging.getLogger(__name__)


class CandidateFailed(Exception):
    """Raised by an evaluator to fail a candidate with a reason (e.g. over a latency budget)."""


class CandidateTimeout(CandidateFailed):
    """An evaluation ran past its time limit (``Constraints.max_eval_seconds``)."""


# Out-of-memory as torch reports it on the CPU allocator (a RuntimeError, not a MemoryError).
_OOM_MESSAGES = ("out of memory", "can't allocate memory")


def _is_oom(e: BaseException) -> bool:
    if isinstance(e, (MemoryError, torch.cuda.OutOfMemoryError)):
        return True
    return isinstance(e, RuntimeError) and any(m in str(e).lower() for m in _OOM_MESSAGES)


def _release_memory() -> None:
    """After an out-of-memory failure: drop the failed candidate's tensors so the next one has room."""
    gc.collect()
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.empty_cache()


@contextlib.contextmanager
def _alarm(seconds: Optional[float]):
    """Raise CandidateTimeout in this thread after ``seconds`` (main thread on POSIX only; elsewhere a
    no-op, and ``evaluate_safely`` fails an evaluation that took too long once it returns)."""
    usable = seconds is not None and hasattr(signal, "setitimer") and \
        threading.current_thread() is threading.main_thread()
    if not usable:
        yield
        return

    def _fire(signum, frame):
        raise CandidateTimeout(f"time limit: evaluation exceeded {seconds:g} s")

    previous = signal.signal(signal.SIGALRM, _fire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@dataclasses.dataclass(frozen=True)
class Outcome:
    status: str                          # "done" or "failed"
    fitness: Optional[float] = None      # the loss; None when failed
    reason: Optional[str] = None         # why it failed
    metrics: dict = dataclasses.field(default_factory=dict)  # evaluator extras (timings, perplexity, ...)
    seconds: float = 0.0                 # wall time of the evaluation


def evaluate_safely(evaluator: Callable[[Any], Any], arch, time_limit: Optional[float] = None) -> Outcome:
    """Run ``evaluator(arch)`` and turn any failure into ``Outcome(status="failed", reason=...)``.

    ``time_limit`` (seconds) interrupts the evaluation where a timer signal can (the main thread);
    an evaluation that returns after the limit fails too, so the outcome never depends on where
    it ran.
    """
    start = time.perf_counter()
    try:
        with _alarm(time_limit):
            result = evaluator(arch)
    except CandidateFailed as e:
        return Outcome("failed", reason=str(e), seconds=time.perf_counter() - start)
    except Exception as e:  # noqa: BLE001 — any evaluator error fails only this candidate
        oom = _is_oom(e)
        if oom:
            _release_memory()
        log.warning("candidate %s failed: %s", arch.fingerprint(), e)
        log.debug("%s", traceback.format_exc())
        kind = "out of memory" if oom else "exception"
        return Outcome("failed", reason=f"{kind}: {type(e).__name__}: {e}"[:500],
                       seconds=time.perf_counter() - start)
    seconds = time.perf_counter() - start
    if time_limit is not None and seconds > time_limit:
        return Outcome("failed", reason=f"time limit: evaluation took {seconds:.1f} s > {time_limit:g} s",
                       seconds=seconds)
    fitness, metrics = result if isinstance(result, tuple) else (result, {})
    try:
        fitness = float(fitness)
    except (TypeError, ValueError):
        return Outcome("failed", reason=f"fitness is not a number: {fitness!r}"[:500], seconds=seconds)
    if not math.isfinite(fitness):
        return Outcome("failed", reason=f"non-finite fitness {fitness}", metrics=dict(metrics), seconds=seconds)
    return Outcome("done", fitness=fitness, metrics=dict(metrics), seconds=seconds)
