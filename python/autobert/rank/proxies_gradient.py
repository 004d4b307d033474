"""Gradient proxies: weights and gradients of the MLM loss at initialisation (one backward per model).

Sums run over the backbone's layers; embeddings and the MLM head are left out, because every model
of a space shares them and they would drown the per-layer signal.
"""
from __future__ import annotations

import torch
from torch import nn

from autobert.rank.probe import Probe
from autobert.rank.registry import register

_JACOBIAN_EPS = 1e-5  # k of Mellor et al.'s score: keeps log and 1/x finite for zero eigenvalues


def _linears(module: nn.Module) -> list[nn.Linear]:
    return [m for m in module.modules() if isinstance(m, nn.Linear) and m.weight.grad is not None]


def _layer_weights(probe: Probe):
    """Every weight matrix and gradient of the backbone's layers (and width projections)."""
    probe.record  # runs the backward pass once
    backbone = probe.model.backbone
    for part in (*backbone.layers, *backbone.projections.values()):
        for p in part.parameters():
            if p.grad is not None and p.dim() >= 2:
                yield p, p.grad


@register("synaptic_diversity", "gradient",
          "sum over the mixers' linear weights of ||W||_nuc * ||dL/dW||_nuc (Zhou et al. 2022)")
def synaptic_diversity(probe: Probe) -> float:
    probe.record
    total = 0.0
    for block in probe.model.backbone.layers:
        for lin in _linears(block.mixer):
            w, g = lin.weight.detach(), lin.weight.grad
            total += float(torch.linalg.matrix_norm(w, "nuc") * torch.linalg.matrix_norm(g, "nuc"))
    return total


@register("synaptic_saliency", "gradient", "sum over the FFN weights of |W * dL/dW| (synaptic saliency)")
def synaptic_saliency(probe: Probe) -> float:
    probe.record
    return float(sum((lin.weight.detach() * lin.weight.grad).abs().sum()
                     for block in probe.model.backbone.layers for lin in _linears(block.ffn)))


@register("snip", "gradient", "sum over every layer weight of |W * dL/dW| (SNIP)")
def snip(probe: Probe) -> float:
    return float(sum((w.detach() * g).abs().sum() for w, g in _layer_weights(probe)))


@register("grad_norm", "gradient", "L2 norm of the layer weights' gradient")
def grad_norm(probe: Probe) -> float:
    return float(sum(g.square().sum() for _, g in _layer_weights(probe))) ** 0.5


@register("head_importance", "gradient",
          "sum over heads of |dL/d xi_h|, xi_h a gate on head h's output (Michel et al. 2019)")
def head_importance(probe: Probe) -> float:
    total = 0.0
    for rec in probe.record.layers:
        if rec.head_output is None or rec.head_grad is None:
            continue
        heads = getattr(rec.mixer, "heads", 1)
        b, n, width = rec.head_output.shape
        # d L / d xi_h = sum over tokens and the head's channels of output * gradient
        per_head = (rec.head_output * rec.head_grad).view(b, n, heads, width // heads).sum(dim=(0, 1, 3))
        total += float(per_head.abs().sum())
    return total


@register("jacobian_cov", "gradient",
          "Mellor et al.'s Jacobian-covariance score: correlations between the sequences' gradients at the "
          "embedding output")
def jacobian_cov(probe: Probe) -> float:
    grad = probe.record.embedding_grad
    rows = grad.reshape(grad.shape[0], -1).double()  # (B, N * E): one Jacobian row per input sequence
    corr = torch.nan_to_num(torch.corrcoef(rows), nan=0.0)  # a zero-gradient row correlates with nothing
    v = torch.linalg.eigvalsh(corr).clamp_min(0.0)
    return float(-(torch.log(v + _JACOBIAN_EPS) + 1.0 / (v + _JACOBIAN_EPS)).sum())
