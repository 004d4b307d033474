"""Raw Triton kernels for the plan executor (``autobert_ext.kernels`` backend "triton").

No autograd here: the executor applies the chain rule and calls the backward functions itself.
Signatures mirror the eager reference kernels in ``autobert_ext.kernels``; key masks are (B, N)
bool (True = real token) over the last / key axis.
"""
from __future__ import annotations

from typing import Optional, Sequence

import torch

from autobert_ext.program import Program
from autobert_ext.triton import _runtime as rt
from autobert_ext.triton import attention as attn
from autobert_ext.triton import softmax as sm
from autobert_ext.triton.config import default_attention_config, default_row_config, float32_precision
from autobert_ext.triton.elementwise import run_elementwise


def _dtype(where: str, tensors: Sequence[torch.Tensor]) -> str:
    rt.require_triton()
    return rt.check_tensors(where, tensors)


def elementwise(program: Program, inputs: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """Same-shape inputs -> the program's outputs (new tensors of that shape)."""
    _dtype("triton elementwise", inputs)
    flat = [x.contiguous() for x in torch.broadcast_tensors(*inputs)]
    return run_elementwise(program, flat)


def softmax_forward(pre: Program, post: Program, inputs: Sequence[torch.Tensor],
                    mask: Optional[torch.Tensor]) -> torch.Tensor:
    """post(softmax(pre(inputs))) over the last axis; inputs (B, ..., N), mask (B, N) or None."""
    dtype = _dtype("triton softmax", inputs)
    flat = [x.contiguous() for x in torch.broadcast_tensors(*inputs)]
    km = rt.key_mask_u8("triton softmax", mask, flat[0].shape[0], flat[0].shape[-1], flat[0].device)
    mod = sm.module_for(pre, None, post, None, len(flat), dtype, default_row_config(), backward=False)
    return sm.launch_forward(mod, flat, km, store_y=False)[0]


def softmax_backward(pre: Program, pre_bwd: Program, post_bwd: Program, inputs: Sequence[torch.Tensor],
                     y: torch.Tensor, g: torch.Tensor, mask: Optional[torch.Tensor]) -> list[torch.Tensor]:
    """Input gradients of a softmax step whose POST is the identity (y = the step's output)."""
    dtype = _dtype("triton softmax backward", list(inputs) + [y, g])
    flat = [x.contiguous() for x in torch.broadcast_tensors(*inputs)]
    km = rt.key_mask_u8("triton softmax backward", mask, flat[0].shape[0], flat[0].shape[-1], flat[0].device)
    mod = sm.module_for(pre, pre_bwd, None, post_bwd, len(flat), dtype, default_row_config(), backward=True)
    return sm.launch_backward(mod, flat, y, g, km)


def _attention_module(q, v, score, score_bwd, norm):
    dtype = _dtype("triton streaming attention", (q,))
    precision = float32_precision()
    config = default_attention_config(rt.next_pow2(max(q.shape[3], v.shape[3]), 16), dtype, precision)
    return attn.module_for(score, score_bwd, norm, dtype, config, autotune=False, precision=precision)


def streaming_forward(q, k, v, score: Program, norm: str, mask: Optional[torch.Tensor]):
    """q (B, H, M, dk), k (B, H, N, dk), v (B, H, N, dv) -> (out (B, H, M, dv), lse (B, H, M) fp32).

    lse is the row logsumexp of f(s) over real keys (``reference.EMPTY_ROW_LSE`` for a row without
    any; zeros for norm="none").
    """
    _dtype("triton streaming attention", (q, k, v))
    mod = _attention_module(q, v, score, None, norm)
    km = rt.key_mask_u8("triton streaming attention", mask, k.shape[0], k.shape[2], k.device)
    out, lse = attn.launch_forward(mod, q, k, v, km, norm == "softmax")
    if norm != "softmax":
        lse = torch.zeros(q.shape[:-1], dtype=torch.float32, device=q.device)
    return out, lse


def streaming_backward(q, k, v, out, lse, g, score: Program, score_bwd: Program, norm: str,
                       mask: Optional[torch.Tensor]) -> list[torch.Tensor]:
    """[dq, dk, dv] (shapes of q, k, v) recomputing scores; lse from ``streaming_forward``."""
    _dtype("triton streaming attention backward", (q, k, v, out, g))
    mod = _attention_module(q, v, score, score_bwd, norm)
    km = rt.key_mask_u8("triton streaming attention backward", mask, k.shape[0], k.shape[2], k.device)
    dq, dk, dv = attn.launch_backward(mod, q, k, v, out, lse.float().contiguous(), km, g,
                                      norm == "softmax", need_q=True, need_kv=True)
    return [dq, dk, dv]
