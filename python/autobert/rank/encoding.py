"""Architecture encodings for surrogates: a fixed-length feature vector per architecture.

Per layer slot (up to ``max_layers``; absent layers are zeros): present, log2 width, log2 heads,
one-hot operation (sdp, wma, dft, dct, dsc, attention graph, conv), span/kernel / 16, FFN depth,
log2 of each FFN inner width (up to 3). Globals: depth, log2 embedding width, log2 parameters.
The encoding is of the *model* (an ArchConfig), so architectures that construct the same model
encode the same. Proxy values (label-free) may be appended as extra columns.
"""
from __future__ import annotations

import math
from typing import Mapping, Optional, Sequence

import numpy as np

from autobert.model.config import ArchConfig, AttentionLayer, ConvLayer
from autobert.model.flexi_layer import MAX_FFN_LAYERS, FlexiLayer, layer_sizes
from autobert.model.operation import OPERATION_KINDS
from autobert.rank.stats import rankable

_KINDS = (*OPERATION_KINDS, "graph", "conv")
_SLOT = 5 + len(_KINDS) + MAX_FFN_LAYERS  # present, width, heads, kinds, kernel, ffn depth, ffn widths


def _layer(arch: ArchConfig, layer) -> list[float]:
    sizes = layer_sizes(arch, layer)
    kind = layer.operation.kind if isinstance(layer, FlexiLayer) else (
        "graph" if isinstance(layer, AttentionLayer) else "conv")
    kernel = layer.kernel if isinstance(layer, ConvLayer) else (
        layer.operation.kernel if isinstance(layer, FlexiLayer) and layer.operation.kernel else 0)
    widths = [math.log2(w) for w in sizes.ffn][:MAX_FFN_LAYERS]
    return [1.0, math.log2(sizes.hidden), math.log2(sizes.heads), *(float(kind == k) for k in _KINDS),
            kernel / 16.0, float(len(sizes.ffn)), *widths, *[0.0] * (MAX_FFN_LAYERS - len(widths))]


def arch_features(arch: ArchConfig, max_layers: int) -> np.ndarray:
    """(F,) float64 features of one architecture; ValueError if it has more than ``max_layers`` layers."""
    if arch.n_layers > max_layers:
        raise ValueError(f"architecture has {arch.n_layers} layers; the encoding holds {max_layers}")
    slots = [v for layer in arch.layers for v in _layer(arch, layer)]
    slots += [0.0] * (_SLOT * (max_layers - arch.n_layers))
    return np.array([float(arch.n_layers), math.log2(arch.embedding_width), math.log2(arch.num_parameters()),
                     *slots])


def feature_matrix(archs: Sequence[ArchConfig], proxies: Optional[Mapping[str, Sequence[float]]] = None) -> np.ndarray:
    """(n, F) features of ``archs``; each proxy column (same order as ``archs``) is appended as a signed log
    (proxies span decades) after ranking non-finite values last."""
    max_layers = max(a.n_layers for a in archs)
    x = np.stack([arch_features(a, max_layers) for a in archs])
    if proxies:
        cols = [rankable(v) for v in proxies.values()]
        x = np.column_stack([x, *(np.sign(c) * np.log1p(np.abs(c)) for c in cols)])
    return x
