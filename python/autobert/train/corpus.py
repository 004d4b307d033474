"""A text corpus as fixed-length MLM blocks: ``load_corpus`` and the held-out split ``split_blocks``.

Blocking rule (the RoBERTa "FULL-SENTENCES" packing, without next-sentence prediction):

* Every non-blank line is one text unit; its WordPiece ids (no specials) are appended to one
  stream, file after file in sorted path order. Documents are not separated: a block may span a
  document boundary, which costs nothing for MLM and wastes no positions on padding.
* The stream is cut into chunks of ``seq_len - 2`` ids and each chunk becomes
  ``[CLS] chunk [SEP]``; so every block is exactly ``seq_len`` long, has no padding, and looks like
  the single-segment inputs fine-tuning feeds the model. The last, shorter chunk is dropped.

WikiText conventions are undone on the way in, because they would otherwise cost real vocabulary:
``<unk>`` (an out-of-vocabulary word in the tokenized release) becomes ``[UNK]`` instead of the
three pieces ``<``, ``unk``, ``>``, and the split number separators `` @-@ ``, `` @,@ ``, `` @.@ ``
are joined back ("1 @,@ 000" -> "1,000"). Other text is untouched.
"""
from __future__ import annotations

import logging
import math
import os
import re
from pathlib import Path
from typing import Iterator, Optional

import torch

from .tokenizer import WordPieceTokenizer

__all__ = ["CORPUS_SUFFIXES", "corpus_files", "load_corpus", "split_blocks", "CorpusError"]

log = logging.getLogger(__name__)

#: File endings read from a corpus folder (WikiText ships ``.tokens``/``.raw``; plain text ``.txt``).
CORPUS_SUFFIXES = (".txt", ".raw", ".tokens")

_ENCODE_BATCH = 512  # lines per tokenizer call: large enough for the Rust batch encoder, small in memory
_WIKITEXT_JOIN = re.compile(r" @([-,.])@ ")


class CorpusError(ValueError):
    """A corpus that cannot be turned into blocks (empty, too short, unreadable)."""


def corpus_files(path: "str | os.PathLike") -> list[Path]:
    """The files a corpus path stands for: the file itself, or every ``CORPUS_SUFFIXES`` file under a
    folder (recursively, sorted). FileNotFoundError for a missing path, CorpusError for a folder
    without such files."""
    path = Path(path)
    if path.is_file():
        return [path]
    if not path.exists():
        raise FileNotFoundError(f"corpus not found: {path} (give a text file or a folder of "
                                f"{'/'.join(CORPUS_SUFFIXES)} files)")
    files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix in CORPUS_SUFFIXES)
    if not files:
        raise CorpusError(f"corpus folder {path} holds no {'/'.join(CORPUS_SUFFIXES)} files")
    return files


def _clean(line: str) -> str:
    line = line.strip()
    if "<unk>" in line:
        line = line.replace("<unk>", "[UNK]")
    if "@" in line:
        line = _WIKITEXT_JOIN.sub(r"\1", line)
    return line


def _lines(files: list[Path]) -> Iterator[str]:
    for f in files:
        lineno = 0
        try:
            with open(f, encoding="utf-8") as fh:
                for lineno, raw in enumerate(fh, 1):
                    if "\x00" in raw:  # text never holds NUL; a binary file decodes "fine" otherwise
                        raise CorpusError(f"corpus file {f} line {lineno} holds NUL bytes: not a text file "
                                          f"(expected UTF-8 text, one passage per line)")
                    line = _clean(raw)
                    if line:
                        yield line
        except UnicodeDecodeError as e:
            raise CorpusError(f"corpus file {f} is not UTF-8 text (line {lineno + 1}: {e.reason}); "
                              f"re-encode it as UTF-8") from None
        except OSError as e:
            raise CorpusError(f"cannot read corpus file {f}: {e}") from None


def _encode(tokenizer: WordPieceTokenizer, lines: list[str]) -> list[torch.Tensor]:
    """WordPiece ids of each line, specials stripped -> list of 1-D long tensors."""
    # A bound far above any line length: the public batch call always truncates to max_length.
    batch = tokenizer(lines, max_length=1 << 20, padding="longest")
    lengths = batch["attention_mask"].sum(dim=1)  # (B,) real ids incl. [CLS] and [SEP]
    ids = batch["input_ids"]  # (B, L)
    return [ids[i, 1:int(n) - 1] for i, n in enumerate(lengths)]


