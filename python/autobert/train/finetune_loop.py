"""The inner loops of fine-tuning: ``train_one`` (epochs over a task's train rows) and ``predict``.

Batches are tokenized when they are drawn (the Rust tokenizer takes about a millisecond for 32
pairs) and padded to their own longest row, so short-sentence tasks (SST-2, CoLA) run on short
tensors instead of ``max_length``-wide ones.
"""
from __future__ import annotations

import math
from typing import Callable, Optional, Sequence

import torch
from torch import nn

from autobert.glue import Example

from .mlm import autocast
from .schedule import adamw, warmup_linear_decay, warmup_steps_for
from .tokenizer import WordPieceTokenizer

__all__ = ["encode_rows", "train_one", "predict"]


def encode_rows(rows: Sequence[Example], tokenizer: WordPieceTokenizer, max_length: int,
                device: torch.device) -> dict:
    """Tokenize a batch of examples -> input_ids / token_type_ids / attention_mask, each (B, L) on device."""
    texts_b = None if rows[0].text_b is None else [r.text_b for r in rows]
    enc = tokenizer([r.text_a for r in rows], texts_b, max_length=max_length)
    return {k: v.to(device) for k, v in enc.items()}


def _labels(rows: Sequence[Example], regression: bool, device: torch.device) -> torch.Tensor:
    dtype = torch.float32 if regression else torch.long
    return torch.tensor([r.label for r in rows], dtype=dtype, device=device)  # (B,)


def train_one(model: nn.Module, rows: Sequence[Example], tokenizer: WordPieceTokenizer, config, *, lr: float,
              seed: int, device: torch.device, bf16: bool,
              progress: Optional[Callable[[dict], None]] = None) -> float:
    """Train ``model`` (a ForSequenceClassification) on ``rows`` for ``config.epochs``; returns the
    mean training loss of the last epoch. Batch order and dropout are driven by ``seed``."""
    if not rows:
        raise ValueError("no training examples")
    regression = getattr(model, "num_labels", 2) == 1
    steps_per_epoch = math.ceil(len(rows) / config.batch_size)
    total = steps_per_epoch * config.epochs
    opt = adamw(model, lr, config.weight_decay)
    sched = warmup_linear_decay(opt, warmup_steps_for(total, config.warmup_ratio), total)
    order_gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)  # dropout
    model.train()
    step, last_epoch_losses = 0, []
    for epoch in range(config.epochs):
        perm = torch.randperm(len(rows), generator=order_gen).tolist()
        last_epoch_losses = []
        for start in range(0, len(rows), config.batch_size):
            batch = [rows[i] for i in perm[start:start + config.batch_size]]
            enc = encode_rows(batch, tokenizer, config.max_length, device)
            with autocast(device, bf16):
                out = model(enc["input_ids"], enc["attention_mask"], enc["token_type_ids"],
                            labels=_labels(batch, regression, device))
            out.loss.backward()
            if config.clip_norm is not None:
                torch.nn.utils.clip_grad_norm_(model.parameters(), config.clip_norm)
            opt.step()
            sched.step()
            opt.zero_grad(set_to_none=True)
            step += 1
            loss = float(out.loss.detach())
            last_epoch_losses.append(loss)
            if progress is not None:
                progress({"step": step, "total_steps": total, "epoch": epoch, "loss": loss})
    return float(sum(last_epoch_losses) / len(last_epoch_losses))


@torch.no_grad()
def predict(model: nn.Module, rows: Sequence[Example], tokenizer: WordPieceTokenizer, config, *,
            device: torch.device, bf16: bool, regression: bool) -> torch.Tensor:
    """Predictions for ``rows`` in order: (n,) long class indices, or (n,) float scores for regression."""
    model.eval()
    outs = []
    for start in range(0, len(rows), config.eval_batch_size):
        enc = encode_rows(rows[start:start + config.eval_batch_size], tokenizer, config.max_length, device)
        with autocast(device, bf16):
            logits = model(enc["input_ids"], enc["attention_mask"], enc["token_type_ids"]).logits  # (B, C)
        logits = logits.float().cpu()
        outs.append(logits[:, 0] if regression else logits.argmax(dim=-1))
    model.train()
    return torch.cat(outs) if outs else torch.zeros(0)
