"""The module that computes a FlexiBERT ``Operation`` at a given width and head count."""
from __future__ import annotations

from torch import nn

from autobert.graph import library
from autobert.model.attention import GraphAttention
from autobert.model.linear_transform import LinearTransform
from autobert.model.operation import Operation
from autobert.model.span_conv import DynamicSpanConv
from autobert.model.weighted_attention import WeightedMultiplicativeAttention


def operation_mixer(operation: Operation, hidden: int, heads: int) -> nn.Module:
    """x (B, N, hidden), key_padding_mask -> (B, N, hidden) for ``operation``.

    SDP is this project's standard attention graph, so it runs through the fused kernels.
    """
    if operation.kind == "sdp":
        return GraphAttention(hidden, heads, library["standard"])
    if operation.kind == "wma":
        return WeightedMultiplicativeAttention(hidden, heads)
    if operation.kind in ("dft", "dct"):
        return LinearTransform(hidden, heads, operation.kind)
    return DynamicSpanConv(hidden, heads, operation.kernel)
