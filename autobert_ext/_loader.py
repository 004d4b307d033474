"""Loads the compiled extension ``autobert_ext._C`` once, without ever failing.

Import must succeed when ``_C`` is missing (not built, or built against another torch):
the package then runs its eager fallbacks and warns once. Importing never initialises CUDA.
"""
from __future__ import annotations

import functools
import importlib
import json
import logging
import warnings
from pathlib import Path

import torch  # (torch must be imported before _C: _C links against its libraries)

log = logging.getLogger("autobert_ext")

_C = None
_ERROR: str | None = None
_WARNED = False


BUILD_INFO = Path(__file__).with_name("_build.json")  # written by setup.py next to _C


def built_against() -> str | None:
    """The torch version ``_C`` was built against (None when the build did not record it)."""
    try:
        return json.loads(BUILD_INFO.read_text())["torch"]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _load():
    global _C, _ERROR
    built = built_against()
    if built is not None and built != torch.__version__:
        # Loading it would fail with an undefined symbol at best and crash at worst.
        _C, _ERROR = None, (f"autobert_ext._C was built against torch {built} but torch {torch.__version__} "
                            "is installed; rebuild it (pip install --no-build-isolation .) or install the torch "
                            "it was built for")
        return
    try:
        _C = importlib.import_module("autobert_ext._C")
    except Exception as e:  # ImportError, or an undefined symbol from a torch mismatch
        _C, _ERROR = None, f"{type(e).__name__}: {e}"


_load()


def get_C():
    """The compiled module, or None (after one warning) when it is unavailable."""
    global _WARNED
    if _C is None and not _WARNED:
        _WARNED = True
        warnings.warn(
            f"autobert_ext._C is not available ({_ERROR}); using the eager PyTorch fallback. "
            "Build it with `pip install --no-build-isolation -e .`.", RuntimeWarning, stacklevel=3)
    return _C


def available() -> bool:
    """True when the compiled extension loaded."""
    return _C is not None


def load_error() -> str | None:
    """Why the extension did not load (None when it did)."""
    return _ERROR


def with_cuda() -> bool:
    """True when the compiled extension contains CUDA kernels (never touches the GPU)."""
    return bool(_C is not None and getattr(_C, "with_cuda", False))


# Loading _C registers its kernels with the dispatcher as ops of this namespace (csrc/bindings/module.cpp):
# one op per kernel, with a CPU implementation and, in CUDA builds, a CUDA one.
NAMESPACE = "autobert_kernels"
_OPS: dict = {}


def kernel(name: str):
    """The op ``autobert_kernels::<name>`` (its default overload, the cheapest to call); the dispatcher
    runs the implementation for the tensors' device. ``backends`` has checked that it exists."""
    op = _OPS.get(name)
    if op is None:
        if get_C() is None:
            raise RuntimeError(f"autobert_ext._C is not available ({_ERROR}); its kernel {name!r} cannot run")
        op = _OPS[name] = getattr(getattr(torch.ops, NAMESPACE), name).default
    return op


@functools.lru_cache(maxsize=None)  # asked on every call of an op; registrations are made once, at load
def has_kernel(name: str, device_type: str) -> bool:
    """True when the loaded ``_C`` registered an implementation of ``name`` for ``device_type``
    ("cpu" or "cuda")."""
    return _C is not None and torch._C._dispatch_has_kernel_for_dispatch_key(f"{NAMESPACE}::{name}",
                                                                             device_type.upper())
