"""Two-level operation priority: which kind of change, then (for graph edits) which op.

A flat UCB over all ~30 arms spends most mutants on the 26 graph-edit arms (each must be tried)
and gives the layer-level changes — a layer becoming a convolution, a kernel size — about one try
each in a 60-candidate search, although their rewards are 10-100x larger. Here a *family* UCB
chooses between ``graph`` (insert/replace/delete/rewire in one attention graph), ``to_conv``,
``to_attention`` and ``kernel``; a second UCB over the graph-edit arms chooses the op when the
family is ``graph``. Both are ``OpPriority`` instances with the same settings; a child's reward
updates its family and, for a graph edit, its op.

The interface is ``OpPriority``'s (``sample``, ``update``, ``record_failure``, ``probabilities``,
``history``), with probabilities over the flat arm names: P(arm) = P(family) x P(op | graph).
"""
from __future__ import annotations

import random
from typing import Iterable, Optional

from autobert.search.mutation import ARMS, LAYER_ARMS
from autobert.search.priority import OpPriority

FAMILIES: tuple[str, ...] = ("graph",) + LAYER_ARMS
GRAPH_EDIT_ARMS: tuple[str, ...] = tuple(a for a in ARMS if a not in LAYER_ARMS)


def family_of(arm: str) -> str:
    return arm if arm in LAYER_ARMS else "graph"


class HierarchicalPriority:
    """A family ``OpPriority`` over ``FAMILIES`` and an op ``OpPriority`` over the graph-edit arms;
    keyword arguments are those of ``OpPriority`` (c, temperature, failure_penalty, reward_norm,
    prior_count, uniform)."""

    def __init__(self, **settings):
        self.family = OpPriority(FAMILIES, **settings)
        self.ops = OpPriority(GRAPH_EDIT_ARMS, **settings)
        self.arms = ARMS
        self.failure_penalty = self.family.failure_penalty
        self.history: list[dict] = []  # after each update: n, arm, reward, prob (flat arms)

    @property
    def uniform(self) -> bool:
        return self.family.uniform

    @uniform.setter
    def uniform(self, value: bool) -> None:
        self.family.uniform = self.ops.uniform = value

    @property
    def total(self) -> int:
        return self.family.total

    def probabilities(self, feasible: Optional[Iterable[str]] = None) -> dict[str, float]:
        allowed = set(self.arms if feasible is None else feasible)
        families = [f for f in FAMILIES if (f in allowed if f != "graph" else allowed & set(GRAPH_EDIT_ARMS))]
        p_family = self.family.probabilities(families)
        probs = dict.fromkeys(self.arms, 0.0)
        for f in families:
            if f != "graph":
                probs[f] = p_family[f]
        if "graph" in families:
            p_ops = self.ops.probabilities([a for a in GRAPH_EDIT_ARMS if a in allowed])
            for a, p in p_ops.items():
                probs[a] = p_family["graph"] * p
        return probs

    def sample(self, rng: random.Random, feasible: Optional[Iterable[str]] = None) -> str:
        allowed = set(self.arms if feasible is None else feasible)
        graph_arms = [a for a in GRAPH_EDIT_ARMS if a in allowed]
        families = [f for f in FAMILIES if (f in allowed if f != "graph" else graph_arms)]
        f = self.family.sample(rng, families)
        return self.ops.sample(rng, graph_arms) if f == "graph" else f

    def update(self, arm: str, reward: float, failed: bool = False) -> None:
        self.family.update(family_of(arm), reward, failed)
        if family_of(arm) == "graph":
            self.ops.update(arm, reward, failed)
        self.history.append({"n": self.total, "arm": arm, "reward": reward, "prob": self.probabilities()})

    def record_failure(self, arm: str) -> None:
        self.update(arm, -self.failure_penalty, failed=True)

    def snapshot(self) -> dict:
        return {"family": self.family.snapshot(), "ops": self.ops.snapshot(), "prob": self.probabilities()}
