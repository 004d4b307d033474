"""``Block``: one backbone layer — mixer (attention graph, LightConv or a FlexiBERT operation) + residual
+ LayerNorm, then GELU FFN + residual + LayerNorm (post-LN, like BERT), at the layer's own width."""
from __future__ import annotations

from typing import Optional

import torch
from torch import nn

from autobert.model.attention import GraphAttention
from autobert.model.config import ArchConfig, AttentionLayer, LayerChoice
from autobert.model.conv import LightConv
from autobert.model.ffn_stack import FeedForwardStack
from autobert.model.flexi_layer import FlexiLayer, layer_sizes
from autobert.model.flexi_mixer import operation_mixer


class FeedForward(FeedForwardStack):
    """(B, N, hidden) -> (B, N, hidden): Linear(hidden, ffn) -> GELU (erf) -> Linear(ffn, hidden)."""

    def __init__(self, hidden: int, ffn: int):
        super().__init__(hidden, (ffn,))


def make_mixer(config: ArchConfig, layer: LayerChoice) -> nn.Module:
    """The token mixer of one layer choice, with only the weights it uses."""
    if isinstance(layer, FlexiLayer):
        sizes = layer_sizes(config, layer)
        return operation_mixer(layer.operation, sizes.hidden, sizes.heads)
    if isinstance(layer, AttentionLayer):
        return GraphAttention(config.hidden, config.heads, layer.graph)
    return LightConv(config.hidden, config.heads, layer.kernel)


def build_block(config: ArchConfig, layer: LayerChoice) -> "Block":
    """The block of one layer choice at its own width and FFN stack."""
    sizes = layer_sizes(config, layer)
    return Block(config, make_mixer(config, layer), width=sizes.hidden, ffn_widths=sizes.ffn)


class Block(nn.Module):
    """x (B, N, hidden), key_padding_mask (B, N) bool or None -> (B, N, hidden).

    Subclasses (the supernet's) change only ``active_mixer``, so a child and its supernet run the
    same arithmetic. ``width`` and ``ffn_widths`` default to ``config.hidden`` and ``(config.ffn,)``.
    """

    def __init__(self, config: ArchConfig, mixer: Optional[nn.Module], width: Optional[int] = None,
                 ffn_widths: Optional[tuple[int, ...]] = None):
        super().__init__()
        width = config.hidden if width is None else width
        if mixer is not None:
            self.mixer = mixer
        self.mix_norm = nn.LayerNorm(width, eps=config.layer_norm_eps)
        self.ffn = FeedForwardStack(width, (config.ffn,) if ffn_widths is None else ffn_widths)
        self.ffn_norm = nn.LayerNorm(width, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.dropout)

    def active_mixer(self) -> nn.Module:
        return self.mixer

    def forward(self, x: torch.Tensor, key_padding_mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        x = self.mix_norm(x + self.dropout(self.active_mixer()(x, key_padding_mask)))
        return self.ffn_norm(x + self.dropout(self.ffn(x)))
