"""Fused masked AdamW: the BIWS shared-weight update (DESIGN.md section 3).

A supernet trains one sampled child at a time; the child uses only part of each shared weight.
``fused_masked_adamw_`` applies one torch.optim.AdamW step to the entries a bool mask marks
(True = used by the active child) and leaves every other entry of the parameter and of both
moments bit-identical (no weight decay either). One call covers a whole list of tensors.

Backends (chosen by ``autobert_ext.backends``, family ``masked_adamw``): the C++ kernel
(op ``autobert_kernels::fused_masked_adamw_`` of ``autobert_ext._C``) for CPU tensors, its CUDA kernel (also
float16) for CUDA tensors, the eager PyTorch reference below when that kernel is missing (one
warning) or ``AUTOBERT_BACKEND=eager``.

Numerics: the kernel follows torch.optim.AdamW's op order and rounding (ATen's FMA in lerp and
addcmul included); on AVX512 builds the moments then match torch 2.13 bit for bit. Parameters
agree to ~1-2 ulp, because torch's CPU ``sqrt`` is not correctly rounded (<= 1 ulp off) while
the kernel's is. Results do not depend on the thread count.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Optional

import torch
from torch import Tensor

from autobert_ext import _dispatch as D
from autobert_ext import _loader, backends

__all__ = ["MaskedAdamW", "fused_masked_adamw_", "masked_adamw_reference_"]

_OP_NAME = "autobert::fused_masked_adamw_"
_LISTS = ("params", "grads", "exp_avgs", "exp_avg_sqs")


def _bias_terms(step: int, lr: float, beta1: float, beta2: float) -> tuple[float, float]:
    """(-step_size, sqrt of bias correction 2) in torch.optim.adam's Python-float arithmetic."""
    bias_correction1 = 1 - beta1 ** float(step)
    bias_correction2 = 1 - beta2 ** float(step)
    return (lr / bias_correction1) * -1, bias_correction2 ** 0.5


def _reference_one(p: Tensor, g: Tensor, m: Tensor, v: Tensor, mask: Optional[Tensor], step: int,
                   lr: float, beta1: float, beta2: float, eps: float, weight_decay: float) -> None:
    """One tensor of the eager update. Shapes: p, g, m, v, mask all (*S); mask bool or None.

    bfloat16/float16 tensors compute in float32 and round once, like the kernel.
    """
    compute = torch.float32 if p.dtype in (torch.bfloat16, torch.float16) else p.dtype
    pf, gf, mf, vf = (t.to(compute) for t in (p, g, m, v))
    neg_step_size, bc2_sqrt = _bias_terms(step, lr, beta1, beta2)
    # Same ops and scalar arguments as torch.optim.adam._multi_tensor_adam, out of place.
    p_new = pf * (1 - lr * weight_decay) if weight_decay != 0 else pf.clone()
    m_new = torch.lerp(mf, gf, 1 - beta1)
    v_new = (vf * beta2).addcmul_(gf, gf, value=1 - beta2)
    denom = (v_new.sqrt() / bc2_sqrt).add_(eps)
    p_new.addcdiv_(m_new, denom, value=neg_step_size)
    for dst, new in ((p, p_new), (m, m_new), (v, v_new)):
        new = new.to(dst.dtype)
        # where() selects the old bits for inactive entries, so copying them back is exact.
        dst.copy_(new if mask is None else torch.where(mask, new, dst))


def _check_lists(params, grads, exp_avgs, exp_avg_sqs, masks, steps) -> None:
    """Python mirror of the binding's checks, for the eager path (messages name the index)."""
    n = len(params)
    for name, lst in (("grads", grads), ("exp_avgs", exp_avgs), ("exp_avg_sqs", exp_avg_sqs), ("masks", masks)):
        if len(lst) != n:
            raise D.InputError(f"{_OP_NAME}: {name} has {len(lst)} tensors but params has {n}")
    if len(steps) not in (1, n):
        raise D.InputError(f"{_OP_NAME}: steps has {len(steps)} entries; expected 1 or {n}")
    for i, row in enumerate(zip(params, grads, exp_avgs, exp_avg_sqs)):
        D.check_floating(_OP_NAME, [(f"{name}[{i}]", t) for name, t in zip(_LISTS, row)], same_shape=True)
        mask, p = masks[i], params[i]
        if mask is not None and mask.dtype != torch.bool:
            raise D.InputError(f"{_OP_NAME}: masks[{i}] has dtype {mask.dtype}; expected torch.bool")
        if mask is not None and (mask.shape != p.shape or mask.device != p.device):
            raise D.InputError(f"{_OP_NAME}: masks[{i}] has shape {tuple(mask.shape)} on {mask.device}; "
                               f"expected params[{i}]'s {tuple(p.shape)} on {p.device}")


