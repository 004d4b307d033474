"""Kernel launchers for plan steps: one function per step kind, by backend.

Backends: "cpp" (compiled C++ kernels, CPU), "cuda" (interpreted op programs on GPU),
"triton" (generated Triton kernels, GPU), "eager" (``autobert_ext.reference`` and torch ops,
any device). Which one runs is ``autobert_ext.backends``' decision, never made here.
Raw kernels only: the plan executor does the chain rule, so nothing here records autograd.
"""
from __future__ import annotations

from typing import Sequence

import torch

from autobert_ext import reference as R
from autobert_ext.backends import BACKENDS
from autobert_ext.program import Program, run_program


# ---------------------------------------------------------------- dispatch

def elementwise(backend: str, program: Program, inputs: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """One pass of ``program`` over same-shape inputs -> its outputs (new tensors)."""
    if backend == "eager" or not inputs:
        outs = run_program(program, list(inputs))
        return [o.clone() if any(o is x for x in inputs) else o for o in outs]
    return _compiled(backend).elementwise(program, list(inputs))


def softmax(backend: str, pre: Program, post: Program, inputs, mask) -> torch.Tensor:
    """post(softmax(pre(inputs))) over the last axis, padded positions excluded when mask is given."""
    if backend == "eager":
        return run_program(post, [R.masked_softmax(run_program(pre, list(inputs))[0], mask)])[0]
    return _compiled(backend).softmax_forward(pre, post, list(inputs), mask)


def softmax_backward(backend: str, pre: Program, pre_bwd: Program, post_bwd: Program, inputs, y, g, mask):
    """Gradients of the inputs of a softmax step whose post program is the identity (y = its output)."""
    if backend == "eager":
        gy = run_program(post_bwd, [y, g])[0]
        gx = y * (gy - (gy * y).sum(-1, keepdim=True))
        return run_program(pre_bwd, list(inputs) + [gx])
    return _compiled(backend).softmax_backward(pre, pre_bwd, post_bwd, list(inputs), y, g, mask)


def streaming_forward(backend: str, q, k, v, score: Program, norm: str, mask):
    """(out (B, H, N, d), lse (B, H, N) in the compute dtype, ``reference.EMPTY_ROW_LSE`` for a row
    without a real key) of streaming attention."""
    if backend == "eager":
        return R.streaming_attention(q, k, v, score, norm, mask)
    return _compiled(backend).streaming_forward(q, k, v, score, norm, mask)


def streaming_backward(backend: str, q, k, v, out, lse, g, score: Program, score_bwd: Program, norm: str, mask):
    """[dq, dk, dv] of streaming attention (scores recomputed, never stored)."""
    if backend == "eager":
        return R.streaming_attention_backward(q, k, v, mask, out, lse, g, score, score_bwd, norm)
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
