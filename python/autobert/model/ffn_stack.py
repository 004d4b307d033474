"""``FeedForwardStack``: a layer's feed-forward network with one or more inner layers."""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn


class FeedForwardStack(nn.Module):
    """(B, N, hidden) -> (B, N, hidden): hidden -> widths[0] -> ... -> widths[-1] -> hidden, GELU (erf)
    after every inner layer.

    With one inner width it is BERT's FFN; its parameters are then named ``up`` and ``down`` exactly as
    in ``FeedForward``, and the layers between inner widths are ``inner.0``, ``inner.1``, ...
    """

    def __init__(self, hidden: int, widths: Sequence[int]):
        super().__init__()
        widths = tuple(widths)
        if not widths:
            raise ValueError("FeedForwardStack needs at least one inner width")
        self.widths = widths
        self.up = nn.Linear(hidden, widths[0])
        self.inner = nn.ModuleList(nn.Linear(a, b) for a, b in zip(widths, widths[1:]))
        self.down = nn.Linear(widths[-1], hidden)

    def activations(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The GELU outputs of every inner layer, bottom to top: [(B, N, widths[i])]."""
        out = [F.gelu(self.up(x))]
        for layer in self.inner:
            out.append(F.gelu(layer(out[-1])))
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down(self.activations(x)[-1])

    def extra_repr(self) -> str:
        return f"widths={self.widths}"
