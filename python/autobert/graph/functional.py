"""Functional fingerprints: equal for graphs that compute the same function (AutoML-Zero's
functional equivalence checking).

The fingerprint hashes the float64 outputs on the probe inputs (``autobert.graph.probe``: two
draws of Q, K, V and a padded draw, whose padded query rows are left out because they are
unspecified), each rounded to ``SIGNIFICANT`` significant digits; values below ``ZERO`` times the
output's largest are written as 0. Graphs that differ only in rounding (operand order,
``transpose(transpose(x))``, a scale that a cosine normalises away) share it; two different
functions collide only by coincidence on every probe value. Rounding at a digit boundary can split
two equal functions: with float64 errors around 1e-15 relative that happens for about one value in
10^7, i.e. for well under one pair of equal graphs in 10^4.
"""
from __future__ import annotations

import hashlib

import torch

from autobert.graph.graph import Graph
from autobert.graph.probe import N, PADDED, probe

SIGNIFICANT = 8
ZERO = 1e-12


def _values(graph: Graph) -> torch.Tensor:
    r = probe(graph)
    real = r.out["masked"][:, :N - PADDED, :]  # (HEADS, real rows, D)
    return torch.cat([r.out["base"].flatten(), r.out["other"].flatten(), real.flatten()])


def functional_fingerprint(graph: Graph) -> str:
    """16 hex digits; equal for graphs computing the same function on the probe inputs."""
    values = _values(graph)
    finite = values[torch.isfinite(values)]
    scale = float(finite.abs().max()) if finite.numel() else 0.0
    words = []
    for v in values.tolist():
        if v != v or v in (float("inf"), float("-inf")):
            words.append(str(v))
        elif abs(v) <= ZERO * scale:
            words.append("0")
        else:
            words.append(f"{v:.{SIGNIFICANT - 1}e}")
    return hashlib.sha256(",".join(words).encode()).hexdigest()[:16]
