"""Optimiser set-up shared by pretraining and fine-tuning: AdamW parameter groups and the
linear warmup + linear decay learning-rate schedule (BERT's)."""
from __future__ import annotations

import torch
from torch import nn

__all__ = ["adamw", "param_groups", "warmup_linear_decay", "warmup_steps_for"]


def param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """Two AdamW groups: weights with decay; biases, LayerNorm parameters and 1-D tensors without
    (BERT's rule: decaying a LayerNorm gain or a bias only pulls it towards a bad value)."""
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        (no_decay if p.dim() < 2 or name.endswith(".bias") else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def adamw(model: nn.Module, lr: float, weight_decay: float, betas=(0.9, 0.999), eps: float = 1e-6):
    """torch AdamW over ``param_groups``, with the fused kernel where torch has one for the device.

    Fused matters on CPU: for a 4.7M-parameter model one step takes ~9 ms fused vs ~86 ms with the
    default per-tensor loop (the 30522-row embedding dominates), as much as a small model's
    forward and backward. Same update rule; results differ from the loop only by rounding.
    """
    groups = param_groups(model, weight_decay)
    try:
        return torch.optim.AdamW(groups, lr=lr, betas=tuple(betas), eps=eps, fused=True)
    except (RuntimeError, ValueError):  # a device or dtype without a fused kernel
        return torch.optim.AdamW(groups, lr=lr, betas=tuple(betas), eps=eps, foreach=True)


def warmup_steps_for(total_steps: int, warmup_ratio: float) -> int:
    """Warmup length as BERT/HF compute it: ceil would overshoot tiny runs, so round down, min 0."""
    return int(total_steps * warmup_ratio)


def warmup_linear_decay(optimizer: torch.optim.Optimizer, warmup_steps: int,
                        total_steps: int) -> torch.optim.lr_scheduler.LambdaLR:
    """lr(step) = peak * step / warmup for step < warmup, then linear decay to 0 at ``total_steps``.

    ``scheduler.step()`` is called once per optimizer step; step 0 (the first update) uses
    peak / warmup, so no update is taken at lr 0 (HF's schedule wastes the first step on lr 0).
    """
    if total_steps < 1:
        raise ValueError(f"total_steps must be >= 1, got {total_steps}")
    if not 0 <= warmup_steps <= total_steps:
        raise ValueError(f"warmup_steps must be in [0, total_steps={total_steps}], got {warmup_steps}")

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        return max(0.0, (total_steps - step) / max(1, total_steps - warmup_steps))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
