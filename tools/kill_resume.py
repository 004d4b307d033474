"""Kill, resume, compare: SIGKILL ``autobert search | pretrain | glue`` at chosen moments, resume each
time, and check that the final result equals an uninterrupted run with the same seed.

    python tools/kill_resume.py search   --kills 10 --work /tmp/kr --json search.json
    python tools/kill_resume.py pretrain --kills 10 --work /tmp/kr
    python tools/kill_resume.py glue     --kills 10 --work /tmp/kr --glue-dir glue_data --tasks rte,mrpc,cola,sst2

Each cycle starts the command (a new run first, ``--resume`` after), waits for the moment its phase
names (polling the run folder every few ms), adds a random delay, and sends SIGKILL. Phases:

* search: ``warm-up`` (the supernet is training), ``mid-evaluation`` (a candidate is running, after
  at least one finished in this process), ``between-writes`` (the instant a result was committed),
  ``report`` (all candidates done: best.json, pareto.json, report.html being written);
* pretrain: ``training`` (a checkpoint was passed in this process), ``checkpoint-write``
  (``checkpoint.tmp`` exists), ``final-save`` (the last step logged: the model being saved);
* glue: ``mid-task`` (a task is training), ``between-tasks`` (the instant a task's results.json
  appeared), ``suite-results`` (all tasks done: submission zip and results being written).

Then the run is resumed to the end and compared: search databases row for row (candidates, status,
fitness; integrity check, no duplicate fingerprint, nothing pending); pretrain final weights bitwise
and the logged losses; glue every task's metrics and the submission files. Uses the embedded corpus
and vocabulary unless ``--corpus``/``--vocab`` are given. ``OMP_NUM_THREADS=1`` in every process, so
float reductions are the same in each. Exit status 0 when every comparison holds.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

POLL_S = 0.003

# Seconds-sized search: 2 layers of width 32 on the first 20k tokens; children train 15 steps.
SEARCH_CONFIG = {"model": {"n_layers": 2, "hidden": 32, "heads": 2, "ffn": 64, "max_positions": 32},
                 "biws": {"seq_len": 32, "batch_size": 8, "eval_blocks": 32, "warmup_steps": 60, "child_steps": 15,
                          "threads": 1, "max_tokens": 20000},
                 "evolution": {"population_size": 4, "sample_size": 2, "max_nodes": 8}}
PRETRAIN_FLAGS = ["--preset", "demo", "--steps", "30", "--batch-size", "4", "--seq-len", "32", "--max-tokens",
                  "20000", "--checkpoint-interval", "3", "--eval-interval", "10", "--log-interval", "1"]
GLUE_FLAGS = ["--model", "bert-tiny", "--seeds", "2", "--epochs", "1", "--max-train-examples", "48",
              "--max-eval-examples", "48", "--batch-size", "16", "--max-length", "48"]


def cli(*args) -> list[str]:
    return [sys.executable, "-m", "autobert.cli", *args]


def _env() -> dict:
    return {**os.environ, "OMP_NUM_THREADS": "1"}


# ----------------------------------------------------------------------------- run folder probes
def db_rows(run: Path) -> list[dict]:
    """The search database's candidates (read-only); [] while it does not exist yet."""
    if not (run / "search.sqlite").exists():
        return []
    try:
        db = sqlite3.connect(f"file:{run}/search.sqlite?mode=ro", uri=True, timeout=5)
        db.row_factory = sqlite3.Row
        try:
            return [dict(r) for r in db.execute("SELECT * FROM candidates ORDER BY id")]
        finally:
            db.close()
    except sqlite3.Error:
        return []


def metrics_step(run: Path) -> int:
    """The last step in metrics.jsonl (0 when none)."""
    try:
        lines = (run / "metrics.jsonl").read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return 0
    steps = [0]
    for line in lines:
        try:
            steps.append(json.loads(line)["step"])
        except (ValueError, KeyError):
            pass
    return max(steps)


def glue_done(run: Path, tasks: list[str]) -> int:
    return sum((run / t / "results.json").is_file() for t in tasks)


