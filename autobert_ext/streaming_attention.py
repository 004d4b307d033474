"""The streaming attention family: flash-style attention with an op-program score.

    s = q k^T (no implicit scaling: scale with a ``mulc`` in the score program),  t = f(s),
    softmax: out = softmax_keys(t) v   (padded keys excluded; a row without real keys -> 0)
    none:    out = t v                 (padded keys contribute 0)

``autobert::streaming_attention`` returns (out, lse): lse (B, H, N) is the row logsumexp of t over
the real keys in the compute dtype (``reference.EMPTY_ROW_LSE`` for a row without any, 0 for
norm="none"), saved for ``autobert::streaming_attention_backward``, which recomputes the scores
block by block and uses the derivative program f_bwd(s, g) = g * f'(s). The kernels never hold an
(N, N) tensor; ``autobert_ext.reference.streaming_attention`` is the readable reference (and does).

Launchers (``forward``, ``backward``): ``cpp`` / ``cuda`` (the ``_C`` kernels), ``triton`` (a
generated module per score program, ``triton.attention_source``) and ``eager`` (``reference``);
which one runs is ``autobert_ext.backends``' decision. The plan executor calls them directly.
"""
from __future__ import annotations

from typing import Optional

import torch

from autobert_ext import _dispatch as D
from autobert_ext import _loader, backends
from autobert_ext import reference as R
from autobert_ext.program import Program

_OP = "autobert.streaming_attention"
_NORMS = ("softmax", "none")


def forward(backend: str, q, k, v, score: Program, norm: str, mask) -> tuple[torch.Tensor, torch.Tensor]:
    """q, k, v (B, H, N, d) -> (out (B, H, N, d), lse (B, H, N) in the compute dtype) (no autograd)."""
    if backend == "eager":
        return R.streaming_attention(q, k, v, score, norm, mask)
    if backend == "triton":
        return _triton_forward(q, k, v, score, norm, mask)
    out, lse = _loader.kernel("streaming_attention")(q, k, v, mask, *D.encoded(score), norm)
    return out, lse


def backward(backend: str, q, k, v, out, lse, g, score: Program, score_bwd: Program, norm: str,
             mask) -> list[torch.Tensor]:
    """[dq, dk, dv] of streaming attention from ``forward``'s results (scores recomputed)."""
    if backend == "eager":
        return R.streaming_attention_backward(q, k, v, mask, out, lse, g, score, score_bwd, norm)
    if backend == "triton":
        return _triton_backward(q, k, v, out, lse, g, score, score_bwd, norm, mask)
    kernel = _loader.kernel("streaming_attention_backward")
    return list(kernel(q, k, v, mask, out, lse, g, *D.encoded(score), *D.encoded(score_bwd), norm))


def _triton_module(q, score, score_bwd, norm):
    from autobert_ext.triton import config as C
    from autobert_ext.triton.attention_source import module_for
    dtype, precision = C.dtype_name(q.dtype), C.float32_precision()
    config = C.default_attention_config(C.next_pow2(q.shape[3], 16), dtype, precision)
    return module_for(score, score_bwd, norm, dtype, config, precision)


def _triton_args(q, mask):
    """Key-mask arguments (pointer, stride_b, stride_n, HAS_MASK; q stands in, unread, without a
    mask) and the padded head dims."""
    from autobert_ext.triton.config import next_pow2
    km = q if mask is None else mask.to(torch.uint8).contiguous()
    d = next_pow2(q.shape[3], 16)
    return (km, *((0, 0) if mask is None else km.stride())), dict(HAS_MASK=mask is not None, DQK_P=d, DV_P=d)


