"""Training utilities: tokenisation (more to come: MLM pretraining, fine-tuning loops)."""
from .tokenizer import SPECIAL_TOKENS, WordPieceTokenizer, read_vocab

__all__ = ["SPECIAL_TOKENS", "WordPieceTokenizer", "read_vocab"]
