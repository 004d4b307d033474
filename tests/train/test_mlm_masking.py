"""mask_tokens: the 15% / 80-10-10 statistics, specials and padding never touched, seeding."""
import math

import pytest
import torch

from autobert.model import ForMaskedLM, tiny
from autobert.train import IGNORE_INDEX, MaskingIds, evaluate_mlm, mask_tokens, masked_lm_loss

IDS = MaskingIds(mask_token_id=4, vocab_size=97, special_token_ids={1, 2, 3, 4}, pad_token_id=0)


def _blocks(n=400, length=128, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(5, 97, (n, length), generator=g)
    x[:, 0], x[:, -1] = 2, 3          # [CLS] ... [SEP]
    x[: n // 2, -20:-1] = 0           # half the rows end in padding
    x[:, 10] = 1                      # an [UNK] in every row
    return x


def _within(count, n, p, sigmas=5.0):
    """|count - n p| within `sigmas` binomial standard deviations."""
    return abs(count - n * p) <= sigmas * math.sqrt(n * p * (1 - p))


def test_masking_rates_within_binomial_tolerance():
    x = _blocks()
    inputs, labels = mask_tokens(x, IDS, prob=0.15, generator=torch.Generator().manual_seed(1))
    maskable = ~torch.isin(x, torch.tensor([0, 1, 2, 3, 4]))
    chosen = labels != IGNORE_INDEX
    n, k = int(maskable.sum()), int(chosen.sum())
    assert _within(k, n, 0.15)
    as_mask = int((inputs[chosen] == 4).sum())
    unchanged = int((inputs[chosen] == x[chosen]).sum())
    # A random replacement can draw the original token (1 in 92): those count as "unchanged".
    p_same = 0.1 + 0.1 / 92
    assert _within(as_mask, k, 0.8)
    assert _within(unchanged, k, p_same)
    assert _within(k - as_mask - unchanged, k, 0.1 - 0.1 / 92)


def test_specials_and_padding_never_masked_or_drawn():
    x = _blocks()
    inputs, labels = mask_tokens(x, IDS, prob=0.9, generator=torch.Generator().manual_seed(2))
    special = torch.isin(x, torch.tensor([0, 1, 2, 3, 4]))
    assert bool((labels[special] == IGNORE_INDEX).all())
    assert torch.equal(inputs[special], x[special])
    changed = (labels != IGNORE_INDEX) & (inputs != 4)
    assert not bool(torch.isin(inputs[changed], torch.tensor([0, 1, 2, 3])).any())
    assert torch.equal(labels[labels != IGNORE_INDEX], x[labels != IGNORE_INDEX])
    assert not torch.equal(inputs, x)  # the input tensor is not modified in place
    assert bool((x[:, 0] == 2).all())


def test_masking_is_seeded_and_accepts_a_tokenizer(tiny_tokenizer):
    x = _blocks(n=8, length=32)
    a = mask_tokens(x, IDS, generator=torch.Generator().manual_seed(5))
    b = mask_tokens(x, IDS, generator=torch.Generator().manual_seed(5))
    assert all(torch.equal(u, v) for u, v in zip(a, b))
    ids = MaskingIds.from_tokenizer(tiny_tokenizer)
    assert ids.mask_token_id == tiny_tokenizer.mask_token_id and tiny_tokenizer.pad_token_id in ids.special_token_ids
    enc = tiny_tokenizer(["the cat sat on the mat ."] * 4, max_length=16, padding="max_length")["input_ids"]
    inputs, labels = mask_tokens(enc, tiny_tokenizer, prob=0.5, generator=torch.Generator().manual_seed(0))
    assert bool((labels[enc == tiny_tokenizer.pad_token_id] == IGNORE_INDEX).all())


@pytest.mark.parametrize("bad", [{"prob": 1.5}, {"prob": -0.1}])
def test_bad_probability(bad):
    with pytest.raises(ValueError, match="prob"):
        mask_tokens(_blocks(n=2, length=16), IDS, **bad)


def test_sparse_loss_equals_full_head_loss():
    torch.manual_seed(0)
    model = ForMaskedLM(tiny()).eval()
    x = _blocks(n=4, length=24)[:, :24]
    inputs, labels = mask_tokens(x, IDS, prob=0.3, generator=torch.Generator().manual_seed(3))
    mask = inputs != 0
    full = model(inputs, attention_mask=mask, labels=labels).loss
    sparse = masked_lm_loss(model, inputs, labels, mask)
    torch.testing.assert_close(sparse, full, rtol=1e-5, atol=1e-6)


def test_evaluate_mlm_fixed_masks():
    torch.manual_seed(0)
    model = ForMaskedLM(tiny())
    blocks = _blocks(n=12, length=32)
    a = evaluate_mlm(model, blocks, batch_size=5, seed=7, masking=IDS)
    b = evaluate_mlm(model, blocks, batch_size=12, seed=7, masking=IDS)
    assert a["tokens"] == b["tokens"] > 0 and model.training
    assert a["loss"] == pytest.approx(b["loss"], rel=1e-5)
    assert a["perplexity"] == pytest.approx(math.exp(a["loss"]), rel=1e-6)
    assert evaluate_mlm(model, blocks, batch_size=12, seed=8, masking=IDS)["loss"] != a["loss"]


def test_mlm_step_trains_and_is_seeded():
    from autobert.train import adamw, mlm_step

    def run():
        torch.manual_seed(0)
        model = ForMaskedLM(tiny(dropout=0.0))
        opt = adamw(model, 3e-3, 0.0)
        gen = torch.Generator().manual_seed(1)
        batch = _blocks(n=8, length=24)[:, :24]
        return [mlm_step(model, batch, opt, IDS, prob=0.3, generator=gen) for _ in range(12)]

    losses = run()
    assert all(isinstance(x, float) for x in losses) and losses == run()
    assert sum(losses[-3:]) < sum(losses[:3])
