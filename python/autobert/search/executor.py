"""Executors run candidate evaluations: ``LocalExecutor`` in-process, ``RayExecutor`` on Ray workers.

Both take an *evaluator factory*: a picklable callable returning the evaluator (``arch ->
fitness``), so a Ray worker builds its own (loads the data and the supernet checkpoint) once.
Executors only compute: results come back to the driver, which alone writes the database.
"""
from __future__ import annotations

import logging
from typing import Callable, Optional

from autobert.model.config import ArchConfig
from autobert.search.outcome import Outcome, evaluate_safely

log = logging.getLogger(__name__)


class LocalExecutor:
    """Evaluates one candidate at a time in this process (``capacity`` 1)."""

    capacity = 1

    def __init__(self, factory: Callable[[], Callable]):
        self.evaluator = factory()
        self._queue: list[tuple[int, str]] = []

    def submit(self, key: int, arch_json: str) -> None:
        self._queue.append((key, arch_json))

    @property
    def in_flight(self) -> int:
        return len(self._queue)

    def wait(self) -> list[tuple[int, Outcome]]:
        """Evaluate the oldest submitted candidate; [(key, outcome)]."""
        key, arch_json = self._queue.pop(0)
        return [(key, evaluate_safely(self.evaluator, ArchConfig.from_json(arch_json)))]

    def close(self) -> None:
        self._queue.clear()


def _require_ray():
    try:
        import ray
    except ImportError as e:  # ray is an optional extra
        raise RuntimeError("the Ray executor needs ray: pip install 'autobert[ray]' (or 'ray[default]')") from e
    return ray


class RayExecutor:
    """Evaluates up to ``workers`` candidates at once on Ray actors.

    Args:
        factory: picklable; each actor calls it once to build its evaluator.
        workers: number of actors (each reserves ``cpus_per_worker`` CPUs).
        address: a Ray cluster to join; None starts a local Ray instance (stopped again by ``close``).
    """

    def __init__(self, factory: Callable[[], Callable], workers: int = 2, address: Optional[str] = None,
                 cpus_per_worker: float = 1.0):
        ray = self.ray = _require_ray()
        self._owns_ray = not ray.is_initialized()
        if self._owns_ray:
            kwargs = {"address": address} if address else {"num_cpus": max(workers, 1) * cpus_per_worker}
            ray.init(include_dashboard=False, log_to_driver=False, ignore_reinit_error=True, **kwargs)
        actor = ray.remote(num_cpus=cpus_per_worker)(_Worker)
        self.actors = [actor.remote(factory) for _ in range(workers)]
        self.idle = list(self.actors)
        self.running: dict = {}  # ObjectRef -> (key, actor)
        self.capacity = workers

    def submit(self, key: int, arch_json: str) -> None:
        if not self.idle:
            raise RuntimeError("no idle Ray worker: wait() for a result first")
        actor = self.idle.pop()
        self.running[actor.evaluate.remote(arch_json)] = (key, actor)

    @property
    def in_flight(self) -> int:
        return len(self.running)

    def wait(self) -> list[tuple[int, Outcome]]:
        """Block until at least one evaluation finishes; [(key, outcome)] of every finished one."""
        ready, _ = self.ray.wait(list(self.running), num_returns=1)
        out = []
        for ref in ready:
            key, actor = self.running.pop(ref)
            self.idle.append(actor)
            try:
                out.append((key, self.ray.get(ref)))
            except Exception as e:  # noqa: BLE001 — a dead worker fails the candidate, not the search
                log.warning("Ray worker failed on candidate %d: %s", key, e)
                out.append((key, Outcome("failed", reason=f"worker error: {type(e).__name__}: {e}"[:500])))
        return out

    def close(self) -> None:
        for a in self.actors:
            self.ray.kill(a)
        self.actors, self.idle, self.running = [], [], {}
        if self._owns_ray:
            self.ray.shutdown()


class _Worker:
    """A Ray actor holding one evaluator."""

    def __init__(self, factory):
        self.evaluator = factory()

    def evaluate(self, arch_json: str) -> Outcome:
        return evaluate_safely(self.evaluator, ArchConfig.from_json(arch_json))


def make_executor(kind: str, factory: Callable[[], Callable], workers: int = 2, address: Optional[str] = None):
    """``local`` or ``ray``."""
    if kind == "local":
        return LocalExecutor(factory)
    if kind == "ray":
        return RayExecutor(factory, workers=workers, address=address)
    raise ValueError(f"executor must be 'local' or 'ray', got {kind!r}")
