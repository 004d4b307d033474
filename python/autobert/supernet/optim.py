"""The BIWS shared-weight update: ``autobert_ext.masked_adamw.MaskedAdamW`` driven by ``Supernet.active_masks``.

Entries the active child did not use keep their value and optimiser moments bit-identical and
get no weight decay (DESIGN.md §3).
"""
from __future__ import annotations

from autobert_ext.masked_adamw import MaskedAdamW

from autobert.supernet.supernet import Supernet


def make_optimizer(supernet: Supernet, lr: float = 1e-4, weight_decay: float = 0.01,
                   betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-6) -> MaskedAdamW:
    """MaskedAdamW over the supernet; like BERT, biases and LayerNorm weights get no weight decay."""
    decay, no_decay = [], []
    for name, p in supernet.named_parameters():
        (no_decay if p.dim() < 2 or "norm" in name else decay).append(p)
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return MaskedAdamW(groups, lr=lr, betas=betas, eps=eps)


def masked_step(supernet: Supernet, optimizer: MaskedAdamW) -> None:
    """One optimiser step that touches only what the active child used (call after backward)."""
    optimizer.set_masks(supernet.active_masks(full_as_none=True))
    optimizer.step()
