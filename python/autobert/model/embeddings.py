"""BERT embeddings: word + learned absolute position + token type, then LayerNorm and dropout.

Their width is ``config.embedding_width`` (``hidden`` unless ``embedding_size`` is set)."""
from __future__ import annotations

from typing import Optional

import torch
from torch import nn

from autobert.model.config import ArchConfig


class Embeddings(nn.Module):
    """input_ids (B, N) long, token_type_ids (B, N) long or None -> (B, N, embedding_width)."""

    def __init__(self, config: ArchConfig):
        super().__init__()
        width = config.embedding_width
        self.word = nn.Embedding(config.vocab_size, width)
        self.position = nn.Embedding(config.max_positions, width)
        self.token_type = nn.Embedding(config.type_vocab_size, width)
        self.norm = nn.LayerNorm(width, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, input_ids: torch.Tensor, token_type_ids: Optional[torch.Tensor] = None) -> torch.Tensor:
        n = input_ids.shape[1]
        positions = torch.arange(n, device=input_ids.device)  # (N,), broadcast over the batch
        x = self.word(input_ids) + self.position(positions)
        if token_type_ids is None:
            x = x + self.token_type.weight[0]  # segment 0 for every token, as HF's default
        else:
            x = x + self.token_type(token_type_ids)
        return self.dropout(self.norm(x))
