"""``triton_streaming_attention``: flash-style attention with an inlined score program.

out = norm(f(Q K^T)) V per (batch, head), norm in {softmax over keys, none}, without an (N, N)
tensor in memory, forward and backward. Kernels: ``attention_source``; one generated module per
(f, f_bwd, norm, dtype, tiles), cached by ``cache``. The eager oracle
``reference_streaming_attention`` sits beside it.
"""
from __future__ import annotations

import dataclasses
from typing import Optional

import torch
from torch.autograd.function import once_differentiable

from autobert_ext.program import Program, encode, run_program
from autobert_ext.triton import _runtime as rt
from autobert_ext.triton.attention_source import attention_source
from autobert_ext.triton.cache import get_module
from autobert_ext.triton.config import AttentionConfig, default_attention_config, float32_precision

_WHERE = "triton_streaming_attention"


def reference_streaming_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, score: Program,
                                  norm: str = "softmax",
                                  key_padding_mask: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Eager oracle (materialises (M, N)): q (B, H, M, dk), k (B, H, N, dk), v (B, H, N, dv) -> (B, H, M, dv)."""
    t = run_program(score, [q @ k.transpose(-1, -2)])[0]  # (B, H, M, N)
    if key_padding_mask is None:
        p = torch.softmax(t, dim=-1) if norm == "softmax" else t
        return p @ v
    m = key_padding_mask.bool()[:, None, None, :]  # (B, 1, 1, N)
    if norm == "softmax":
        # finfo.min keeps a fully padded row finite; multiplying by the mask zeroes it.
        p = torch.softmax(t.masked_fill(~m, torch.finfo(t.dtype).min), dim=-1) * m
    else:
        p = torch.where(m, t, torch.zeros((), dtype=t.dtype, device=t.device))
    return p @ v


def module_for(score: Program, score_bwd: Optional[Program], norm: str, dtype: str,
               config: AttentionConfig, autotune: bool, precision: str = "ieee"):
    """The generated module (``attn_fwd``; ``attn_bwd_dkdv`` / ``attn_bwd_dq`` when score_bwd is given)."""
    spec = {"score": encode(score), "score_bwd": encode(score_bwd) if score_bwd is not None else None,
            "norm": norm, "dtype": dtype, "autotune": autotune, "precision": precision,
            "config": None if autotune else dataclasses.asdict(config)}
    return get_module("attention", spec,
                      lambda: attention_source(score, score_bwd, norm, dtype, config, autotune, precision))


def _mask_args(km: Optional[torch.Tensor], dummy: torch.Tensor):
    """(pointer, stride_b, stride_n, HAS_MASK); the dummy pointer is never dereferenced."""
    if km is None:
        return dummy, 0, 0, False
    return km, km.stride(0), km.stride(1), True


def launch_forward(mod, q, k, v, km, softmax: bool):
    """q (B, H, M, dk), k (B, H, N, dk), v (B, H, N, dv) -> out (B, H, M, dv), lse (B, H, M) fp32."""
    triton = rt.require_triton()
    B, H, M, DQK = q.shape
    N, DV = k.shape[2], v.shape[3]
    if B * H > 65535:  # grid axis 1 limit on CUDA
        raise ValueError(f"{_WHERE}: B * H = {B * H} exceeds 65535; split the batch")
    o = torch.empty((B, H, M, DV), dtype=q.dtype, device=q.device)
    lse = torch.empty((B, H, M), dtype=torch.float32, device=q.device) if softmax else o
    if o.numel() == 0:
        return o, lse
    km_ptr, smb, smn, has_mask = _mask_args(km, q)

    def grid(meta):
        return (triton.cdiv(M, meta["BLOCK_M"]), B * H)

    mod.attn_fwd[grid](q, k, v, o, lse, km_ptr, *q.stride(), *k.stride(), *v.stride(), *o.stride(),
                       smb, smn, H, M, N, DQK, DV, HAS_MASK=has_mask, DQK_P=rt.next_pow2(DQK, 16),
                       DV_P=rt.next_pow2(DV, 16), **mod.FWD_META)
    return o, lse


def launch_backward(mod, q, k, v, o, lse, km, do, softmax: bool, need_q: bool, need_kv: bool):
    """Gradients (dq, dk, dv) shaped as q, k, v (None where not needed)."""
    triton = rt.require_triton()
    B, H, M, DQK = q.shape
    N, DV = k.shape[2], v.shape[3]
    # D_i = rowsum(dO_i * O_i): the softmax Jacobian term, one float per query row (B, H, M).
    delta = (do.float() * o.float()).sum(-1).contiguous() if softmax else lse
    km_ptr, smb, smn, has_mask = _mask_args(km, q)
    meta = dict(HAS_MASK=has_mask, DQK_P=rt.next_pow2(DQK, 16), DV_P=rt.next_pow2(DV, 16), **mod.BWD_META)
    dims = (H, M, N, DQK, DV)
    dq = dk = dv = None
    if need_kv:
        dk = torch.empty(k.shape, dtype=k.dtype, device=k.device)
        dv = torch.empty(v.shape, dtype=v.dtype, device=v.device)
        if N > 0 and B * H > 0:
            if M == 0:
                dk.zero_(), dv.zero_()
            else:
                mod.attn_bwd_dkdv[lambda m: (triton.cdiv(N, m["BLOCK_N"]), B * H)](
                    q, k, v, do, lse, delta, km_ptr, dk, dv, *q.stride(), *k.stride(), *v.stride(),
                    *do.stride(), *dk.stride(), *dv.stride(), smb, smn, *dims, **meta)
    if need_q:
        dq = torch.empty(q.shape, dtype=q.dtype, device=q.device)
        if M > 0 and B * H > 0:
            mod.attn_bwd_dq[lambda m: (triton.cdiv(M, m["BLOCK_M"]), B * H)](
                q, k, v, do, lse, delta, km_ptr, dq, *q.stride(), *k.stride(), *v.stride(),
                *do.stride(), *dq.stride(), smb, smn, *dims, **meta)
    return dq, dk, dv


class _StreamingAttention(torch.autograd.Function):
    @staticmethod
    def forward(ctx, q, k, v, km, mod, softmax):
        o, lse = launch_forward(mod, q, k, v, km, softmax)
        ctx.save_for_backward(q, k, v, o, lse, km)
        ctx.mod, ctx.softmax = mod, softmax
        return o

    @staticmethod
    @once_differentiable
    def backward(ctx, do):
        mod = ctx.mod
        if not hasattr(mod, "attn_bwd_dq"):
            raise RuntimeError(f"{_WHERE}: gradients need score_bwd (the derivative program of score); "
                               "it was None in the forward call")
        q, k, v, o, lse, km = ctx.saved_tensors
        need = ctx.needs_input_grad
        dq, dk, dv = launch_backward(mod, q, k, v, o, lse, km, do, ctx.softmax, need[0], need[1] or need[2])
        return dq, dk, dv, None, None, None


def triton_streaming_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, score: Program,
                               score_bwd: Optional[Program] = None, norm: str = "softmax",
                               key_padding_mask: Optional[torch.Tensor] = None, *,
                               config: Optional[AttentionConfig] = None, autotune: bool = False) -> torch.Tensor:
    """Streaming attention with score program ``score`` (differentiable in q, k, v).

    Args:
        q: (B, H, M, dk) preprocessed queries Q'.
        k: (B, H, N, dk) preprocessed keys K'.
        v: (B, H, N, dv) preprocessed values V'.
        score: f, 1 input -> 1 output, applied to s = q_i . k_j (no implicit 1/sqrt(d): the
            standard score program is ``mulc(1/sqrt(d))``).
        score_bwd: f_bwd, inputs (s, g) -> ds = g * f'(s); required for backward only.
        norm: "softmax" (over keys) or "none" (plain weighted sum).
        key_padding_mask: (B, N) bool, True = real token. Padded keys get -inf before softmax
            and weight 0 with norm="none"; a query row with no real key outputs 0.
        config: tiles (default: by head dim and device); autotune: search tiles on first call
            per shape (GPU only; slower first call, for a final architecture).

    Returns:
        (B, H, M, dv) in the dtype of q; computed in float32 (fp32 tl.dot without TF32).
    """
    if norm not in ("softmax", "none"):
        raise ValueError(f"{_WHERE}: norm must be 'softmax' or 'none', got {norm!r}")
    for name, t in (("q", q), ("k", k), ("v", v)):
        if not isinstance(t, torch.Tensor) or t.dim() != 4:
            raise ValueError(f"{_WHERE}: {name} must be a 4-D tensor (B, H, N, d), got "
                             f"{tuple(t.shape) if isinstance(t, torch.Tensor) else type(t).__name__}")
    if q.shape[:2] != k.shape[:2] or k.shape[:3] != v.shape[:3] or q.shape[3] != k.shape[3]:
        raise ValueError(f"{_WHERE}: shapes do not fit: q {tuple(q.shape)}, k {tuple(k.shape)}, v {tuple(v.shape)} "
                         "(need q (B, H, M, dk), k (B, H, N, dk), v (B, H, N, dv))")
    dtype = rt.check_tensors(_WHERE, (q, k, v))
    rt.check_program(_WHERE, score, 1, 1, "score")
    if score_bwd is not None:
        rt.check_program(_WHERE, score_bwd, 2, 1, "score_bwd")
    km = rt.key_mask_u8(_WHERE, key_padding_mask, k.shape[0], k.shape[2], k.device)
    rt.require_triton()
    precision = float32_precision()
    if config is None:
        config = default_attention_config(rt.next_pow2(max(q.shape[3], v.shape[3]), 16), dtype, precision)
    mod = module_for(score, score_bwd, norm, dtype, config, autotune, precision)
    return _StreamingAttention.apply(q, k, v, km, mod, norm == "softmax")
