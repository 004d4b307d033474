"""Hugging Face attention masks -> the (B, N) bool key padding mask of the attention-graph IR.

What a Hugging Face self-attention module receives depends on the version and the attention
implementation: an additive "extended" mask (B, 1, 1, N) with 0 = attend and a very negative
number (finfo.min, or -10000 in old versions) = masked; with SDPA, an additive (B, 1, N, N) mask
or None when nothing is padded; in some versions a bool mask with True = attend; or the plain
(B, N) 1/0 mask. Graph attention can express key padding only, so a mask that varies with the
query position (causal, custom 3-D/4-D) or carries a bias is refused with a ValueError.
"""
from __future__ import annotations

from typing import Optional

import torch

# An additive mask value at or below this is "masked": exp(-1000) underflows to 0 in every float dtype.
MASKED_BELOW = -1e3


def _attend(mask: torch.Tensor) -> torch.Tensor:
    """True where a query may attend a key, same shape as ``mask``."""
    if mask.dtype == torch.bool:
        return mask
    if mask.dim() == 2 and bool((mask >= 0).all()):
        return mask != 0  # the plain Hugging Face attention_mask: 1 = real token
    attend = mask == 0
    if not bool((attend | (mask <= MASKED_BELOW)).all()):
        raise ValueError("attention mask holds additive values other than 0 and a large negative number "
                         "(a position bias?); patched graph attention supports key padding masks only")
    return attend


def key_padding_mask_from_hf(mask: Optional[torch.Tensor], batch: int, n_keys: int) -> Optional[torch.Tensor]:
    """mask: None, (B, N), (B, Q, N) or (B, 1|H, Q|1, N) -> (B, N) bool (True = real key), or None if all real."""
    if mask is None:
        return None
    if mask.dim() not in (2, 3, 4) or mask.shape[-1] != n_keys or mask.shape[0] not in (1, batch):
        raise ValueError(f"attention mask of shape {tuple(mask.shape)} does not fit batch {batch} and "
                         f"{n_keys} keys; expected (B, N), (B, Q, N) or (B, H, Q, N)")
    attend = _attend(mask)
    if attend.dim() == 2:
        key = attend
    else:
        full = attend.reshape(attend.shape[0], -1, n_keys)  # (B, H*Q, N)
        key = full.any(dim=1)  # (B, N)
        if not bool((full == key[:, None, :]).all()):
            raise ValueError("attention mask differs between query positions (causal or custom mask); "
                             "patched graph attention supports key padding masks only")
    key = key.expand(batch, n_keys)
    return None if bool(key.all()) else key.contiguous()


class MaskCache:
    """Converts each mask once per forward: every layer of a model receives the same mask tensor."""

    def __init__(self):
        self._key: Optional[tuple] = None
        self._mask: Optional[torch.Tensor] = None
        self._value: Optional[torch.Tensor] = None

    def __call__(self, mask: Optional[torch.Tensor], batch: int, n_keys: int) -> Optional[torch.Tensor]:
        if mask is None:
            return None
        # _version changes on in-place writes, so an edited tensor is converted again.
        key = (mask._version, batch, n_keys)
        if mask is not self._mask or key != self._key:
            self._value = key_padding_mask_from_hf(mask, batch, n_keys)
            self._mask, self._key = mask, key
        return self._value

    def clear(self) -> None:
        self._key = self._mask = self._value = None
