"""Structural proxies: read from the architecture alone (no model is built)."""
from __future__ import annotations

import math

from autobert.model.flexi_layer import layer_sizes
from autobert.rank.probe import Probe
from autobert.rank.registry import register

# Lexicographic keys packed into one float: a count below this never reaches the next digit.
_TIE_BREAK_SCALE = 1e9


@register("params", "structure", "parameters of the backbone (embeddings included)")
def params(probe: Probe) -> float:
    return float(probe.arch.num_parameters())


@register("flops", "structure", "forward FLOPs of the backbone on one sequence of the batch's length")
def flops(probe: Probe) -> float:
    return float(probe.arch.flops(probe.batch.shape[1]))


@register("depth", "structure", "number of layers")
def depth(probe: Probe) -> float:
    return float(probe.arch.n_layers)


@register("depth_params", "structure", "depth, ties broken by parameter count (a label-free anchor rule)")
def depth_params(probe: Probe) -> float:
    return probe.arch.n_layers + probe.arch.num_parameters() / _TIE_BREAK_SCALE


@register("expressivity", "structure",
          "Levine et al. (2020)'s bound on the log separation rank of a self-attention stack, 3^L log2(width) "
          "(narrowest layer), ties broken by parameter count")
def expressivity(probe: Probe) -> float:
    arch = probe.arch
    width = min(layer_sizes(arch, layer).hidden for layer in arch.layers)
    # Depth enters exponentially and width logarithmically: the bound's own form, nothing fitted.
    return 3.0 ** arch.n_layers * math.log2(width) + arch.num_parameters() / _TIE_BREAK_SCALE
