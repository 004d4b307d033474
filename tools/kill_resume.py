"""Kill, resume, compare: SIGKILL ``autobert search | pretrain | glue`` at chosen moments, resume each
time, and check that the final result equals an uninterrupted run with the same seed.

    python tools/kill_resume.py search   --kills 10 --work /tmp/kr --json search.json
    python tools/kill_resume.py pretrain --kills 10 --work /tmp/kr
    python tools/kill_resume.py glue     --kills 10 --work /tmp/kr --glue-dir glue_data --tasks rte,mrpc,cola,sst2

Each cycle starts the command (a new run first, ``--resume`` after), waits for a moment of the phase
it aims at (polling the run folder every few ms), adds a seeded random delay, and sends SIGKILL.
After the death it reads the run folder again, which holds the state at the instant of the kill,
and records the phase the kill really *landed* in; the aim is chosen so that every phase gets its
share of kills (a quota per phase, counted by where kills landed). Phases:

* search: ``warm-up`` (no supernet checkpoint yet), ``mid-evaluation`` (a candidate's status is
  ``running``), ``between-writes`` (no candidate running, a result committed by this process: the
  next proposal is being made or stored), ``report`` (all candidates done: best.json, pareto.json,
  report.html being written);
* pretrain: ``training`` (this process took steps), ``checkpoint-write`` (``checkpoint.tmp`` or
  ``checkpoint.old`` left behind), ``final-save`` (every step logged and checkpointed: the model
  being saved);
* glue: ``mid-task`` (a task this process began has no results.json), ``between-tasks`` (a task
  finished in this process, the next one not yet begun), ``suite-results`` (all tasks done:
  submission zip and results being written);
* any command: ``startup`` (the process had not yet changed the run: imports, data loading).

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

# Seconds-sized search: 2 layers of width 32 on the first 20k tokens; children train 15 steps; the
# warm-up is long enough (about a second) for kills to land in it.
SEARCH_CONFIG = {"model": {"n_layers": 2, "hidden": 32, "heads": 2, "ffn": 64, "max_positions": 32},
                 "biws": {"seq_len": 32, "batch_size": 8, "eval_blocks": 32, "warmup_steps": 200, "child_steps": 15,
                          "threads": 1, "max_tokens": 20000},
                 "evolution": {"population_size": 4, "sample_size": 2, "max_nodes": 8}}
PRETRAIN_STEPS = 60
PRETRAIN_FLAGS = ["--preset", "demo", "--steps", str(PRETRAIN_STEPS), "--batch-size", "4", "--seq-len", "32", "--max-tokens",
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


def checkpoint_step(run: Path) -> int:
    """The step of the pretraining checkpoint a resume would load (0 when none)."""
    import torch
    for name in ("checkpoint", "checkpoint.old"):
        state = run / name / "trainer_state.pt"
        if state.is_file():
            try:
                return int(torch.load(state, map_location="cpu", weights_only=False)["step"])
            except Exception:  # a state file cut by the kill: the resume falls back the same way
                continue
    return 0


def glue_done(run: Path, tasks: list[str]) -> int:
    return sum((run / t / "results.json").is_file() for t in tasks)


def newer(path: Path, t0: float) -> bool:
    """Whether ``path`` exists and was written at or after wall-clock time ``t0``."""
    try:
        return path.stat().st_mtime >= t0
    except OSError:
        return False


def renamed_since(path: Path, t0: float) -> bool:
    """Whether ``path`` exists and was written or renamed (its inode changed) since ``t0``: a
    checkpoint folder left by an earlier process is not this process's."""
    try:
        st = path.stat()
    except OSError:
        return False
    return max(st.st_mtime, st.st_ctime) >= t0


def written_since(run: Path, names, t0: float) -> list[str]:
    """Which of the files ``names`` in ``run`` were written, or were being written (a temporary file
    beside them: ``name.tmp``, ``.name.*.tmp``), since ``t0``."""
    return [n for n in names if newer(run / n, t0) or newer(run / f"{n}.tmp", t0)
            or any(newer(p, t0) for p in run.glob(f".{n}.*.tmp"))]


