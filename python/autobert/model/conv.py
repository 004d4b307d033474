"""``LightConv``: LightConv-style convolution layer (Wu et al. 2019).

input projection to 2*hidden -> GLU -> depthwise conv of kernel k whose weights are shared per
head (H x k weights, channel c uses head c // (hidden / H)) and softmax-normalised over the
kernel, as in LightConv -> output projection. Padded positions are zeroed before the conv, so
they never leak into real tokens. The weight holds ``max_kernel`` taps; the active kernel is
its centred slice (a view), which is how the supernet shares one weight between all kernels.
"""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn


def centred_slice(max_kernel: int, kernel: int) -> slice:
    """Taps of a ``kernel``-wide window centred in a ``max_kernel``-wide one (both odd)."""
    start = (max_kernel - kernel) // 2
    return slice(start, start + kernel)


class LightConv(nn.Module):
    """x (B, N, hidden), key_padding_mask (B, N) bool (True = real) or None -> (B, N, hidden).

    Args:
        hidden, heads: width and weight-sharing groups (hidden % heads == 0).
        kernel: active odd kernel size.
        max_kernel: taps held by ``weight`` (default ``kernel``); the supernet holds the largest kernel.
    """

    def __init__(self, hidden: int, heads: int, kernel: int, max_kernel: Optional[int] = None):
        super().__init__()
        max_kernel = kernel if max_kernel is None else max_kernel
        if hidden % heads:
            raise ValueError(f"hidden ({hidden}) must be divisible by heads ({heads})")
        if max_kernel < 1 or max_kernel % 2 == 0:
            raise ValueError(f"max_kernel must be odd and >= 1, got {max_kernel}")
        self.hidden, self.heads, self.max_kernel = hidden, heads, max_kernel
        self.in_proj = nn.Linear(hidden, 2 * hidden)
        self.weight = nn.Parameter(torch.empty(heads, max_kernel))  # (H, K_max)
        self.out_proj = nn.Linear(hidden, hidden)
        nn.init.normal_(self.weight, std=0.02)
        self.set_kernel(kernel)

    def set_kernel(self, kernel: int) -> None:
        """Use the centred ``kernel``-tap slice of the weight from now on."""
        if not isinstance(kernel, int) or kernel < 1 or kernel % 2 == 0 or kernel > self.max_kernel:
            raise ValueError(f"kernel must be an odd int in 1..{self.max_kernel}, got {kernel!r}")
        self.kernel = kernel

    def kernel_weight(self) -> torch.Tensor:
        """The active taps: a view (shares storage) of ``weight``, shape (H, k)."""
        return self.weight[:, centred_slice(self.max_kernel, self.kernel)]

    def forward(self, x: torch.Tensor, key_padding_mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        b, n, c = x.shape
        x = F.glu(self.in_proj(x), dim=-1)  # (B, N, hidden)
        if key_padding_mask is not None:
            # masked_fill rather than a product: a padded inf/NaN must not turn into NaN either.
            x = x.masked_fill(~key_padding_mask[:, :, None], 0.0)
        taps = torch.softmax(self.kernel_weight(), dim=-1)  # (H, k), normalised over the kernel
        taps = taps.repeat_interleave(c // self.heads, dim=0).unsqueeze(1)  # (hidden, 1, k)
        y = F.conv1d(x.transpose(1, 2), taps, padding=self.kernel // 2, groups=c)  # (B, hidden, N)
        return self.out_proj(y.transpose(1, 2))  # (B, N, hidden)

    def extra_repr(self) -> str:
        return f"hidden={self.hidden}, heads={self.heads}, kernel={self.kernel}, max_kernel={self.max_kernel}"
