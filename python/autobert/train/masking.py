"""BERT's dynamic MLM masking: ``mask_tokens``.

Of the positions that may be masked (everything except special tokens and padding) each is chosen
with probability ``prob``; a chosen position becomes [MASK] with probability 0.8, a random
ordinary token with 0.1, and stays unchanged with 0.1 (Devlin et al. 2019). Labels hold the
original id at chosen positions and -100 (ignored by the loss) elsewhere.
"""
from __future__ import annotations

import dataclasses
from typing import Optional, Union

import torch

__all__ = ["MaskingIds", "as_masking_ids", "mask_tokens", "IGNORE_INDEX", "BERT_UNCASED_IDS"]

IGNORE_INDEX = -100  # label value the MLM loss skips (Hugging Face convention)


@dataclasses.dataclass(frozen=True)
class MaskingIds:
    """The ids masking needs: what [MASK] is, the vocabulary size, and the ids never to mask."""

    mask_token_id: int
    vocab_size: int                  # random replacements are drawn from [0, vocab_size) minus specials
    special_token_ids: frozenset     # never chosen, never drawn as a replacement
    pad_token_id: Optional[int] = None  # padding id (added to the specials); None: inputs never pad

    def __post_init__(self):
        specials = {int(i) for i in self.special_token_ids}
        if self.pad_token_id is not None:
            specials.add(int(self.pad_token_id))
        object.__setattr__(self, "special_token_ids", frozenset(specials))
        if not isinstance(self.vocab_size, int) or self.vocab_size < 2:
            raise ValueError(f"MaskingIds.vocab_size must be an int >= 2, got {self.vocab_size!r}")
        ids = self.special_token_ids | {self.mask_token_id}
        if min(ids) < 0 or max(ids) >= self.vocab_size:
            raise ValueError(f"MaskingIds: special ids {sorted(ids)} must lie in [0, {self.vocab_size})")
        if len(self.special_token_ids | {self.mask_token_id}) >= self.vocab_size:
            raise ValueError("MaskingIds: no ordinary token left to draw random replacements from")

    @classmethod
    def from_tokenizer(cls, tokenizer) -> "MaskingIds":
        """From a WordPieceTokenizer (or anything with mask_token_id, vocab_size, special_token_ids)."""
        return cls(int(tokenizer.mask_token_id), int(tokenizer.vocab_size),
                   frozenset(tokenizer.special_token_ids), int(tokenizer.pad_token_id))


#: bert-base-uncased: [PAD]=0, [UNK]=100, [CLS]=101, [SEP]=102, [MASK]=103, 30522 tokens.
BERT_UNCASED_IDS = MaskingIds(mask_token_id=103, vocab_size=30522, special_token_ids=frozenset({100, 101, 102, 103}),
                              pad_token_id=0)


def as_masking_ids(tokenizer_or_ids) -> MaskingIds:
    """MaskingIds from a WordPieceTokenizer (or MaskingIds, returned as is)."""
    if isinstance(tokenizer_or_ids, MaskingIds):
        return tokenizer_or_ids
    if all(hasattr(tokenizer_or_ids, a) for a in ("mask_token_id", "vocab_size", "special_token_ids")):
        return MaskingIds.from_tokenizer(tokenizer_or_ids)
    raise TypeError(f"expected a WordPieceTokenizer or MaskingIds, got {type(tokenizer_or_ids).__name__}")


_ORDINARY_CACHE: dict = {}


def _ordinary_ids(ids: MaskingIds, device: torch.device) -> torch.Tensor:
    """Ids a random replacement may take: (V - #specials,) long, cached per (ids, device)."""
    key = (ids, str(device))
    if key not in _ORDINARY_CACHE:
        keep = torch.ones(ids.vocab_size, dtype=torch.bool)
        keep[sorted(ids.special_token_ids | {ids.mask_token_id})] = False
        _ORDINARY_CACHE[key] = keep.nonzero().squeeze(1).to(device)
    return _ORDINARY_CACHE[key]


def mask_tokens(input_ids: torch.Tensor, tokenizer_or_ids: Union["MaskingIds", object], *, prob: float = 0.15,
                generator: Optional[torch.Generator] = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Dynamic 80/10/10 MLM masking.

    Args:
        input_ids: (B, N) long; padding is the tokenizer's [PAD] id.
        tokenizer_or_ids: a WordPieceTokenizer or MaskingIds.
        prob: chance that a maskable position is chosen.
        generator: torch.Generator on ``input_ids.device``; the same generator state gives the same
            masks (this is how held-out evaluation fixes its masks).

    Returns:
        inputs (B, N) long (a new tensor; ``input_ids`` is not modified) and labels (B, N) long:
        the original id at chosen positions, -100 elsewhere.
    """
    if not isinstance(input_ids, torch.Tensor) or input_ids.dtype != torch.long:
        raise ValueError(f"input_ids must be a long tensor, got {getattr(input_ids, 'dtype', type(input_ids))}")
    if not isinstance(prob, (int, float)) or not 0.0 <= prob <= 1.0:
        raise ValueError(f"prob must be in [0, 1], got {prob!r}")
    ids = as_masking_ids(tokenizer_or_ids)
    dev = input_ids.device
    specials = torch.tensor(sorted(ids.special_token_ids), device=dev)
    maskable = ~torch.isin(input_ids, specials)  # (B, N)
    # Three draws of the full shape, always in this order, so masks depend only on the generator.
    u_choose = torch.rand(input_ids.shape, generator=generator, device=dev)
    u_kind = torch.rand(input_ids.shape, generator=generator, device=dev)
    ordinary = _ordinary_ids(ids, dev)
    pick = torch.randint(len(ordinary), input_ids.shape, generator=generator, device=dev)
    chosen = maskable & (u_choose < prob)
    labels = torch.where(chosen, input_ids, torch.full_like(input_ids, IGNORE_INDEX))
    inputs = input_ids.clone()
    inputs[chosen & (u_kind < 0.8)] = ids.mask_token_id
    randomize = chosen & (u_kind >= 0.8) & (u_kind < 0.9)
    inputs[randomize] = ordinary[pick[randomize]]
    return inputs, labels
