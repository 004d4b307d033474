"""Parameter and FLOP counts of an architecture, from the config alone (no module is built).

FLOP convention (as ``autobert.graph.flops``): a (p,q)@(q,r) matmul is 2pqr; elementwise ops and
residual adds 1 per output element; LayerNorm 5 per element; GELU and GLU 1 per output element;
embedding lookups free. Attention graphs are counted per head with ``autobert.graph.flops``.
"""
from __future__ import annotations

from typing import Optional

from autobert.graph import flops as graph_flops
from autobert.graph import live_inputs
from autobert.model.config import ArchConfig, AttentionLayer, ConvLayer

_LN = 5  # FLOPs per element of a LayerNorm (mean, variance, normalise, scale, shift)


def _linear_params(fan_in: int, fan_out: int) -> int:
    return fan_in * fan_out + fan_out


def mixer_parameters(config: ArchConfig, layer) -> int:
    """Parameters of one layer's mixer: only the projections of the inputs that influence an attention
    graph (``live_inputs``), plus W_O."""
    h = config.hidden
    if isinstance(layer, AttentionLayer):
        return (len(live_inputs(layer.graph)) + 1) * _linear_params(h, h)
    return _linear_params(h, 2 * h) + config.heads * layer.kernel + _linear_params(h, h)


def count_parameters(config: ArchConfig, head: Optional[str] = None, num_labels: int = 2) -> int:
    """Parameters of the backbone, or of backbone + head ("mlm" or "classification")."""
    h, v = config.hidden, config.vocab_size
    total = (v + config.max_positions + config.type_vocab_size) * h + 2 * h  # embeddings + LayerNorm
    per_block = 2 * 2 * h + _linear_params(h, config.ffn) + _linear_params(config.ffn, h)  # 2 LayerNorms + FFN
    total += sum(per_block + mixer_parameters(config, layer) for layer in config.layers)
    if head == "mlm":  # transform + LayerNorm + decoder bias; the decoder matrix is the word embedding
        total += _linear_params(h, h) + 2 * h + v
    elif head == "classification":
        total += _linear_params(h, h) + _linear_params(h, num_labels)
    elif head is not None:
        raise ValueError(f"head must be None, 'mlm' or 'classification', got {head!r}")
    return total


def mixer_flops(config: ArchConfig, layer, n: int) -> int:
    """Forward FLOPs of one layer's mixer on one sequence of n tokens."""
    h = config.hidden
    if isinstance(layer, AttentionLayer):
        proj = (len(live_inputs(layer.graph)) + 1) * 2 * n * h * h
        return proj + config.heads * graph_flops(layer.graph, n, config.head_dim)
    assert isinstance(layer, ConvLayer)
    # in-projection, GLU, softmax-normalised taps (negligible), depthwise conv, out-projection
    return 2 * n * h * 2 * h + n * h + 2 * n * h * layer.kernel + 2 * n * h * h


def count_flops(config: ArchConfig, n: int) -> int:
    """Forward FLOPs of the backbone (no head) on one sequence of ``n`` tokens."""
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be an int >= 1, got {n!r}")
    h, f = config.hidden, config.ffn
    total = 2 * n * h + _LN * n * h  # embedding sums + LayerNorm
    ffn = 2 * 2 * n * h * f + n * f  # two matmuls + GELU
    block = ffn + 2 * n * h + 2 * _LN * n * h  # + two residual adds + two LayerNorms
    return total + sum(block + mixer_flops(config, layer, n) for layer in config.layers)
