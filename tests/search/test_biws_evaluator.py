"""BIWS evaluation on a tiny synthetic corpus: compact vocabulary, determinism, latency constraint."""
import pytest
import torch

from conftest import TINY_MLM
from autobert.graph import library
from autobert.model import AttentionLayer, ConvLayer
from autobert.search import SearchConfig, evaluate_safely
from autobert.search.biws import compact_vocabulary
from autobert.search.runner import _biws_evaluator
from autobert.train import MaskingIds


def test_compact_vocabulary_renumbers_densely():
    ids = MaskingIds(mask_token_id=4, vocab_size=100, special_token_ids=frozenset({1, 2, 3}), pad_token_id=0)
    blocks = torch.tensor([[2, 50, 70, 3], [2, 70, 99, 3]])
    out, new = compact_vocabulary(blocks, ids)
    assert new.vocab_size == 8  # 5 specials + 3 used ids
    assert out.tolist() == [[2, 5, 6, 3], [2, 6, 7, 3]]
    assert (new.mask_token_id, new.pad_token_id, new.special_token_ids) == (4, 0, frozenset({0, 1, 2, 3}))


@pytest.fixture(scope="module")
def evaluator(tiny_corpus):
    corpus, vocab = tiny_corpus
    threads = torch.get_num_threads()
    ev = _biws_evaluator(SearchConfig.preset("tiny", corpus=corpus, vocab=vocab, **TINY_MLM))
    ev.warm_up(steps=10)
    yield ev
    torch.set_num_threads(threads)


def test_evaluation_is_deterministic_and_leaves_the_supernet_unchanged(evaluator):
    arch = evaluator.base.replace(layers=(AttentionLayer(library["standard"]), ConvLayer(3)))
    before = {k: v.clone() for k, v in evaluator.supernet.state_dict().items()}
    loss1, metrics = evaluator(arch)
    loss2, _ = evaluator(arch)
    assert loss1 == loss2 and torch.isfinite(torch.tensor(loss1))
    assert metrics["train_loss_first"] is not None
    after = evaluator.supernet.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # candidates train copies


def test_latency_constraint_fails_the_candidate(evaluator):
    from autobert.search import Constraints
    arch = evaluator.base
    evaluator.constraints = Constraints(max_latency_ms=1e-6, seq_len=16, latency_batch=2)
    try:
        outcome = evaluate_safely(evaluator, arch)
    finally:
        evaluator.constraints = Constraints()
    assert outcome.status == "failed" and outcome.reason.startswith("constraint: latency")


@pytest.mark.parametrize("inherit", [0.0, 0.5])
def test_children_start_between_the_supernet_and_a_fresh_init(evaluator, inherit):
    from dataclasses import replace

    from autobert.model.heads import ForMaskedLM
    arch = evaluator.base.replace(layers=(AttentionLayer(library["standard"]), ConvLayer(3)))
    full = dict(evaluator.supernet.extract(arch).named_parameters())
    with torch.random.fork_rng():
        torch.manual_seed(evaluator.seed)
        init = dict(ForMaskedLM(arch).named_parameters())
    cfg = evaluator.cfg
    evaluator.cfg = replace(cfg, inherit=inherit)
    try:
        child = evaluator.supernet.extract(arch)
        evaluator.shrink_toward_init(child, arch)
        loss, _ = evaluator(arch)
        evaluator.cfg = replace(cfg, inherit=1.0)
        inherited_loss, _ = evaluator(arch)
    finally:
        evaluator.cfg = cfg
    for name, w in child.named_parameters():
        torch.testing.assert_close(w, inherit * full[name] + (1 - inherit) * init[name], rtol=1e-6, atol=1e-6)
    assert any(not torch.equal(full[n], init[n]) for n in full)  # the two ends differ
    assert loss != inherited_loss  # the fitness sees where the child started


def test_inherit_is_validated():
    from autobert.search.config import BIWSConfig
    for bad in (-0.1, 1.5, "half", True):
        with pytest.raises(ValueError, match="BIWSConfig.inherit"):
            BIWSConfig(inherit=bad)