def _triton_forward(q, k, v, score, norm, mask):
    from autobert_ext.triton.config import cdiv
    B, H, N, d = q.shape
    if B * H > 65535:  # grid axis 1 limit on CUDA
        raise ValueError(f"{_OP}: B * H = {B * H} exceeds 65535 on the triton backend; split the batch")
    mod = _triton_module(q, score, None, norm)
    out = torch.empty_like(q, memory_format=torch.contiguous_format)
    lse = torch.zeros((B, H, N), dtype=torch.float32, device=q.device)
    if out.numel():
        km, meta = _triton_args(q, mask)
        mod.attn_fwd[lambda m: (cdiv(N, m["BLOCK_M"]), B * H)](
            q, k, v, out, lse if norm == "softmax" else out, *km[:1], *q.stride(), *k.stride(), *v.stride(),
            *out.stride(), *km[1:], H, N, N, d, d, **meta, **mod.FWD_META)
    return out, lse


def _triton_backward(q, k, v, out, lse, g, score, score_bwd, norm, mask):
    from autobert_ext.triton.config import cdiv
    B, H, N, d = q.shape
    mod = _triton_module(q, score, score_bwd, norm)
    softmax = norm == "softmax"
    lse = lse.float().contiguous()
    # D_i = rowsum(dO_i * O_i): the softmax Jacobian term, one float per query row (B, H, N).
    delta = (g.float() * out.float()).sum(-1).contiguous() if softmax else lse
    dq, dk, dv = (torch.empty_like(t, memory_format=torch.contiguous_format) for t in (q, k, v))
    if q.numel():
        km, meta = _triton_args(q, mask)
        common = (q, k, v, g, lse, delta, km[0])
        strides = (*q.stride(), *k.stride(), *v.stride(), *g.stride())
        mod.attn_bwd_dkdv[lambda m: (cdiv(N, m["BLOCK_N"]), B * H)](
            *common, dk, dv, *strides, *dk.stride(), *dv.stride(), *km[1:], H, N, N, d, d, **meta, **mod.BWD_META)
        mod.attn_bwd_dq[lambda m: (cdiv(N, m["BLOCK_M"]), B * H)](
            *common, dq, *strides, *dq.stride(), *km[1:], H, N, N, d, d, **meta, **mod.BWD_META)
    return [dq, dk, dv]


def _check(q, k, v, mask, score_i, score_f, score_bwd_i, score_bwd_f, norm) -> tuple[Program, Optional[Program]]:
    score = D.decoded(_OP, "score", score_i, score_f, 1, 1)
    score_bwd = D.decoded(_OP, "score_bwd", score_bwd_i, score_bwd_f, 2, 1) if score_bwd_i else None
    if norm not in _NORMS:
        raise ValueError(f"{_OP}: norm must be one of {_NORMS}, got {norm!r}")
    D.check_floating(_OP, [("q", q), ("k", k), ("v", v)], same_shape=True)
    if q.dim() != 4:
        raise RuntimeError(f"{_OP}: q, k and v must have shape (B, H, N, d), got rank {q.dim()} shape {tuple(q.shape)}")
    D.check_mask(_OP, mask, (q.shape[0], k.shape[2]), q)
    return score, score_bwd


@torch.library.custom_op("autobert::streaming_attention", mutates_args=())
def _attention_op(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: Optional[torch.Tensor],
                  score_ints: list[int], score_floats: list[float], score_bwd_ints: list[int],
                  score_bwd_floats: list[float], norm: str) -> tuple[torch.Tensor, torch.Tensor]:
    score, _ = _check(q, k, v, mask, score_ints, score_floats, score_bwd_ints, score_bwd_floats, norm)
    backend = backends.choose("streaming", q.device, q.dtype)
    out, lse = D.fresh(forward(backend, q, k, v, score, norm, mask), [q, k, v, mask])
    return out, lse


@_attention_op.register_fake
def _attention_fake(q, k, v, mask, score_ints, score_floats, score_bwd_ints, score_bwd_floats, norm):
    _check(q, k, v, mask, score_ints, score_floats, score_bwd_ints, score_bwd_floats, norm)
    out = q.new_empty(q.shape[:-1] + v.shape[-1:])
    return out, q.new_empty(q.shape[:-1], dtype=R.compute_dtype(q.dtype))


