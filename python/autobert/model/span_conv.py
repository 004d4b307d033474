"""``DynamicSpanConv``: FlexiBERT's DSC(k), ConvBERT's span-based dynamic convolution.

Per token, a head's k convolution taps are generated from the token *and its span*: a depthwise-
separable convolution of width k over the input ("span-aware keys") is multiplied elementwise
with the queries, a linear layer maps the product to H x k logits, and a softmax over the k taps
normalises them. The taps then weight the k neighbouring value vectors of the head (centred
window, zero padding). Padded positions are zeroed in the keys and values, so they never reach a
real token.
"""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from autobert.model.weighted_attention import merge_heads


class DynamicSpanConv(nn.Module):
    """x (B, N, hidden), key_padding_mask (B, N) bool (True = real) or None -> (B, N, hidden)."""

    def __init__(self, hidden: int, heads: int, kernel: int):
        super().__init__()
        if hidden % heads:
            raise ValueError(f"hidden ({hidden}) must be divisible by heads ({heads})")
        if not isinstance(kernel, int) or kernel < 1 or kernel % 2 == 0:
            raise ValueError(f"kernel must be an odd int >= 1, got {kernel!r}")
        self.hidden, self.heads, self.kernel = hidden, heads, kernel
        self.q_proj = nn.Linear(hidden, hidden)
        self.key_depthwise = nn.Parameter(torch.randn(hidden, 1, kernel) * 0.02)  # (hidden, 1, k)
        self.key_pointwise = nn.Linear(hidden, hidden)
        self.kernel_proj = nn.Linear(hidden, heads * kernel)
        self.v_proj = nn.Linear(hidden, hidden)
        self.out_proj = nn.Linear(hidden, hidden)

    def _masked(self, x: torch.Tensor, key_padding_mask: Optional[torch.Tensor]) -> torch.Tensor:
        return x if key_padding_mask is None else x.masked_fill(~key_padding_mask[:, :, None], 0.0)

    def taps(self, x: torch.Tensor, key_padding_mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        """The dynamic taps (B, N, H, k), a softmax over the k positions of each token's span."""
        b, n, c = x.shape
        keys = F.conv1d(self._masked(x, key_padding_mask).transpose(1, 2), self.key_depthwise,
                        padding=self.kernel // 2, groups=c)  # (B, hidden, N)
        keys = self.key_pointwise(keys.transpose(1, 2))  # (B, N, hidden)
        logits = self.kernel_proj(self.q_proj(x) * keys)  # (B, N, H * k)
        return torch.softmax(logits.view(b, n, self.heads, self.kernel), dim=-1)

    def forward(self, x: torch.Tensor, key_padding_mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        b, n, c = x.shape
        half = self.kernel // 2
        v = self._masked(self.v_proj(x), key_padding_mask)  # (B, N, hidden)
        windows = F.pad(v, (0, 0, half, half)).unfold(1, self.kernel, 1)  # (B, N, hidden, k)
        windows = windows.reshape(b, n, self.heads, c // self.heads, self.kernel)  # (B, N, H, d, k)
        out = torch.einsum("bnhdk,bnhk->bhnd", windows, self.taps(x, key_padding_mask))  # (B, H, N, d)
        return self.out_proj(merge_heads(out))

    def extra_repr(self) -> str:
        return f"hidden={self.hidden}, heads={self.heads}, kernel={self.kernel}"