# ----------------------------------------------------------------------------- commands
class Command:
    """One command's new/resume arguments, its kill moments and its comparison."""

    name = ""

    def __init__(self, args, work: Path):
        self.args, self.work = args, work

    def new(self, run: Path) -> list[str]:
        raise NotImplementedError

    def resume(self, run: Path) -> list[str]:
        raise NotImplementedError

    def phase(self, run: Path, cycle: int) -> str:
        """The phase the next kill aims at, from the run folder's state."""
        raise NotImplementedError

    def moment(self, run: Path, phase: str, start: dict, rng: random.Random) -> float | None:
        """Seconds to wait before the kill once the phase's condition holds now; None: not yet."""
        raise NotImplementedError

    def snapshot(self, run: Path) -> dict:
        return {}

    def compare(self, ref: Path, run: Path) -> dict:
        raise NotImplementedError


class Search(Command):
    name = "search"

    def __init__(self, args, work):
        super().__init__(args, work)
        self.config = work / "search_config.json"
        self.config.write_text(json.dumps(SEARCH_CONFIG))

    def new(self, run):
        data = [f for flag, v in (("--corpus", self.args.corpus), ("--vocab", self.args.vocab)) if v
                for f in (flag, v)]
        return cli("search", "--out", str(run), "--config", str(self.config), "--budget", str(self.args.budget),
                   "--seed", str(self.args.seed), "--no-progress", *data)

    def resume(self, run):
        return cli("search", "--resume", str(run), "--no-progress")

    def snapshot(self, run):
        rows = db_rows(run)
        return {"finished": sum(r["status"] in ("done", "failed") for r in rows)}

    def phase(self, run, cycle):
        rows = db_rows(run)
        if cycle == 0:
            return "warm-up"
        if sum(r["status"] == "done" for r in rows) >= self.args.budget - 1:
            return "report"
        return "mid-evaluation" if cycle % 2 else "between-writes"

    def moment(self, run, phase, start, rng):
        if phase == "warm-up":
            return rng.uniform(0.0, 3.0) if (run / "search.sqlite").exists() else None
        rows = db_rows(run)
        finished = sum(r["status"] in ("done", "failed") for r in rows)
        if phase == "between-writes":
            return 0.0 if finished > start["finished"] else None
        if phase == "mid-evaluation":
            return rng.uniform(0.0, 1.0) if finished > start["finished"] and any(
                r["status"] == "running" for r in rows) else None
        done = sum(r["status"] == "done" for r in rows)
        return rng.uniform(0.0, 1.5) if done >= self.args.budget else None

    def compare(self, ref, run):
        key = ("id", "fingerprint", "function", "status", "fitness", "params", "parent", "op", "generation")
        a = [tuple(r[k] for k in key) for r in db_rows(ref)]
        b = [tuple(r[k] for k in key) for r in db_rows(run)]
        db = sqlite3.connect(run / "search.sqlite")
        integrity = db.execute("PRAGMA integrity_check").fetchone()[0]
        db.close()
        rows = db_rows(run)
        best_equal = (json.loads((ref / "best.json").read_text()) == json.loads((run / "best.json").read_text()))
        return {"equal": a == b and best_equal, "candidates": len(b), "done": sum(r["status"] == "done" for r in rows),
                "integrity": integrity, "duplicates": len(rows) - len({r["fingerprint"] for r in rows}),
                "unfinished": sum(r["status"] in ("pending", "running") for r in rows),
                "reevaluated": sum(r["attempts"] > 1 for r in rows), "best_json_equal": best_equal,
                "report": (run / "report.html").is_file()}


