"""Mutations of whole architectures: intra-layer graph edits and inter-layer changes.

An *arm* is what the operation priority chooses between:

- an op from ``autobert.graph.MUTATION_OPS``: insert it into, or replace an op of, one attention
  layer's graph (``mutate_with_info`` with that op);
- ``"delete"`` / ``"rewire"``: delete an op of / rewire an input of one attention graph;
- ``"to_conv"``: turn one attention layer into a conv layer with a random kernel;
- ``"to_attention"``: turn one conv layer into an attention layer with a graph drawn from the space;
- ``"kernel"``: give one conv layer another kernel size.

Structural arms compete in the same UCB as the ops, so the search also learns how often changing
a layer's type or kernel pays off. The two directions of a layer-type change are separate arms:
their rewards have opposite signs wherever one kind of layer is better, and one arm for both
would average them away.
"""
from __future__ import annotations

import dataclasses
import random
from collections import Counter
from typing import Optional, Sequence

from autobert.graph import MUTATION_OPS, GraphError, mutate_with_info
from autobert.model.config import AttentionLayer, ConvLayer, LayerChoice
from autobert.model.space import SearchSpace

GRAPH_ARMS = ("delete", "rewire")
LAYER_ARMS = ("to_conv", "to_attention", "kernel")
ARMS: tuple[str, ...] = tuple(MUTATION_OPS) + GRAPH_ARMS + LAYER_ARMS

Layers = tuple[LayerChoice, ...]


class MutationError(ValueError):
    """No mutation with the requested arm exists for this architecture."""


@dataclasses.dataclass(frozen=True)
class ArchMutation:
    """What a mutation did: the arm, the graph mutation kind (insert/replace/delete/rewire/flip/kernel)
    and the layer it changed."""

    arm: str
    kind: str
    layer: int


def _attention_layers(layers: Layers) -> list[int]:
    return [i for i, lay in enumerate(layers) if isinstance(lay, AttentionLayer)]


def _conv_layers(layers: Layers) -> list[int]:
    return [i for i, lay in enumerate(layers) if isinstance(lay, ConvLayer)]


def feasible_arms(layers: Sequence[LayerChoice], space: SearchSpace) -> list[str]:
    """Arms that can apply to ``layers`` at all (a cheap structural check; an op arm may still fail)."""
    layers = tuple(layers)
    out: list[str] = []
    if _attention_layers(layers):
        out += list(MUTATION_OPS) + list(GRAPH_ARMS)
        if space.conv_prob > 0 and space.kernel_sizes:
            out.append("to_conv")
    if _conv_layers(layers):
        if space.conv_prob < 1:
            out.append("to_attention")
        if len(space.kernel_sizes) > 1:
            out.append("kernel")
    return out


def _with(layers: Layers, i: int, new: LayerChoice) -> Layers:
    return layers[:i] + (new,) + layers[i + 1:]


def _graph_mutation(layers: Layers, arm: str, rng: random.Random, space: SearchSpace, rejected: Counter):
    order = _attention_layers(layers)
    rng.shuffle(order)
    op, kind = (None, arm) if arm in GRAPH_ARMS else (arm, None)
    for i in order:  # the first attention layer where the arm applies
        try:
            graph, info = mutate_with_info(layers[i].graph, rng, kind=kind, op=op, max_nodes=space.max_nodes,
                                           rejected=rejected)
        except GraphError:
            continue
        return _with(layers, i, AttentionLayer(graph)), ArchMutation(arm, info.kind, i)
    raise MutationError(f"arm {arm!r} applies to no attention layer")


def _to_conv(layers: Layers, rng: random.Random, space: SearchSpace):
    candidates = _attention_layers(layers)
    if not candidates or not space.kernel_sizes or space.conv_prob == 0:
        raise MutationError("no attention layer to turn into a conv layer, or no conv in this space")
    i = rng.choice(candidates)
    return _with(layers, i, ConvLayer(rng.choice(space.kernel_sizes))), ArchMutation("to_conv", "to_conv", i)


def _to_attention(layers: Layers, rng: random.Random, space: SearchSpace, rejected: Counter):
    candidates = _conv_layers(layers)
    if not candidates or space.conv_prob == 1:
        raise MutationError("no conv layer to turn into an attention layer, or no attention in this space")
    i = rng.choice(candidates)
    layer = AttentionLayer(space.sample_graph(rng, rejected))
    return _with(layers, i, layer), ArchMutation("to_attention", "to_attention", i)


def _kernel(layers: Layers, rng: random.Random, space: SearchSpace):
    convs = _conv_layers(layers)
    if not convs or len(space.kernel_sizes) < 2:
        raise MutationError("no conv layer, or a single kernel size in the space")
    i = rng.choice(convs)
    k = rng.choice([k for k in space.kernel_sizes if k != layers[i].kernel])
    return _with(layers, i, ConvLayer(k)), ArchMutation("kernel", "kernel", i)


def mutate_arch(layers: Sequence[LayerChoice], arm: str, rng: random.Random, space: SearchSpace,
                rejected: Optional[Counter] = None) -> tuple[Layers, ArchMutation]:
    """A child of ``layers`` changed by ``arm`` (see the module docstring); MutationError when impossible.
    ``rejected`` (a Counter) counts the degenerate graphs redrawn on the way."""
    layers = tuple(layers)
    rejected = Counter() if rejected is None else rejected
    if arm in MUTATION_OPS or arm in GRAPH_ARMS:
        return _graph_mutation(layers, arm, rng, space, rejected)
    if arm == "to_conv":
        return _to_conv(layers, rng, space)
    if arm == "to_attention":
        return _to_attention(layers, rng, space, rejected)
    if arm == "kernel":
        return _kernel(layers, rng, space)
    raise MutationError(f"unknown arm {arm!r}; arms are {ARMS}")


def describe_layers(layers: Sequence[LayerChoice]) -> list[str]:
    """One string per layer: the graph expression or ``conv k=K``."""
    return [f"conv k={lay.kernel}" if isinstance(lay, ConvLayer) else lay.graph.to_expr() for lay in layers]

