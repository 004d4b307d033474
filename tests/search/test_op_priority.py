"""OpPriority: UCB arithmetic, untried-first, softmax sampling, failures."""
import math
import random
from collections import Counter

import pytest

from autobert.search import OpPriority


def test_ucb_arithmetic_on_toy_rewards():
    p = OpPriority(["a", "b", "c"], c=0.5, temperature=1.0)
    for arm, r in [("a", 1.0), ("a", 0.0), ("b", 0.5), ("c", -1.0), ("a", 0.5)]:
        p.update(arm, r)
    n = 5
    ucb = p.ucb()
    assert ucb["a"] == pytest.approx(0.5 + 0.5 * math.sqrt(2 * math.log(n) / 3))
    assert ucb["b"] == pytest.approx(0.5 + 0.5 * math.sqrt(2 * math.log(n) / 1))
    assert ucb["c"] == pytest.approx(-1.0 + 0.5 * math.sqrt(2 * math.log(n) / 1))
    probs = p.probabilities()
    z = sum(math.exp(u) for u in ucb.values())
    for arm in "abc":
        assert probs[arm] == pytest.approx(math.exp(ucb[arm]) / z)
    assert sum(probs.values()) == pytest.approx(1.0)


def test_untried_arms_come_first_and_feasibility_restricts():
    p = OpPriority(["a", "b", "c"])
    p.update("a", 10.0)
    assert math.isinf(p.ucb()["b"])
    assert p.probabilities() == {"a": 0.0, "b": 0.5, "c": 0.5}
    assert p.probabilities(feasible=["a", "c"]) == {"a": 0.0, "b": 0.0, "c": 1.0}
    assert p.sample(random.Random(0), feasible=["a"]) == "a"
    with pytest.raises(ValueError):
        p.probabilities(feasible=[])


def test_prior_count_makes_untried_arms_finite_and_optimistic():
    p = OpPriority(["a", "b", "c"], c=0.5, temperature=0.25, prior_count=1.0)
    assert p.probabilities() == pytest.approx({"a": 1 / 3, "b": 1 / 3, "c": 1 / 3})
    p.update("a", 1.0)
    p.update("b", -1.0)
    n = 2
    ucb = p.ucb()
    assert ucb["a"] == pytest.approx(1.0 / 2 + 0.5 * math.sqrt(2 * math.log(n) / 2))
    assert ucb["b"] == pytest.approx(-1.0 / 2 + 0.5 * math.sqrt(2 * math.log(n) / 2))
    assert ucb["c"] == pytest.approx(0.0 + 0.5 * math.sqrt(2 * math.log(n) / 1))
    probs = p.probabilities()
    assert probs["a"] > probs["c"] > probs["b"] > 0  # a success is preferred at once; no forced exploration
    with pytest.raises(ValueError, match="prior_count"):
        OpPriority(["a"], prior_count=-1)


def test_sampling_frequencies_follow_softmax_and_prefer_rewarding_arms():
    p = OpPriority(["good", "bad"], c=0.0, temperature=0.5)
    p.update("good", 1.0)
    p.update("bad", 0.0)
    expected = 1 / (1 + math.exp(-2.0))
    rng = random.Random(1)
    counts = Counter(p.sample(rng) for _ in range(4000))
    assert counts["good"] / 4000 == pytest.approx(expected, abs=0.03)


def test_temperature_and_uniform_mode():
    p = OpPriority(["a", "b"], c=0.0, temperature=0.01)
    p.update("a", 1.0)
    p.update("b", 0.0)
    assert p.probabilities()["a"] > 0.999
    p.uniform = True
    assert p.probabilities() == {"a": 0.5, "b": 0.5}


def test_failures_get_the_penalty_and_history_is_recorded():
    p = OpPriority(["a", "b"], failure_penalty=2.0)
    p.record_failure("a")
    p.update("b", float("nan"))  # a non-finite reward is a failure too
    assert p.stats["a"].mean == -2.0 and p.stats["b"].mean == -2.0
    assert [h["arm"] for h in p.history] == ["a", "b"]
    assert p.history[0]["prob"] == {"a": 1.0, "b": 0.0}  # over tried arms only
    assert p.snapshot()["count"] == {"a": 1, "b": 1}


def test_bad_arguments():
    with pytest.raises(ValueError):
        OpPriority([])
    with pytest.raises(ValueError):
        OpPriority(["a"], temperature=0)
    with pytest.raises(KeyError):
        OpPriority(["a"]).update("z", 1.0)


def test_std_reward_normalisation_arithmetic():
    rewards = [("a", 0.004), ("a", -0.002), ("b", 0.001), ("c", -0.010)]
    p = OpPriority(["a", "b", "c", "d"], c=0.5, temperature=1.0, failure_penalty=0.5, reward_norm="std")
    assert p.mean_reward("a") == 0.0  # nothing yet
    for arm, r in rewards:
        p.update(arm, r)
    p.record_failure("d")  # failures do not enter the scale
    raw = [r for _, r in rewards]
    mu = sum(raw) / len(raw)
    std = math.sqrt(sum((r - mu) ** 2 for r in raw) / (len(raw) - 1))
    assert p.reward_scale() == pytest.approx(std)
    clip = lambda z: max(-3.0, min(3.0, z))  # noqa: E731
    assert p.mean_reward("a") == pytest.approx((clip(0.004 / std) + clip(-0.002 / std)) / 2)
    assert p.mean_reward("c") == pytest.approx(clip(-0.010 / std))
    assert p.mean_reward("d") == -3.0  # a failure is -REWARD_CLIP
    n = 5
    assert p.ucb()["b"] == pytest.approx(0.001 / std + 0.5 * math.sqrt(2 * math.log(n) / 1))
    assert p.stats["a"].mean == pytest.approx(0.001)  # raw statistics are kept


def test_std_normalisation_is_scale_free_and_none_is_the_default():
    """Multiplying every reward by 1000 leaves the normalised probabilities unchanged."""
    def probs(scale, norm):
        p = OpPriority(["a", "b", "c"], c=0.2, temperature=0.3, reward_norm=norm)
        for arm, r in [("a", 3.0), ("b", -1.0), ("c", 0.5), ("a", 1.0), ("b", 2.0), ("c", -4.0)]:
            p.update(arm, r * scale)
        return p.probabilities()
    small, large = probs(0.001, "std"), probs(1.0, "std")
    assert all(small[a] == pytest.approx(large[a]) for a in "abc")
    assert probs(0.001, "none") != pytest.approx(probs(1.0, "none"))
    assert OpPriority(["a"]).reward_norm == "none"
    with pytest.raises(ValueError, match="reward_norm"):
        OpPriority(["a"], reward_norm="z")
