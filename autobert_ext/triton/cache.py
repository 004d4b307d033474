"""Compile-once cache of generated Triton modules: in memory, then on disk.

``@triton.jit`` reads its function's source through ``inspect``, so generated kernels must live
in real files. Each distinct kernel specification (kind, program encodings, dtype, norm, block
config, ...) hashes to a key; the source is written once to
``$AUTOBERT_CACHE_DIR/<kind>_<key>.py`` (default ``~/.cache/autobert/triton``) and imported
with importlib. Triton then compiles each kernel on its first launch and keeps the binary in its
own cache (``~/.triton/cache``), so a module reused from disk in a new process is cheap too.

The key also covers the text of this package's modules, so editing a template never reuses a
stale file.
"""
from __future__ import annotations

import functools
import hashlib
import importlib.util
import json
import os
import sys
import tempfile
import threading
from pathlib import Path
from types import ModuleType
from typing import Callable

_LOCK = threading.RLock()
_MODULES: dict[str, ModuleType] = {}
_STATS = {"generated": 0, "loaded": 0, "memory_hits": 0, "disk_hits": 0}


def cache_dir() -> Path:
    """Directory holding generated modules (read from the environment on every call)."""
    env = os.environ.get("AUTOBERT_CACHE_DIR")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "autobert" / "triton"


@functools.cache
def _generator_digest() -> str:
    h = hashlib.sha256()
    # Every module of this package (a superset of the templates: simple and never stale).
    for path in sorted(Path(__file__).resolve().parent.glob("*.py")):
        h.update(path.name.encode())
        h.update(path.read_bytes())
    return h.hexdigest()


def make_key(kind: str, spec: dict) -> str:
    """Stable hex key of a kernel specification (JSON-serialisable dict) and the generator text."""
    blob = json.dumps({"kind": kind, "spec": spec, "generator": _generator_digest()}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:32]


def _import_file(path: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise RuntimeError(f"autobert triton cache: cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    # Registered before exec so inspect/triton can resolve the module of the jitted functions.
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    return module


def _write_atomic(path: Path, text: str) -> None:
    # Another process may write the same key at once: write aside, then rename (atomic on POSIX).
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.stem + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def get_module(kind: str, spec: dict, generate: Callable[[], str]) -> ModuleType:
    """The module for ``spec``: from memory, else from disk, else ``generate()``d, written, imported.

    Args:
        kind: kernel family ("attention", "elementwise", "softmax"), also the file-name prefix.
        spec: everything the generated text depends on (JSON-serialisable).
        generate: returns the module source; called only when no file exists for the key.
    """
    key = make_key(kind, spec)
    with _LOCK:
        module = _MODULES.get(key)
        if module is not None:
            _STATS["memory_hits"] += 1
            return module
        path = cache_dir() / f"{kind}_{key}.py"
        header = f"# autobert generated: {kind} {key}\n"
        try:
            reuse = path.read_text().startswith(header)
        except OSError:  # absent or unreadable: generate it
            reuse = False
        if reuse:
            _STATS["disk_hits"] += 1
        else:
            _write_atomic(path, header + generate())
            _STATS["generated"] += 1
        module = _import_file(path, f"autobert_triton_gen_{kind}_{key}")
        _STATS["loaded"] += 1
        _MODULES[key] = module
        return module


def cache_info() -> dict:
    """Counters since start (or the last ``clear_cache(reset_stats=True)``) and cache location.

    ``generated``: sources written; ``loaded``: modules imported (each new module's kernels are
    compiled by Triton on first launch); ``memory_hits`` / ``disk_hits``: lookups served without
    generating; ``entries``: modules held in memory.
    """
    with _LOCK:
        return dict(_STATS, entries=len(_MODULES), cache_dir=str(cache_dir()))


def clear_cache(disk: bool = False, reset_stats: bool = False) -> None:
    """Forget the in-memory modules; ``disk=True`` also deletes the generated files."""
    with _LOCK:
        for module in _MODULES.values():
            sys.modules.pop(module.__name__, None)
        _MODULES.clear()
        if disk:
            d = cache_dir()
            for kind in ("attention", "elementwise", "softmax"):
                for f in d.glob(f"{kind}_*.py"):
                    f.unlink(missing_ok=True)
        if reset_stats:
            for k in _STATS:
                _STATS[k] = 0