# ----------------------------------------------------------------------------- commands
class Command:
    """One command's new/resume arguments, its kill moments, where a kill landed, and its comparison.

    ``PHASES`` are the moments a kill aims at, the last one (``TERMINAL``) reached only once the work is
    done; ``startup`` (the process had not yet changed the run: imports, data loading) is where a kill
    lands when it comes too early, and is recorded like any other phase."""

    name = ""
    PHASES: tuple[str, ...] = ()
    EARLY: str | None = None  # a phase that stops being reachable first: aimed at before the others

    def __init__(self, args, work: Path):
        self.args, self.work = args, work

    @property
    def terminal(self) -> str:
        return self.PHASES[-1]

    def caps(self) -> dict:
        """The most kills a phase can take in one campaign (phases not named: no limit)."""
        return {}

    def quota(self, kills: int) -> dict:
        """Kills to land per phase: dealt round-robin in ``PHASES`` order within ``caps``; they add up
        to ``kills`` when the caps allow."""
        out, caps = dict.fromkeys(self.PHASES, 0), self.caps()
        while sum(out.values()) < kills and any(out[p] < caps.get(p, kills) for p in self.PHASES):
            for p in self.PHASES:
                if sum(out.values()) < kills and out[p] < caps.get(p, kills):
                    out[p] += 1
        return out

    def new(self, run: Path) -> list[str]:
        raise NotImplementedError

    def resume(self, run: Path) -> list[str]:
        raise NotImplementedError

    def reachable(self, run: Path, phase: str) -> bool:
        """Whether a kill can still land in ``phase`` (the terminal phase always can)."""
        raise NotImplementedError

    def snapshot(self, run: Path) -> dict:
        """The run folder's state before a process starts (``t0``: the wall-clock start)."""
        return {}

    def moment(self, run: Path, phase: str, start: dict, rng: random.Random) -> float | None:
        """Seconds to wait before the kill once the phase's condition holds now; None: not yet."""
        raise NotImplementedError

    def landed(self, run: Path, start: dict) -> tuple[str, dict]:
        """The phase the killed process was in, read from what it left behind (the run folder after
        its death is the state at the instant of the kill); with details."""
        raise NotImplementedError

    def compare(self, ref: Path, run: Path) -> dict:
        raise NotImplementedError


