"""Executors run candidate evaluations: ``LocalExecutor`` in-process, ``RayExecutor`` on Ray workers.

Both take an *evaluator factory*: a picklable callable returning the evaluator (``arch ->
fitness``), so a Ray worker builds its own (loads the data and the supernet checkpoint) once.
Executors only compute: results come back to the driver, which alone writes the database.

Faults: an evaluation that raises, returns NaN/inf, runs out of memory or past ``time_limit``
is a ``failed`` outcome (``evaluate_safely``). A Ray worker that dies (its process killed, its
node stopped) is replaced by a new actor placed wherever the cluster has room, and the candidate
it held runs once more there; a second loss fails the candidate. A worker that stops answering
for well past the time limit (stuck in native code) is killed and replaced the same way. A worker
that cannot even build its evaluator (the factory raised) stops the search with that error, as
do losses that go on with no evaluation finishing in between and a cluster where no worker can
start at all: that is a broken set-up, not a bad candidate, and retrying it would only spin.

A replacement takes work only once Ray has started it: after a node is stopped for good its
replacements cannot be placed, and handing them candidates would leave those waiting forever.
"""
from __future__ import annotations

import logging
import time
from typing import Callable, Optional

from autobert.model.config import ArchConfig
from autobert.search.outcome import Outcome, evaluate_safely

log = logging.getLogger(__name__)

#: attempts of one candidate when its Ray worker is lost (the first run and one retry)
MAX_ATTEMPTS = 2


class LocalExecutor:
    """Evaluates one candidate at a time in this process (``capacity`` 1)."""

    capacity = 1

    def __init__(self, factory: Callable[[], Callable], time_limit: Optional[float] = None):
        self.evaluator, self.time_limit = factory(), time_limit
        self._queue: list[tuple[int, str]] = []

    def submit(self, key: int, arch_json: str) -> None:
        self._queue.append((key, arch_json))

    @property
    def in_flight(self) -> int:
        return len(self._queue)

    def wait(self) -> list[tuple[int, Outcome]]:
        """Evaluate the oldest submitted candidate; [(key, outcome)]."""
        key, arch_json = self._queue.pop(0)
        return [(key, evaluate_safely(self.evaluator, ArchConfig.from_json(arch_json), self.time_limit))]

    def close(self) -> None:
        self._queue.clear()


def _require_ray():
    try:
        import ray
    except ImportError as e:  # ray is an optional extra
        raise RuntimeError("the Ray executor needs ray: pip install 'autobert[ray]' (or 'ray[default]')") from e
    return ray


