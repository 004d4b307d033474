"""``RunLock``: one process at a time in a run folder.

An exclusive ``fcntl.flock`` on ``<run>/.lock``, taken before a command reads or writes the run and
held until it ends. The kernel drops the lock when the process exits, however it exits (a crash,
``kill -9``), so a stale lock file never blocks a resume; a second process that opens the folder
meanwhile is refused with ``RunInUseError`` instead of interleaving its writes with the first's.
The lock file holds the owner's pid, for the message only.
"""
from __future__ import annotations

import errno
import fcntl
import os
from pathlib import Path
from typing import Optional

__all__ = ["RunLock", "RunInUseError", "LOCK_FILE"]

LOCK_FILE = ".lock"


class RunInUseError(FileExistsError):
    """Another live process holds the run folder's lock."""


class RunLock:
    """Context manager (or ``acquire``/``release``) holding ``<run_dir>/.lock``; the folder must exist."""

    def __init__(self, run_dir: "str | os.PathLike"):
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / LOCK_FILE
        self._fd: Optional[int] = None

    def acquire(self) -> "RunLock":
        if self._fd is not None:
            return self
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
            os.close(fd)
            if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise RunInUseError(f"run folder {self.run_dir} is in use by another process (pid {holder}, lock "
                                    f"{self.path}); wait for it to end or stop it, then try again") from None
            raise
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        os.ftruncate(fd, 0)  # the pid no longer holds it; the file itself stays (removing it would race)
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)

    @property
    def held(self) -> bool:
        return self._fd is not None

    def __enter__(self) -> "RunLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()