def masked_adamw_reference_(params: Sequence[Tensor], grads: Sequence[Tensor], exp_avgs: Sequence[Tensor],
                            exp_avg_sqs: Sequence[Tensor], masks: Sequence[Optional[Tensor]],
                            steps: Sequence[int], lr: float, beta1: float, beta2: float, eps: float,
                            weight_decay: float) -> None:
    """Eager (torch.where) implementation of the op: the readable oracle and the fallback."""
    _check_lists(params, grads, exp_avgs, exp_avg_sqs, masks, steps)
    for i, p in enumerate(params):
        step = steps[0] if len(steps) == 1 else steps[i]
        if step < 1:
            raise D.InputError(f"{_OP_NAME}: steps[{i}] is {step}; it must be >= 1")
        _reference_one(p, grads[i], exp_avgs[i], exp_avg_sqs[i], masks[i], step,
                       lr, beta1, beta2, eps, weight_decay)


@torch.library.custom_op(_OP_NAME, mutates_args=("params", "exp_avgs", "exp_avg_sqs"))
def _fused_masked_adamw_op(params: list[Tensor], grads: list[Tensor], exp_avgs: list[Tensor],
                           exp_avg_sqs: list[Tensor], masks: list[Optional[Tensor]], steps: list[int],
                           lr: float, beta1: float, beta2: float, eps: float, weight_decay: float) -> None:
    """The kernel of the chosen backend (the dispatcher op runs its CPU or CUDA implementation by
    the tensors' device), or the reference."""
    backend = backends.choose("masked_adamw", params[0].device, params[0].dtype) if params else "eager"
    run = masked_adamw_reference_ if backend == "eager" else _loader.kernel("fused_masked_adamw_")
    run(params, grads, exp_avgs, exp_avg_sqs, masks, steps, lr, beta1, beta2, eps, weight_decay)


@_fused_masked_adamw_op.register_fake
def _fused_masked_adamw_fake(params, grads, exp_avgs, exp_avg_sqs, masks, steps,
                             lr, beta1, beta2, eps, weight_decay) -> None:
    return None  # in-place only: no outputs to describe


def fused_masked_adamw_(params: Sequence[Tensor], grads: Sequence[Tensor], exp_avgs: Sequence[Tensor],
                        exp_avg_sqs: Sequence[Tensor], masks: Optional[Sequence[Optional[Tensor]]] = None,
                        *, step: int | Sequence[int], lr: float, beta1: float = 0.9, beta2: float = 0.999,
                        eps: float = 1e-8, weight_decay: float = 1e-2) -> None:
    """One masked AdamW step, in place, over lists of tensors.

    Args:
        params, grads, exp_avgs, exp_avg_sqs: equal-length lists; entry i all of shape (*S_i), one
            dtype (float32, float64 or bfloat16), contiguous, same device. params, exp_avgs and
            exp_avg_sqs are updated in place.
        masks: per entry a bool tensor of shape (*S_i) (True = active, i.e. used by the current
            child) or None (all active); ``masks=None`` means all entries of all tensors.
        step: the step count *after* incrementing (>= 1) used for the bias corrections: one int
            for all tensors, or one per tensor.
        lr, beta1, beta2, eps, weight_decay: as torch.optim.AdamW (decoupled weight decay).

    Active entries get exactly AdamW's update; inactive entries of the parameter and of both
    moments keep their bits (and get no weight decay).
    """
    params, grads, exp_avgs, exp_avg_sqs = list(params), list(grads), list(exp_avgs), list(exp_avg_sqs)
    if not params:
        return  # nothing to update, and the dispatcher could not pick a device from empty lists
    masks = [None] * len(params) if masks is None else list(masks)
    steps = [int(step)] if isinstance(step, int) else [int(s) for s in step]
    # An optimiser update is never part of a graph to differentiate.
    with torch.no_grad():
        _fused_masked_adamw_op(params, grads, exp_avgs, exp_avg_sqs, masks, steps, float(lr),
                               float(beta1), float(beta2), float(eps), float(weight_decay))


