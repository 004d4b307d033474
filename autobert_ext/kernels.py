"""Kernel dispatch for plan steps: one function per step kind, by backend.

Backends: "cpp" (compiled C++ kernels, CPU), "cuda" (interpreted op programs on GPU),
"triton" (generated Triton kernels, GPU), "eager" (the torch reference below, any device).
``backend_for`` picks per device; the environment variable AUTOBERT_BACKEND overrides it.
Raw kernels only: the plan executor does the chain rule, so nothing here records autograd.
"""
from __future__ import annotations

import os
from typing import Optional, Sequence

import torch

from autobert_ext import _loader
from autobert_ext.program import Program, run_program

BACKENDS = ("eager", "cpp", "cuda", "triton")


def backend_for(device: torch.device, kind: str = "streaming", dtype: Optional[torch.dtype] = None) -> str:
    """The backend for a plan step of ``kind`` on ``device``.

    AUTOBERT_BACKEND, when set, applies to every step. Otherwise: CPU -> cpp (eager when the
    compiled kernels are missing); CUDA -> triton for streaming attention (compiled once per
    graph, the fastest path) and cuda for elementwise/softmax segments (interpreted op programs:
    a new graph needs no compilation), each falling back to the other and then to eager.
    """
    return forced_backend() or _device_backend(device, kind, dtype)


def _device_backend(device: torch.device, kind: str, dtype: Optional[torch.dtype]) -> str:
    """``backend_for`` without the AUTOBERT_BACKEND override."""
    if device.type == "cuda":
        if dtype == torch.float64:  # the GPU kernels are written for 32- and 16-bit floats
            return "eager"
        has_triton = _triton_available()
        if kind == "streaming":
            return "triton" if has_triton else "eager"
        if _loader.with_cuda():
            return "cuda"
        return "triton" if has_triton else "eager"
    return "cpp" if _cpp_kernels_present() else "eager"


def forced_backend() -> Optional[str]:
    """AUTOBERT_BACKEND (validated), or None when unset."""
    forced = os.environ.get("AUTOBERT_BACKEND", "").strip().lower()
    if forced and forced not in BACKENDS:
        raise ValueError(f"AUTOBERT_BACKEND={forced!r}; expected one of {', '.join(BACKENDS)}")
    return forced or None


def backends_for(device: torch.device, dtype: Optional[torch.dtype], kinds: Sequence[str]) -> dict[str, str]:
    """``backend_for`` of each step kind in ``kinds``; the environment is read once."""
    forced = forced_backend()
    return {kind: forced or _device_backend(device, kind, dtype) for kind in kinds}


def _triton_available() -> bool:
    try:
        import triton  # noqa: F401
        return True
    except ImportError:
        return False


_CPP_PRESENT: Optional[bool] = None


def _cpp_kernels_present() -> bool:
    global _CPP_PRESENT
    if _CPP_PRESENT is None:  # asked once per call and step: remember the answer (the module never changes)
        C = _loader.get_C()
        _CPP_PRESENT = C is not None and hasattr(C, "streaming_attention")
    return _CPP_PRESENT


# ---------------------------------------------------------------- eager reference kernels

def _masked_softmax(x: torch.Tensor, mask: Optional[torch.Tensor]) -> torch.Tensor:
    """Softmax over the last axis; mask (B, N) marks real positions of that axis. A row with no
    real position gives 0 (finfo.min instead of -inf keeps it finite; the product zeroes it)."""
    if mask is None:
        return torch.softmax(x, -1)
    m = mask[:, None, None, :]
    return torch.softmax(x.masked_fill(~m, torch.finfo(x.dtype).min), -1) * m


def _eager_streaming_scores(q, k, score: Program, norm: str, mask):
    t = run_program(score, [torch.matmul(q, k.transpose(-1, -2))])[0]
    if norm == "softmax":
        return _masked_softmax(t, mask)
    return t if mask is None else t * mask[:, None, None, :]


def _eager_lse(q, k, score, norm, mask):
    if norm != "softmax":
        return q.new_zeros(q.shape[:-1])
    t = run_program(score, [torch.matmul(q, k.transpose(-1, -2))])[0]
    if mask is not None:
        t = t.masked_fill(~mask[:, None, None, :], float("-inf"))
    return torch.logsumexp(t, -1)


