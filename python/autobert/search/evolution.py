"""Regularised evolution with operation priority: the search engine, free of training and storage.

``Evolution.propose(index, known)`` returns the next architecture to evaluate; ``tell`` feeds a
result back. The engine's state is a pure function of the seed and of the results told, in
order: proposal ``index`` draws from its own RNG ``Random(f"{seed}/{index}")``, so after a crash
the state is rebuilt by telling the stored results again (``replay``) — no pickled RNG needed.

Strategies (one engine, for ablation):
- ``opnas``: tournament selection over an aging population; the mutation arm is drawn by the
  UCB operation priority;
- ``evolution``: the same, with a uniform arm choice;
- ``random``: every candidate an independent random architecture from the space.

The first ``population_size`` proposals (opnas/evolution) are the initial population: the given
seed architectures (standard BERT, the AutoBERT-Zero graphs), then random valid individuals.
"""
from __future__ import annotations

import collections
import dataclasses
import logging
import random
from typing import Callable, Optional, Sequence

from autobert.model.config import ArchConfig, LayerChoice
from autobert.model.space import SearchSpace
from autobert.search.mutation import MutationError, feasible_arms, mutate_arch
from autobert.search.hierarchy import HierarchicalPriority
from autobert.search.priority import OpPriority

log = logging.getLogger(__name__)

STRATEGIES = ("opnas", "evolution", "random")
Layers = tuple[LayerChoice, ...]
_DEDUP_TRIES = 64      # random draws before giving up
_PARENT_TRIES = 8      # tournaments before a random individual replaces a mutant
_DUPLICATE_TRIES = 4   # duplicate children before an arm is dropped for one proposal


class SearchExhausted(RuntimeError):
    """No architecture that was not seen before could be found."""


@dataclasses.dataclass(frozen=True)
class Proposal:
    """A candidate to evaluate and how it was made."""

    index: int                 # proposal number: seeds this proposal's RNG
    layers: Layers
    fingerprint: str           # ArchConfig fingerprint
    function: str              # ArchConfig functional fingerprint (the dedup key: one evaluation per function)
    parent: Optional[str]      # parent fingerprint (None for initial / random individuals)
    arm: Optional[str]         # mutation arm (op or structural change), None without a parent
    kind: str                  # "seed", "random" or the mutation kind (insert, replace, ..., to_conv, to_attention, kernel)
    layer: Optional[int]       # the layer the mutation changed
    generation: int            # 0 for initial individuals, parent's + 1 for children
    # draws redrawn while making this proposal: "degenerate" / "trivial" / "simplified" graphs,
    # "duplicate" (same architecture) and "functional duplicate" (same function) architectures
    rejected: dict = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class Member:
    """An evaluated architecture in the population."""

    fingerprint: str
    layers: Layers
    fitness: float
    generation: int


