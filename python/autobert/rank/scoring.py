"""Computing proxies: one architecture's proxies from one shared ``Probe`` (one model, one
forward/backward), and the (model, batch) -> float form of a single proxy.

Proxies never see benchmark labels: nothing here or in a probe can reach them.
"""
from __future__ import annotations

import math
from typing import Iterable, Optional

from autobert.model.config import ArchConfig
from autobert.model.heads import ForMaskedLM
from autobert.rank import proxies_activation, proxies_gradient, proxies_structure  # noqa: F401 (they register)
from autobert.rank.probe import Probe
from autobert.rank.registry import PROXIES, Proxy
from autobert.rank.text_batch import TextBatch


def resolve(names: Optional[Iterable[str]] = None) -> list[Proxy]:
    """The proxies called ``names`` (all, in registration order, when None); KeyError naming unknown ones."""
    if names is None:
        return list(PROXIES.values())
    names = list(names)
    unknown = [n for n in names if n not in PROXIES]
    if unknown:
        raise KeyError(f"unknown proxies {unknown}; known: {sorted(PROXIES)}")
    return [PROXIES[n] for n in names]


def _finite(value: float) -> float:
    value = float(value)
    # A proxy that cannot rank this model (e.g. a singular kernel) ranks it last, never crashes a run.
    return value if math.isfinite(value) else -math.inf


def score_probe(probe: Probe, names: Optional[Iterable[str]] = None) -> dict[str, float]:
    """{name: value} of the proxies ``names`` on one probe (the forward/backward runs at most once)."""
    return {p.name: _finite(p.fn(probe)) for p in resolve(names)}


def score_architecture(arch: ArchConfig, batch: TextBatch, seed: int = 0,
                       names: Optional[Iterable[str]] = None) -> dict[str, float]:
    """{name: value} of the proxies ``names`` for ``arch`` initialised from ``seed``, probed on ``batch``."""
    return score_probe(Probe(arch, batch, seed), names)


def proxy_score(name: str, model: ForMaskedLM, batch: TextBatch) -> float:
    """One proxy of ``model`` (a ForMaskedLM at initialisation; its gradients are overwritten) on ``batch``."""
    return score_probe(Probe(model.config, batch, model=model), [name])[name]
