"""Faults inside a search run, one test per class: a candidate that raises, returns NaN/inf, runs past
the time limit or out of memory; a Ray worker that dies mid-evaluation; a full disk while the supernet
checkpoint is written. Each is recorded and the search goes on; nothing is lost or duplicated."""
import errno
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import pytest
import torch

from conftest import TINY_MLM, hang_guard
from autobert.model.atomic import atomic_write
from autobert.search import OpCountFitness, SearchConfig, SearchStore, run_search
from autobert.search.runner import _biws_evaluator

ROOT = Path(__file__).resolve().parents[2]


def _hit(arch, every: int = 4) -> bool:
    """A deterministic quarter of the architectures (by fingerprint) get the fault."""
    return int(arch.fingerprint()[:8], 16) % every == 0


class Faulty:
    """The toy fitness, with ``fault(arch)`` run first on the architectures ``_hit`` picks."""

    def __init__(self, fault):
        self.toy, self.fault = OpCountFitness(), fault

    def __call__(self, arch):
        if _hit(arch):
            result = self.fault(arch)
            if result is not None:
                return result
        return self.toy(arch)


def _config(**changes):
    fields = {"fitness": "toy", "budget": 16, "model": {"n_layers": 2},
              "evolution": {"population_size": 6, "sample_size": 3}}
    return SearchConfig(**{**fields, **changes})


def _rows(run):
    with SearchStore(run / "search.sqlite") as store:
        return [dict(r) for r in store.rows()]


def _survived(run, summary, budget, reason_prefix):
    """The run met its budget, every faulty candidate is failed with the reason, nothing is pending,
    and no candidate appears twice."""
    rows = _rows(run)
    failed = [r for r in rows if r["status"] == "failed"]
    assert summary.done == budget and summary.stopped == "budget"
    assert failed and all(r["reason"].startswith(reason_prefix) and r["fitness"] is None for r in failed)
    assert not [r for r in rows if r["status"] in ("pending", "running")]
    assert len({r["fingerprint"] for r in rows}) == len(rows)
    return rows, failed


def test_candidate_that_raises(tmp_path):
    def boom(arch):
        raise RuntimeError("kernel exploded")
    summary = run_search(tmp_path / "run", _config(), evaluator_factory=lambda: Faulty(boom))
    _survived(tmp_path / "run", summary, 16, "exception: RuntimeError: kernel exploded")


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf")])
def test_candidate_with_non_finite_fitness(tmp_path, value):
    summary = run_search(tmp_path / "run", _config(), evaluator_factory=lambda: Faulty(lambda a: value))
    _survived(tmp_path / "run", summary, 16, "non-finite fitness")


def test_candidate_over_the_time_limit(tmp_path):
    """A candidate that would hang for a minute is interrupted at the limit (0.5 s) and failed."""
    def hang(arch):
        time.sleep(60)
    start = time.perf_counter()
    summary = run_search(tmp_path / "run", _config(constraints={"max_eval_seconds": 0.5}),
                         evaluator_factory=lambda: Faulty(hang))
    rows, failed = _survived(tmp_path / "run", summary, 16, "time limit: evaluation exceeded 0.5 s")
    assert time.perf_counter() - start < 20 * len(failed)  # never waited out a hang
    assert all(json.loads(r["metrics_json"])["seconds"] < 5 for r in failed)


@pytest.mark.parametrize("error", [
    torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"),
    RuntimeError("[enforce fail at alloc_cpu.cpp:117] DefaultCPUAllocator: can't allocate memory"),
    MemoryError(),
], ids=["cuda", "cpu-allocator", "python"])
def test_candidate_out_of_memory(tmp_path, error):
    held = []

    def oom(arch):
        held.append(torch.empty(1 << 20))  # what the candidate allocated before it ran out
        raise error
    summary = run_search(tmp_path / "run", _config(), evaluator_factory=lambda: Faulty(oom))
    _survived(tmp_path / "run", summary, 16, f"out of memory: {type(error).__name__}")


class DiesOnce:
    """Kills its own worker process while evaluating the 3rd architecture the run evaluates
    (tickets claimed with exclusive file creation, so they count across workers, whatever order the
    search proposes in); a marker file per fingerprint remembers a victim across the replacement
    worker. ``always``: a victim kills every worker that evaluates it, else only the first."""

    VICTIMS = (2,)  # one: each worker start costs an import of torch, ~30 s on a loaded 2-core machine

    def __init__(self, marker_dir: str, always: bool = False):
        self.toy, self.dir, self.always = OpCountFitness(), Path(marker_dir), always

    def _ticket(self) -> int:
        n = 0
        while True:
            try:
                os.close(os.open(self.dir / f"ticket-{n}", os.O_CREAT | os.O_EXCL | os.O_WRONLY))
                return n
            except FileExistsError:
                n += 1

    def __call__(self, arch):
        mark = self.dir / f"victim-{arch.fingerprint()}"
        if mark.exists() and not self.always:
            return self.toy(arch)
        if mark.exists() or self._ticket() in self.VICTIMS:
            mark.write_text(str(os.getpid()))
            os._exit(1)  # like the OOM killer or a segfault: no exception, no cleanup
        return self.toy(arch)


