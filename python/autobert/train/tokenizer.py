"""BERT WordPiece tokenisation on top of the Rust `tokenizers` library.

`WordPieceTokenizer` is built either from a plain ``vocab.txt`` (one token per line, the id is the
0-based line number, as google-research/bert and Hugging Face write it) or from a Hugging Face
tokenizer folder (``tokenizer.json``, else ``vocab.txt`` inside it). Calling it on a batch of
sentences (or sentence pairs) returns padded torch tensors::

    tok = WordPieceTokenizer.from_vocab("vocab.txt")
    batch = tok(["hello world"], max_length=128)
    batch["input_ids"]       # (B, L) int64: [[101, 7592, 2088, 102]]
    batch["token_type_ids"]  # (B, L) int64: 0 for segment A (with [CLS] and its [SEP]), 1 for B
    batch["attention_mask"]  # (B, L) int64: 1 = real token, 0 = padding

The attention mask is int64 like Hugging Face's; ``batch["attention_mask"].bool()`` is the
``key_padding_mask`` convention of the attention graphs (True = real token).
"""
from __future__ import annotations

import io
import json
import logging
import threading
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

__all__ = ["WordPieceTokenizer", "SPECIAL_TOKENS", "read_vocab"]

log = logging.getLogger(__name__)

#: The five BERT special tokens, in the roles the rest of the code asks for.
SPECIAL_TOKENS = {"pad": "[PAD]", "unk": "[UNK]", "cls": "[CLS]", "sep": "[SEP]", "mask": "[MASK]"}


