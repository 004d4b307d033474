"""The kill/resume harness tells where a kill landed from what the killed process left behind:
search (startup, warm-up, mid-evaluation, between-writes, report), pretrain (startup, training,
checkpoint-write, final-save) and glue (startup, mid-task, between-tasks, suite-results); and it
deals each phase its share of the kills."""
from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import torch

from autobert.search.store import SearchStore

T0 = 1_700_000_000.0  # the killed process's start (wall clock); files are dated before or after it


def _write(path: Path, text: str = "x", *, after: bool) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    t = T0 + 5 if after else T0 - 5
    os.utime(path, (t, t))
    return path


def _args(**changes):
    return argparse.Namespace(**{"budget": 3, "glue_dir": "glue", "tasks": "rte,mrpc", "corpus": None, "vocab": None,
                                 "seed": 0, **changes})


def test_search_kill_phases(harness, tmp_path):
    search = harness.Search(_args(), tmp_path)
    run = tmp_path / "run"
    _write(run / "config.json", after=False)
    with SearchStore(run / "search.sqlite") as store:
        start = {"finished": 0, "done": 0, "t0": T0}
        assert search.landed(run, start)[0] == "startup"  # the data was still loading
        _write(run / "config.json", after=True)
        assert search.landed(run, start)[0] == "warm-up"
        _write(run / "supernet" / "warmup.pt", after=True)
        store.add(0, "f0", "{}", params=1, flops=1)
        store.start(0)
        assert search.landed(run, start) == ("mid-evaluation", {"finished": 0, "running": [0], "pending": []})
        store.finish(0, "done", fitness=1.0)
        assert search.landed(run, start)[0] == "between-writes"  # a result committed, nothing running
        store.add(1, "f1", "{}", params=1, flops=1)
        assert search.landed(run, start)[0] == "between-writes"  # the next candidate stored, not started
        assert search.landed(run, {**start, "finished": 1, "done": 1})[0] == "startup"  # nothing new here
        store.add(2, "f2", "{}", params=1, flops=1)
        for i in (1, 2):
            store.start(i)
            store.finish(i, "done", fitness=float(i))
        finished = {"finished": 3, "done": 3, "t0": T0}
        assert search.landed(run, finished)[0] == "startup"  # a finished run, before its results
        _write(run / "best.json.tmp", after=True)
        phase, detail = search.landed(run, finished)
        assert phase == "report" and detail["results_written"] == ["best.json"]
        assert search.landed(run, {**finished, "finished": 2, "done": 2})[0] == "report"  # finished its last


def test_pretrain_kill_phases(harness, tmp_path, monkeypatch):
    monkeypatch.setattr(harness, "PRETRAIN_STEPS", 9)
    pretrain = harness.Pretrain(_args(), tmp_path)
    run = tmp_path / "run"

    def checkpoint(step):
        (run / "checkpoint").mkdir(parents=True, exist_ok=True)
        torch.save({"step": step}, run / "checkpoint" / "trainer_state.pt")

    def logged(step, after=True):
        _write(run / "metrics.jsonl", "".join(json.dumps({"step": s, "kind": "train", "loss": 1.0}) + "\n"
                                              for s in range(1, step + 1)), after=after)

    checkpoint(3)
    logged(3)  # a resume cuts the log back to the checkpoint: no step taken yet
    start = {"step": 5, "checkpoint": 3, "t0": T0}
    assert pretrain.landed(run, start)[0] == "startup"
    logged(5)
    assert pretrain.landed(run, start)[0] == "training"
    (run / "checkpoint.tmp").mkdir()
    assert pretrain.landed(run, start) == ("checkpoint-write", {"logged_step": 5, "checkpoint_step": 3,
                                                                "left": ["checkpoint.tmp"]})
    (run / "checkpoint.tmp").rmdir()
    checkpoint(9)
    logged(9)
    assert pretrain.landed(run, start)[0] == "final-save"  # this process took the last steps
    done = {"step": 9, "checkpoint": 9, "t0": T0}
    assert pretrain.landed(run, done)[0] == "startup"  # a finished run: nothing rewritten yet
    _write(run / f".model.safetensors.{os.getpid()}.0a1b2c3d.tmp", after=True)
    phase, detail = pretrain.landed(run, done)
    assert phase == "final-save" and detail["final_written"] == ["model.safetensors"]


def test_glue_kill_phases(harness, tmp_path):
    glue = harness.Glue(_args(), tmp_path)
    run = tmp_path / "run"
    start = {"done": 0, "t0": T0}
    _write(run / "finetune_config.json", after=False)
    _write(run / "rte" / "finetune_config.json", after=False)  # a task an earlier process began
    assert glue.landed(run, start)[0] == "startup"
    _write(run / "finetune_config.json", after=True)
    assert glue.landed(run, start)[0] == "startup"  # loading, the old task not yet begun again
    _write(run / "rte" / "finetune_config.json", after=True)
    assert glue.landed(run, start) == ("mid-task", {"tasks_done": 0, "task_running": ["rte"]})
    _write(run / "rte" / "results.json", after=True)
    assert glue.landed(run, start)[0] == "between-tasks"
    _write(run / "mrpc" / "finetune_config.json", after=True)
    assert glue.landed(run, start)[0] == "mid-task"
    _write(run / "mrpc" / "results.json", after=True)
    assert glue.landed(run, start)[0] == "suite-results"


def test_every_phase_gets_its_share_of_the_kills(harness, tmp_path):
    args = _args(tasks="rte,mrpc,cola,sst2")
    assert harness.Search(args, tmp_path).quota(10) == {"warm-up": 2, "mid-evaluation": 3, "between-writes": 3,
                                                        "report": 2}
    assert harness.Pretrain(args, tmp_path).quota(10) == {"training": 4, "checkpoint-write": 4, "final-save": 2}
    assert harness.Glue(args, tmp_path).quota(10) == {"mid-task": 5, "between-tasks": 3, "suite-results": 2}
    assert harness.Glue(_args(tasks="sst2"), tmp_path).quota(2) == {"mid-task": 1, "between-tasks": 0,
                                                                     "suite-results": 1}


def test_pretrain_state_left_by_an_earlier_process_is_not_this_ones(harness, tmp_path, monkeypatch):
    """A kill during the last checkpoint's save leaves every step logged and checkpoint.tmp behind;
    the next process must not be taken for one in its final save (nor in a checkpoint write) before
    it has done anything: in a campaign that mistake spent 31 kills on processes still starting."""
    import random
    monkeypatch.setattr(harness, "PRETRAIN_STEPS", 9)
    pretrain = harness.Pretrain(_args(), tmp_path)
    run = tmp_path / "run"
    (run / "checkpoint").mkdir(parents=True)
    torch.save({"step": 6}, run / "checkpoint" / "trainer_state.pt")
    (run / "checkpoint.tmp").mkdir()
    (run / "metrics.jsonl").write_text("".join(json.dumps({"step": s, "kind": "train", "loss": 1.0}) + "\n"
                                               for s in range(1, 10)))
    start = {"step": 9, "checkpoint": 6, "t0": time.time() + 100}  # the next process starts after all that
    assert pretrain.landed(run, start)[0] == "startup"
    assert pretrain.moment(run, "final-save", start, random.Random(0)) is None
    assert pretrain.moment(run, "checkpoint-write", start, random.Random(0)) is None
