"""The proxy registry: name -> ``Proxy`` (a function of a ``Probe`` -> float, higher = predicted better).

The built-in proxies (``proxies_structure``, ``proxies_gradient``, ``proxies_activation``) register
themselves here when ``autobert.rank.scoring`` imports them; ``scoring`` computes them.
"""
from __future__ import annotations

import dataclasses
from typing import Callable

from autobert.rank.probe import Probe

FAMILIES = ("structure", "gradient", "activation")


@dataclasses.dataclass(frozen=True)
class Proxy:
    name: str
    family: str                        # "structure" (architecture only) or what the probe must record
    fn: Callable[[Probe], float]
    description: str


PROXIES: dict[str, Proxy] = {}


def register(name: str, family: str, description: str):
    """Decorator: add ``fn(probe) -> float`` to ``PROXIES`` under ``name``."""
    if family not in FAMILIES:
        raise ValueError(f"family must be one of {FAMILIES}, got {family!r}")

    def add(fn: Callable[[Probe], float]) -> Callable[[Probe], float]:
        if name in PROXIES:
            raise ValueError(f"proxy {name!r} is already registered")
        PROXIES[name] = Proxy(name, family, fn, description)
        return fn
    return add
