"""Data shipped inside the package, so the main commands run with no data arguments.

``default_corpus()`` is WikiText-2's validation split (CC BY-SA 3.0) and ``default_vocab()`` the
BERT uncased WordPiece vocabulary (Apache-2.0); attribution and licences are in ``NOTICE.md``
beside them. ``resolve_data`` fills a missing corpus/vocab with these and logs that it did.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Optional

__all__ = ["default_corpus", "default_vocab", "resolve_data", "embedded_note", "NOTICE"]

log = logging.getLogger(__name__)

_HERE = Path(__file__).resolve().parent
NOTICE = _HERE / "NOTICE.md"


def _shipped(name: str) -> Path:
    path = _HERE / name
    if not path.is_file():  # an install that dropped the package data
        raise FileNotFoundError(f"the embedded data file {path} is missing from this installation; "
                                f"reinstall autobert or pass the file explicitly")
    return path


def default_corpus() -> Path:
    """WikiText-2 validation text (3,760 lines, ~1.1 MB), the embedded MLM corpus."""
    return _shipped("wikitext-2-valid.txt")


def default_vocab() -> Path:
    """The BERT uncased WordPiece vocabulary (30,522 entries), the embedded vocab.txt."""
    return _shipped("bert-base-uncased-vocab.txt")


def resolve_data(corpus: Optional[str], vocab: Optional[str]) -> tuple[str, str, list[str]]:
    """(corpus, vocab, names of the ones that were missing and now point at the embedded files)."""
    filled = []
    if not corpus:
        corpus = str(default_corpus())
        filled.append("corpus")
        log.info("no corpus given: using the embedded WikiText-2 validation text %s", corpus)
    if not vocab:
        vocab = str(default_vocab())
        filled.append("vocab")
        log.info("no vocab given: using the embedded BERT uncased vocabulary %s", vocab)
    return corpus, vocab, filled


_DESCRIPTIONS = {"corpus": "WikiText-2 validation text, CC BY-SA 3.0", "vocab": "BERT uncased vocabulary"}


def embedded_note(name: str, path) -> str:
    """The CLI's line for a flag that fell back to the embedded file (``name``: corpus or vocab)."""
    return f"no --{name} given: using the embedded {_DESCRIPTIONS[name]} ({path})"
