"""Runs a Plan forward and backward over its steps (no autograd: backward is explicit).

Forward returns every value (views for transposes) plus what each step saves for its backward
(``plan_steps``: the log-sum-exp of streaming steps, the norms of rownorm and cosine matmul
steps), so nothing is recomputed except free views. The kernel steps run the launchers of their
kernel families on the backend ``autobert_ext.backends`` chooses, looked up once per call (not
per step: small graphs are dominated by per-step Python work).

``pack`` / ``unpack`` turn (values, saved) into the flat tensor list the custom op returns and
back; ``fake_results`` gives that list's shapes and dtypes from the same step methods.
"""
from __future__ import annotations

from typing import Optional

import torch

from autobert_ext import backends
from autobert_ext.plan import Plan

_FAMILIES = ("elementwise", "softmax", "streaming")
_DIMS = {"N": 2, "d": 3}  # symbolic axis -> axis of q's (B, H, N, d) shape


def forward(plan: Plan, q, k, v, mask):
    """Returns (values, saved): values[i] is value i (B, H, r, c); saved[si] the tensors step si saves."""
    vals: list[Optional[torch.Tensor]] = [q, k, v] + [None] * (plan.n_values - 3)
    saved = []
    chosen = backends.choose_all(_FAMILIES, q.device, q.dtype)
    for step in plan.steps:
        outs, keep = step.forward([vals[i] for i in step.inputs], mask, chosen.get(step.family))
        for o, t in zip(step.outputs, outs):
            vals[o] = t
        saved.append(keep)
    return vals, saved


def backward(plan: Plan, grad_out, vals, saved, mask):
    """Gradients of q, k, v (zeros for inputs the graph does not read)."""
    grads: list[Optional[torch.Tensor]] = [None] * plan.n_values
    grads[plan.output] = grad_out
    chosen = backends.choose_all(_FAMILIES, grad_out.device, grad_out.dtype)
    for si in range(len(plan.steps) - 1, -1, -1):
        step = plan.steps[si]
        gouts = [grads[o] for o in step.outputs]
        if all(g is None for g in gouts):
            continue
        ins, outs = [vals[i] for i in step.inputs], [vals[o] for o in step.outputs]
        for i, g in zip(step.inputs, step.backward(ins, outs, gouts, saved[si], mask, chosen.get(step.family))):
            if g is not None:
                grads[i] = g if grads[i] is None else grads[i] + g
    return [g if g is not None else torch.zeros_like(vals[0]) for g in grads[:3]]


def pack(plan: Plan, vals, saved) -> list[torch.Tensor]:
    """[output, saved values..., saved step tensors...]."""
    ids, _ = plan.saved_layout
    return [vals[plan.output]] + [vals[i] for i in ids] + [t for keep in saved for t in keep]


def unpack(plan: Plan, q, k, v, results):
    """(values, saved) from ``pack``'s list: the values rebuilt from the inputs, the saved tensors
    and (free) views."""
    ids, counts = plan.saved_layout
    vals = [q, k, v] + [None] * (plan.n_values - 3)
    vals[plan.output] = results[0]
    for i, t in zip(ids, results[1:]):
        vals[i] = t
    saved, at = [], 1 + len(ids)
    for step, n in zip(plan.steps, counts):
        saved.append(results[at:at + n])
        at += n
        if not step.saves_outputs:
            vals[step.outputs[0]] = step.forward([vals[i] for i in step.inputs], None, None)[0][0]
    return vals, saved


def fake_results(plan: Plan, q: torch.Tensor) -> list[torch.Tensor]:
    """Empty tensors shaped as ``pack``'s list for inputs like q (B, H, N, d)."""
    B, H = q.shape[:2]

    def shape(i):
        return (B, H) + tuple(q.shape[_DIMS[a]] for a in plan.shapes[i])
    ids, _ = plan.saved_layout
    out = [q.new_empty(shape(i)) for i in (plan.output, *ids)]
    for step in plan.steps:
        out += [q.new_empty(s, dtype=dt) for s, dt in step.saves([shape(i) for i in step.inputs], q.dtype)]
    return out
