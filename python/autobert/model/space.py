"""``SearchSpace``: which choices a layer has and how to draw them.

Both the supernet's samplers and the search use it (the supernet never imports ``search``).
A layer is an attention graph (one of ``graphs``, or with ``random_graph_prob`` / ``mutation_prob``
a random or mutated graph of at most ``max_nodes`` ops; never a degenerate one, see
``autobert.graph.validity``) or a conv layer with a kernel from ``kernel_sizes``. Every draw takes a ``random.Random`` so runs are reproducible.
"""
from __future__ import annotations

import dataclasses
import random
from collections import Counter
from typing import Optional, Sequence

from autobert.graph import Graph, GraphError, library, mutate, random_graph, validity
from autobert.model.config import AttentionLayer, ConvLayer, LayerChoice, as_graph

DEFAULT_KERNELS = (3, 5, 7, 9, 15, 31)


def _check_prob(name: str, p) -> None:
    if not isinstance(p, (int, float)) or isinstance(p, bool) or not 0.0 <= p <= 1.0:
        raise ValueError(f"SearchSpace.{name} must be a probability in [0, 1], got {p!r}")


@dataclasses.dataclass(frozen=True)
class SearchSpace:
    """The per-layer choices of an ``n_layers`` backbone. ``graphs`` accept Graphs, library names or expressions."""

    n_layers: int
    graphs: tuple[Graph, ...] = tuple(library.values())  # attention graphs a layer may take
    kernel_sizes: tuple[int, ...] = DEFAULT_KERNELS       # odd conv kernels; the supernet holds the largest
    max_nodes: int = 12                                  # op-node limit for random and mutated graphs
    conv_prob: float = 0.5                               # chance a uniformly drawn layer is a conv layer
    random_graph_prob: float = 0.0                       # chance a drawn attention layer gets a random graph
    mutation_prob: float = 0.0                           # chance a single change mutates a graph (vs. swap)

    def __post_init__(self):
        if not isinstance(self.n_layers, int) or isinstance(self.n_layers, bool) or self.n_layers < 1:
            raise ValueError(f"SearchSpace.n_layers must be an int >= 1, got {self.n_layers!r}")
        if not isinstance(self.max_nodes, int) or self.max_nodes < 1:
            raise ValueError(f"SearchSpace.max_nodes must be an int >= 1, got {self.max_nodes!r}")
        for name in ("conv_prob", "random_graph_prob", "mutation_prob"):
            _check_prob(name, getattr(self, name))
        graphs = tuple(as_graph(g, f"SearchSpace.graphs[{i}]") for i, g in enumerate(self.graphs))
        for i, g in enumerate(graphs):
            if not validity(g).ok:
                raise ValueError(f"SearchSpace.graphs[{i}]: {g.to_expr()} is degenerate: {validity(g).reason}")
        kernels = tuple(sorted(set(self.kernel_sizes)))
        for k in kernels:
            ConvLayer(k)  # validates: odd int >= 1
        object.__setattr__(self, "graphs", graphs)
        object.__setattr__(self, "kernel_sizes", kernels)
        if self.conv_prob > 0 and not kernels:
            raise ValueError("SearchSpace.kernel_sizes is empty but conv_prob > 0")
        if self.conv_prob < 1 and not graphs and self.random_graph_prob == 0:
            raise ValueError("SearchSpace.graphs is empty and random_graph_prob is 0: attention layers have no choice")

    @property
    def max_kernel(self) -> int:
        return max(self.kernel_sizes) if self.kernel_sizes else 1

    @property
    def open_graphs(self) -> bool:
        """Whether graphs outside ``graphs`` (random or mutated) belong to the space."""
        return self.random_graph_prob > 0 or self.mutation_prob > 0

    # ---- drawing ----
    def sample_graph(self, rng: random.Random, rejected: Optional[Counter] = None) -> Graph:
        """A library graph of the space, or (``random_graph_prob``) a random valid graph; ``rejected``
        counts the degenerate random draws that were redrawn (see ``random_graph``)."""
        if not self.graphs or (self.random_graph_prob > 0 and rng.random() < self.random_graph_prob):
            return random_graph(rng, self.max_nodes, rejected=rejected)
        return rng.choice(self.graphs)

    def sample_layer(self, rng: random.Random, rejected: Optional[Counter] = None) -> LayerChoice:
        if self.kernel_sizes and rng.random() < self.conv_prob:
            return ConvLayer(rng.choice(self.kernel_sizes))
        return AttentionLayer(self.sample_graph(rng, rejected))

    def sample(self, rng: random.Random, rejected: Optional[Counter] = None) -> tuple[LayerChoice, ...]:
        """A uniformly drawn architecture: ``n_layers`` independent layer choices."""
        _check_rng(rng)
        return tuple(self.sample_layer(rng, rejected) for _ in range(self.n_layers))

    def neighbour(self, layers: Sequence[LayerChoice], rng: random.Random, tries: int = 64) -> tuple[LayerChoice, ...]:
        """``layers`` with exactly one layer changed: another graph, a mutated graph (one op changed),
        another kernel, or attention <-> conv."""
        _check_rng(rng)
        layers = tuple(layers)
        self.check(layers)
        for _ in range(tries):
            i = rng.randrange(len(layers))
            new = self._change(layers[i], rng)
            if new is not None and new != layers[i]:
                return layers[:i] + (new,) + layers[i + 1:]
        raise ValueError(f"no single-layer change found in {tries} tries (is the space a single point?)")

    def _change(self, layer: LayerChoice, rng: random.Random):
        flip = rng.random() < 0.25
        if isinstance(layer, ConvLayer):
            if flip and self.conv_prob < 1:
                return AttentionLayer(self.sample_graph(rng))
            return ConvLayer(rng.choice(self.kernel_sizes))
        if flip and self.kernel_sizes and self.conv_prob > 0:
            return ConvLayer(rng.choice(self.kernel_sizes))
        if self.mutation_prob > 0 and rng.random() < self.mutation_prob:
            try:
                return AttentionLayer(mutate(layer.graph, rng, max_nodes=self.max_nodes))
            except GraphError:  # nothing to mutate within max_nodes: fall back to a swap
                pass
        return AttentionLayer(self.sample_graph(rng))

    # ---- membership ----
    def check(self, layers: Sequence[LayerChoice], allow_degenerate: bool = False) -> None:
        """ValueError naming the layer when ``layers`` is not in the space (a degenerate attention
        graph is not, unless ``allow_degenerate``: a search records such a candidate as failed)."""
        layers = tuple(layers)
        if len(layers) != self.n_layers:
            raise ValueError(f"architecture has {len(layers)} layers; the space has {self.n_layers}")
        for i, layer in enumerate(layers):
            if isinstance(layer, ConvLayer):
                if layer.kernel not in self.kernel_sizes:
                    raise ValueError(f"layers[{i}]: kernel {layer.kernel} not in kernel_sizes {self.kernel_sizes}")
            elif isinstance(layer, AttentionLayer):
                if not allow_degenerate and not validity(layer.graph).ok:
                    raise ValueError(degeneracy(layers))
                if layer.graph.num_ops > self.max_nodes and layer.graph not in self.graphs:
                    raise ValueError(f"layers[{i}]: graph has {layer.graph.num_ops} ops > max_nodes {self.max_nodes}")
                if not self.open_graphs and layer.graph not in self.graphs:
                    raise ValueError(f"layers[{i}]: graph {layer.graph.to_expr()} is not one of the space's graphs")
            else:
                raise ValueError(f"layers[{i}] must be an AttentionLayer or ConvLayer, got {type(layer).__name__}")

    def __contains__(self, layers) -> bool:
        try:
            self.check(layers)
        except ValueError:
            return False
        return True


def degeneracy(layers: Sequence[LayerChoice]) -> Optional[str]:
    """Why an architecture must not be evaluated: its first degenerate attention layer
    (``autobert.graph.validity``), or None."""
    for i, layer in enumerate(layers):
        if isinstance(layer, AttentionLayer):
            reason = validity(layer.graph).reason
            if reason is not None:
                return f"degenerate: layers[{i}] {layer.graph.to_expr()}: {reason}"
    return None


def _check_rng(rng) -> None:
    if not isinstance(rng, random.Random):
        raise TypeError(f"rng must be a random.Random, got {type(rng).__name__}")
