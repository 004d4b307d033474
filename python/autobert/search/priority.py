"""Operation priority (OP-NAS): a UCB score per mutation arm, sampled through a softmax.

For arm o with mean reward r_o over the n_o children its mutations produced and N mutations in
all, ``UCB_o = r_o + c * sqrt(2 ln N / n_o)``; an arm is drawn with probability
``softmax(UCB / T)``. With ``prior_count`` 0 arms never tried have an infinite UCB, so they are
drawn first (uniformly among themselves) — every arm is tried once before the scores start to
steer, which with ~30 arms spends the first ~30 mutants of a search on forced exploration. With
``prior_count`` p > 0 every arm starts with p pseudo-results of reward 0: ``r_o`` is the mean over
n_o + p results and the bonus uses n_o + p, so an untried arm has the finite, optimistic
``UCB = c * sqrt(2 ln N / p)`` and an arm that pays off is preferred from its first success.

Reward = parent_loss - child_loss (positive = the child is better). A failed child (NaN/inf,
exception, over a constraint) gets reward ``-failure_penalty``: it costs an evaluation (or a
proposal) and must make its op less likely, but a single crash must not outweigh many
improvements, so the penalty is a bounded constant in loss units rather than -inf.

Reward normalisation (``reward_norm``): with ``"none"`` the UCB uses raw rewards, so ``c`` and
``T`` are in loss units and must be tuned to the proxy's loss scale. With ``"std"`` each reward is
divided by the running standard deviation of all successful rewards so far (recomputed at every
score, so every arm is on the current scale) and clipped to +-REWARD_CLIP; a failed child counts
as -REWARD_CLIP (``failure_penalty`` is then unused). ``c`` and ``T`` are then in units of that
standard deviation. Until two different successful rewards exist, successful rewards count as 0.
"""
from __future__ import annotations

import dataclasses
import math
import random
from typing import Iterable, Optional, Sequence

REWARD_NORMS = ("none", "std")
REWARD_CLIP = 3.0  # |normalised reward| cap, and a failed child's normalised reward (its negative)


@dataclasses.dataclass(frozen=True)
class ArmStats:
    """Running reward statistics of one arm."""

    count: int = 0
    total: float = 0.0

    @property
    def mean(self) -> float:
        return self.total / self.count if self.count else 0.0


