"""compute_metrics vs scikit-learn / scipy on random predictions; glue_score rule; input errors."""
import math

import numpy as np
import pytest
import torch

from autobert.glue import compute_metrics, glue_score, matthews_corrcoef, spearman, task_score
from autobert.glue.metrics import rankdata

CLASSIFICATION = {"cola": 2, "sst2": 2, "mrpc": 2, "qqp": 2, "mnli": 3, "mnli_matched": 3,
                  "mnli_mismatched": 3, "qnli": 2, "rte": 2, "wnli": 2, "ax": 3}
KEYS = {"cola": ["matthews_correlation"], "mrpc": ["accuracy", "f1"], "qqp": ["accuracy", "f1"],
        "ax": ["matthews_correlation"], "stsb": ["pearson", "spearmanr"]}


@pytest.mark.parametrize("task", sorted(CLASSIFICATION))
@pytest.mark.parametrize("seed", range(4))
def test_classification_vs_sklearn(task, seed):
    skm = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(seed)
    k = CLASSIFICATION[task]
    n = int(rng.integers(5, 400))
    labels = rng.integers(0, k, n)
    # Correlated predictions so the metrics are not all near zero.
    preds = np.where(rng.random(n) < 0.6, labels, rng.integers(0, k, n))
    out = compute_metrics(task, preds, labels)
    assert sorted(out) == sorted(KEYS.get(task, ["accuracy"]))
    ref = {"accuracy": skm.accuracy_score(labels, preds),
           "matthews_correlation": skm.matthews_corrcoef(labels, preds)}
    if k == 2:
        ref["f1"] = skm.f1_score(labels, preds)
    for key, value in out.items():
        assert isinstance(value, float)
        assert value == pytest.approx(ref[key], abs=1e-12), key


@pytest.mark.parametrize("seed", range(6))
def test_stsb_vs_scipy(seed):
    stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(seed)
    n = int(rng.integers(3, 500))
    labels = np.round(rng.uniform(0, 5, n) * 5) / 5          # ties, like the real 0.2-step scores
    preds = labels + rng.normal(0, 1.0, n)
    if seed % 2:
        preds = np.round(preds)                              # ties in predictions too
    out = compute_metrics("stsb", preds, labels)
    assert out["pearson"] == pytest.approx(stats.pearsonr(preds, labels)[0], abs=1e-12)
    assert out["spearmanr"] == pytest.approx(stats.spearmanr(preds, labels)[0], abs=1e-12)
    np.testing.assert_allclose(rankdata(preds), stats.rankdata(preds))


@pytest.mark.filterwarnings("ignore::UserWarning")  # sklearn on single-class input
def test_edge_cases_match_sklearn():
    skm = pytest.importorskip("sklearn.metrics")
    cases = [([1, 1, 1], [1, 1, 1]), ([0, 0, 0], [1, 0, 1]), ([1, 0], [0, 1]), ([0, 0], [0, 0])]
    for preds, labels in cases:
        assert matthews_corrcoef(preds, labels) == pytest.approx(skm.matthews_corrcoef(labels, preds))
        got = compute_metrics("mrpc", preds, labels)["f1"]
        assert got == pytest.approx(skm.f1_score(labels, preds, zero_division=0.0))


def test_input_types_and_known_values():
    labels = [0, 1, 1, 0]
    assert compute_metrics("sst2", torch.tensor([0, 1, 0, 0]), labels) == {"accuracy": 0.75}
    assert compute_metrics("rte", np.array([0.0, 1.0, 1.0, 0.0]), labels) == {"accuracy": 1.0}
    assert compute_metrics("MRPC", [1, 1, 1, 1], labels) == {"accuracy": 0.5, "f1": pytest.approx(2 / 3)}
    assert compute_metrics("cola", [1, 0, 0, 1], labels) == {"matthews_correlation": -1.0}
    stsb = compute_metrics("STS-B", torch.tensor([[0.5], [1.0], [2.0]], requires_grad=True), [1.0, 2.0, 4.0])
    assert stsb["pearson"] == pytest.approx(1.0) and stsb["spearmanr"] == pytest.approx(1.0)
    # A diverged model: NaN correlations, not an exception.
    assert math.isnan(compute_metrics("stsb", [np.nan, 1.0, 2.0], [1.0, 2.0, 3.0])["pearson"])
    assert math.isnan(spearman([1.0, 1.0, 1.0], [1.0, 2.0, 3.0]))


