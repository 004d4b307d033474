"""``atomic_write``: replace a file all at once or not at all.

The content goes to a temporary file beside the target, is flushed to the disk (fsync), renamed
over the target (atomic on POSIX) and the folder entry is synced too. A full disk, a file-size
limit or a kill while writing leaves the previous file as it was. An error removes the temporary
file at once; a SIGKILL cannot, so the temporary file's name holds the writer's process id and the
next write of the same target removes the ones whose process is gone (a resumed run does not pile
up half-written copies of a large checkpoint). The file gets the usual permissions (0666 less the
umask), as any other file the run writes.
"""
from __future__ import annotations

import glob
import os
import secrets
from pathlib import Path
from typing import Callable

__all__ = ["atomic_write"]


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # a platform without directory handles: the rename is still atomic
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists, owned by someone else
        return True
    return True


def _sweep(path: Path) -> None:
    """Remove the temporary files of writes of ``path`` whose process died before finishing."""
    for stale in path.parent.glob(f".{glob.escape(path.name)}.*.tmp"):
        pid = stale.name[len(path.name) + 2:-len(".tmp")].split(".")[0]
        if pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
            stale.unlink(missing_ok=True)


def _temporary(path: Path) -> Path:
    """A new, empty temporary file beside ``path``: ``.<name>.<pid>.<random>.tmp``."""
    while True:
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
        try:
            os.close(os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
            return tmp
        except FileExistsError:
            continue


def atomic_write(path: "str | os.PathLike", write: Callable[[Path], None]) -> None:
    """Call ``write(tmp_path)`` to produce the new content, then swap it in as ``path``.

    Raises whatever ``write`` or the disk raises (e.g. OSError ENOSPC / EFBIG); ``path`` is then
    unchanged.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _sweep(path)
    tmp = _temporary(path)
    try:
        write(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)
