"""Masks for ``attn_implementation="autobert"``.

``key_padding_mask_interface`` is registered with transformers' ``AttentionMaskInterface``: for
the bidirectional mask of an encoder it returns the (B, N) bool key padding mask itself (True =
real token, the attention-graph IR's convention), or None when nothing is padded; any other
pattern (causal, sliding window, packed sequences, custom mask functions) is built in full, as for
SDPA, and ``to_key_padding`` in the attention call accepts it only where it reduces to key padding.

``to_key_padding`` also reads the masks other code may pass: a 4-D bool mask (True = attend) or an
additive float mask (0 = attend, a large negative number = masked), of shape (B, 1|H, Q|1, N).
"""
from __future__ import annotations

from typing import Optional

import torch
from transformers.masking_utils import bidirectional_mask_function, prepare_padding_mask, sdpa_mask
from transformers.utils.import_utils import is_tracing

from torch import nn

from autobert.hf.errors import AttentionNotSupported, describe_module

# An additive mask value at or below this is "masked": exp(-1000) underflows to 0 in every float dtype.
MASKED_BELOW = -1e3


def key_padding_mask_interface(batch_size: int, q_length: int, kv_length: int, q_offset: int = 0,
                               kv_offset: int = 0, mask_function=bidirectional_mask_function,
                               attention_mask: Optional[torch.Tensor] = None, **kwargs) -> Optional[torch.Tensor]:
    """transformers' mask-interface signature -> (B, N) bool key padding mask, None, or (B, 1, Q, N) bool."""
    if mask_function is bidirectional_mask_function and q_offset == 0 and kv_offset == 0:
        padding = prepare_padding_mask(attention_mask, kv_length, kv_offset)  # (B, N) bool or None
        if padding is None or torch.compiler.is_compiling() or is_tracing(padding):
            return padding  # looking at the values would break a traced graph; an all-True mask is exact
        return None if bool(padding.all()) else padding
    return sdpa_mask(batch_size=batch_size, q_length=q_length, kv_length=kv_length, q_offset=q_offset,
                     kv_offset=kv_offset, mask_function=mask_function, attention_mask=attention_mask,
                     allow_is_causal_skip=False, allow_is_bidirectional_skip=False,
                     use_vmap=kwargs.get("use_vmap", False), device=kwargs.get("device", "cpu"))


def to_key_padding(mask, batch: int, n_keys: int, module: nn.Module) -> Optional[torch.Tensor]:
    """mask: None, (B, N) bool or 0/1, or (B, 1|H, Q|1, N) bool / additive -> (B, N) bool (True = real) or None.

    AttentionNotSupported (naming the model of the attention ``module``) for a mask that varies
    with the query position or carries a bias; ValueError for one that does not fit the batch.
    """
    if mask is None:
        return None
    if not isinstance(mask, torch.Tensor):
        raise AttentionNotSupported(describe_module(module), f"a {type(mask).__name__} attention mask "
                                                             "(flex attention's block mask?)")
    if mask.dtype == torch.bool and tuple(mask.shape) == (batch, n_keys):
        return mask  # ours: already the key padding mask
    where = describe_module(module)
    if mask.dim() not in (2, 4) or mask.shape[-1] != n_keys or mask.shape[0] not in (1, batch):
        raise ValueError(f"{where}: attention mask of shape {tuple(mask.shape)} does not fit batch {batch} "
                         f"and {n_keys} keys; expected (B, N) or (B, H, Q, N)")
    attend = _attend(mask, where)  # (B|1, N) or (B|1, H, Q, N) bool
    if attend.dim() == 2:
        return attend.expand(batch, n_keys)
    full = attend.reshape(attend.shape[0], -1, n_keys)  # (B, H*Q, N)
    key = full.any(dim=1)  # (B, N)
    if not bool((full == key[:, None, :]).all()):
        raise AttentionNotSupported(where, "the attention mask differs between query positions (a causal, "
                                           "sliding-window, packed-sequence or custom mask)")
    key = key.expand(batch, n_keys)
    return None if bool(key.all()) else key.contiguous()


def _attend(mask: torch.Tensor, where: str) -> torch.Tensor:
    """True where a query may attend a key, same shape as ``mask``."""
    if mask.dtype == torch.bool:
        return mask
    if mask.dim() == 2:
        return mask != 0  # the plain Hugging Face attention_mask: 1 = real token
    attend = mask == 0
    if not bool((attend | (mask <= MASKED_BELOW)).all()):
        raise AttentionNotSupported(where, "the attention mask adds values other than 0 and a large negative "
                                           "number (a relative position bias?)")
    return attend