class Search(Command):
    name = "search"
    PHASES = ("warm-up", "mid-evaluation", "between-writes", "report")
    EARLY = "warm-up"
    RESULT_FILES = ("best.json", "pareto.json", "report.html")

    def __init__(self, args, work):
        super().__init__(args, work)
        self.config = work / "search_config.json"
        self.config.write_text(json.dumps(SEARCH_CONFIG))

    def caps(self):
        return {"warm-up": 2, "report": 2}

    def new(self, run):
        data = [f for flag, v in (("--corpus", self.args.corpus), ("--vocab", self.args.vocab)) if v
                for f in (flag, v)]
        return cli("search", "--out", str(run), "--config", str(self.config), "--budget", str(self.args.budget),
                   "--seed", str(self.args.seed), "--no-progress", *data)

    def resume(self, run):
        return cli("search", "--resume", str(run), "--no-progress")

    def reachable(self, run, phase):
        if phase == "warm-up":
            return not (run / "supernet" / "warmup.pt").exists()
        if phase in ("mid-evaluation", "between-writes"):
            return sum(r["status"] == "done" for r in db_rows(run)) < self.args.budget
        return True

    def snapshot(self, run):
        rows = db_rows(run)
        return {"finished": sum(r["status"] in ("done", "failed") for r in rows),
                "done": sum(r["status"] == "done" for r in rows), "t0": time.time()}

    def moment(self, run, phase, start, rng):
        if phase == "warm-up":  # config.json is (re)written once the data is loaded, just before the warm-up
            ready = newer(run / "config.json", start["t0"]) and not (run / "supernet" / "warmup.pt").exists()
            return rng.uniform(0.0, 1.0) if ready else None
        rows = db_rows(run)
        finished = sum(r["status"] in ("done", "failed") for r in rows)
        if phase == "between-writes":
            return 0.0 if finished > start["finished"] else None
        if phase == "mid-evaluation":
            return rng.uniform(0.0, 0.6) if finished > start["finished"] and any(
                r["status"] == "running" for r in rows) else None
        done = sum(r["status"] == "done" for r in rows)
        writing = done > start["done"] or any(newer(run / f, start["t0"]) for f in self.RESULT_FILES)
        return rng.uniform(0.0, 0.3) if done >= self.args.budget and writing else None

    def landed(self, run, start):
        rows = db_rows(run)
        finished = sum(r["status"] in ("done", "failed") for r in rows)
        done = sum(r["status"] == "done" for r in rows)
        detail = {"finished": finished, "running": [r["id"] for r in rows if r["status"] == "running"],
                  "pending": [r["id"] for r in rows if r["status"] == "pending"]}
        if not (run / "search.sqlite").exists() or not newer(run / "config.json", start["t0"]):
            return "startup", detail  # data not loaded yet: config.json is rewritten after that
        if not (run / "supernet" / "warmup.pt").exists():
            return "warm-up", detail
        written = written_since(run, self.RESULT_FILES, start["t0"])
        if done >= self.args.budget:
            detail["results_written"] = written
            return ("report" if done > start["done"] or written else "startup"), detail
        if detail["running"]:
            return "mid-evaluation", detail
        # no evaluation running: between a result's commit and the next candidate's start (a
        # proposal being made or added), or before this process changed anything at all
        return ("between-writes" if finished > start["finished"] else "startup"), detail

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
    PHASES = ("training", "checkpoint-write", "final-save")
    FINAL_FILES = ("model.safetensors", "config.json", "vocab.txt", "summary.json")

    def caps(self):
        return {"final-save": 2}

    def new(self, run):
        data = [f for flag, v in (("--corpus", self.args.corpus), ("--vocab", self.args.vocab)) if v
                for f in (flag, v)]
        return cli("pretrain", "--out", str(run), *PRETRAIN_FLAGS, "--seed", str(self.args.seed), "--no-progress",
                   *data)

    def resume(self, run):
        return cli("pretrain", "--out", str(run), "--resume", "--no-progress")

    def reachable(self, run, phase):
        # the last checkpoint is the final step's: a resume from it trains and checkpoints no more
        return phase == self.terminal or checkpoint_step(run) < PRETRAIN_STEPS

    def snapshot(self, run):
        return {"step": metrics_step(run), "checkpoint": checkpoint_step(run), "t0": time.time()}

    def moment(self, run, phase, start, rng):
        # metrics.jsonl and checkpoint.tmp may be stale (an earlier process's): only what this process
        # wrote counts (a resume first cuts the log back to its checkpoint and rewrites it)
        step = metrics_step(run) if newer(run / "metrics.jsonl", start["t0"]) else 0
        if phase == "checkpoint-write":  # a save can be over between two polls: then kill two saves on
            if step > start["step"] and newer(run / "checkpoint.tmp", start["t0"]):
                return 0.0
            return rng.uniform(0.0, 0.05) if step >= start["step"] + 7 else None
        if phase == "training":
            return rng.uniform(0.0, 0.5) if step >= start["step"] + 4 else None
        return rng.uniform(0.0, 0.6) if step >= PRETRAIN_STEPS else None

    def landed(self, run, start):
        step, ckpt = metrics_step(run), checkpoint_step(run)
        detail = {"logged_step": step, "checkpoint_step": ckpt}
        swap = [n for n in ("checkpoint.tmp", "checkpoint.old") if renamed_since(run / n, start["t0"])]
        if swap:
            detail["left"] = swap
            return "checkpoint-write", detail
        if step >= PRETRAIN_STEPS and ckpt >= PRETRAIN_STEPS:
            written = written_since(run, self.FINAL_FILES, start["t0"])
            detail["final_written"] = written
            return ("final-save" if start["checkpoint"] < PRETRAIN_STEPS or written else "startup"), detail
        trained = ckpt > start["checkpoint"] or (newer(run / "metrics.jsonl", start["t0"]) and step > start["checkpoint"])
        return ("training" if trained else "startup"), detail

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
    PHASES = ("mid-task", "between-tasks", "suite-results")
    TASK_CONFIG = "finetune_config.json"

    def __init__(self, args, work):
        super().__init__(args, work)
        if not args.glue_dir:
            raise SystemExit("glue needs --glue-dir")
        self.tasks = args.tasks.split(",")

    def caps(self):
        return {"between-tasks": len(self.tasks) - 1, "suite-results": 2}

    def new(self, run):
        vocab = ["--vocab", self.args.vocab] if self.args.vocab else []
        if not vocab:
            from autobert.data import default_vocab
            vocab = ["--vocab", str(default_vocab())]
        return cli("glue", "--out", str(run), "--glue-dir", self.args.glue_dir, "--tasks", self.args.tasks,
                   *GLUE_FLAGS, "--data-seed", str(self.args.seed), "--no-progress", *vocab)

    resume = new  # glue reuses the tasks an earlier call finished: the same command resumes

    def reachable(self, run, phase):
        left = len(self.tasks) - glue_done(run, self.tasks)
        return phase == self.terminal or (left > 1 if phase == "between-tasks" else left > 0)

    def snapshot(self, run):
        return {"done": glue_done(run, self.tasks), "t0": time.time()}

    def _started(self, run, t0):
        """Tasks this process began (its task config written since ``t0``) and has not finished."""
        return [t for t in self.tasks if newer(run / t / self.TASK_CONFIG, t0)
                and not (run / t / "results.json").is_file()]

    def moment(self, run, phase, start, rng):
        done = glue_done(run, self.tasks)
        if phase == "between-tasks":
            return 0.0 if done > start["done"] else None
        if phase == "mid-task":
            return rng.uniform(0.0, 2.0) if self._started(run, start["t0"]) else None
        return rng.uniform(0.0, 0.5) if done == len(self.tasks) and newer(run / self.TASK_CONFIG, start["t0"]) \
            else None

    def landed(self, run, start):
        done = glue_done(run, self.tasks)
        started = self._started(run, start["t0"])
        detail = {"tasks_done": done, "task_running": started}
        if not newer(run / self.TASK_CONFIG, start["t0"]):  # the suite writes its config before any task
            return "startup", detail
        if done == len(self.tasks):
            return "suite-results", detail
        if started:
            return "mid-task", detail
        return ("between-tasks" if done > start["done"] else "startup"), detail

    def compare(self, ref, run):
        diffs = []
        for t in self.tasks:
            a, b = (_comparable(json.loads((d / t / "results.json").read_text()), d) for d in (ref, run))
            if a != b:
                diffs.append(t)
        subs = sorted(p.name for p in (ref / "submission").glob("*.tsv"))
        sub_equal = all((ref / "submission" / n).read_bytes() == (run / "submission" / n).read_bytes() for n in subs)
        suite = [_comparable(json.loads((d / "results.json").read_text()), d) for d in (ref, run)]
        return {"equal": not diffs and sub_equal and suite[0] == suite[1], "tasks_differing": diffs,
                "submission_files": len(subs), "submission_equal": sub_equal, "suite_equal": suite[0] == suite[1]}


