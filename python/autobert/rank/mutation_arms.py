"""Mutation arms over the FlexiBERT labels of NAS-Bench-BERT (the arms OP-NAS's priority chooses from).

An arm changes one kind of choice: the hidden size, the depth, or one layer's operation, heads,
FFN dimension or FFN depth. ``Choices`` holds the values each field takes (read from the table,
so the arms never leave the benchmark's space); ``mutate`` draws a new value different from the
current one.
"""
from __future__ import annotations

import dataclasses
import random
from typing import Sequence

from autobert.rank.benchmark import FlexiEncoding

ARMS = ("hidden", "depth", "operation", "heads", "ffn_dim", "ffn_layers")
_LAYER_FIELDS = {"operation": "operation", "heads": "heads", "ffn_dim": "ffn_dim", "ffn_layers": "ffn_layers"}


@dataclasses.dataclass(frozen=True)
class Choices:
    """The values every field takes in a set of encodings (sorted)."""

    hidden: tuple
    depth: tuple
    operation: tuple
    heads: tuple
    ffn_dim: tuple
    ffn_layers: tuple

    @classmethod
    def of(cls, encodings: Sequence[FlexiEncoding]) -> "Choices":
        layers = [layer for e in encodings for layer in e.layers]
        return cls(tuple(sorted({e.hidden for e in encodings})), tuple(sorted({len(e.layers) for e in encodings})),
                   tuple(sorted({la.operation for la in layers}, key=str)), tuple(sorted({la.heads for la in layers})),
                   tuple(sorted({la.ffn_dim for la in layers})), tuple(sorted({la.ffn_layers for la in layers})))


def _other(values: tuple, current, rng: random.Random):
    options = [v for v in values if v != current]
    return rng.choice(options) if options else current


def mutate(encoding: FlexiEncoding, arm: str, choices: Choices, rng: random.Random) -> FlexiEncoding:
    """``encoding`` with the choice ``arm`` changed (a new depth drops top layers or repeats random ones)."""
    if arm == "hidden":
        return encoding._replace(hidden=_other(choices.hidden, encoding.hidden, rng))
    layers = list(encoding.layers)
    if arm == "depth":
        depth = _other(choices.depth, len(layers), rng)
        while len(layers) < depth:
            layers.append(rng.choice(encoding.layers))
        return encoding._replace(layers=tuple(layers[:depth]))
    if arm not in _LAYER_FIELDS:
        raise ValueError(f"unknown arm {arm!r}; arms are {ARMS}")
    i = rng.randrange(len(layers))
    field = _LAYER_FIELDS[arm]
    layers[i] = layers[i]._replace(**{field: _other(getattr(choices, arm), getattr(layers[i], field), rng)})
    return encoding._replace(layers=tuple(layers))
