"""Projections between widths: where a layer's width differs from the stream entering it.

The stream starts at the embedding width; before layer i a ``Linear(previous width, width_i)``
is inserted where the two differ, and after the last layer one back to ``ArchConfig.hidden`` where
that differs, so a backbone always returns (B, N, hidden) and the heads never see the per-layer
widths. An architecture at one width has no projection (and no extra state-dict entry).
"""
from __future__ import annotations

from torch import nn

from autobert.model.flexi_layer import layer_sizes

OUTPUT = "out"  # key of the projection after the last layer


def projection_shapes(config) -> dict[str, tuple[int, int]]:
    """{"<layer index>" | "out": (in width, out width)} for every projection ``config`` needs."""
    shapes, width = {}, config.embedding_width
    for i, layer in enumerate(config.layers):
        target = layer_sizes(config, layer).hidden
        if target != width:
            shapes[str(i)] = (width, target)
        width = target
    if width != config.hidden:
        shapes[OUTPUT] = (width, config.hidden)
    return shapes


def width_projections(config) -> nn.ModuleDict:
    """The projections of ``config`` as Linear layers, keyed as in ``projection_shapes``."""
    return nn.ModuleDict({key: nn.Linear(a, b) for key, (a, b) in projection_shapes(config).items()})