def _comparable(doc, run: Path):
    """A result document without its wall-clock fields (they differ run to run) and with the run
    folder's own path (in the submission file names) replaced by ``<run>``."""
    if isinstance(doc, dict):
        return {k: _comparable(v, run) for k, v in doc.items() if k not in ("wall_s", "seconds")}
    if isinstance(doc, list):
        return [_comparable(v, run) for v in doc]
    if isinstance(doc, str) and doc.startswith(str(run)):
        return "<run>" + doc[len(str(run)):]
    return doc


COMMANDS = {"search": Search, "pretrain": Pretrain, "glue": Glue}


# ----------------------------------------------------------------------------- the campaign
def _run_to_end(argv: list[str], timeout: float) -> float:
    t0 = time.monotonic()
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=_env())
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return time.monotonic() - t0


def kill_cycle(cmd: Command, run: Path, argv: list[str], cycle: int, aimed: str, rng: random.Random,
               timeout: float) -> dict:
    """Start ``argv``, SIGKILL it at a moment of the ``aimed`` phase; the record of what happened,
    with the phase the kill really ``landed`` in (read from the run folder after the death)."""
    start = cmd.snapshot(run)
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=_env())
    t0 = time.monotonic()
    delay = None
    while proc.poll() is None and time.monotonic() - t0 < timeout:
        delay = cmd.moment(run, aimed, start, rng)
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
    landed, detail = cmd.landed(run, start) if killed else ("exited", {})
    return {"cycle": cycle, "aimed": aimed, "landed": landed, "killed": killed,
            "at_s": round(time.monotonic() - t0, 3), "delay_s": round(delay or 0.0, 3),
            "state_before": {k: v for k, v in start.items() if k != "t0"}, "detail": detail}


