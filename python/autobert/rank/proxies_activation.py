"""Activation proxies: FFN activations and mixing weights of the forward pass at initialisation."""
from __future__ import annotations

import torch

from autobert.rank.probe import Probe, attention_like
from autobert.rank.registry import register


def _sampled_activations(probe: Probe) -> list[torch.Tensor]:
    """Every FFN inner layer's GELU output at the sampled tokens: [(T, F_i)], bottom to top."""
    out = []
    for rec in probe.record.layers:
        for act in rec.ffn_activations:
            out.append(act[probe.token_rows(act.shape[0])].double())
    return out


def _agreement(codes: torch.Tensor) -> torch.Tensor:
    """(T, F) binary codes -> (T, T) count of units on which two tokens agree (both on or both off)."""
    return codes @ codes.T + (1.0 - codes) @ (1.0 - codes).T


@register("naswot", "activation",
          "log|K + I|, K_ij = FFN units on which tokens i and j agree (active > 0 or not) (Mellor et al. 2021)")
def naswot(probe: Probe) -> float:
    codes = torch.cat([(a > 0).double() for a in _sampled_activations(probe)], dim=1)  # (T, sum F)
    kernel = _agreement(codes)
    # K is positive semi-definite; two sampled tokens with the same code (the same word at the same
    # position) make it singular. A unit ridge, tiny against entries of ~sum F, keeps log|K| finite.
    kernel += torch.eye(kernel.shape[0], dtype=kernel.dtype)
    return float(torch.linalg.slogdet(kernel)[1])


@register("activation_distance", "activation",
          "sum over FFN layers of the agreement kernel's entries (the benchmark paper's activation distance)")
def activation_distance(probe: Probe) -> float:
    return float(sum(_agreement((a > 0).double()).sum() for a in _sampled_activations(probe)))


@register("head_confidence", "activation",
          "mean over layers, heads and tokens of the largest mixing weight a token gives one position "
          "(Voita et al. 2019)")
def head_confidence(probe: Probe) -> float:
    values = []
    for rec in probe.record.layers:
        weights = attention_like(rec.mixer, rec.mixer_input)
        if weights is not None:
            values.append(float(weights.abs().amax(dim=-1).mean()))
    return sum(values) / len(values) if values else 0.0


def pca_dims(act: torch.Tensor, eta: float) -> int:
    """Principal components of act (T, F) needed to explain a fraction ``eta`` of its variance."""
    centred = act - act.mean(dim=0, keepdim=True)
    var = torch.linalg.svdvals(centred).square()
    total = float(var.sum())
    if total <= 0.0:
        return 0
    explained = torch.cumsum(var, 0) / total
    return int(torch.searchsorted(explained, torch.tensor(eta, dtype=explained.dtype)).item()) + 1


@register("wpca", "activation",
          "parameters x sum over FFN layers of the principal components reaching eta of the activations' "
          "variance (W-PCA)")
def wpca(probe: Probe) -> float:
    dims = sum(pca_dims(a, probe.pca_eta) for a in _sampled_activations(probe))
    return float(probe.arch.num_parameters() * dims)


def effective_rank(x: torch.Tensor) -> float:
    """exp(entropy of the normalised singular values) of x (T, F) (Roy & Vetterli 2007)."""
    s = torch.linalg.svdvals(x - x.mean(dim=0, keepdim=True))
    p = s / s.sum()
    p = p[p > 0]
    return float(torch.exp(-(p * p.log()).sum()))


@register("effective_rank", "activation",
          "sum over layers of the effective rank of the block outputs at the sampled tokens")
def layer_effective_rank(probe: Probe) -> float:
    total = 0.0
    for rec in probe.record.layers:
        out = rec.output.reshape(-1, rec.output.shape[-1])
        total += effective_rank(out[probe.token_rows(out.shape[0])].double())
    return total
