"""The eager references of the row softmax and streaming attention: the oracle the kernels are
tested against and the ``eager`` backend that runs them. One definition each, and one meaning of
the conventions every backend shares (C++, CUDA and Triton kernels agree with these):

- ``EMPTY_ROW_LSE``: the saved log-sum-exp of a softmax row without any real key is +inf, so
  that exp(t - lse) is 0 there with no special case and the row's output and gradients are 0.
- ``NORM_EPS``: added to a squared L2 norm before its reciprocal square root (cosine, rownorm).
- the log-sum-exp is saved in the compute dtype (float32 for bfloat16/float16 inputs).
"""
from __future__ import annotations

from typing import Optional

import torch

from autobert_ext.program import Program, run_program

EMPTY_ROW_LSE = float("inf")
NORM_EPS = 1e-12


def compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """Kernels compute in float64 for float64 and in float32 otherwise (bfloat16/float16 included)."""
    return torch.float64 if dtype == torch.float64 else torch.float32


def _key_mask(mask: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """(B, C) -> (B, 1, ..., 1, C), broadcasting over the dims of x between B and C."""
    return mask.reshape(mask.shape[0], *([1] * (x.dim() - 2)), mask.shape[1])


def masked_softmax(x: torch.Tensor, mask: Optional[torch.Tensor]) -> torch.Tensor:
    """Softmax over the last axis of x (B, ..., C); mask (B, C) bool marks real columns (None: all).
    Padded columns get 0, and a row without a real column is 0."""
    if mask is None:
        return torch.softmax(x, -1)
    x = x.masked_fill(~_key_mask(mask, x), float("-inf"))
    empty = x.amax(-1, keepdim=True) == float("-inf")
    return torch.where(empty, torch.zeros((), dtype=x.dtype, device=x.device), torch.softmax(x, -1))


def _scores(q, k, score: Program):
    """(s, t) of shape (B, H, M, N): s = q k^T and t = f(s)."""
    s = torch.matmul(q, k.transpose(-1, -2))
    return s, run_program(score, [s])[0]


def _probabilities(t, lse, norm, mask):
    """P = exp(t - lse) (softmax) or t (none), 0 at padded keys and in rows without real keys.
    t <= lse, so P <= 1; the kernels clamp the exponent at 0 so that a recomputed t which rounds
    above the forward's cannot overflow where |t| is large, and so does this reference."""
    p = torch.exp((t - lse[..., None]).clamp(max=0)) if norm == "softmax" else t
    if mask is not None:
        p = p.masked_fill(~mask[:, None, None, :], 0.0)
    return p


def streaming_attention(q, k, v, score: Program, norm: str, mask) -> tuple[torch.Tensor, torch.Tensor]:
    """Forward: q, k, v (B, H, N, d) -> (out (B, H, N, d) in q's dtype, lse (B, H, N) in the compute
    dtype; EMPTY_ROW_LSE for a row without a real key, 0 for norm="none")."""
    ct = compute_dtype(q.dtype)
    q_, k_, v_ = q.to(ct), k.to(ct), v.to(ct)
    _, t = _scores(q_, k_, score)
    if norm == "softmax":
        tm = t if mask is None else t.masked_fill(~mask[:, None, None, :], float("-inf"))
        lse = torch.logsumexp(tm, -1)  # (B, H, N); -inf where no key is real
        lse = torch.where(torch.isneginf(lse), torch.full_like(lse, EMPTY_ROW_LSE), lse)
    else:
        lse = torch.zeros(q.shape[:-1], dtype=ct, device=q.device)
    out = torch.matmul(_probabilities(t, lse, norm, mask), v_)
    return out.to(q.dtype), lse


def streaming_attention_backward(q, k, v, mask, out, lse, grad_out, score: Program, score_bwd: Program,
                                 norm: str) -> list[torch.Tensor]:
    """Backward: [dq, dk, dv] (shapes of q, k, v) by the same recurrences as the kernels."""
    ct = compute_dtype(q.dtype)
    q_, k_, v_, o_, g_ = (x.to(ct) for x in (q, k, v, out, grad_out))
    s, t = _scores(q_, k_, score)
    p = _probabilities(t, lse.to(ct), norm, mask)
    dp = torch.matmul(g_, v_.transpose(-1, -2))  # (B, H, N, N)
    if norm == "softmax":
        dt = p * (dp - (g_ * o_).sum(-1, keepdim=True))
    else:
        dt = dp if mask is None else dp.masked_fill(~mask[:, None, None, :], 0.0)
    ds = run_program(score_bwd, [s, dt])[0]
    if mask is not None:
        ds = ds.masked_fill(~mask[:, None, None, :], 0.0)
    grads = [torch.matmul(ds, k_), torch.matmul(ds.transpose(-1, -2), q_), torch.matmul(p.transpose(-1, -2), g_)]
    return [x.to(q.dtype).contiguous() for x in grads]
