"""``TextBatch``: the real-text minibatch every model is probed with (the same one for all of them).

Blocks of ``seq_len`` WordPiece ids are cut from the corpus (``autobert.train.load_corpus``), a
seeded draw picks ``batch_size`` of them, and BERT's 80/10/10 masking (seeded) gives the MLM
inputs and targets. The MLM targets are the corpus's own tokens: no benchmark label is involved.
"""
from __future__ import annotations

import dataclasses
import os

import torch

from autobert.train.corpus import load_corpus
from autobert.train.masking import mask_tokens
from autobert.train.tokenizer import WordPieceTokenizer

_MAX_TOKENS_PER_ROW = 64  # text read per requested row: enough blocks to draw from, never the whole corpus


@dataclasses.dataclass(frozen=True)
class TextBatch:
    input_ids: torch.Tensor   # (B, N) long, after masking
    labels: torch.Tensor      # (B, N) long: original id at masked positions, -100 elsewhere
    text_ids: torch.Tensor    # (B, N) long, before masking

    @property
    def shape(self) -> tuple[int, int]:
        return tuple(self.input_ids.shape)


def text_batch(corpus: "str | os.PathLike", tokenizer: WordPieceTokenizer, batch_size: int, seq_len: int,
               seed: int = 0, mask_prob: float = 0.15) -> TextBatch:
    """``batch_size`` masked blocks of ``seq_len`` tokens drawn (seeded) from ``corpus``."""
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be an int >= 1, got {batch_size!r}")
    max_tokens = max(batch_size * seq_len * _MAX_TOKENS_PER_ROW, 4096)
    blocks = load_corpus(corpus, tokenizer, seq_len, max_tokens=max_tokens)  # (num_blocks, N)
    if blocks.shape[0] < batch_size:
        raise ValueError(f"corpus {corpus} gives {blocks.shape[0]} blocks of {seq_len} tokens; "
                         f"batch_size {batch_size} needs more text")
    g = torch.Generator().manual_seed(int(seed))
    rows = torch.randperm(blocks.shape[0], generator=g)[:batch_size].sort().values
    text = blocks[rows]
    inputs, labels = mask_tokens(text, tokenizer, prob=mask_prob, generator=g)
    return TextBatch(inputs, labels, text)