@pytest.mark.slow
def test_ray_worker_dies_mid_evaluation(tmp_path, monkeypatch, caplog):
    """A worker killed during an evaluation is replaced and the candidate runs once more; a candidate
    whose evaluation kills every worker fails after the second loss. Either way the search finishes."""
    pytest.importorskip("ray")
    # Ray's workers unpickle the evaluator factory: they must find this module (they inherit the env).
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(Path(__file__).parent), os.environ.get("PYTHONPATH", "")]))
    ray = pytest.importorskip("ray")
    # One private instance for both runs (the executor then leaves it running): half the start-ups,
    # and nothing shared with another Ray instance on the machine.
    temp_dir = tempfile.mkdtemp(prefix="abray-", dir="/tmp")
    # 4 CPUs for 2 workers: an actor killed while its worker process was still starting can hold its
    # CPU for a minute or two after the first run ends (seen: the second run's start waited 140 s).
    ray.init(address="local", num_cpus=4, include_dashboard=False, log_to_driver=False, _temp_dir=temp_dir)
    try:
        for always in (False, True):
            _search_with_dying_workers(tmp_path / f"always-{always}", caplog, always)
    finally:
        ray.shutdown()
        shutil.rmtree(temp_dir, ignore_errors=True)


def _search_with_dying_workers(root: Path, caplog, always: bool) -> None:
    from autobert.model import ArchConfig
    from autobert.search.executor import MAX_ATTEMPTS
    marks, run = root / "marks", root / "run"
    marks.mkdir(parents=True)
    caplog.clear()
    start = time.perf_counter()
    with hang_guard(300, "the search with dying Ray workers"), \
            caplog.at_level(logging.WARNING, logger="autobert.search.executor"):
        summary = run_search(run, _config(executor="ray", workers=2, budget=10),
                             evaluator_factory=lambda: DiesOnce(str(marks), always))
    seconds = time.perf_counter() - start
    rows = _rows(run)
    killed = {p.name.removeprefix("victim-") for p in marks.glob("victim-*")}
    hit = [r for r in rows if r["fingerprint"] in killed]
    assert summary.done == 10 and len(killed) == len(hit) == len(DiesOnce.VICTIMS)
    assert len({r["fingerprint"] for r in rows}) == len(rows)
    assert not [r for r in rows if r["status"] in ("pending", "running")]
    again = [m for m in caplog.messages if "evaluating it again" in m]
    assert len(again) == len(hit)  # each victim ran once more, on a fresh worker
    if always:
        assert all(r["status"] == "failed" and r["reason"].startswith(f"worker lost {MAX_ATTEMPTS} times")
                   for r in hit)
        assert summary.failed == len(hit)
    else:  # retried on a fresh worker: done, with the fitness an undisturbed evaluation gives
        toy = OpCountFitness()
        assert all(r["status"] == "done" for r in hit)
        assert all(r["fitness"] == toy(ArchConfig.from_json(r["arch_json"])) for r in hit)
        assert summary.failed == 0
    print(f"always={always}: {seconds:.1f} s, {len(rows)} candidates, lost workers on {len(hit)}, "
          f"{summary.failed} failed")


_SAVE_UNDER_LIMIT = textwrap.dedent("""
    import json, resource, signal, sys
    from autobert.search import SearchConfig
    from autobert.search.runner import _biws_evaluator
    config, path, limit = SearchConfig.from_dict(json.loads(sys.argv[1])), sys.argv[2], int(sys.argv[3])
    ev = _biws_evaluator(config)
    ev.load(path)
    ev.warm_up(steps=3)                       # new weights to save
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG, not a signal
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    try:
        ev.save(path)
    except (OSError, RuntimeError) as e:  # torch's zip writer reports the short write as a RuntimeError
        print(json.dumps({"error": type(e).__name__, "errno": getattr(e, "errno", None), "message": str(e)}))
        sys.exit(3)
""")


def test_full_disk_while_writing_the_supernet_checkpoint(tiny_corpus, tmp_path):
    corpus, vocab = tiny_corpus
    config = SearchConfig.preset("tiny", corpus=corpus, vocab=vocab, **TINY_MLM)
    threads = torch.get_num_threads()
    try:
        ev = _biws_evaluator(config)
    finally:
        torch.set_num_threads(threads)
    ev.warm_up(steps=2)
    path = tmp_path / "supernet" / "warmup.pt"
    ev.save(path)
    before = {k: v.clone() for k, v in ev.supernet.state_dict().items()}
    limit = path.stat().st_size // 2
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "python"), str(ROOT),
                                                         os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, "-c", _SAVE_UNDER_LIMIT, config.to_json(), str(path), str(limit)],
                          capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 3, proc.stderr[-2000:]
    error = json.loads(proc.stdout.strip().splitlines()[-1])
    assert error["errno"] == errno.EFBIG or (error["error"] == "RuntimeError" and "pos" in error["message"]), error
    assert sorted(p.name for p in path.parent.iterdir()) == ["warmup.pt"]  # no temporary file left
    ev.warm_up(steps=1)  # change the weights here, then load what is on disk
    ev.load(path)
    assert all(torch.equal(before[k], v) for k, v in ev.supernet.state_dict().items())


def test_write_that_raises_enospc_keeps_the_previous_file(tmp_path):
    path = tmp_path / "state.pt"
    torch.save({"step": 1}, path)

    def half_then_full(tmp):
        tmp.write_bytes(b"partial")
        raise OSError(errno.ENOSPC, "No space left on device")
    with pytest.raises(OSError) as info:
        atomic_write(path, half_then_full)
    assert info.value.errno == errno.ENOSPC
    assert torch.load(path) == {"step": 1} and [p.name for p in tmp_path.iterdir()] == ["state.pt"]