class MaskedAdamW(torch.optim.Optimizer):
    """torch.optim.AdamW that updates only the entries each parameter's mask marks.

    Generic (nothing supernet-specific): any training loop whose steps touch part of a weight.

    Masks: ``set_masks({param: mask})`` where mask is a bool tensor of the parameter's shape
    (True = update this entry) or None (every entry). They hold for every following ``step()``
    until the next ``set_masks``, which replaces them all; parameters not named are fully active.
    Parameters whose ``grad`` is None are skipped entirely, as in torch.optim.

    Step counts: each parameter keeps torch's ``state[p]["step"]``, and a ``step()`` increments it
    only when the parameter has a grad and at least one active entry; its bias corrections use that
    count. A weight that sits out some steps (its branch not in the sampled child) thus resumes
    with its moments and bias correction exactly as it left them, as if the pause never happened.
    Entries of one parameter that are active at different rates share its count (a per-entry
    count would cost a third moment-sized buffer); with all-True masks this is torch's AdamW.

    state_dict()/load_state_dict() use torch.optim's format (step, exp_avg, exp_avg_sq per
    parameter; lr, betas, eps, weight_decay per group), interchangeable with torch.optim.AdamW's.
    Masks are transient and not saved. Not supported: amsgrad, maximize, sparse gradients.
    """

    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 1e-2):
        if not 0.0 <= lr:
            raise ValueError(f"Invalid learning rate: {lr}")
        if not 0.0 <= eps:
            raise ValueError(f"Invalid epsilon value: {eps}")
        if not (0.0 <= betas[0] < 1.0 and 0.0 <= betas[1] < 1.0):
            raise ValueError(f"Invalid betas: {betas}; each must be in [0, 1)")
        if not 0.0 <= weight_decay:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay))
        self._masks: dict[Tensor, Optional[Tensor]] = {}

    def set_masks(self, masks: dict[Tensor, Optional[Tensor]]) -> None:
        """Replace the masks: {param: bool tensor of param's shape, or None}; others all active."""
        known = {id(p) for group in self.param_groups for p in group["params"]}
        checked: dict[Tensor, Optional[Tensor]] = {}
        for i, (p, mask) in enumerate(masks.items()):
            if id(p) not in known:
                raise ValueError(f"set_masks: key {i} (shape {tuple(p.shape)}) is not a parameter of this optimizer")
            if mask is not None:
                if not isinstance(mask, Tensor) or mask.dtype != torch.bool:
                    raise ValueError(f"set_masks: mask {i} must be a bool tensor or None, got "
                                     f"{getattr(mask, 'dtype', type(mask).__name__)}")
                if mask.shape != p.shape or mask.device != p.device:
                    raise ValueError(f"set_masks: mask {i} has shape {tuple(mask.shape)} on {mask.device}; "
                                     f"its parameter has shape {tuple(p.shape)} on {p.device}")
                mask = mask.contiguous()
            checked[p] = mask
        self._masks = checked

    def _init_state(self, p: Tensor) -> dict:
        state = self.state[p]
        if not state:
            # torch.optim.AdamW's layout (float32 CPU step tensor), so state dicts interchange.
            state["step"] = torch.tensor(0.0, dtype=torch.float32)
            state["exp_avg"] = torch.zeros_like(p, memory_format=torch.contiguous_format)
            state["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.contiguous_format)
        for key in ("exp_avg", "exp_avg_sq"):
            if not state[key].is_contiguous():  # e.g. loaded from a state dict of strided params
                state[key] = state[key].contiguous()
        return state

    def _collect(self, group: dict) -> tuple[list[Tensor], list]:
        """The group's parameters that step now, with (param, grad, m, v, mask, step) lists."""
        stepping, lists = [], ([], [], [], [], [], [])
        for p in group["params"]:
            if p.grad is None:
                continue
            if p.grad.is_sparse:
                raise RuntimeError("MaskedAdamW does not support sparse gradients")
            mask = self._masks.get(p)
            if mask is not None and not bool(mask.any()):
                continue  # no active entry: no update, no step count
            state = self._init_state(p)
            state["step"] += 1
            # The kernel wants contiguous buffers; a strided parameter goes through a copy.
            row = (p.contiguous(), p.grad.contiguous(), state["exp_avg"], state["exp_avg_sq"], mask,
                   int(state["step"].item()))
            for lst, item in zip(lists, row):
                lst.append(item)
            stepping.append(p)
        return stepping, lists

    @torch.no_grad()
    def step(self, closure=None):
        """One masked AdamW step over all param groups; returns closure() if given."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            if group.get("amsgrad") or group.get("maximize"):
                raise RuntimeError("MaskedAdamW supports neither amsgrad nor maximize")
            stepping, (params, grads, exp_avgs, exp_avg_sqs, masks, steps) = self._collect(group)
            if not stepping:
                continue
            beta1, beta2 = group["betas"]
            fused_masked_adamw_(params, grads, exp_avgs, exp_avg_sqs, masks, step=steps, lr=group["lr"],
                                beta1=beta1, beta2=beta2, eps=group["eps"], weight_decay=group["weight_decay"])
            for p, updated in zip(stepping, params):
                if updated is not p:
                    p.copy_(updated)
        return loss
