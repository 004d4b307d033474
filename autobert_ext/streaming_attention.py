"""``streaming_attention``: flash-style attention with an op-program score, as custom ops.

    s = q k^T (no implicit scaling: scale with a ``mulc`` in the score program),  t = f(s),
    softmax: out = softmax_keys(t) v   (padded keys excluded; a row without real keys -> 0)
    none:    out = t v                 (padded keys contribute 0)

``autobert::streaming_attention`` returns (out, lse): lse (B, H, N) is the row logsumexp of t over
the real keys in the compute dtype (``reference.EMPTY_ROW_LSE`` for a row without any, 0 for
norm="none"), saved for ``autobert::streaming_attention_backward``, which recomputes the scores
block by block and uses the derivative program f_bwd(s, g) = g * f'(s). The kernels never hold an
(N, N) tensor; ``autobert_ext.reference.streaming_attention`` is the readable reference (and does).
"""
from __future__ import annotations

from typing import Optional

import torch

from autobert_ext import _dispatch as D
from autobert_ext import backends
from autobert_ext import kernels as K
from autobert_ext.program import Program
from autobert_ext.reference import compute_dtype

_OP = "autobert.streaming_attention"
_NORMS = ("softmax", "none")


def _check(q, k, v, mask, score_i, score_f, score_bwd_i, score_bwd_f, norm) -> tuple[Program, Optional[Program]]:
    score = D.decoded(_OP, "score", score_i, score_f, 1, 1)
    score_bwd = D.decoded(_OP, "score_bwd", score_bwd_i, score_bwd_f, 2, 1) if score_bwd_i else None
    if norm not in _NORMS:
        raise ValueError(f"{_OP}: norm must be one of {_NORMS}, got {norm!r}")
    D.check_floating(_OP, [("q", q), ("k", k), ("v", v)])
    for name, t in (("q", q), ("k", k), ("v", v)):
        if t.dim() != 4:
            raise RuntimeError(f"{_OP}: {name} must have shape (B, H, N, d), got rank {t.dim()} shape {tuple(t.shape)}")
    if k.shape != q.shape or v.shape != q.shape:
        raise RuntimeError(f"{_OP}: q, k and v must have the same shape (B, H, N, d), got q {tuple(q.shape)}, "
                           f"k {tuple(k.shape)}, v {tuple(v.shape)}")
    D.check_mask(_OP, mask, (q.shape[0], k.shape[2]), q)
    return score, score_bwd


@torch.library.custom_op("autobert::streaming_attention", mutates_args=())
def _attention_op(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: Optional[torch.Tensor],
                  score_ints: list[int], score_floats: list[float], score_bwd_ints: list[int],
                  score_bwd_floats: list[float], norm: str) -> tuple[torch.Tensor, torch.Tensor]:
    score, _ = _check(q, k, v, mask, score_ints, score_floats, score_bwd_ints, score_bwd_floats, norm)
    backend = backends.choose("streaming", q.device, q.dtype)
    out, lse = D.fresh(list(K.streaming_forward(backend, q, k, v, score, norm, mask)), [q, k, v, mask])
    return out, lse


@_attention_op.register_fake
def _attention_fake(q, k, v, mask, score_ints, score_floats, score_bwd_ints, score_bwd_floats, norm):
    _check(q, k, v, mask, score_ints, score_floats, score_bwd_ints, score_bwd_floats, norm)
    out = q.new_empty(q.shape[:-1] + v.shape[-1:])
    return out, q.new_empty(q.shape[:-1], dtype=compute_dtype(q.dtype))


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
    grads = K.streaming_backward(backend, q, k, v, out, lse, grad_out, score, score_bwd, norm, mask)
    dq, dk, dv = D.fresh(grads, [q, k, v, mask, out, lse, grad_out])
    return dq, dk, dv


@_attention_backward_op.register_fake
def _attention_backward_fake(q, k, v, mask, out, lse, grad_out, score_ints, score_floats, score_bwd_ints,
                             score_bwd_floats, norm):
    _check(q, k, v, mask, score_ints, score_floats, score_bwd_ints, score_bwd_floats, norm)
    return torch.empty_like(q), torch.empty_like(k), torch.empty_like(v)


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
