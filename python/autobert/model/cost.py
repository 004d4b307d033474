"""Parameter and FLOP counts of an architecture, from the config alone (no module is built).

FLOP convention (as ``autobert.graph.flops``): a (p,q)@(q,r) matmul is 2pqr; elementwise ops and
residual adds 1 per output element; LayerNorm 5 per element; GELU and GLU 1 per output element;
embedding lookups free. Attention graphs are counted per head with ``autobert.graph.flops``. A
2-D FFT of an (N, d) block counts 5 N d log2(N d) (the usual radix-2 estimate); the DCT is counted
as the two dense matmuls it runs as.
"""
from __future__ import annotations

import math
from typing import Optional

from autobert.graph import flops as graph_flops
from autobert.graph import library, live_inputs
from autobert.model.config import ArchConfig, AttentionLayer, ConvLayer
from autobert.model.flexi_layer import FlexiLayer, LayerSizes, layer_sizes
from autobert.model.operation import Operation
from autobert.model.width import projection_shapes

_LN = 5  # FLOPs per element of a LayerNorm (mean, variance, normalise, scale, shift)


def _linear_params(fan_in: int, fan_out: int) -> int:
    return fan_in * fan_out + fan_out


def operation_parameters(operation: Operation, sizes: LayerSizes) -> int:
    """Parameters of a FlexiBERT operation's mixer at ``sizes``."""
    h, heads = sizes.hidden, sizes.heads
    if operation.kind == "sdp":
        return 4 * _linear_params(h, h)
    if operation.kind == "wma":
        return 4 * _linear_params(h, h) + heads * sizes.head_dim ** 2
    if operation.family == "LT":
        return _linear_params(h, h)
    k = operation.kernel  # dsc: q, pointwise, v, out projections + depthwise taps + kernel generator
    return 4 * _linear_params(h, h) + h * k + _linear_params(h, heads * k)


def mixer_parameters(config: ArchConfig, layer) -> int:
    """Parameters of one layer's mixer: only the projections of the inputs that influence an attention
    graph (``live_inputs``), plus W_O."""
    h = config.hidden
    if isinstance(layer, FlexiLayer):
        return operation_parameters(layer.operation, layer_sizes(config, layer))
    if isinstance(layer, AttentionLayer):
        return (len(live_inputs(layer.graph)) + 1) * _linear_params(h, h)
    return _linear_params(h, 2 * h) + config.heads * layer.kernel + _linear_params(h, h)


def _stack(sizes: LayerSizes) -> tuple[int, ...]:
    return (sizes.hidden, *sizes.ffn, sizes.hidden)


def block_parameters(config: ArchConfig, layer) -> int:
    """Parameters of one block: mixer, FFN stack and two LayerNorms."""
    widths = _stack(layer_sizes(config, layer))
    ffn = sum(_linear_params(a, b) for a, b in zip(widths, widths[1:]))
    return mixer_parameters(config, layer) + ffn + 2 * 2 * widths[0]


def count_parameters(config: ArchConfig, head: Optional[str] = None, num_labels: int = 2) -> int:
    """Parameters of the backbone, or of backbone + head ("mlm" or "classification")."""
    h, e, v = config.hidden, config.embedding_width, config.vocab_size
    total = (v + config.max_positions + config.type_vocab_size) * e + 2 * e  # embeddings + LayerNorm
    total += sum(_linear_params(a, b) for a, b in projection_shapes(config).values())
    total += sum(block_parameters(config, layer) for layer in config.layers)
    if head == "mlm":  # transform + LayerNorm + decoder bias; the decoder matrix is the word embedding
        total += _linear_params(h, e) + 2 * e + v
    elif head == "classification":
        total += _linear_params(h, h) + _linear_params(h, num_labels)
    elif head is not None:
        raise ValueError(f"head must be None, 'mlm' or 'classification', got {head!r}")
    return total


def operation_flops(operation: Operation, sizes: LayerSizes, n: int) -> int:
    """Forward FLOPs of a FlexiBERT operation's mixer on one sequence of n tokens."""
    h, heads, d = sizes.hidden, sizes.heads, sizes.head_dim
    proj = 2 * n * h * h
    if operation.kind in ("sdp", "wma"):
        weighted = heads * 2 * n * d * d if operation.kind == "wma" else 0
        return 4 * proj + weighted + heads * graph_flops(library["standard"], n, d)
    if operation.kind == "dft":
        return proj + round(5 * n * h * math.log2(n * d)) if n * d > 1 else proj
    if operation.kind == "dct":
        return proj + 2 * n * n * h + 2 * n * h * d
    k = operation.kernel  # dsc: q, pointwise, v, out projections; depthwise; q*keys; generator; softmax; sum
    return 4 * proj + 2 * n * h * k + n * h + 2 * n * h * heads * k + n * heads * k + 2 * n * h * k


def mixer_flops(config: ArchConfig, layer, n: int) -> int:
    """Forward FLOPs of one layer's mixer on one sequence of n tokens."""
    h = config.hidden
    if isinstance(layer, FlexiLayer):
        return operation_flops(layer.operation, layer_sizes(config, layer), n)
    if isinstance(layer, AttentionLayer):
        proj = (len(live_inputs(layer.graph)) + 1) * 2 * n * h * h
        return proj + config.heads * graph_flops(layer.graph, n, config.head_dim)
    assert isinstance(layer, ConvLayer)
    # in-projection, GLU, softmax-normalised taps (negligible), depthwise conv, out-projection
    return 2 * n * h * 2 * h + n * h + 2 * n * h * layer.kernel + 2 * n * h * h


def block_flops(config: ArchConfig, layer, n: int) -> int:
    """Forward FLOPs of one block: mixer, FFN stack (+ GELUs), two residual adds and two LayerNorms."""
    widths = _stack(layer_sizes(config, layer))
    ffn = sum(2 * n * a * b for a, b in zip(widths, widths[1:])) + n * sum(widths[1:-1])
    return mixer_flops(config, layer, n) + ffn + 2 * n * widths[0] + 2 * _LN * n * widths[0]


def count_flops(config: ArchConfig, n: int) -> int:
    """Forward FLOPs of the backbone (no head) on one sequence of ``n`` tokens."""
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be an int >= 1, got {n!r}")
    e = config.embedding_width
    total = 2 * n * e + _LN * n * e  # embedding sums + LayerNorm
    total += sum(2 * n * a * b for a, b in projection_shapes(config).values())
    return total + sum(block_flops(config, layer, n) for layer in config.layers)
