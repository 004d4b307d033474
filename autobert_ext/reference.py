"""The eager references of the elementwise program, the row softmax and streaming attention: the
oracle the kernels are tested against and the ``eager`` backend that runs them. One definition each, and one meaning of
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


def elementwise(program: Program, inputs) -> list[torch.Tensor]:
    """The program's outputs over same-shape inputs, computed in the compute dtype and returned in
    the inputs' dtype; an output that is an input comes back as a copy."""
    if not inputs:
        return run_program(program, [])
    dtype = inputs[0].dtype
    ct = compute_dtype(dtype)
    outs = run_program(program, [x.to(ct) for x in inputs])
    return [o.clone() if any(o is x for x in inputs) else o.to(dtype) for o in outs]


def masked_softmax(x: torch.Tensor, mask: Optional[torch.Tensor]) -> torch.Tensor:
    """Softmax over the last axis of x (B, ..., C); mask (B, C) bool marks real columns (None: all).
    Padded columns get 0, and a row without a real column is 0 (with zero gradients: its -inf
    logits are replaced by zeros before the softmax, so autograd never meets a NaN)."""
    if mask is None:
        return torch.softmax(x, -1)
    keep = mask.reshape(mask.shape[0], *([1] * (x.dim() - 2)), mask.shape[1])  # over the dims between B and C
    x = x.masked_fill(~keep, float("-inf"))
    empty = x.amax(-1, keepdim=True) == float("-inf")
    return torch.softmax(x.masked_fill(empty, 0.0), -1).masked_fill(empty, 0.0)


def fused_softmax(pre: Program, post: Program, inputs, mask) -> torch.Tensor:
    """POST(masked_softmax(PRE(inputs))) over the last axis, in the compute dtype, returned in the
    inputs' dtype."""
    ct = compute_dtype(inputs[0].dtype)
    y = masked_softmax(run_program(pre, [x.to(ct) for x in inputs])[0], mask)
    return run_program(post, [y])[0].to(inputs[0].dtype)


def fused_softmax_backward(pre: Program, pre_bwd: Program, post_bwd: Program, inputs, y, grad,
                           mask) -> list[torch.Tensor]:
    """Input gradients of ``fused_softmax``: gy = POST_BWD(y, g), gx = y * (gy - sum(gy * y)),
    PRE_BWD(x.., gx); y is the softmax rows (recomputed from the inputs when None)."""
    ct = compute_dtype(inputs[0].dtype)
    xs = [x.to(ct) for x in inputs]
    y = masked_softmax(run_program(pre, xs)[0], mask) if y is None else y.to(ct)
    gy = run_program(post_bwd, [y, grad.to(ct)])[0]
    gx = y * (gy - (gy * y).sum(-1, keepdim=True))
    return [d.to(inputs[0].dtype) for d in run_program(pre_bwd, xs + [gx])]


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
        if mask is None:
            lse = torch.logsumexp(t, -1)
        else:  # rows without a real key: logsumexp over zeros, replaced (no NaN gradients under autograd)
            empty = ~mask.any(-1)[:, None, None]  # (B, 1, 1)
            tm = t.masked_fill(~mask[:, None, None, :], float("-inf")).masked_fill(empty[..., None], 0.0)
            lse = torch.logsumexp(tm, -1).masked_fill(empty, EMPTY_ROW_LSE)
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