def _token_stream(files: list[Path], tokenizer: WordPieceTokenizer, max_tokens: Optional[int]) -> torch.Tensor:
    pieces: list[torch.Tensor] = []
    total, pending = 0, []

    def flush() -> bool:
        nonlocal total
        for ids in _encode(tokenizer, pending):
            pieces.append(ids)
            total += ids.numel()
            if max_tokens is not None and total >= max_tokens:
                return True
        pending.clear()
        return False

    for line in _lines(files):
        pending.append(line)
        if len(pending) == _ENCODE_BATCH and flush():
            break
    else:
        if pending:
            flush()
    stream = torch.cat(pieces) if pieces else torch.zeros(0, dtype=torch.long)
    return stream if max_tokens is None else stream[:max_tokens]


def load_corpus(path: "str | os.PathLike", tokenizer: WordPieceTokenizer, seq_len: int, *,
                max_tokens: Optional[int] = None) -> torch.LongTensor:
    """Tokenize a text file or a folder of text files into MLM blocks (see the module doc).

    Args:
        path: a text file, or a folder whose ``.txt``/``.raw``/``.tokens`` files are read in sorted order.
        tokenizer: the WordPiece tokenizer whose ids the model is trained on.
        seq_len: block length including [CLS] and [SEP] (>= 3).
        max_tokens: stop after this many WordPiece ids of text (None: read everything).

    Returns:
        (num_blocks, seq_len) int64; row i is ``[CLS] ids[i*(seq_len-2) : (i+1)*(seq_len-2)] [SEP]``.

    Raises:
        FileNotFoundError: ``path`` does not exist. CorpusError (a ValueError): no text, or too little
        for one block. ValueError: bad ``seq_len``/``max_tokens``.
    """
    if not isinstance(seq_len, int) or isinstance(seq_len, bool) or seq_len < 3:
        raise ValueError(f"seq_len must be an int >= 3 (room for [CLS], one token, [SEP]), got {seq_len!r}")
    if max_tokens is not None and (not isinstance(max_tokens, int) or max_tokens < 1):
        raise ValueError(f"max_tokens must be None or an int >= 1, got {max_tokens!r}")
    files = corpus_files(path)
    stream = _token_stream(files, tokenizer, max_tokens)  # (T,)
    if stream.numel() == 0:
        raise CorpusError(f"corpus {path} holds no text (every line is blank)")
    body = seq_len - 2
    n_blocks = stream.numel() // body
    if n_blocks == 0:
        raise CorpusError(f"corpus {path} has {stream.numel()} tokens, fewer than one block of "
                          f"{body} (seq_len {seq_len} minus [CLS] and [SEP])")
    chunks = stream[:n_blocks * body].view(n_blocks, body)  # (num_blocks, seq_len - 2)
    cls = torch.full((n_blocks, 1), tokenizer.cls_token_id, dtype=torch.long)
    sep = torch.full((n_blocks, 1), tokenizer.sep_token_id, dtype=torch.long)
    blocks = torch.cat([cls, chunks, sep], dim=1)  # (num_blocks, seq_len)
    log.info("corpus %s: %d file(s), %d tokens -> %d blocks of %d (%d tokens dropped at the end)",
             path, len(files), stream.numel(), n_blocks, seq_len, stream.numel() - n_blocks * body)
    return blocks


def split_blocks(blocks: torch.Tensor, holdout_fraction: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Split blocks into (train, held_out) by a seeded random permutation of the rows.

    ``held_out`` has ``ceil(holdout_fraction * num_blocks)`` rows (at least one when the fraction is
    > 0), ``train`` keeps at least one row; both keep the blocks' original relative order, so the
    split depends only on (num_blocks, holdout_fraction, seed).

    Args:
        blocks: (num_blocks, seq_len) long.
        holdout_fraction: in [0, 1).
        seed: seed of the permutation.
    Returns:
        train (num_train, seq_len), held_out (num_held_out, seq_len).
    """
    if blocks.dim() != 2:
        raise ValueError(f"blocks must be (num_blocks, seq_len), got shape {tuple(blocks.shape)}")
    if not isinstance(holdout_fraction, (int, float)) or not 0.0 <= holdout_fraction < 1.0:
        raise ValueError(f"holdout_fraction must be in [0, 1), got {holdout_fraction!r}")
    n = blocks.shape[0]
    n_hold = math.ceil(holdout_fraction * n) if holdout_fraction > 0 else 0
    if n_hold and n - n_hold < 1:
        raise CorpusError(f"{n} block(s) cannot be split into a non-empty train and held-out part")
    g = torch.Generator().manual_seed(int(seed))
    perm = torch.randperm(n, generator=g)
    hold_idx, _ = perm[:n_hold].sort()
    train_idx, _ = perm[n_hold:].sort()
    return blocks[train_idx], blocks[hold_idx]
