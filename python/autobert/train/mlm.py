"""MLM training and evaluation helpers: the loss, one training step, and held-out evaluation.

The loss is computed only at the masked positions: the vocabulary projection (hidden x 30522 for
BERT's vocab) is the most expensive matmul of a small model, and at 15% masking most of its rows
would be thrown away. ``masked_lm_loss`` equals ``ForMaskedLM(...)(ids, labels=labels).loss``
(same parameters, same formula), it just never builds the (B, N, vocab) logits.
"""
from __future__ import annotations

import contextlib
import math
from typing import Callable, Optional

import torch
import torch.nn.functional as F
from torch import nn

from .masking import BERT_UNCASED_IDS, IGNORE_INDEX, MaskingIds, as_masking_ids, mask_tokens

__all__ = ["MaskedLMLoss", "masked_lm_loss", "mlm_step", "evaluate_mlm", "autocast"]


def masked_lm_loss(model: nn.Module, input_ids: torch.Tensor, labels: torch.Tensor,
                   attention_mask: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Mean cross-entropy over positions with labels != -100, for a ``ForMaskedLM``.

    input_ids, labels: (B, N) long; attention_mask: (B, N) or None. Returns a scalar (0 with a graph
    when nothing is labelled). Models without the ForMaskedLM parts fall back to ``model(...).loss``.
    """
    if not all(hasattr(model, a) for a in ("backbone", "transform", "transform_norm", "decoder_bias")):
        return model(input_ids, attention_mask=attention_mask, labels=labels).loss
    h = model.backbone(input_ids, attention_mask)  # (B, N, hidden)
    sel = labels != IGNORE_INDEX  # (B, N)
    if not bool(sel.any()):
        return h.sum() * 0.0
    h = h[sel]  # (M, hidden): only the masked positions
    h = model.transform_norm(F.gelu(model.transform(h)))
    logits = F.linear(h, model.backbone.embeddings.word.weight, model.decoder_bias)  # (M, vocab)
    return F.cross_entropy(logits.float(), labels[sel])


class MaskedLMLoss(nn.Module):
    """``masked_lm_loss`` as a module, so DistributedDataParallel can wrap it (DDP only syncs
    gradients of computations that go through its own forward)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, input_ids: torch.Tensor, labels: torch.Tensor,
                attention_mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        return masked_lm_loss(self.model, input_ids, labels, attention_mask)


def autocast(device: torch.device, bf16: bool):
    """bfloat16 autocast on ``device`` when ``bf16``, else a no-op context."""
    if bf16:
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def mlm_step(model: nn.Module, batch: torch.Tensor, optimizer: torch.optim.Optimizer,
             masking: "MaskingIds | object" = BERT_UNCASED_IDS, *, prob: float = 0.15,
             generator: Optional[torch.Generator] = None, clip_norm: Optional[float] = 1.0,
             scheduler=None, bf16: bool = False) -> float:
    """One optimizer step of MLM on one batch: mask, forward, backward, clip, step.

    Args:
        model: a ForMaskedLM (or any module ``masked_lm_loss`` accepts), in train mode.
        batch: (B, N) long token blocks (unmasked); padding must be the masking's [PAD] id.
        optimizer, scheduler: stepped once (scheduler may be None).
        masking: a WordPieceTokenizer or MaskingIds (default: bert-base-uncased ids).
        generator: drives the masks (seed it for reproducible runs); on ``batch``'s device.
        clip_norm: gradient-norm clip, None for none.
        bf16: autocast to bfloat16 (pretraining turns it on for GPUs).
    Returns:
        The loss as a float.
    """
    device = next(model.parameters()).device
    # Masks are drawn where the batch lives (the generator's device), then moved to the model.
    inputs, labels = mask_tokens(batch, masking, prob=prob, generator=generator)
    inputs, labels = inputs.to(device), labels.to(device)
    with autocast(device, bf16):
        loss = masked_lm_loss(model, inputs, labels, _attention_mask(inputs, masking))
    loss.backward()
    if clip_norm is not None:
        torch.nn.utils.clip_grad_norm_(model.parameters(), clip_norm)
    optimizer.step()
    if scheduler is not None:
        scheduler.step()
    optimizer.zero_grad(set_to_none=True)
    return float(loss.detach())


def _attention_mask(batch: torch.Tensor, masking) -> Optional[torch.Tensor]:
    """(B, N) bool, True = real token; None when nothing is padding (the common packed-block case).

    Works on masked inputs too: padding is never chosen and never drawn as a replacement."""
    pad = as_masking_ids(masking).pad_token_id
    if pad is None:
        return None
    mask = batch != pad
    return None if bool(mask.all()) else mask


@torch.no_grad()
def evaluate_mlm(model: nn.Module, blocks: torch.Tensor, *, batch_size: int, seed: int,
                 masking: "MaskingIds | object" = BERT_UNCASED_IDS, prob: float = 0.15,
                 max_blocks: Optional[int] = None, bf16: bool = False,
                 progress: Optional[Callable[[int], None]] = None) -> dict:
    """Held-out MLM loss with masks fixed by ``seed``, so numbers are comparable across models.

    Masks depend only on (blocks, seed, prob, masking): the same blocks get the same masked
    positions and replacements for every model evaluated. The model runs in eval mode (no
    dropout); its previous mode is restored.

    Args:
        blocks: (num_blocks, N) long held-out blocks.
        batch_size: blocks per forward pass (does not change the result).
        max_blocks: evaluate only the first this many blocks.
    Returns:
        {"loss": token-weighted mean cross-entropy over all masked positions,
         "perplexity": exp(loss), "tokens": number of masked positions scored}.
    """
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be an int >= 1, got {batch_size!r}")
    if blocks.dim() != 2 or blocks.shape[0] == 0:
        raise ValueError(f"blocks must be a non-empty (num_blocks, N) tensor, got shape {tuple(blocks.shape)}")
    if max_blocks is not None:
        blocks = blocks[:max_blocks]
    device = next(model.parameters()).device
    # Masks are drawn on the CPU from one generator over all blocks at once: independent of the
    # device and of batch_size.
    gen = torch.Generator().manual_seed(int(seed))
    inputs, labels = mask_tokens(blocks.cpu(), masking, prob=prob, generator=gen)
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    try:
        for start in range(0, inputs.shape[0], batch_size):
            x = inputs[start:start + batch_size].to(device)
            y = labels[start:start + batch_size].to(device)
            n = int((y != IGNORE_INDEX).sum())
            if n:
                with autocast(device, bf16):
                    loss = masked_lm_loss(model, x, y, _attention_mask(x, masking))
                total += float(loss) * n
                count += n
            if progress is not None:
                progress(x.shape[0])
    finally:
        model.train(was_training)
    loss = total / count if count else float("nan")
    return {"loss": loss, "perplexity": math.exp(min(loss, 50.0)) if count else float("nan"), "tokens": count}