class RayExecutor:
    """Evaluates up to ``workers`` candidates at once on Ray actors, spread over the cluster's nodes.

    Candidates are queued and handed to actors that are *ready* (their evaluator built); a lost
    actor is replaced by a new one that only takes work once Ray has placed and started it. When a
    node is gone for good the replacements stay unplaced (no room left) and the surviving actors
    work through the queue, lost candidates first; a replacement that Ray places later (a node
    back, an autoscaler's new one) joins in.

    Args:
        factory: picklable; each actor calls it once to build its evaluator.
        workers: number of actors (each reserves ``cpus_per_worker`` CPUs and ``gpus_per_worker`` GPUs;
            a fraction packs several actors on one GPU).
        address: a Ray cluster to join; None starts a private local Ray instance (stopped again by
            ``close``), never one found in ``/tmp/ray`` or ``RAY_ADDRESS``.
        time_limit: seconds one evaluation may take (see ``evaluate_safely``).
        start_timeout: seconds the search may wait with no actor ready and none evaluating (a cluster
            with no room for even one) before it stops with an error.
    """

    def __init__(self, factory: Callable[[], Callable], workers: int = 2, address: Optional[str] = None,
                 cpus_per_worker: float = 1.0, gpus_per_worker: float = 0.0, time_limit: Optional[float] = None,
                 start_timeout: float = 600.0):
        ray = self.ray = _require_ray()
        self._owns_ray = not ray.is_initialized()
        if self._owns_ray:
            # "local": a fresh instance even where a stale /tmp/ray/ray_current_cluster names another.
            kwargs = {"address": address} if address else {
                "address": "local", "num_cpus": max(workers, 1) * cpus_per_worker}
            ray.init(include_dashboard=False, log_to_driver=False, ignore_reinit_error=True, **kwargs)
        # SPREAD: one actor per node before doubling up, so a cluster's nodes all work.
        self._actor = ray.remote(num_cpus=cpus_per_worker, num_gpus=gpus_per_worker,
                                 scheduling_strategy="SPREAD")(_Worker)
        self.factory, self.time_limit, self.start_timeout = factory, time_limit, start_timeout
        self.reserves = (cpus_per_worker, gpus_per_worker)
        self.starting: dict = {}  # ready ObjectRef -> (actor, time asked for)
        self.idle: list = []      # ready actors with no evaluation
        self.running: dict = {}   # ObjectRef -> (key, arch_json, actor, start time)
        self.queue: list[tuple[int, str]] = []  # submitted, waiting for an idle actor; lost ones first
        self.deferred: list[float] = []  # when to ask again for actors lost while starting
        self.start_losses = 0  # in a row, for the back-off
        self.attempts: dict[int, int] = {}
        self.losses_in_a_row = 0
        self.capacity = workers
        self._stalled_since: Optional[float] = None
        # A worker silent for this long is presumed stuck outside Python (the alarm could not fire).
        self.hard_limit = None if time_limit is None else 2 * time_limit + 30
        for _ in range(workers):
            self._start_actor()

    @property
    def actors(self) -> list:
        """Every actor held: starting, idle or evaluating."""
        return [a for a, _ in self.starting.values()] + self.idle + [r[2] for r in self.running.values()]

    def _start_actor(self) -> None:
        actor = self._actor.remote(self.factory, self.time_limit)
        self.starting[actor.__ray_ready__.remote()] = (actor, time.monotonic())

    def submit(self, key: int, arch_json: str) -> None:
        self.queue.append((key, arch_json))
        self._dispatch()

    def _dispatch(self) -> None:
        while self.queue and self.idle:
            key, arch_json = self.queue.pop(0)
            actor = self.idle.pop()
            self.attempts[key] = self.attempts.get(key, 0) + 1
            self.running[actor.evaluate.remote(arch_json)] = (key, arch_json, actor, time.monotonic())

    @property
    def in_flight(self) -> int:
        return len(self.running) + len(self.queue)

    def _replace(self, actor) -> None:
        """Kill ``actor`` (if still alive) and ask Ray for a fresh one in its place."""
        try:
            self.ray.kill(actor)
        except Exception:  # noqa: BLE001 — it may be gone already
            pass
        self._start_actor()

    def _lost(self, key: int, arch_json: str, why: str) -> Optional[Outcome]:
        """A worker died holding ``key``: queue it first for one more attempt, or fail it after the last."""
        if self.attempts.get(key, 0) < MAX_ATTEMPTS:
            log.warning("Ray worker lost on candidate %d (%s); evaluating it again", key, why)
            self.queue.insert(0, (key, arch_json))
            return None
        log.warning("Ray worker lost on candidate %d again (%s); failing it", key, why)
        return Outcome("failed", reason=f"worker lost {MAX_ATTEMPTS} times: {why}"[:500])

    def _check_set_up(self, error: Exception) -> None:
        """Raise when worker deaths mean the set-up is broken rather than a worker was lost."""
        self.losses_in_a_row += 1
        text = str(error)
        if getattr(error, "actor_init_failed", False):
            raise RuntimeError(f"a Ray worker could not build its evaluator: {text[:2000]}") from error
        if self.losses_in_a_row > 10 * (self.capacity + 1):  # far beyond a few unlucky candidates
            raise RuntimeError(f"{self.losses_in_a_row} Ray workers lost in a row with no evaluation finishing; "
                               f"last: {text[:2000]}") from error

    def _expired(self) -> list:
        if self.hard_limit is None:
            return []
        now = time.monotonic()
        return [ref for ref, (_, _, _, t0) in self.running.items() if now - t0 > self.hard_limit]

    def _check_stalled(self) -> None:
        """Raise when work is queued, nothing evaluates and no actor became ready for ``start_timeout``."""
        if self.running or self.idle or not self.queue:
            self._stalled_since = None
            return
        now = time.monotonic()
        self._stalled_since = self._stalled_since or now
        if now - self._stalled_since > self.start_timeout:
            cpus, gpus = self.reserves
            raise RuntimeError(f"no Ray worker started within {self.start_timeout:g} s: the cluster has no room "
                               f"for one ({cpus:g} CPU, {gpus:g} GPU each); "
                               f"{len(self.queue)} candidate(s) waiting")

    def _started(self, ref) -> None:
        """An actor's creation finished: ready for work, or lost (its node died while it started)."""
        actor, _ = self.starting.pop(ref)
        try:
            self.ray.get(ref)
        except self.ray.exceptions.RayActorError as e:
            self._check_set_up(e)
            # Backed off: just after a node stops, Ray may still place new actors on it, and each
            # fails at once; asking again in a tight loop would only spin through the loss budget.
            delay = min(2.0 ** self.start_losses, 30.0)
            self.start_losses += 1
            log.warning("Ray worker lost while starting (%s); asking for another in %g s",
                        str(e).splitlines()[0], delay)
            try:
                self.ray.kill(actor)
            except Exception:  # noqa: BLE001 — it is gone already
                pass
            self.deferred.append(time.monotonic() + delay)
        else:
            self.start_losses = 0
            self.idle.append(actor)

    def _start_deferred(self) -> None:
        now = time.monotonic()
        for due in [d for d in self.deferred if d <= now]:
            self.deferred.remove(due)
            self._start_actor()

    def wait(self) -> list[tuple[int, Outcome]]:
        """Block until at least one evaluation finishes; [(key, outcome)] of every finished one.

        Polls once a second rather than blocking in Ray: a stuck worker, an actor becoming ready and
        a cluster with no room are all noticed while waiting."""
        out: list[tuple[int, Outcome]] = []
        while not out:
            self._start_deferred()
            self._dispatch()
            self._check_stalled()
            refs = list(self.running) + list(self.starting)
            if not refs:  # every actor lost while starting: wait for the next one to be asked for
                if not self.deferred:
                    raise RuntimeError("no Ray worker running or starting while candidates wait")
                time.sleep(1.0)
                continue
            ready, _ = self.ray.wait(refs, num_returns=1, timeout=1.0)
            for ref in self._expired():
                key, _, actor, _ = self.running.pop(ref)
                self._replace(actor)
                out.append((key, Outcome("failed", reason=f"time limit: worker silent for over "
                                                            f"{self.hard_limit:g} s; killed")))
            for ref in ready:
                if ref in self.starting:
                    self._started(ref)
                    continue
                if ref not in self.running:
                    continue
                key, arch_json, actor, _ = self.running.pop(ref)
                try:
                    outcome = self.ray.get(ref)
                except self.ray.exceptions.RayActorError as e:  # the process or its node died
                    self._check_set_up(e)
                    self._replace(actor)
                    outcome = self._lost(key, arch_json, f"{type(e).__name__}: {str(e).splitlines()[0]}")
                except Exception as e:  # noqa: BLE001 — anything else fails the candidate, not the search
                    self.idle.append(actor)
                    log.warning("Ray worker failed on candidate %d: %s", key, e)
                    outcome = Outcome("failed", reason=f"worker error: {type(e).__name__}: {e}"[:500])
                else:
                    self.idle.append(actor)
                    self.losses_in_a_row = 0
                if outcome is not None:
                    self.attempts.pop(key, None)
                    out.append((key, outcome))
        return out

    def close(self) -> None:
        for a in self.actors:
            try:
                self.ray.kill(a)  # also withdraws a replacement Ray could not place
            except Exception:  # noqa: BLE001 — on a stopped node it is gone already
                pass
        self.starting, self.idle, self.running, self.queue, self.deferred = {}, [], {}, [], []
        if self._owns_ray:
            self.ray.shutdown()