@torch.library.custom_op("autobert::streaming_attention_backward", mutates_args=())
def _attention_backward_op(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: Optional[torch.Tensor],
                           out: torch.Tensor, lse: torch.Tensor, grad_out: torch.Tensor, score_ints: list[int],
                           score_floats: list[float], score_bwd_ints: list[int], score_bwd_floats: list[float],
                           norm: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    score, score_bwd = _check(q, k, v, mask, score_ints, score_floats, score_bwd_ints, score_bwd_floats, norm)
    if score_bwd is None:
        raise ValueError(f"{_OP}: the backward needs a score_bwd program, got none")
    if out.shape != q.shape or grad_out.shape != q.shape or lse.shape != q.shape[:-1]:
        raise RuntimeError(f"{_OP}: out/grad_out must have shape {tuple(q.shape)} and lse {tuple(q.shape[:-1])}, got "
                           f"{tuple(out.shape)}, {tuple(grad_out.shape)}, {tuple(lse.shape)}")
    backend = backends.choose("streaming", q.device, q.dtype)
    grads = backward(backend, q, k, v, out, lse, grad_out, score, score_bwd, norm, mask)
    dq, dk, dv = D.fresh(grads, [q, k, v, mask, out, lse, grad_out])
    return dq, dk, dv


@_attention_backward_op.register_fake
def _attention_backward_fake(q, k, v, mask, out, lse, grad_out, score_ints, score_floats, score_bwd_ints,
                             score_bwd_floats, norm):
    _check(q, k, v, mask, score_ints, score_floats, score_bwd_ints, score_bwd_floats, norm)
    return tuple(t.new_empty(t.shape) for t in (q, k, v))  # contiguous, as the real results


def _setup_context(ctx, inputs, output):
    q, k, v, mask, score_i, score_f, score_bwd_i, score_bwd_f, norm = inputs
    out, lse = output
    ctx.save_for_backward(q, k, v, mask, out, lse)
    ctx.programs = (list(score_i), list(score_f), list(score_bwd_i), list(score_bwd_f), norm)


def _backward(ctx, grad_out, _grad_lse):
    score_i, score_f, score_bwd_i, score_bwd_f, norm = ctx.programs
    if not score_bwd_i:
        raise RuntimeError(f"{_OP}: this call is not differentiable (score_bwd=None); "
                           "pass the score's derivative program to differentiate it")
    q, k, v, mask, out, lse = ctx.saved_tensors
    if grad_out is None:
        grad_out = torch.zeros_like(out)
    dq, dk, dv = _attention_backward_op(q, k, v, mask, out, lse, grad_out.contiguous(), score_i, score_f, score_bwd_i,
                                        score_bwd_f, norm)
    return dq, dk, dv, None, None, None, None, None, None


_attention_op.register_autograd(_backward, setup_context=_setup_context)


def streaming_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, score: Program,
                        score_bwd: Optional[Program], norm: str = "softmax",
                        key_padding_mask: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Attention out = norm(f(q k^T)) v without materialising the (N, N) scores.

    Args:
        q, k, v: (B, H, N, d) floating tensors of one dtype and device (any strides).
        score: f, 1 input (s) -> 1 output (t); e.g. [mulc 1/sqrt(d)] for standard attention.
        score_bwd: (s, g) -> g * f'(s); None makes the call non-differentiable (backward raises).
        norm: "softmax" (over keys) or "none".
        key_padding_mask: optional (B, N) bool, True = real token; padded keys never contribute.
    Returns:
        (B, H, N, d) tensor in q's dtype; rows whose keys are all padded are 0 (softmax).
    """
    out, _lse = _attention_op(q, k, v, key_padding_mask, *D.encoded(score), *D.encoded(score_bwd), norm)
    return out