class Pretrain(Command):
    name = "pretrain"

    def new(self, run):
        data = [f for flag, v in (("--corpus", self.args.corpus), ("--vocab", self.args.vocab)) if v
                for f in (flag, v)]
        return cli("pretrain", "--out", str(run), *PRETRAIN_FLAGS, "--seed", str(self.args.seed), "--no-progress",
                   *data)

    def resume(self, run):
        return cli("pretrain", "--out", str(run), "--resume", "--no-progress")

    def snapshot(self, run):
        return {"step": metrics_step(run)}

    def phase(self, run, cycle):
        if metrics_step(run) >= 27:
            return "final-save"
        return ("training", "checkpoint-write")[cycle % 2]

    def moment(self, run, phase, start, rng):
        step = metrics_step(run)
        if phase == "checkpoint-write":  # a save can be over between two polls: then kill two saves on
            if step > start["step"] and (run / "checkpoint.tmp").exists():
                return 0.0
            return rng.uniform(0.0, 0.05) if step >= start["step"] + 7 else None
        if phase == "training":
            return rng.uniform(0.0, 0.5) if step >= start["step"] + 4 else None
        return rng.uniform(0.0, 0.6) if step >= 30 else None

    def compare(self, ref, run):
        from safetensors.torch import load_file
        a, b = load_file(str(ref / "model.safetensors")), load_file(str(run / "model.safetensors"))
        weights = a.keys() == b.keys() and all(bool((a[k] == b[k]).all()) and a[k].dtype == b[k].dtype for k in a)
        losses = [_records(p) for p in (ref, run)]
        return {"equal": weights and losses[0] == losses[1], "weights_bitwise_equal": weights,
                "losses_equal": losses[0] == losses[1], "tensors": len(b),
                "summary": (run / "summary.json").is_file()}


def _records(run: Path) -> list:
    """(step, kind, loss, perplexity) of every metrics record (timings left out)."""
    out = []
    for line in (run / "metrics.jsonl").read_text().splitlines():
        r = json.loads(line)
        out.append((r["step"], r["kind"], r["loss"], r.get("perplexity")))
    return out


class Glue(Command):
    name = "glue"

    def __init__(self, args, work):
        super().__init__(args, work)
        if not args.glue_dir:
            raise SystemExit("glue needs --glue-dir")
        self.tasks = args.tasks.split(",")

    def new(self, run):
        vocab = ["--vocab", self.args.vocab] if self.args.vocab else []
        if not vocab:
            from autobert.data import default_vocab
            vocab = ["--vocab", str(default_vocab())]
        return cli("glue", "--out", str(run), "--glue-dir", self.args.glue_dir, "--tasks", self.args.tasks,
                   *GLUE_FLAGS, "--data-seed", str(self.args.seed), "--no-progress", *vocab)

    resume = new  # glue reuses the tasks an earlier call finished: the same command resumes

    def snapshot(self, run):
        return {"done": glue_done(run, self.tasks), "t0": time.monotonic()}

    def phase(self, run, cycle):
        if glue_done(run, self.tasks) == len(self.tasks):
            return "suite-results"
        return ("mid-task", "between-tasks", "mid-task")[cycle % 3]

    def moment(self, run, phase, start, rng):
        done = glue_done(run, self.tasks)
        if phase == "between-tasks":
            return 0.0 if done > start["done"] else None
        if phase == "mid-task":
            active = [t for t in self.tasks if (run / t).is_dir() and not (run / t / "results.json").is_file()]
            return rng.uniform(0.0, 2.0) if active else None
        return rng.uniform(0.0, 0.5) if done == len(self.tasks) else None

    def compare(self, ref, run):
        diffs = []
        for t in self.tasks:
            a, b = (json.loads((d / t / "results.json").read_text()) for d in (ref, run))
            if _strip_times(a) != _strip_times(b):
                diffs.append(t)
        subs = sorted(p.name for p in (ref / "submission").glob("*.tsv"))
        sub_equal = all((ref / "submission" / n).read_bytes() == (run / "submission" / n).read_bytes() for n in subs)
        suite = [_strip_times(json.loads((d / "results.json").read_text())) for d in (ref, run)]
        return {"equal": not diffs and sub_equal and suite[0] == suite[1], "tasks_differing": diffs,
                "submission_files": len(subs), "submission_equal": sub_equal, "suite_equal": suite[0] == suite[1]}


def _strip_times(doc):
    """A result document without its wall-clock fields (they differ run to run)."""
    if isinstance(doc, dict):
        return {k: _strip_times(v) for k, v in doc.items() if k not in ("wall_s", "seconds")}
    if isinstance(doc, list):
        return [_strip_times(v) for v in doc]
    return doc


