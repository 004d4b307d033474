"""``Backbone``: embeddings + hybrid layers (with projections where widths change) -> hidden states (B, N, hidden)."""
from __future__ import annotations

from typing import Optional

import torch
from torch import nn

from autobert.model.block import build_block
from autobert.model.config import ArchConfig
from autobert.model.conv import LightConv
from autobert.model.embeddings import Embeddings
from autobert.model.width import OUTPUT, width_projections


def init_bert_weights(module: nn.Module) -> None:
    """BERT's initialisation: N(0, 0.02) for linear/embedding/conv weights, zero biases, unit LayerNorms."""
    if isinstance(module, (nn.Linear, nn.Embedding)):
        nn.init.normal_(module.weight, std=0.02)
        if getattr(module, "bias", None) is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)
    elif isinstance(module, LightConv):
        nn.init.normal_(module.weight, std=0.02)


def key_padding_mask(input_ids: torch.Tensor, attention_mask: Optional[torch.Tensor]) -> Optional[torch.Tensor]:
    """attention_mask (B, N) of bool / 0-1 numbers (1/True = real) -> (B, N) bool, or None when every token is real."""
    if attention_mask is None:
        return None
    if tuple(attention_mask.shape) != tuple(input_ids.shape):
        raise ValueError(f"attention_mask must have the shape of input_ids {tuple(input_ids.shape)}, "
                         f"got {tuple(attention_mask.shape)}")
    mask = attention_mask if attention_mask.dtype == torch.bool else attention_mask != 0
    # No mask at all is cheaper for every mixer and means the same thing; under torch.compile the
    # mask is kept, as looking at its values would break the graph.
    if torch.compiler.is_compiling():
        return mask
    return None if bool(mask.all()) else mask


def check_inputs(config: ArchConfig, input_ids: torch.Tensor, token_type_ids: Optional[torch.Tensor]) -> None:
    if not isinstance(input_ids, torch.Tensor) or input_ids.dim() != 2 or input_ids.dtype != torch.long:
        got = f"{input_ids.dtype} {tuple(input_ids.shape)}" if isinstance(input_ids, torch.Tensor) else type(input_ids)
        raise ValueError(f"input_ids must be a (B, N) long tensor, got {got}")
    if input_ids.shape[1] > config.max_positions:
        raise ValueError(f"input_ids has {input_ids.shape[1]} positions; this model has max_positions "
                         f"{config.max_positions}")
    if token_type_ids is not None and tuple(token_type_ids.shape) != tuple(input_ids.shape):
        raise ValueError(f"token_type_ids must have the shape of input_ids {tuple(input_ids.shape)}, "
                         f"got {tuple(token_type_ids.shape)}")


class Backbone(nn.Module):
    """input_ids (B, N) long, attention_mask (B, N) (1/True = real) or None, token_type_ids (B, N) or None
    -> hidden states (B, N, hidden).

    ``blocks`` replaces the layers built from ``config.layers`` (the supernet passes its own).
    ``projections`` holds a Linear before each layer whose width differs from the stream's and one
    after the last layer when its width is not ``hidden`` (``autobert.model.width``); usually none.
    """

    def __init__(self, config: ArchConfig, blocks: Optional[nn.ModuleList] = None):
        super().__init__()
        self.config = config
        self.embeddings = Embeddings(config)
        if blocks is None:
            blocks = nn.ModuleList(build_block(config, layer) for layer in config.layers)
        self.layers = blocks
        self.projections = width_projections(config)
        self.apply(init_bert_weights)

    def _project(self, key: str, x: torch.Tensor) -> torch.Tensor:
        return self.projections[key](x) if key in self.projections else x

    def forward(self, input_ids: torch.Tensor, attention_mask: Optional[torch.Tensor] = None,
                token_type_ids: Optional[torch.Tensor] = None) -> torch.Tensor:
        check_inputs(self.config, input_ids, token_type_ids)
        mask = key_padding_mask(input_ids, attention_mask)
        x = self.embeddings(input_ids, token_type_ids)  # (B, N, embedding_width)
        for i, layer in enumerate(self.layers):
            x = layer(self._project(str(i), x), mask)  # (B, N, width of layer i)
        return self._project(OUTPUT, x)  # (B, N, hidden)
