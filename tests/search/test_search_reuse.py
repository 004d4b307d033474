"""``autobert search --out RUN --reuse``: re-running the same command (the README's install command
run a second time) continues the search already there instead of failing; a search with other
settings, or one in use by another process, is still refused and left untouched."""
from __future__ import annotations

import re
import shlex
import sqlite3
import subprocess
import sys
from pathlib import Path

from autobert.cli import main
from autobert.search.config import SearchConfig
from autobert.search.runner import config_differences

ROOT = Path(__file__).resolve().parents[2]
TOY = ["--fitness", "toy", "--budget", "3", "--no-progress", "--no-report"]

# Another process holding the run folder's lock (plain fcntl, as RunLock takes it).
HOLD = ("import fcntl, os, sys, time\n"
        "fd = os.open(os.path.join(sys.argv[1], '.lock'), os.O_RDWR | os.O_CREAT)\n"
        "fcntl.flock(fd, fcntl.LOCK_EX)\nprint('held', flush=True)\ntime.sleep(120)\n")


def _rows(run: Path) -> list[tuple]:
    db = sqlite3.connect(run / "search.sqlite")
    try:
        return db.execute("SELECT id, fingerprint, status, fitness, attempts FROM candidates ORDER BY id").fetchall()
    finally:
        db.close()


def test_reuse_of_a_finished_run_changes_nothing_and_prints_its_results(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["search", "--out", str(run), *TOY]) == 0
    first, config = _rows(run), (run / "config.json").read_bytes()
    capsys.readouterr()
    assert main(["search", "--out", str(run), "--reuse", *TOY]) == 0
    out = capsys.readouterr().out
    assert f"search {run}: 3 done" in out and str(run / "best.json") in out
    assert _rows(run) == first  # no candidate added, re-run or changed
    assert (run / "config.json").read_bytes() == config


def test_without_reuse_an_existing_run_is_still_refused(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["search", "--out", str(run), *TOY]) == 0
    before = (run / "search.sqlite").read_bytes()
    capsys.readouterr()
    assert main(["search", "--out", str(run), *TOY]) == 2
    err = capsys.readouterr().err
    assert "already holds a search" in err and "--reuse" in err
    assert (run / "search.sqlite").read_bytes() == before


def test_reuse_continues_an_unfinished_run_and_a_larger_budget_extends_it(tmp_path):
    run = tmp_path / "run"
    assert main(["search", "--out", str(run), *TOY]) == 0
    first = _rows(run)
    assert main(["search", "--out", str(run), "--reuse", *TOY[:2], "--budget", "5", *TOY[4:]]) == 0
    rows = _rows(run)
    assert rows[:len(first)] == first and sum(r[2] == "done" for r in rows) == 5


def test_reuse_refuses_a_search_with_other_settings_and_leaves_it_untouched(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["search", "--out", str(run), *TOY]) == 0
    files = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()}
    capsys.readouterr()
    assert main(["search", "--out", str(run), "--reuse", "--seed", "7", *TOY]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "other settings" in err and "seed" in err and "Traceback" not in err
    assert {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()} == files


def test_reuse_refuses_a_run_in_use(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["search", "--out", str(run), *TOY]) == 0
    before = (run / "search.sqlite").read_bytes()
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(run)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "held"
        capsys.readouterr()
        assert main(["search", "--out", str(run), "--reuse", *TOY]) == 2
        assert "in use by another process" in capsys.readouterr().err
    finally:
        proc.kill()
        proc.wait()
    assert (run / "search.sqlite").read_bytes() == before


def test_reuse_is_refused_with_resume(tmp_path, capsys):
    assert main(["search", "--resume", str(tmp_path), "--reuse"]) == 2
    assert "--reuse applies to a new run" in capsys.readouterr().err


def test_config_differences_name_the_fields_and_ignore_the_budget():
    a = SearchConfig(fitness="toy", budget=3)
    assert config_differences(a, a.replace(budget=9)) == []
    assert config_differences(a, a.replace(seed=4, model={"n_layers": 3})) == ["model.n_layers", "seed"]


def test_the_readme_install_command_can_run_twice(tmp_path, capsys):
    """The README's install command ends with a demo search; its flags must make a second run of
    the whole command succeed (toy fitness and a small budget here: the flags are what is tested)."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"<!-- ci:install -->\n```bash\n(.+?)\n```", readme, re.S).group(1)
    search = next(shlex.split(part) for part in block.split("&&") if part.split()[:2] == ["autobert", "search"])
    args = search[1:]
    args[args.index("--out") + 1] = str(tmp_path / "demo")
    for _ in range(2):
        assert main([*args, "--fitness", "toy", "--budget", "2", "--no-progress", "--no-report"]) == 0
    assert sum(r[2] == "done" for r in _rows(tmp_path / "demo")) == 2
