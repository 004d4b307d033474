"""Runs a Plan forward and backward over its steps (no autograd: backward is explicit).

Forward returns every value (views for transposes) plus per-step auxiliaries (the softmax rows
of softmax steps, logsumexp of streaming steps) that the backward reuses, so nothing is
recomputed except free views. Kernels are the launchers of the kernel families (``elementwise``,
``fused_softmax``, ``streaming_attention``), on the backend ``autobert_ext.backends`` chooses per
step kind.
"""
from __future__ import annotations

from typing import Optional

import torch

from autobert_ext import backends
# (from the modules by name: the package's attributes of these names are the public ops)
from autobert_ext.elementwise import run as elementwise
from autobert_ext.fused_softmax import backward as softmax_backward, forward as softmax
from autobert_ext.streaming_attention import backward as streaming_backward, forward as streaming
from autobert_ext.reference import NORM_EPS
from autobert_ext.plan import Plan, Step, worth_fusing


def _key_mask(mask: Optional[torch.Tensor], like: torch.Tensor) -> Optional[torch.Tensor]:
    """(B, N) bool -> (B, 1, 1, N) bool, masking the last axis (``x * mask`` keeps x's dtype)."""
    return None if mask is None else mask[:, None, None, :]


def _normalise(x: torch.Tensor, dim: int) -> tuple[torch.Tensor, torch.Tensor]:
    """x / sqrt(sum(x^2, dim) + NORM_EPS) and the factor r."""
    r = torch.rsqrt((x * x).sum(dim, keepdim=True) + NORM_EPS)
    return x * r, r


def _normalise_bwd(g: torch.Tensor, y: torch.Tensor, r: torch.Tensor, dim: int) -> torch.Tensor:
    """Gradient of y = x * r(x): r * (g - y * sum(g * y))."""
    return r * (g - y * (g * y).sum(dim, keepdim=True))


def _matmul_operands(step: Step, a, b, mask):
    """Apply masking (contraction over the sequence axis) and cosine normalisation."""
    ctx = {}
    if step.masked and mask is not None:
        a = a * _key_mask(mask, a)  # padded positions count as 0 in the contraction
        if step.cosine:  # the column norms of the right operand also reduce over the sequence
            b = b * mask[:, None, :, None].to(b.dtype)
    if step.cosine:
        a, ctx["ra"] = _normalise(a, -1)
        b, ctx["rb"] = _normalise(b, -2)
    return a, b, ctx


def _matmul_like(like: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """a @ b, laid out as ``like``: when ``like`` is a transposed view (a transpose step's output),
    the product is computed as (b^T a^T)^T so that its gradient arrives at the transpose's source
    contiguous: the fused elementwise kernels then read it in place instead of copying it."""
    if not like.is_contiguous() and like.mT.is_contiguous():
        return torch.matmul(b.mT, a.mT).mT
    return torch.matmul(a, b)


_KERNEL_KINDS = ("elementwise", "softmax", "streaming")  # the step kinds that run a backend's kernel


def _backends(device: torch.device, dtype: torch.dtype) -> dict[str, str]:
    """Backend per kernel step kind, looked up once per call (not per step: small graphs are
    dominated by per-step Python work)."""
    return backends.choose_all(_KERNEL_KINDS, device, dtype)


def _elementwise_backend(backend: str, program) -> str:
    return backend if worth_fusing(program) else "eager"


def forward(plan: Plan, q, k, v, mask):
    """Returns (values, aux): values[i] is value i (B, H, r, c); aux maps step index -> tensors."""
    vals: list[Optional[torch.Tensor]] = [q, k, v] + [None] * (plan.n_values - 3)
    aux: dict[int, list[torch.Tensor]] = {}
    backends = _backends(q.device, q.dtype)
    for si, step in enumerate(plan.steps):
        ins = [vals[i] for i in step.inputs]
        backend = backends.get(step.kind)
        if step.kind == "elementwise":
            outs = elementwise(_elementwise_backend(backend, step.program), step.program, ins)
        elif step.kind == "softmax":
            outs = [softmax(backend, step.program, step.post, ins, mask if step.masked else None)]
        elif step.kind == "transpose":
            outs = [ins[0].transpose(-1, -2)]
        elif step.kind == "rownorm":
            y, r = _normalise(ins[0], -1)
            outs, aux[si] = [y], [r]
        elif step.kind == "matmul":
            a, b, ctx = _matmul_operands(step, ins[0], ins[1], mask)
            outs = [torch.matmul(a, b)]
            if step.cosine:
                aux[si] = [a, b, ctx["ra"], ctx["rb"]]
        else:  # streaming
            out, lse = streaming(backend, ins[0], ins[1], ins[2], step.score, step.norm, mask)
            outs, aux[si] = [out], [lse]
        for o, t in zip(step.outputs, outs):
            vals[o] = t
    return vals, aux


def _add(grads, i, g):
    if g is not None:
        grads[i] = g if grads[i] is None else grads[i] + g


def backward(plan: Plan, grad_out, vals, aux, mask):
    """Gradients of q, k, v (zeros for inputs the graph does not read)."""
    grads: list[Optional[torch.Tensor]] = [None] * plan.n_values
    grads[plan.output] = grad_out
    backends = _backends(grad_out.device, grad_out.dtype)
    for si in range(len(plan.steps) - 1, -1, -1):
        step = plan.steps[si]
        gouts = [grads[o] for o in step.outputs]
        if all(g is None for g in gouts):
            continue
        ins = [vals[i] for i in step.inputs]
        for i, g in zip(step.inputs, _step_backward(step, si, ins, gouts, vals, aux, mask, backends.get(step.kind))):
            _add(grads, i, g)
    q = vals[0]
    return [g if g is not None else torch.zeros_like(q) for g in grads[:3]]


def _step_backward(step: Step, si, ins, gouts, vals, aux, mask, backend):
    if step.kind == "elementwise":
        outs = [vals[o] for o in step.outputs]
        gouts = [g if g is not None else torch.zeros_like(o) for g, o in zip(gouts, outs)]
        return elementwise(_elementwise_backend(backend, step.program_bwd), step.program_bwd, ins + gouts)
    g = gouts[0]
    if step.kind == "softmax":
        y = vals[step.outputs[0]]
        return softmax_backward(backend, step.program, step.program_bwd, step.post_bwd, ins, y, g,
                                  mask if step.masked else None)
    if step.kind == "transpose":
        return [g.transpose(-1, -2)]
    if step.kind == "rownorm":
        return [_normalise_bwd(g, vals[step.outputs[0]], aux[si][0], -1)]
    if step.kind == "matmul":
        if step.cosine:
            a, b, ra, rb = aux[si]
        else:
            a, b, _ = _matmul_operands(step, ins[0], ins[1], mask)
        ga, gb = _matmul_like(ins[0], g, b.mT), _matmul_like(ins[1], a.mT, g)
        if step.cosine:
            ga, gb = _normalise_bwd(ga, a, ra, -1), _normalise_bwd(gb, b, rb, -2)
            if step.masked and mask is not None:
                gb = gb * mask[:, None, :, None].to(gb.dtype)
        if step.masked and mask is not None:
            ga = ga * _key_mask(mask, ga)
        return [ga, gb]
    out = vals[step.outputs[0]]
    return streaming_backward(backend, ins[0], ins[1], ins[2], out, aux[si][0], g, step.score,
                                step.score_bwd, step.norm, mask)