class Evolution:
    """The search engine. Fitness is a loss: lower is better.

    Args:
        base: sizes of every candidate (its ``layers`` are ignored).
        space: layer choices; random individuals and flipped layers are drawn from it.
        strategy: one of STRATEGIES.
        population_size: P, the aging population's size (and the number of initial individuals).
        sample_size: S, tournament size.
        priority: operation priority, flat (``OpPriority``) or two-level (``HierarchicalPriority``, the
            default); ``evolution`` makes it uniform.
        seeds: architectures (layer tuples) placed first in the initial population.
    """

    def __init__(self, base: ArchConfig, space: SearchSpace, strategy: str = "opnas", population_size: int = 16,
                 sample_size: int = 4, seed: int = 0, priority: "Optional[OpPriority | HierarchicalPriority]" = None,
                 seeds: Sequence[Layers] = ()):
        if strategy not in STRATEGIES:
            raise ValueError(f"strategy must be one of {STRATEGIES}, got {strategy!r}")
        if population_size < 1 or not 1 <= sample_size:
            raise ValueError(f"need population_size >= 1 and sample_size >= 1, got {population_size}, {sample_size}")
        self.base, self.space, self.strategy, self.seed = base, space, strategy, seed
        self.population_size, self.sample_size = population_size, sample_size
        self.priority = priority or HierarchicalPriority()
        if strategy == "evolution":
            self.priority.uniform = True
        self.seeds = [tuple(s) for s in seeds]
        for s in self.seeds:
            space.check(s, allow_degenerate=True)  # the runner records a degenerate seed as failed
        self.population: collections.deque[Member] = collections.deque(maxlen=population_size)
        self.members: dict[str, Member] = {}  # every done candidate, by fingerprint (for rewards)
        self.best: Optional[Member] = None

    def fingerprint(self, layers: Sequence[LayerChoice]) -> str:
        return self.arch(layers).fingerprint()

    def _unseen(self, layers: Layers, known: Callable[[str], bool],
                rejected: collections.Counter) -> Optional[tuple[str, str]]:
        """(fingerprint, functional fingerprint) of ``layers``, or None (counted) when ``known`` has seen
        the architecture or its function."""
        arch = self.arch(layers)
        fp = arch.fingerprint()
        if known(fp):
            rejected["duplicate"] += 1
            return None
        function = arch.functional_fingerprint()
        if known(function):
            rejected["functional duplicate"] += 1
            return None
        return fp, function

    def arch(self, layers: Sequence[LayerChoice]) -> ArchConfig:
        return self.base.replace(layers=tuple(layers))

    def rng(self, index: int) -> random.Random:
        return random.Random(f"{self.seed}/{index}")

    # ---- proposing ----
    def propose(self, index: int, known: Callable[[str], bool]) -> Proposal:
        """Proposal number ``index``. ``known(key)`` says whether a fingerprint or a functional
        fingerprint was proposed before: an architecture whose structure or function is known is
        never returned (it is redrawn, and counted in ``Proposal.rejected``)."""
        rng, rejected = self.rng(index), collections.Counter()
        if self.strategy != "random" and index < self.population_size:
            if index < len(self.seeds):
                layers = self.seeds[index]
                keys = self._unseen(layers, known, rejected)
                if keys is not None:
                    return Proposal(index, layers, *keys, None, None, "seed", None, 0, dict(rejected))
            return self._random(index, rng, known, rejected)
        if self.strategy == "random" or not self.population:
            return self._random(index, rng, known, rejected)
        for _ in range(_PARENT_TRIES):
            child = self._mutant(index, rng, self._tournament(rng), known, rejected)
            if child is not None:
                return child
        log.info("proposal %d: no new mutant of %d parents; drawing a random individual", index, _PARENT_TRIES)
        return self._random(index, rng, known, rejected)

    def _random(self, index: int, rng: random.Random, known: Callable[[str], bool],
                rejected: collections.Counter) -> Proposal:
        for _ in range(_DEDUP_TRIES):
            layers = self.space.sample(rng, rejected)
            keys = self._unseen(layers, known, rejected)
            if keys is not None:
                return Proposal(index, layers, *keys, None, None, "random", None, 0, dict(rejected))
        raise SearchExhausted(f"no unseen architecture in {_DEDUP_TRIES} random draws (is the space tiny?)")

    def _tournament(self, rng: random.Random) -> Member:
        pool = list(self.population)
        contenders = rng.sample(pool, min(self.sample_size, len(pool)))
        return min(contenders, key=lambda m: m.fitness)

    def _mutant(self, index: int, rng: random.Random, parent: Member, known: Callable[[str], bool],
                rejected: collections.Counter) -> Optional[Proposal]:
        """A new (unseen) child of ``parent``, or None. An arm that cannot apply, or keeps producing
        architectures already seen, is dropped for this proposal — otherwise an untried arm (UCB
        infinity) whose children are all duplicates would be drawn forever and never get a result."""
        feasible = feasible_arms(parent.layers, self.space)
        duplicates: collections.Counter = collections.Counter()
        while feasible:
            arm = self.priority.sample(rng, feasible)
            try:
                layers, info = mutate_arch(parent.layers, arm, rng, self.space, rejected)
            except MutationError:
                feasible.remove(arm)
                continue
            keys = self._unseen(layers, known, rejected)
            if keys is not None:
                return Proposal(index, layers, *keys, parent.fingerprint, arm, info.kind, info.layer,
                                parent.generation + 1, dict(rejected))
            duplicates[arm] += 1
            if duplicates[arm] >= _DUPLICATE_TRIES:
                feasible.remove(arm)
        return None

    # ---- results ----
    def tell(self, fingerprint: str, layers: Sequence[LayerChoice], fitness: Optional[float],
             parent: Optional[str] = None, arm: Optional[str] = None, generation: int = 0) -> Optional[float]:
        """Feed back one finished candidate (``fitness`` None = failed). Returns the arm's reward, if any."""
        reward = None
        if fitness is None:
            if arm is not None:
                self.priority.record_failure(arm)
                reward = -self.priority.failure_penalty
            return reward
        member = Member(fingerprint, tuple(layers), float(fitness), generation)
        self.members[fingerprint] = member
        self.population.append(member)  # the deque drops the oldest: aging
        if self.best is None or member.fitness < self.best.fitness:
            self.best = member
        if arm is not None and parent in self.members:
            reward = self.members[parent].fitness - member.fitness
            self.priority.update(arm, reward)
        return reward

    def replay(self, results: Sequence[dict]) -> None:
        """Tell stored results again, in finish order; each a dict with the ``tell`` arguments."""
        for r in results:
            self.tell(r["fingerprint"], r["layers"], r.get("fitness"), r.get("parent"), r.get("arm"),
                      r.get("generation", 0))
