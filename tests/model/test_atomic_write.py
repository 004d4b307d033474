"""``atomic_write`` under SIGKILL: the kill leaves the previous file and a temporary file, which the
next write of the same target removes (a resumed run that is killed again and again must not pile
up half-written copies of its checkpoints), while a live writer's temporary file is left alone."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

from autobert.model.atomic import atomic_write

ROOT = Path(__file__).resolve().parents[2]

_KILLED_WRITER = textwrap.dedent("""
    import os, signal, sys
    from autobert.model.atomic import atomic_write

    def write(tmp):
        tmp.write_bytes(b"half of the new cont")
        os.kill(os.getpid(), signal.SIGKILL)

    atomic_write(sys.argv[1], write)
""")


def _temporaries(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.glob(".*.tmp"))


def test_a_killed_write_leaves_the_old_file_and_the_next_write_sweeps_its_temporary(tmp_path):
    target = tmp_path / "model.safetensors"
    atomic_write(target, lambda p: p.write_bytes(b"old"))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "python"), str(ROOT)])}
    proc = subprocess.run([sys.executable, "-c", _KILLED_WRITER, str(target)], env=env, capture_output=True)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()
    assert target.read_bytes() == b"old"
    left = _temporaries(tmp_path)
    assert len(left) == 1 and left[0].startswith(".model.safetensors.")  # what a SIGKILL cannot clean up

    atomic_write(target, lambda p: p.write_bytes(b"new"))
    assert target.read_bytes() == b"new"
    assert _temporaries(tmp_path) == []


def test_the_temporary_file_of_a_live_writer_is_kept(tmp_path):
    target = tmp_path / "warmup.pt"
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        busy = tmp_path / f".warmup.pt.{live.pid}.0123abcd.tmp"
        busy.write_bytes(b"being written")
        other = tmp_path / ".other.pt.1.0123abcd.tmp"  # another target's: not this write's business
        other.write_bytes(b"x")
        atomic_write(target, lambda p: p.write_bytes(b"done"))
        assert busy.exists() and other.exists()
        assert _temporaries(tmp_path) == sorted([busy.name, other.name])
    finally:
        live.kill()
        live.wait()


def test_the_written_file_has_the_umask_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        atomic_write(tmp_path / "config.json", lambda p: p.write_text("{}"))
    finally:
        os.umask(old)
    assert (tmp_path / "config.json").stat().st_mode & 0o777 == 0o644
