"""``autobert search`` killed with SIGKILL mid-evaluation and resumed: nothing lost, nothing twice."""
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time

import torch

from conftest import TINY_MLM
from autobert.search import SearchConfig, SearchStore, run_search

BUDGET = 6


def _rows(run):
    db = sqlite3.connect(f"file:{run}/search.sqlite?mode=ro", uri=True)
    db.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in db.execute("SELECT * FROM candidates ORDER BY id")]
    finally:
        db.close()


def _cli(*args):
    return [sys.executable, "-m", "autobert.cli", "search", "--no-report", "--no-progress", *args]


def _config(tmp_path, corpus, vocab):
    doc = json.loads(json.dumps(TINY_MLM))
    doc["biws"]["child_steps"] = 25  # long enough evaluations to be killed in the middle of one
    path = tmp_path / "config.json"
    path.write_text(json.dumps(doc))
    return path, SearchConfig.preset("tiny", corpus=corpus, vocab=vocab, budget=BUDGET, seed=0, **doc)


def _kill_mid_evaluation(proc, run, timeout=240):
    """SIGKILL ``proc`` once >= 2 candidates are done and another is being evaluated."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        assert proc.poll() is None, f"search ended before it could be killed: {proc.communicate()}"
        if os.path.exists(run / "search.sqlite"):
            try:
                rows = _rows(run)
            except sqlite3.OperationalError:  # schema not created yet
                rows = []
            if sum(r["status"] == "done" for r in rows) >= 2 and any(r["status"] == "running" for r in rows):
                proc.send_signal(signal.SIGKILL)
                proc.wait()
                return
        time.sleep(0.01)
    proc.kill()
    raise AssertionError("no evaluation to interrupt within the timeout")


def test_kill_and_resume(tmp_path, tiny_corpus):
    corpus, vocab = tiny_corpus
    cfg_path, config = _config(tmp_path, corpus, vocab)
    run = tmp_path / "run"
    proc = subprocess.Popen(_cli("--out", str(run), "--config", str(cfg_path), "--corpus", corpus, "--vocab", vocab,
                                 "--budget", str(BUDGET), "--seed", "0"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _kill_mid_evaluation(proc, run)

    db = sqlite3.connect(run / "search.sqlite")
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    db.close()
    before = _rows(run)
    done_before = {r["fingerprint"]: (r["fitness"], r["finish_seq"]) for r in before if r["status"] == "done"}
    interrupted = [r["id"] for r in before if r["status"] == "running"]

    result = subprocess.run(_cli("--resume", str(run)), capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "best fitness" in result.stdout
    after = _rows(run)
    by_fp = {r["fingerprint"]: r for r in after}
    assert len(by_fp) == len(after)  # no duplicate fingerprints
    assert sum(r["status"] == "done" for r in after) == BUDGET  # budget counts done over both runs
    assert not [r for r in after if r["status"] in ("pending", "running")]
    for fp, (fitness, seq) in done_before.items():  # finished results kept as they were
        assert (by_fp[fp]["fitness"], by_fp[fp]["finish_seq"]) == (fitness, seq)
    for r in after:
        if r["id"] in interrupted:
            assert r["attempts"] == 2 and r["status"] in ("done", "failed")
        else:
            assert r["attempts"] <= 1

    # Deterministic: the killed-and-resumed run equals an uninterrupted one.
    threads = torch.get_num_threads()
    try:
        run_search(tmp_path / "reference", config)
    finally:
        torch.set_num_threads(threads)
    with SearchStore(tmp_path / "reference" / "search.sqlite") as store:
        reference = [(r["fingerprint"], r["status"], r["fitness"]) for r in store.rows()]
    assert [(r["fingerprint"], r["status"], r["fitness"]) for r in after] == reference


def test_new_run_refuses_an_existing_folder_and_resume_needs_one(tmp_path, capsys):
    from autobert.cli import main
    run = tmp_path / "run"
    cfg = SearchConfig(fitness="toy", budget=3, model={"n_layers": 2})
    run_search(run, cfg)
    assert main(["search", "--out", str(run), "--fitness", "toy", "--no-progress"]) == 2
    assert "--resume" in capsys.readouterr().err
    assert main(["search", "--resume", str(tmp_path / "nothing"), "--no-progress"]) == 2
    assert "not a search run folder" in capsys.readouterr().err
    assert main(["search", "--resume", str(run), "--seed", "3"]) == 2
    assert "only --budget" in capsys.readouterr().err
    summary = run_search(run, resume=True, budget=7)  # extending the budget continues the same run
    assert summary.done == 7
    assert SearchConfig.load(run / "config.json").budget == 7