class OpPriority:
    """UCB statistics over ``arms`` with softmax sampling.

    Args:
        arms: names of the choices (ops and structural mutations).
        c: exploration weight of the UCB bonus.
        temperature: softmax temperature over UCB scores (smaller = greedier).
        failure_penalty: reward given to a failed child (its negative).
        uniform: ignore the scores and draw uniformly (plain evolution, for ablation).
        reward_norm: "none" (raw rewards) or "std" (rewards / running std, clipped; see module doc).
    """

    def __init__(self, arms: Sequence[str], c: float = 0.1, temperature: float = 0.1,
                 failure_penalty: float = 1.0, uniform: bool = False, reward_norm: str = "none",
                 prior_count: float = 0.0):
        if not arms or len(set(arms)) != len(arms):
            raise ValueError(f"arms must be a non-empty list of distinct names, got {list(arms)!r}")
        if c < 0 or temperature <= 0 or failure_penalty < 0:
            raise ValueError(f"need c >= 0, temperature > 0, failure_penalty >= 0; got {c}, {temperature}, "
                             f"{failure_penalty}")
        if reward_norm not in REWARD_NORMS:
            raise ValueError(f"reward_norm must be one of {REWARD_NORMS}, got {reward_norm!r}")
        if prior_count < 0:
            raise ValueError(f"prior_count must be >= 0, got {prior_count}")
        self.prior_count = float(prior_count)
        self.arms, self.reward_norm = tuple(arms), reward_norm
        self.rewards = {a: [] for a in self.arms}  # per arm: (raw reward, failed) in arrival order
        self._n, self._mean, self._m2 = 0, 0.0, 0.0  # Welford over successful rewards
        self.c, self.temperature, self.failure_penalty, self.uniform = c, temperature, failure_penalty, uniform
        self.stats = {a: ArmStats() for a in self.arms}
        self.history: list[dict] = []  # after each update: n, arm, reward, ucb, prob (over tried arms)

    @property
    def total(self) -> int:
        """N: mutations with a known outcome so far."""
        return sum(s.count for s in self.stats.values())

    # ---- updates ----
    def update(self, arm: str, reward: float, failed: bool = False) -> None:
        """Record the reward of one child produced by ``arm`` (non-finite rewards count as failures)."""
        if arm not in self.stats:
            raise KeyError(f"unknown arm {arm!r}; arms are {self.arms}")
        if failed or not math.isfinite(reward):
            reward, failed = -self.failure_penalty, True
        else:
            self._n += 1
            delta = reward - self._mean
            self._mean += delta / self._n
            self._m2 += delta * (reward - self._mean)
        self.rewards[arm].append((reward, failed))
        s = self.stats[arm]
        self.stats[arm] = ArmStats(s.count + 1, s.total + reward)
        self.history.append({"n": self.total, "arm": arm, "reward": reward, "ucb": self.ucb(),
                             "prob": self.probabilities(self.tried())})

    def tried(self) -> list[str]:
        """Arms with at least one result (the history's probabilities are over these: an arm that is
        never feasible, e.g. ``kernel`` without conv layers, would otherwise stay 'untried first')."""
        return [a for a, s in self.stats.items() if s.count]

    def record_failure(self, arm: str) -> None:
        self.update(arm, -self.failure_penalty, failed=True)

    def reward_scale(self) -> Optional[float]:
        """Sample standard deviation of the successful rewards so far (None: fewer than 2, or all equal)."""
        if self._n < 2:
            return None
        std = math.sqrt(self._m2 / (self._n - 1))
        return std if std > 1e-12 else None

    def mean_reward(self, arm: str) -> float:
        """The arm's mean reward as the UCB uses it (raw, or normalised with reward_norm "std"), over
        its results and ``prior_count`` pseudo-results of reward 0."""
        if self.reward_norm == "none":
            s = self.stats[arm]
            return s.total / (s.count + self.prior_count) if s.count else 0.0
        values = self.rewards[arm]
        if not values:
            return 0.0
        scale = self.reward_scale()
        total = 0.0
        for reward, failed in values:
            if failed:
                total -= REWARD_CLIP
            elif scale is not None:
                total += max(-REWARD_CLIP, min(REWARD_CLIP, reward / scale))
        return total / (len(values) + self.prior_count)

    # ---- scores ----
    def ucb(self) -> dict[str, float]:
        """UCB per arm; ``math.inf`` for arms never tried."""
        n_all = self.total
        out = {}
        for a, s in self.stats.items():
            n = s.count + self.prior_count
            if n == 0:
                out[a] = math.inf
            else:
                out[a] = self.mean_reward(a) + self.c * math.sqrt(2.0 * math.log(max(n_all, 1)) / n)
        return out

    def probabilities(self, feasible: Optional[Iterable[str]] = None) -> dict[str, float]:
        """Sampling probability per arm (0 for arms outside ``feasible``)."""
        allowed = list(self.arms if feasible is None else (a for a in self.arms if a in set(feasible)))
        if not allowed:
            raise ValueError("no feasible arm to sample")
        probs = dict.fromkeys(self.arms, 0.0)
        scores = self.ucb()
        untried = [a for a in allowed if math.isinf(scores[a])]
        if self.uniform or untried:
            pool = allowed if self.uniform else untried
            for a in pool:
                probs[a] = 1.0 / len(pool)
            return probs
        top = max(scores[a] for a in allowed)  # subtract the max: exp never overflows
        weights = {a: math.exp((scores[a] - top) / self.temperature) for a in allowed}
        z = sum(weights.values())
        for a, w in weights.items():
            probs[a] = w / z
        return probs

    def sample(self, rng: random.Random, feasible: Optional[Iterable[str]] = None) -> str:
        """Draw one arm from ``probabilities(feasible)`` with ``rng``."""
        probs = self.probabilities(feasible)
        arms = [a for a in self.arms if probs[a] > 0]
        return rng.choices(arms, weights=[probs[a] for a in arms])[0]

    def snapshot(self) -> dict:
        """JSON-able state: per-arm count and mean, UCB and probabilities."""
        return {"n": self.total, "count": {a: s.count for a, s in self.stats.items()},
                "mean": {a: s.mean for a, s in self.stats.items()}, "ucb": self.ucb(),
                "prob": self.probabilities()}