# ---------------------------------------------------------------- dispatch

def _require_compiled(backend: str, t: torch.Tensor):
    if backend == "cpp" and t.device.type != "cpu":
        raise RuntimeError(f"backend 'cpp' runs on CPU tensors, got a tensor on {t.device}")
    interpreted = backend == "triton" and os.environ.get("TRITON_INTERPRET") == "1"  # Triton's CPU interpreter
    if backend in ("cuda", "triton") and t.device.type != "cuda" and not interpreted:
        raise RuntimeError(f"backend {backend!r} needs CUDA tensors, got a tensor on {t.device}")
    if backend == "cuda" and not _loader.with_cuda():
        raise RuntimeError("backend 'cuda' requested but autobert_ext._C was built without CUDA kernels")


def elementwise(backend: str, program: Program, inputs: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """One pass of ``program`` over same-shape inputs -> its outputs (new tensors)."""
    if backend == "eager" or not inputs:
        outs = run_program(program, list(inputs))
        return [o.clone() if any(o is x for x in inputs) else o for o in outs]
    _require_compiled(backend, inputs[0])
    return _compiled(backend).elementwise(program, list(inputs))


def softmax(backend: str, pre: Program, post: Program, inputs, mask) -> torch.Tensor:
    """post(softmax(pre(inputs))) over the last axis, padded positions excluded when mask is given."""
    if backend == "eager":
        return run_program(post, [_masked_softmax(run_program(pre, list(inputs))[0], mask)])[0]
    _require_compiled(backend, inputs[0])
    return _compiled(backend).softmax_forward(pre, post, list(inputs), mask)


def softmax_backward(backend: str, pre: Program, pre_bwd: Program, post_bwd: Program, inputs, y, g, mask):
    """Gradients of the inputs of a softmax step whose post program is the identity (y = its output)."""
    if backend == "eager":
        gy = run_program(post_bwd, [y, g])[0]
        gx = y * (gy - (gy * y).sum(-1, keepdim=True))
        return run_program(pre_bwd, list(inputs) + [gx])
    _require_compiled(backend, y)
    return _compiled(backend).softmax_backward(pre, pre_bwd, post_bwd, list(inputs), y, g, mask)


def streaming_forward(backend: str, q, k, v, score: Program, norm: str, mask):
    """(out (B, H, N, d), logsumexp (B, H, N)) of streaming attention."""
    if backend == "eager":
        p = _eager_streaming_scores(q, k, score, norm, mask)
        return torch.matmul(p, v), _eager_lse(q, k, score, norm, mask)
    _require_compiled(backend, q)
    return _compiled(backend).streaming_forward(q, k, v, score, norm, mask)


def streaming_backward(backend: str, q, k, v, out, lse, g, score: Program, score_bwd: Program, norm: str, mask):
    """[dq, dk, dv] of streaming attention (scores recomputed, never stored)."""
    if backend == "eager":
        s = torch.matmul(q, k.transpose(-1, -2))  # (B, H, N, N)
        p = _eager_streaming_scores(q, k, score, norm, mask)
        dp = torch.matmul(g, v.transpose(-1, -2))
        if norm == "softmax":
            dt = p * (dp - (dp * p).sum(-1, keepdim=True))
        else:
            dt = dp if mask is None else dp * mask[:, None, None, :]
        ds = run_program(score_bwd, [s, dt])[0]
        return [torch.matmul(ds, k), torch.matmul(ds.transpose(-1, -2), q), torch.matmul(p.transpose(-1, -2), g)]
    _require_compiled(backend, q)
    return _compiled(backend).streaming_backward(q, k, v, out, lse, g, score, score_bwd, norm, mask)


def _compiled(backend: str):
    """The module implementing a compiled backend (imported lazily: triton may be absent)."""
    if backend == "cpp" or backend == "cuda":
        from autobert_ext import compiled_kernels
        return compiled_kernels
    if backend == "triton":
        from autobert_ext.triton import plan_kernels
        return plan_kernels
    raise ValueError(f"unknown backend {backend!r}; expected one of {', '.join(BACKENDS)}")
