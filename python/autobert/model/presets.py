"""Named architectures: BERT-base, an AutoBERT-Zero-style hybrid base, and tiny configs for tests."""
from __future__ import annotations

from typing import Callable

from autobert.graph import AUTOBERT_ZERO, library
from autobert.model.config import LAYER_TYPES, ArchConfig, AttentionLayer, ConvLayer


def bert_base(**overrides) -> ArchConfig:
    """BERT-base: 12 standard attention layers, hidden 768, 12 heads, FFN 3072 (~85M backbone parameters)."""
    return ArchConfig(layers=tuple(AttentionLayer(library["standard"]) for _ in range(12)), **overrides)


# Lower layers are convolutions: the AutoBERT-Zero paper finds searched backbones put local
# (conv) operators low and global attention high. Each of the six abz_ graphs appears at least once.
_ABZ_LAYOUT: tuple = (ConvLayer(3), ConvLayer(7), AttentionLayer(library[AUTOBERT_ZERO[0]]), ConvLayer(11),
                      AttentionLayer(library[AUTOBERT_ZERO[1]]), AttentionLayer(library[AUTOBERT_ZERO[2]]),
                      ConvLayer(15), AttentionLayer(library[AUTOBERT_ZERO[3]]),
                      AttentionLayer(library[AUTOBERT_ZERO[4]]), AttentionLayer(library[AUTOBERT_ZERO[5]]),
                      AttentionLayer(library[AUTOBERT_ZERO[0]]), AttentionLayer(library[AUTOBERT_ZERO[4]]))


def autobert_zero_base(**overrides) -> ArchConfig:
    """An AutoBERT-Zero-style base model: BERT-base sizes, 4 conv + 8 attention layers over the six abz_ graphs.

    A representative hybrid in the spirit of the paper's searched backbone, not its exact layer list.
    """
    return ArchConfig(layers=_ABZ_LAYOUT, **overrides)


def tiny(layers=None, **overrides) -> ArchConfig:
    """A test-sized model (vocab 97, hidden 32, 4 heads, FFN 64, 64 positions).

    ``layers`` defaults to [standard attention, conv k=3]; entries may be graph names/expressions
    (attention layers), odd ints (conv kernels) or layer values (e.g. ``FlexiLayer``).
    """
    if layers is None:
        layers = ("standard", 3)
    choices = tuple(ConvLayer(x) if isinstance(x, int) and not isinstance(x, bool)
                    else x if isinstance(x, LAYER_TYPES) else AttentionLayer(x) for x in layers)
    sizes = dict(vocab_size=97, hidden=32, heads=4, ffn=64, max_positions=64, type_vocab_size=2, dropout=0.1)
    sizes.update(overrides)
    return ArchConfig(layers=choices, **sizes)


PRESETS: dict[str, Callable[..., ArchConfig]] = {
    "bert-base": bert_base,
    "autobert-zero-base": autobert_zero_base,
    "tiny": tiny,
}