@pytest.mark.parametrize("task,preds,labels,match", [
    ("sst2", [0, 1], [0], "2 predictions but 1 labels"),
    ("sst2", [], [], "empty"),
    ("sst2", [[0.1, 0.9]], [1], "argmax"),
    ("mnli", [0, 3], [0, 1], r"predictions\[1\] = 3"),
    ("rte", [0, 1], [0, -1], r"labels\[1\] = -1"),
    ("cola", [0.5, 1], [0, 1], "integer class indices"),
    ("stsb", [1.0, 2.0], [1.0, np.inf], "labels contain NaN"),
    ("sst2", ["0", "1"], [0, 1], "must be numbers"),
])
def test_bad_inputs(task, preds, labels, match):
    with pytest.raises(ValueError, match=match):
        compute_metrics(task, preds, labels)


def test_unknown_task():
    with pytest.raises(KeyError, match="unknown GLUE task"):
        compute_metrics("hans", [0], [0])


# ----------------------------------------------------------------------------- glue_score
# gluebenchmark.com leaderboard row of BERT-large (percent): Score 80.5.
BERT_LARGE = {"cola": {"matthews_correlation": 60.5}, "sst2": {"accuracy": 94.9},
              "mrpc": {"f1": 89.3, "accuracy": 85.4}, "stsb": {"pearson": 87.6, "spearmanr": 86.5},
              "qqp": {"f1": 72.1, "accuracy": 89.3}, "mnli_matched": {"accuracy": 86.7},
              "mnli_mismatched": {"accuracy": 85.9}, "qnli": {"accuracy": 92.7}, "rte": {"accuracy": 70.1},
              "wnli": {"accuracy": 65.1}, "ax": {"matthews_correlation": 39.6}}


def test_glue_score_reproduces_leaderboard():
    assert round(glue_score(BERT_LARGE, require_all=True), 1) == 80.5
    fractions = {t: {k: v / 100 for k, v in m.items()} for t, m in BERT_LARGE.items()}
    assert glue_score(fractions, percent=True) == pytest.approx(glue_score(BERT_LARGE))
    # AX is not averaged: dropping it changes nothing.
    without_ax = {t: m for t, m in BERT_LARGE.items() if t != "ax"}
    assert glue_score(without_ax) == glue_score(BERT_LARGE)


def test_glue_score_rules():
    assert task_score("mrpc", {"accuracy": 0.8, "f1": 0.9, "loss": 3.0}) == pytest.approx(0.85)
    assert task_score("stsb", 0.7) == 0.7
    # MNLI halves average into one entry, so they weigh as much as any other task.
    res = {"mnli": {"accuracy": 0.8}, "MNLI-mm": {"accuracy": 0.6}, "rte": {"accuracy": 0.4}}
    assert glue_score(res) == pytest.approx((0.7 + 0.4) / 2)
    assert glue_score({"SST-2": {"accuracy": 0.9}}) == pytest.approx(0.9)
    with pytest.raises(ValueError, match="missing"):
        glue_score({"sst2": {"accuracy": 0.9}}, require_all=True)
    with pytest.raises(ValueError, match="same GLUE entry"):
        glue_score({"mnli": 0.8, "mnli_matched": 0.8})
    with pytest.raises(KeyError, match="lack"):
        glue_score({"mrpc": {"accuracy": 0.8}})
    with pytest.raises(ValueError, match="no GLUE task"):
        glue_score({"ax": {"matthews_correlation": 0.3}})