def _aim(cmd: Command, run: Path, quota: dict) -> str:
    """The next phase to aim at: the early phase while it is reachable, then the reachable
    non-terminal phase with the most kills still to land, then the terminal phase."""
    open_ = [p for p in cmd.PHASES[:-1] if quota[p] > 0 and cmd.reachable(run, p)]
    if cmd.EARLY in open_:
        return cmd.EARLY
    return max(open_, key=lambda p: (quota[p], -cmd.PHASES.index(p))) if open_ else cmd.terminal


def campaign(name: str, args, work: Path) -> dict:
    cmd = COMMANDS[name](args, work)
    rng = random.Random(args.seed)
    ref, run = work / f"{name}_reference", work / f"{name}_killed"
    reference_s = _run_to_end(cmd.new(ref), args.timeout)
    quota = cmd.quota(args.kills)
    cycles, t0 = [], time.monotonic()
    while len(cycles) < 4 * args.kills:
        kills = sum(c["killed"] for c in cycles)
        if kills >= args.kills and not any(q > 0 and (p == cmd.terminal or cmd.reachable(run, p))
                                           for p, q in quota.items()):
            break
        aimed = _aim(cmd, run, quota)
        argv = cmd.new(run) if not cycles else cmd.resume(run)
        record = kill_cycle(cmd, run, argv, len(cycles), aimed, rng, args.timeout)
        if quota.get(record["landed"], 0) > 0:
            quota[record["landed"]] -= 1
        cycles.append(record)
        print(f"{name} cycle {record['cycle']}: aimed {aimed:<15} landed {record['landed']:<15} "
              f"after {record['at_s']:.2f} s  {record['detail']}", file=sys.stderr, flush=True)
    final_s = _run_to_end(cmd.resume(run) if run.exists() else cmd.new(run), args.timeout)
    result = cmd.compare(ref, run)
    leftovers = sorted(str(p.relative_to(run)) for p in run.rglob("*.tmp"))
    phases = {}
    for c in cycles:
        if c["killed"]:
            phases[c["landed"]] = phases.get(c["landed"], 0) + 1
    return {"command": name, "kills": sum(c["killed"] for c in cycles), "kills_by_phase": phases,
            "phases_missed": [p for p in cmd.PHASES if p not in phases],
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