class _Worker:
    """A Ray actor holding one evaluator."""

    def __init__(self, factory, time_limit: Optional[float] = None):
        self.evaluator, self.time_limit = factory(), time_limit

    def evaluate(self, arch_json: str) -> Outcome:
        import ray
        outcome = evaluate_safely(self.evaluator, ArchConfig.from_json(arch_json), self.time_limit)
        # Which node (and GPU) did the work: the database shows how a cluster shared the search.
        where = {"node": ray.get_runtime_context().get_node_id()}
        gpu_ids = ray.get_gpu_ids()
        if gpu_ids:
            where["gpu_ids"] = [str(g) for g in gpu_ids]
        return Outcome(outcome.status, outcome.fitness, outcome.reason, {**outcome.metrics, **where},
                       outcome.seconds)


def make_executor(kind: str, factory: Callable[[], Callable], workers: int = 2, address: Optional[str] = None,
                  gpus_per_worker: float = 0.0, time_limit: Optional[float] = None):
    """``local`` or ``ray``."""
    if kind == "local":
        return LocalExecutor(factory, time_limit)
    if kind == "ray":
        return RayExecutor(factory, workers=workers, address=address, gpus_per_worker=gpus_per_worker,
                           time_limit=time_limit)
    raise ValueError(f"executor must be 'local' or 'ray', got {kind!r}")