COMMANDS = {"search": Search, "pretrain": Pretrain, "glue": Glue}


# ----------------------------------------------------------------------------- the campaign
def _run_to_end(argv: list[str], timeout: float) -> float:
    t0 = time.monotonic()
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=_env())
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return time.monotonic() - t0


def kill_cycle(cmd: Command, run: Path, argv: list[str], cycle: int, rng: random.Random, timeout: float) -> dict:
    """Start ``argv``, SIGKILL it at the moment of this cycle's phase; the record of what happened."""
    phase = cmd.phase(run, cycle)
    start = cmd.snapshot(run)
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=_env())
    t0 = time.monotonic()
    delay = None
    while proc.poll() is None and time.monotonic() - t0 < timeout:
        delay = cmd.moment(run, phase, start, rng)
        if delay is not None:
            break
        time.sleep(POLL_S)
    if delay:
        time.sleep(delay)
    killed = proc.poll() is None
    if killed:
        proc.send_signal(signal.SIGKILL)
    _, err = proc.communicate()
    if not killed and proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({proc.returncode}) before the kill:\n{err[-3000:]}")
    return {"cycle": cycle, "phase": phase, "killed": killed, "at_s": round(time.monotonic() - t0, 3),
            "delay_s": round(delay or 0.0, 3), "state_before": start, "state_after": cmd.snapshot(run)}


def campaign(name: str, args, work: Path) -> dict:
    cmd = COMMANDS[name](args, work)
    rng = random.Random(args.seed)
    ref, run = work / f"{name}_reference", work / f"{name}_killed"
    reference_s = _run_to_end(cmd.new(ref), args.timeout)
    cycles, t0 = [], time.monotonic()
    while sum(c["killed"] for c in cycles) < args.kills and len(cycles) < 3 * args.kills:
        argv = cmd.new(run) if not run.exists() or not cycles else cmd.resume(run)
        record = kill_cycle(cmd, run, argv, len(cycles), rng, args.timeout)
        cycles.append(record)
        print(f"{name} cycle {record['cycle']}: {record['phase']:<16} killed={record['killed']} "
              f"after {record['at_s']:.2f} s  {record['state_after']}", file=sys.stderr)
    final_s = _run_to_end(cmd.resume(run) if run.exists() else cmd.new(run), args.timeout)
    result = cmd.compare(ref, run)
    leftovers = sorted(str(p.relative_to(run)) for p in run.rglob("*.tmp"))
    phases = {}
    for c in cycles:
        if c["killed"]:
            phases[c["phase"]] = phases.get(c["phase"], 0) + 1
    return {"command": name, "kills": sum(c["killed"] for c in cycles), "kills_by_phase": phases,
            "equal": result["equal"] and not leftovers, "comparison": result, "tmp_leftovers": leftovers,
            "reference_s": round(reference_s, 1), "campaign_s": round(time.monotonic() - t0 + final_s, 1),
            "cycles": cycles}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("commands", nargs="+", choices=sorted(COMMANDS))
    p.add_argument("--kills", type=int, default=10)
    p.add_argument("--work", required=True, help="folder for the reference and killed runs (must not exist)")
    p.add_argument("--seed", type=int, default=0, help="run seed and kill-moment seed")
    p.add_argument("--budget", type=int, default=10, help="search candidates")
    p.add_argument("--corpus")
    p.add_argument("--vocab")
    p.add_argument("--glue-dir")
    p.add_argument("--tasks", default="rte,mrpc,cola,sst2")
    p.add_argument("--timeout", type=float, default=600.0, help="seconds one process may take")
    p.add_argument("--json", help="write the results here")
    args = p.parse_args(argv)
    work = Path(args.work)
    work.mkdir(parents=True)
    results = []
    for name in args.commands:
        r = campaign(name, args, work)
        results.append(r)
        print(f"{name}: {r['kills']} kills {r['kills_by_phase']}; equal to the uninterrupted run: {r['equal']}; "
              f"{ {k: v for k, v in r['comparison'].items() if k != 'equal'} }")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    return 0 if all(r["equal"] and r["kills"] >= args.kills for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
