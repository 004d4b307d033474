"""Two-level operation priority: family first, then the graph-edit op; flat probabilities."""
import random
from collections import Counter

import pytest

from autobert.search.hierarchy import FAMILIES, GRAPH_EDIT_ARMS, HierarchicalPriority, family_of
from autobert.search.mutation import ARMS


def test_probabilities_are_family_times_op():
    p = HierarchicalPriority(c=0.5, temperature=0.5, prior_count=1.0)
    probs = p.probabilities()
    assert set(probs) == set(ARMS) and sum(probs.values()) == pytest.approx(1.0)
    assert probs["to_conv"] == pytest.approx(1 / len(FAMILIES))        # families uniform at first
    assert probs["sqrt"] == pytest.approx(1 / len(FAMILIES) / len(GRAPH_EDIT_ARMS))
    only = p.probabilities(["to_conv", "sqrt", "delete"])               # feasibility restricts both levels
    assert only["to_conv"] == pytest.approx(0.5) and only["sqrt"] == pytest.approx(0.25) and only["kernel"] == 0


def test_a_rewarding_layer_change_is_chosen_more_often():
    p = HierarchicalPriority(c=0.1, temperature=0.05, prior_count=1.0)
    for _ in range(5):
        p.update("to_conv", 0.3)
        p.update("tanh", 0.0)
        p.update("to_attention", -0.3)
    draws = Counter(family_of(p.sample(random.Random(i))) for i in range(400))
    assert draws["to_conv"] > 300 and draws["to_attention"] < 10
    assert p.ops.stats["tanh"].count == 5 and p.family.stats["graph"].count == 5
    assert len(p.history) == 15 and p.history[-1]["prob"]["to_conv"] > 0.75


def test_failure_and_uniform():
    p = HierarchicalPriority(failure_penalty=0.5)
    p.record_failure("sqrt")
    assert p.family.stats["graph"].total == -0.5 and p.ops.stats["sqrt"].count == 1
    p.uniform = True
    assert p.family.uniform and p.ops.uniform
