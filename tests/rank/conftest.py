"""Shared inputs of the ranking tests: the committed 20-entry NAS-Bench-BERT fixture, the full
benchmark when ../shared/data is present, and a tiny vocab + corpus for probing models in CI."""
from __future__ import annotations

import random
from pathlib import Path

import pytest

from rank_paths import SHARED

_WORDS = "model layer width depth head token text rank score train test small large fast slow good".split()


@pytest.fixture(scope="session")
def text_files(tmp_path_factory) -> tuple[Path, Path]:
    """(vocab.txt, corpus.txt): every corpus word is in the vocab, so no [UNK]."""
    folder = tmp_path_factory.mktemp("text")
    vocab = folder / "vocab.txt"
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", ".", *_WORDS]) + "\n")
    rng = random.Random(0)
    corpus = folder / "corpus.txt"
    corpus.write_text("\n".join(" ".join(rng.choices(_WORDS, k=rng.randint(5, 15))) + " ." for _ in range(400)))
    return vocab, corpus


@pytest.fixture(scope="session")
def shared_benchmark() -> Path:
    folder = SHARED / "nas-bench-bert"
    if not (folder / "BERT_benchmark.json").is_file():
        pytest.skip("needs ../shared/data/nas-bench-bert")
    return folder
