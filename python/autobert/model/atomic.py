"""``atomic_write``: replace a file all at once or not at all.

The content goes to a temporary file beside the target, is flushed to the disk (fsync), renamed
over the target (atomic on POSIX) and the folder entry is synced too. A full disk, a file-size
limit or a kill while writing leaves the previous file as it was and no temporary file behind.
"""
from __future__ import annotations

import os
import tempfile
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


def atomic_write(path: "str | os.PathLike", write: Callable[[Path], None]) -> None:
    """Call ``write(tmp_path)`` to produce the new content, then swap it in as ``path``.

    Raises whatever ``write`` or the disk raises (e.g. OSError ENOSPC / EFBIG); ``path`` is then
    unchanged.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(name)
    try:
        write(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)
