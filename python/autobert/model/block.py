"""``Block``: one backbone layer — mixer (attention graph or LightConv) + residual + LayerNorm,
then GELU FFN + residual + LayerNorm (post-LN, like BERT)."""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from autobert.model.attention import GraphAttention
from autobert.model.config import ArchConfig, AttentionLayer, LayerChoice
from autobert.model.conv import LightConv


class FeedForward(nn.Module):
    """(B, N, hidden) -> (B, N, hidden): Linear(hidden, ffn) -> GELU (erf) -> Linear(ffn, hidden)."""

    def __init__(self, hidden: int, ffn: int):
        super().__init__()
        self.up = nn.Linear(hidden, ffn)
        self.down = nn.Linear(ffn, hidden)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down(F.gelu(self.up(x)))


def make_mixer(config: ArchConfig, layer: LayerChoice) -> nn.Module:
    """The token mixer of one layer choice, with only the weights it uses."""
    if isinstance(layer, AttentionLayer):
        return GraphAttention(config.hidden, config.heads, layer.graph)
    return LightConv(config.hidden, config.heads, layer.kernel)


class Block(nn.Module):
    """x (B, N, hidden), key_padding_mask (B, N) bool or None -> (B, N, hidden).

    Subclasses (the supernet's) change only ``active_mixer``, so a child and its supernet run the
    same arithmetic.
    """

    def __init__(self, config: ArchConfig, mixer: Optional[nn.Module]):
        super().__init__()
        if mixer is not None:
            self.mixer = mixer
        self.mix_norm = nn.LayerNorm(config.hidden, eps=config.layer_norm_eps)
        self.ffn = FeedForward(config.hidden, config.ffn)
        self.ffn_norm = nn.LayerNorm(config.hidden, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.dropout)

    def active_mixer(self) -> nn.Module:
        return self.mixer

    def forward(self, x: torch.Tensor, key_padding_mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        x = self.mix_norm(x + self.dropout(self.active_mixer()(x, key_padding_mask)))
        return self.ffn_norm(x + self.dropout(self.ffn(x)))
