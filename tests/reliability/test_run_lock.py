"""A run folder in use by one process is refused to a second (search, pretrain, glue); the lock goes
with its holder, even one killed with SIGKILL."""
import json
import signal
import subprocess
import sys

import pytest

from autobert.cli import main
from autobert.search import SearchConfig, run_search
from autobert.train.run_lock import LOCK_FILE, RunInUseError, RunLock

# Another process taking the same OS lock (plain fcntl: no imports to wait for on a busy machine).
HOLD = ("import fcntl, os, sys, time\n"
        "fd = os.open(os.path.join(sys.argv[1], '.lock'), os.O_RDWR | os.O_CREAT)\n"
        "fcntl.flock(fd, fcntl.LOCK_EX)\nos.write(fd, str(os.getpid()).encode())\n"
        "print('held', flush=True)\ntime.sleep(120)\n")


@pytest.fixture
def holder():
    """holder(folder): another process holding the folder's lock until the test ends (or kills it)."""
    procs = []

    def start(folder):
        proc = subprocess.Popen([sys.executable, "-c", HOLD, str(folder)], stdout=subprocess.PIPE, text=True)
        assert proc.stdout.readline().strip() == "held"
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        proc.kill()
        proc.wait()


def test_lock_is_exclusive_and_released(tmp_path):
    with RunLock(tmp_path) as lock:
        assert lock.held and (tmp_path / LOCK_FILE).read_text().strip().isdigit()
        with pytest.raises(RunInUseError, match="in use by another process"):
            RunLock(tmp_path).acquire()  # a second open file description: flock refuses it too
    with RunLock(tmp_path) as again:  # released on exit
        assert again.held


def test_a_killed_holder_leaves_no_stale_lock(tmp_path, holder):
    proc = holder(tmp_path)
    with pytest.raises(RunInUseError, match=f"pid {proc.pid}"):
        RunLock(tmp_path).acquire()
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    with RunLock(tmp_path) as lock:  # the kernel dropped the lock with the process
        assert lock.held


def test_search_refuses_a_run_in_use(tmp_path, holder, capsys):
    run = tmp_path / "run"
    run_search(run, SearchConfig(fitness="toy", budget=2, model={"n_layers": 2}))
    before = (run / "search.sqlite").read_bytes()
    holder(run)
    assert main(["search", "--resume", str(run), "--budget", "4", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: run folder") and "in use by another process" in err and "Traceback" not in err
    assert main(["search", "--out", str(run), "--fitness", "toy", "--no-progress"]) == 2  # a new run there too
    assert "in use" in capsys.readouterr().err
    assert (run / "search.sqlite").read_bytes() == before  # nothing written
    assert json.loads((run / "config.json").read_text())["budget"] == 2


def test_pretrain_and_glue_refuse_a_run_in_use(tmp_path, holder, capsys):
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "b", "c"]) + "\n")
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("a b c a b c b a\n" * 200)
    out = tmp_path / "pt"
    out.mkdir()
    holder(out)
    assert main(["pretrain", "--out", str(out), "--corpus", str(corpus), "--vocab", str(vocab), "--steps", "2",
                 "--batch-size", "2", "--seq-len", "8", "--no-progress"]) == 2
    assert "in use by another process" in capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == [LOCK_FILE]  # nothing written
    glue = tmp_path / "glue"
    glue.mkdir()
    holder(glue)
    assert main(["glue", "--model", "bert-tiny", "--glue-dir", str(tmp_path), "--vocab", str(vocab),
                 "--out", str(glue), "--no-progress"]) == 2
    assert "in use by another process" in capsys.readouterr().err
    assert sorted(p.name for p in glue.iterdir()) == [LOCK_FILE]
