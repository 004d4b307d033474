"""Backend choice: the only reader of ``AUTOBERT_BACKEND`` and the one rule every kernel family uses.

Backends: ``cpp`` (compiled C++ kernels of ``autobert_ext._C``, CPU), ``cuda`` (the CUDA kernels of
``_C``, float32/bfloat16/float16), ``triton`` (generated Triton kernels: CUDA, or CPU under the
Triton interpreter, TRITON_INTERPRET=1), ``eager`` (the PyTorch reference, any device and dtype).
Kernel families: ``elementwise``, ``softmax``, ``streaming``, ``masked_adamw``.

The rule (``choose``):

- ``AUTOBERT_BACKEND`` set: that backend, for every family and entry point; a RuntimeError saying
  why when it cannot run the call (wrong device, dtype, missing kernel or package). An unknown
  name is a ValueError.
- unset: the family's first available compiled backend for the device (CPU: cpp; CUDA: triton
  then cuda for streaming attention, which compiles once per graph and is fastest; cuda then
  triton for the others, whose interpreted programs need no compilation); when none is available,
  eager, after one warning per family and device type naming why.
"""
from __future__ import annotations

import logging
import os
from typing import Optional

import torch

from autobert_ext import _loader

log = logging.getLogger("autobert_ext")

BACKENDS = ("eager", "cpp", "cuda", "triton")
FAMILIES = ("elementwise", "softmax", "streaming", "masked_adamw")
ENV = "AUTOBERT_BACKEND"

# The _C entry point of each family per compiled backend, spelled as csrc/bindings defines them (the
# in-place AdamW's CPU name ends in "_" and its CUDA one does not, so no suffix rule derives them).
# Streaming attention has no CUDA kernel (on a GPU it runs in Triton), hence no "cuda" name.
_C_NAMES = {"elementwise": {"cpp": "elementwise", "cuda": "elementwise_cuda"},
            "softmax": {"cpp": "fused_softmax", "cuda": "fused_softmax_cuda"},
            "streaming": {"cpp": "streaming_attention"},
            "masked_adamw": {"cpp": "fused_masked_adamw_", "cuda": "fused_masked_adamw_cuda"}}
_TRITON_FAMILIES = ("elementwise", "softmax", "streaming")
_GPU_ORDER = {"streaming": ("triton", "cuda"), "elementwise": ("cuda", "triton"), "softmax": ("cuda", "triton"),
              "masked_adamw": ("cuda",)}
_GPU_DTYPES = (torch.float32, torch.bfloat16, torch.float16)
_WARNED: set[tuple[str, str]] = set()


def forced() -> Optional[str]:
    """``AUTOBERT_BACKEND``, lower-cased, or None when unset; ValueError for an unknown name."""
    name = os.environ.get(ENV, "").strip().lower()
    if name and name not in BACKENDS:
        raise ValueError(f"{ENV}={name!r}; expected one of {', '.join(BACKENDS)}")
    return name or None


def _triton_missing() -> Optional[str]:
    try:
        import triton  # noqa: F401
    except ImportError as e:
        return f"the triton package is not installed ({e})"
    return None


def _interpreting() -> bool:
    return os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")


def unavailable(backend: str, family: str, device: torch.device, dtype: Optional[torch.dtype] = None) -> Optional[str]:
    """Why ``backend`` cannot run ``family`` on ``device`` / ``dtype`` (None when it can)."""
    if family not in FAMILIES:
        raise ValueError(f"unknown kernel family {family!r}; expected one of {', '.join(FAMILIES)}")
    if backend == "eager":
        return None
    if backend == "cpp":
        if device.type != "cpu":
            return f"the cpp kernels run on CPU tensors, got a tensor on {device}"
        return _missing_in_C(c_name(family, "cpp"))
    if backend == "cuda":
        if device.type != "cuda":
            return f"the cuda kernels need CUDA tensors, got a tensor on {device}"
        if dtype is not None and dtype not in _GPU_DTYPES:
            return f"the cuda kernels compute float32/bfloat16/float16, got {dtype}"
        if "cuda" not in _C_NAMES[family]:
            return f"there is no CUDA kernel for {family} (on a GPU it runs in Triton)"
        if _loader.available() and not _loader.with_cuda():
            return "autobert_ext._C was built without CUDA kernels (rebuild it where nvcc and a CUDA torch are found)"
        return _missing_in_C(c_name(family, "cuda"))
    if backend == "triton":
        if family not in _TRITON_FAMILIES:
            return f"there is no Triton kernel for {family}"
        if device.type != "cuda" and not (device.type == "cpu" and _interpreting()):
            return f"the triton kernels need CUDA tensors (CPU only under TRITON_INTERPRET=1), got a tensor on {device}"
        if dtype is not None and dtype not in _GPU_DTYPES:
            return f"the triton kernels compute float32/bfloat16/float16, got {dtype}"
        return _triton_missing()
    raise ValueError(f"unknown backend {backend!r}; expected one of {', '.join(BACKENDS)}")


def c_name(family: str, backend: str) -> str:
    """The name of ``family``'s kernel in ``autobert_ext._C`` for the compiled ``backend`` ("cpp" or "cuda")."""
    try:
        return _C_NAMES[family][backend]
    except KeyError:
        raise ValueError(f"no compiled kernel name for family {family!r} and backend {backend!r}; families: "
                         f"{', '.join(FAMILIES)}, compiled backends: cpp, cuda") from None


def _missing_in_C(name: str) -> Optional[str]:
    C = _loader.get_C()
    if C is None:
        return f"autobert_ext._C is not available ({_loader.load_error()})"
    if getattr(C, name, None) is None:
        return f"this build of autobert_ext._C has no {name!r}"
    return None


def choose(family: str, device: torch.device, dtype: Optional[torch.dtype] = None) -> str:
    """The backend that runs ``family`` on ``device`` / ``dtype``, by the rule of the module docstring."""
    return _choose(forced(), family, device, dtype)


def choose_all(families, device: torch.device, dtype: Optional[torch.dtype] = None) -> dict[str, str]:
    """``choose`` for several families, reading the environment once."""
    name = forced()
    return {f: _choose(name, f, device, dtype) for f in families}


def _choose(name: Optional[str], family: str, device: torch.device, dtype: Optional[torch.dtype]) -> str:
    if device.type == "meta":  # shape propagation only: nothing runs
        return "eager"
    if name is not None:
        why = unavailable(name, family, device, dtype)
        if why is not None:
            raise RuntimeError(f"{ENV}={name} cannot run {family} here: {why}; "
                               f"unset {ENV} or set it to one of {', '.join(BACKENDS)} that can")
        return name
    order = ("cpp",) if device.type == "cpu" else _GPU_ORDER[family] if device.type == "cuda" else ()
    reasons = []
    for candidate in order:
        why = unavailable(candidate, family, device, dtype)
        if why is None:
            return candidate
        reasons.append(f"{candidate}: {why}")
    if reasons and (family, device.type) not in _WARNED:
        _WARNED.add((family, device.type))
        log.warning("autobert_ext: %s on %s runs the eager PyTorch fallback (%s)", family, device.type,
                    "; ".join(reasons))
    return "eager"
