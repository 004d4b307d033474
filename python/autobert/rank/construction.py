"""Two models for one NAS-Bench-BERT encoding: "as trained" and "as labelled".

As trained (the default for scoring) is what the benchmark's released TensorFlow code built: it
selects operation branches with ``operation_type is "SA"`` (identity, not equality), which never
holds for strings read from JSON, so every layer ran scaled dot-product attention with
``num_operation_heads`` heads whatever its label says; the FFN is hidden -> 4 hidden ->
(num_feed_forward - 1) x feed_forward_dimension -> hidden; embeddings are 128 wide with a
128 -> hidden projection (ELECTRA-small). As labelled honours every label with its FlexiBERT
meaning: the labelled operation, and an FFN of num_feed_forward inner layers of
feed_forward_dimension. Both have 512 positions and, by default, BERT's uncased vocabulary size
(the benchmark's); a probe with another vocabulary passes its size.
"""
from __future__ import annotations

from typing import Callable

from autobert.model.config import ArchConfig
from autobert.model.flexi_layer import FlexiLayer
from autobert.rank.benchmark import FlexiEncoding, LayerLabels

EMBEDDING_SIZE = 128
VOCAB_SIZE = 30522
MAX_POSITIONS = 512


def _trained_layer(hidden: int, layer: LayerLabels) -> FlexiLayer:
    return FlexiLayer("sdp", heads=layer.heads, ffn=(4 * hidden,) + (layer.ffn_dim,) * (layer.ffn_layers - 1))


def _labelled_layer(hidden: int, layer: LayerLabels) -> FlexiLayer:
    return FlexiLayer(layer.operation, heads=layer.heads, ffn=(layer.ffn_dim,) * layer.ffn_layers)


def _build(encoding: FlexiEncoding, make_layer: Callable[[int, LayerLabels], FlexiLayer],
           vocab_size: int) -> ArchConfig:
    h = encoding.hidden
    # Global heads/ffn are only defaults (layers carry their own); the first layer's keep them canonical.
    first = make_layer(h, encoding.layers[0])
    return ArchConfig(layers=tuple(make_layer(h, layer) for layer in encoding.layers), vocab_size=vocab_size,
                      hidden=h, heads=first.heads, ffn=first.ffn[0], max_positions=MAX_POSITIONS,
                      embedding_size=EMBEDDING_SIZE)


def as_trained(encoding: FlexiEncoding, vocab_size: int = VOCAB_SIZE) -> ArchConfig:
    """The model the benchmark's training code built for ``encoding`` (operation labels ignored)."""
    return _build(encoding, _trained_layer, vocab_size)


def as_labelled(encoding: FlexiEncoding, vocab_size: int = VOCAB_SIZE) -> ArchConfig:
    """The model ``encoding``'s labels describe in the FlexiBERT space."""
    return _build(encoding, _labelled_layer, vocab_size)


CONSTRUCTIONS: dict[str, Callable[..., ArchConfig]] = {"as-trained": as_trained, "as-labelled": as_labelled}


def construct(encoding: FlexiEncoding, construction: str = "as-trained", vocab_size: int = VOCAB_SIZE) -> ArchConfig:
    """The architecture of ``encoding`` under ``construction`` ("as-trained" or "as-labelled")."""
    if construction not in CONSTRUCTIONS:
        raise ValueError(f"construction must be one of {sorted(CONSTRUCTIONS)}, got {construction!r}")
    return CONSTRUCTIONS[construction](encoding, vocab_size)