def read_vocab(path: str | Path) -> dict[str, int]:
    """Read a BERT ``vocab.txt``: token on line i (0-based) gets id i.

    Raises FileNotFoundError for a missing file and ValueError for an empty one or one that lacks a
    BERT special token. A duplicated token keeps its first id (a later copy would silently renumber
    the embedding rows a checkpoint was trained with).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"vocab file not found: {path} (expected a BERT vocab.txt, one token per line)")
    vocab: dict[str, int] = {}
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw[:e.start].count(b"\n") + 1
        raise ValueError(f"vocab file {path} is not UTF-8 text (line {line}, byte {e.start}); expected a BERT "
                         f"vocab.txt, one token per line") from None
    if "\x00" in text:
        raise ValueError(f"vocab file {path} holds NUL bytes (a binary file?); expected a BERT vocab.txt, "
                         f"one token per line")
    # Only the line break is stripped: HF's load_vocab does the same, so ids agree with it (universal
    # newlines, as open() reads it).
    for i, line in enumerate(io.StringIO(text, newline=None)):
        token = line.rstrip("\n").rstrip("\r")
        if token in vocab:
            log.warning("%s:%d: duplicate token %r, keeping id %d", path, i + 1, token, vocab[token])
            continue
        vocab[token] = i
    if not vocab:
        raise ValueError(f"vocab file is empty: {path}")
    missing = [t for t in SPECIAL_TOKENS.values() if t not in vocab]
    if missing:
        raise ValueError(f"vocab file {path} lacks the BERT special tokens {missing}")
    return vocab


def _tokenizer_json(path: Path) -> Tokenizer:
    """A Hugging Face ``tokenizer.json``; ValueError naming the file when the library cannot read it."""
    try:
        return Tokenizer.from_file(str(path))
    except Exception as e:  # the Rust library raises plain Exceptions for bad files
        raise ValueError(f"tokenizer file {path} is not a Hugging Face tokenizer.json ({e})") from None


def _build_bert_tokenizer(vocab: dict[str, int], lowercase: bool) -> Tokenizer:
    """Assemble the bert-base-uncased pipeline: BertNormalizer -> BertPreTokenizer -> WordPiece."""
    tok = Tokenizer(models.WordPiece(vocab=vocab, unk_token=SPECIAL_TOKENS["unk"], max_input_chars_per_word=100))
    # strip_accents=None follows `lowercase`, exactly as BertTokenizerFast does.
    tok.normalizer = normalizers.BertNormalizer(
        clean_text=True, handle_chinese_chars=True, strip_accents=None, lowercase=lowercase)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    cls, sep = SPECIAL_TOKENS["cls"], SPECIAL_TOKENS["sep"]
    tok.post_processor = processors.TemplateProcessing(
        single=f"{cls}:0 $A:0 {sep}:0",
        pair=f"{cls}:0 $A:0 {sep}:0 $B:1 {sep}:1",
        special_tokens=[(cls, vocab[cls]), (sep, vocab[sep])],
    )
    tok.decoder = decoders.WordPiece(prefix="##")
    # Registered as special so that a literal "[MASK]" in text maps to its id instead of being
    # split into "[", "mask", "]" (what HF's BertTokenizerFast does too).
    tok.add_special_tokens(list(SPECIAL_TOKENS.values()))
    return tok


class WordPieceTokenizer:
    """Batched BERT tokenisation returning torch tensors.

    Attributes: ``pad_token_id``, ``unk_token_id``, ``cls_token_id``, ``sep_token_id``,
    ``mask_token_id``, ``vocab_size`` (the embedding rows a model needs: max id + 1).
    Calls are serialised by a lock because padding/truncation are settings of the shared Rust object.
    """

    def __init__(self, tokenizer: Tokenizer, source: str = "<memory>"):
        self._tok = tokenizer
        self._lock = threading.Lock()
        self.source = source
        ids = {}
        for role, token in SPECIAL_TOKENS.items():
            tid = tokenizer.token_to_id(token)
            if tid is None:
                raise ValueError(f"tokenizer from {source} has no {token} token")
            ids[role] = tid
        self.pad_token_id: int = ids["pad"]
        self.unk_token_id: int = ids["unk"]
        self.cls_token_id: int = ids["cls"]
        self.sep_token_id: int = ids["sep"]
        self.mask_token_id: int = ids["mask"]
        self.vocab_size: int = max(tokenizer.get_vocab(with_added_tokens=True).values()) + 1
        self.special_token_ids: frozenset[int] = frozenset(ids.values())

    # ---------------------------------------------------------------- construction
    @classmethod
    def from_vocab(cls, vocab_file: str | Path, lowercase: bool = True) -> "WordPieceTokenizer":
        """Build from a BERT ``vocab.txt`` (``lowercase=False`` for cased vocabularies)."""
        vocab = read_vocab(vocab_file)
        return cls(_build_bert_tokenizer(vocab, lowercase), source=str(vocab_file))

    @classmethod
    def from_pretrained(cls, folder: str | Path) -> "WordPieceTokenizer":
        """Build from a Hugging Face tokenizer folder: ``tokenizer.json`` if present, else
        ``vocab.txt`` with ``do_lower_case`` from ``tokenizer_config.json`` (default True)."""
        folder = Path(folder)
        if not folder.is_dir():
            raise FileNotFoundError(f"tokenizer folder not found: {folder}")
        tj = folder / "tokenizer.json"
        if tj.is_file():
            tok = _tokenizer_json(tj)
            # A saved tokenizer.json may carry padding/truncation settings; calls set their own.
            tok.no_padding()
            tok.no_truncation()
            return cls(tok, source=str(tj))
        vocab_file = folder / "vocab.txt"
        if not vocab_file.is_file():
            found = sorted(p.name for p in folder.iterdir())
            raise FileNotFoundError(f"{folder} holds neither tokenizer.json nor vocab.txt (found: {found})")
        lowercase = True
        cfg = folder / "tokenizer_config.json"
        if cfg.is_file():
            lowercase = bool(json.loads(cfg.read_text(encoding="utf-8")).get("do_lower_case", True))
        return cls.from_vocab(vocab_file, lowercase=lowercase)

    @classmethod
    def from_file(cls, path: str | Path) -> "WordPieceTokenizer":
        """Dispatch on what ``path`` is: folder -> from_pretrained, ``*.json`` -> tokenizer.json,
        anything else -> vocab.txt."""
        path = Path(path)
        if path.is_dir():
            return cls.from_pretrained(path)
        if path.suffix == ".json":
            if not path.is_file():
                raise FileNotFoundError(f"tokenizer file not found: {path}")
            return cls(_tokenizer_json(path), source=str(path))
        return cls.from_vocab(path)

    # ---------------------------------------------------------------- single-text helpers
    def tokenize(self, text: str) -> list[str]:
        """WordPiece tokens of one text, without [CLS]/[SEP]."""
        return self._tok.encode(text, add_special_tokens=False).tokens

    def convert_tokens_to_ids(self, tokens: Sequence[str]) -> list[int]:
        """Ids of tokens; unknown tokens map to ``unk_token_id``."""
        out = []
        for t in tokens:
            tid = self._tok.token_to_id(t)
            out.append(self.unk_token_id if tid is None else tid)
        return out

    def decode(self, ids: Sequence[int] | torch.Tensor, skip_special_tokens: bool = True) -> str:
        """Text of one id sequence (WordPiece ``##`` pieces re-joined)."""
        if isinstance(ids, torch.Tensor):
            ids = ids.tolist()
        return self._tok.decode(list(ids), skip_special_tokens=skip_special_tokens)

    def __len__(self) -> int:
        return self.vocab_size

    # ---------------------------------------------------------------- batched encoding
    def __call__(
        self,
        texts_a: str | Sequence[str],
        texts_b: str | Sequence[str] | None = None,
        *,
        max_length: int = 512,
        padding: str = "longest",
        pad_to_multiple_of: int | None = None,
        return_special_tokens_mask: bool = False,
    ) -> dict[str, torch.Tensor]:
        """Encode a batch of texts (or text pairs) into padded tensors.

        Args:
            texts_a: B first segments (a single str is a batch of one).
            texts_b: None for single-sentence tasks, else B second segments.
            max_length: every row is truncated to at most this many ids, specials included. Pairs are
                truncated longest-first (ids are dropped from the end of the currently longer segment;
                the `tokenizers` rule, i.e. what BertTokenizerFast does).
            padding: "longest" pads to the longest row of the batch, "max_length" to ``max_length``.
            pad_to_multiple_of: round the padded length up to a multiple (tensor-core friendly).
            return_special_tokens_mask: add ``special_tokens_mask`` (B, L) int64, 1 at [CLS]/[SEP]/
                padding, for MLM masking that must not touch them.

        Returns:
            dict with ``input_ids``, ``token_type_ids``, ``attention_mask`` — each (B, L) int64.
        """
        batch = self._as_batch(texts_a, "texts_a")
        if texts_b is not None:
            second = self._as_batch(texts_b, "texts_b")
            if len(second) != len(batch):
                raise ValueError(f"texts_a has {len(batch)} entries but texts_b has {len(second)}")
            batch = list(zip(batch, second))
        if padding not in ("longest", "max_length"):
            raise ValueError(f"padding must be 'longest' or 'max_length', got {padding!r}")
        min_len = 3 if texts_b is not None else 2  # room for the special tokens
        if not isinstance(max_length, int) or max_length < min_len:
            raise ValueError(f"max_length must be an int >= {min_len}, got {max_length!r}")
        width = max_length if padding == "max_length" else 0
        if pad_to_multiple_of and width:
            width = -(-width // pad_to_multiple_of) * pad_to_multiple_of
        if not batch:
            empty = torch.zeros((0, width), dtype=torch.long)
            out = {k: empty.clone() for k in ("input_ids", "token_type_ids", "attention_mask")}
            if return_special_tokens_mask:
                out["special_tokens_mask"] = empty.clone()
            return out
        with self._lock:
            self._tok.enable_truncation(max_length, strategy="longest_first")
            self._tok.enable_padding(
                pad_id=self.pad_token_id, pad_type_id=0, pad_token=SPECIAL_TOKENS["pad"],
                length=max_length if padding == "max_length" else None,
                pad_to_multiple_of=pad_to_multiple_of)
            try:
                # encode_batch_fast skips offset tracking, which nothing here needs.
                encs = self._tok.encode_batch_fast(batch, add_special_tokens=True)
            finally:
                self._tok.no_padding()
                self._tok.no_truncation()
        out = {
            "input_ids": _stack([e.ids for e in encs]),                # (B, L)
            "token_type_ids": _stack([e.type_ids for e in encs]),      # (B, L)
            "attention_mask": _stack([e.attention_mask for e in encs]),  # (B, L)
        }
        if return_special_tokens_mask:
            out["special_tokens_mask"] = _stack([e.special_tokens_mask for e in encs])
        return out

    @staticmethod
    def _as_batch(texts, name: str) -> list[str]:
        if isinstance(texts, str):
            return [texts]
        texts = list(texts)
        for i, t in enumerate(texts):
            if not isinstance(t, str):
                raise TypeError(f"{name}[{i}] must be a str, got {type(t).__name__}")
        return texts

    def __repr__(self) -> str:
        return f"WordPieceTokenizer(source={self.source!r}, vocab_size={self.vocab_size})"


def _stack(rows: list[list[int]]) -> torch.Tensor:
    """(B, L) int64 tensor from equal-length rows (numpy first: much faster than torch.tensor on lists)."""
    return torch.from_numpy(np.asarray(rows, dtype=np.int64))
