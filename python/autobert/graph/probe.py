"""The numeric probe: a graph run in float64 on fixed, seeded inputs, with gradients.

One batched eager call answers every question the validity check and the functional fingerprint
ask (AutoML-Zero's functional equivalence checking): the probe batch holds, per head, a *base*
draw of Q, K, V, an *alternative* draw of all three, one draw per input with only that input
changed, and the base draw again under a key padding mask. Sizes N = 7, d = 5 (N != d, so (N,N)
and (d,d) never coincide); every tensor comes from one fixed generator seed, so the probe is the
same in every process and every version.

``probe(graph)`` is cached by the graph's canonical JSON: graphs are rebuilt from JSON all the
time (search databases, architecture files) and the probe is the expensive part (~1 ms).
"""
from __future__ import annotations

import dataclasses
import functools

import torch

from autobert.graph.eager import eager
from autobert.graph.graph import Graph

N, D, HEADS = 7, 5, 2
SEED = 20240917
PADDED = 2  # key positions padded in the masked variant
#: batch rows of the probe: base draw, all three inputs redrawn, then Q, K, V each redrawn alone, masked base
VARIANTS = ("base", "other", "Q", "K", "V", "masked")


def _inputs() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(q, k, v) (len(VARIANTS), HEADS, N, D) float64, mask (len(VARIANTS), N) bool, output weights."""
    gen = torch.Generator().manual_seed(SEED)
    base = [torch.randn(HEADS, N, D, generator=gen, dtype=torch.float64) for _ in range(3)]
    other = [torch.randn(HEADS, N, D, generator=gen, dtype=torch.float64) for _ in range(3)]
    rows = {"Q": [], "K": [], "V": []}
    for variant in VARIANTS:
        for j, name in enumerate("QKV"):
            changed = variant == "other" or variant == name
            rows[name].append(other[j] if changed else base[j])
    q, k, v = (torch.stack(rows[name]) for name in "QKV")
    mask = torch.ones(len(VARIANTS), N, dtype=torch.bool)
    mask[VARIANTS.index("masked"), N - PADDED:] = False
    weights = torch.randn(len(VARIANTS), HEADS, N, D, generator=gen, dtype=torch.float64)
    return q, k, v, mask, weights


@dataclasses.dataclass(frozen=True)
class ProbeResult:
    """Outputs per variant and the gradients of a fixed random projection of the output."""

    out: dict[str, torch.Tensor]       # variant -> (HEADS, N, D) float64
    grad: dict[str, torch.Tensor]      # "Q" / "K" / "V" -> gradient at the base draw (HEADS, N, D)
    finite32: bool                     # the base and masked draws stay finite in float32, outputs and gradients


def _run(graph: Graph, dtype: torch.dtype) -> tuple[torch.Tensor, list[torch.Tensor]]:
    q, k, v, mask, weights = _inputs()
    q, k, v = (t.to(dtype).requires_grad_() for t in (q, k, v))
    out = eager(graph, q, k, v, mask)
    grads = torch.autograd.grad((out * weights.to(dtype)).sum(), (q, k, v), allow_unused=True)
    return out.detach(), [torch.zeros_like(q) if g is None else g for g in grads]


@functools.lru_cache(maxsize=16384)
def _probe(graph_json: str) -> ProbeResult:
    graph = Graph.from_json(graph_json)
    out, grads = _run(graph, torch.float64)
    out32, grads32 = _run(graph, torch.float32)
    base = [VARIANTS.index("base"), VARIANTS.index("masked")]
    finite32 = bool(torch.isfinite(out32[base]).all()) and all(bool(torch.isfinite(g[base]).all()) for g in grads32)
    return ProbeResult(out={name: out[i] for i, name in enumerate(VARIANTS)},
                       grad={name: grads[j][0] for j, name in enumerate("QKV")}, finite32=finite32)


def probe(graph: Graph) -> ProbeResult:
    """The graph on the probe inputs (cached by canonical JSON); treat the tensors as read-only."""
    if not isinstance(graph, Graph):
        raise TypeError(f"graph must be an autobert.graph.Graph, got {type(graph).__name__}")
    with torch.enable_grad():
        return _probe(graph.to_json())
