"""Backbone modules: projections only for inputs a graph reads, padding-aware conv, shapes and gradients."""
import random

import pytest
import torch

from autobert.graph import library, parse, random_graph
from autobert.model import Backbone, ForMaskedLM, ForSequenceClassification, GraphAttention, LightConv, tiny

torch.manual_seed(0)


def _batch(b=3, n=13, vocab=97, pad_from=(None, 9, 4)):
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(0, vocab, (b, n), generator=g)
    mask = torch.ones(b, n, dtype=torch.long)
    for i, start in enumerate(pad_from):
        if start is not None:
            mask[i, start:] = 0
    return ids, mask


def test_graph_attention_allocates_only_read_projections():
    no_v = GraphAttention(32, 4, library["abz_softsign_key_qv"])  # reads Q and K only
    assert no_v.v_proj is None and no_v.q_proj is not None and no_v.k_proj is not None
    assert not any(name.startswith("v_proj") for name in no_v.state_dict())
    only_v = GraphAttention(32, 4, parse("relu(V)"))
    assert only_v.q_proj is None and only_v.k_proj is None
    x = torch.randn(2, 7, 32)
    assert no_v(x).shape == only_v(x).shape == (2, 7, 32)
    with pytest.raises(ValueError, match="reads"):
        no_v.set_graph(library["standard"])


def test_graph_attention_drops_inputs_that_cannot_influence_the_output():
    g = parse("matmul(softmax(scale(matmul(Q, transpose(Q)))), mul(V, div(K, K)))")  # K: div(K, K) = 1
    att = GraphAttention(32, 4, g)
    assert att.k_proj is None and att.q_proj is not None and att.v_proj is not None
    assert tiny([g]).num_parameters() == tiny(["abz_softsign_key_qv"]).num_parameters()  # Q and V, plus W_O
    x = torch.randn(2, 7, 32)
    assert torch.isfinite(att(x)).all()
    with pytest.raises(ValueError, match="constant output"):
        GraphAttention(32, 4, parse("relu(neg(abs(V)))"))


def test_graph_attention_matches_manual_standard_attention():
    att = GraphAttention(32, 4, library["standard"]).eval()
    x = torch.randn(2, 9, 32)
    mask = torch.ones(2, 9, dtype=torch.bool)
    mask[1, 6:] = False
    split = lambda t: t.view(2, 9, 4, 8).transpose(1, 2)  # (B, H, N, d)
    q, k, v = split(att.q_proj(x)), split(att.k_proj(x)), split(att.v_proj(x))
    scores = (q @ k.transpose(-1, -2)) / 8 ** 0.5
    scores = scores.masked_fill(~mask[:, None, None, :], float("-inf"))
    ref = att.out_proj((scores.softmax(-1) @ v).transpose(1, 2).reshape(2, 9, 32))
    torch.testing.assert_close(att(x, mask), ref, atol=1e-6, rtol=1e-5)


def test_light_conv_ignores_padded_positions():
    conv = LightConv(32, 4, kernel=7).eval()
    x = torch.randn(2, 11, 32)
    mask = torch.ones(2, 11, dtype=torch.bool)
    mask[0, 8:] = False
    y = conv(x, mask)
    x2 = x.clone()
    x2[0, 8:] = torch.randn(3, 32) * 100  # garbage, even inf, in the padding must not leak
    x2[0, 10] = float("inf")
    y2 = conv(x2, mask)
    torch.testing.assert_close(y[0, :8], y2[0, :8], atol=0, rtol=0)
    torch.testing.assert_close(y[1], y2[1], atol=0, rtol=0)


def test_light_conv_taps_are_a_softmax_over_a_centred_slice():
    conv = LightConv(8, 2, kernel=3, max_kernel=7)
    w = conv.kernel_weight()
    assert w.shape == (2, 3) and w.data_ptr() == conv.weight[:, 2].data_ptr()
    with torch.no_grad():  # a delta kernel (very peaked softmax) at the centre makes the conv the GLU output
        conv.weight.fill_(-1e4)
        conv.weight[:, 3] = 1e4
    x = torch.randn(1, 5, 8)
    glu = torch.nn.functional.glu(conv.in_proj(x), dim=-1)
    torch.testing.assert_close(conv(x), conv.out_proj(glu), atol=1e-6, rtol=1e-5)
    with pytest.raises(ValueError, match="kernel"):
        conv.set_kernel(9)


@pytest.mark.parametrize("layers", [["standard", 5], [3, "abz_sqrt_key_qkv", 7, "linear"]])
def test_real_outputs_do_not_depend_on_padded_tokens(layers):
    model = ForMaskedLM(tiny(layers)).eval()
    ids, mask = _batch()
    out = model(ids, mask).logits
    ids2 = ids.clone()
    ids2[mask == 0] = (ids2[mask == 0] + 7) % 97
    out2 = model(ids2, mask).logits
    real = mask.bool()
    torch.testing.assert_close(out[real], out2[real], atol=1e-5, rtol=1e-5)


def test_forward_backward_shapes_for_random_architectures():
    rng = random.Random(3)
    layers = [random_graph(rng, 8), 3, random_graph(rng, 8), 9]
    model = ForMaskedLM(tiny(layers, dropout=0.1)).train()
    ids, mask = _batch()
    labels = ids.masked_fill(torch.rand(ids.shape) < 0.5, -100)
    out = model(ids, mask, token_type_ids=torch.zeros_like(ids), labels=labels)
    assert out.logits.shape == (3, 13, 97) and out.loss.dim() == 0
    out.loss.backward()
    assert model.backbone.embeddings.word.weight.grad is not None
    hidden = Backbone(tiny(layers))(ids, mask)
    assert hidden.shape == (3, 13, 32)


def test_mlm_loss_ignores_minus_100_and_all_ignored_is_zero():
    model = ForMaskedLM(tiny()).eval()
    ids, mask = _batch()
    labels = torch.full_like(ids, -100)
    loss = model(ids, mask, labels=labels).loss
    assert loss.item() == 0.0
    labels[0, 0] = ids[0, 0]
    out = model(ids, mask, labels=labels)
    ref = torch.nn.functional.cross_entropy(out.logits[0, :1], ids[0, :1])
    torch.testing.assert_close(out.loss, ref)


def test_decoder_is_tied_to_word_embeddings():
    model = ForMaskedLM(tiny())
    names = [n for n, _ in model.named_parameters()]
    assert not any("decoder.weight" in n for n in names)
    with torch.no_grad():
        model.backbone.embeddings.word.weight[5].add_(1.0)
    ids, _ = _batch()
    assert model(ids).logits.shape[-1] == 97


def test_sequence_classification_and_regression():
    ids, mask = _batch()
    cls = ForSequenceClassification(tiny(), num_labels=3)
    out = cls(ids, mask, labels=torch.tensor([0, 2, 1]))
    assert out.logits.shape == (3, 3) and out.loss.dim() == 0
    reg = ForSequenceClassification(tiny(), num_labels=1)
    out = reg(ids, mask, labels=torch.tensor([0.5, 1.0, 4.2]))
    torch.testing.assert_close(out.loss, torch.nn.functional.mse_loss(out.logits.squeeze(-1),
                                                                       torch.tensor([0.5, 1.0, 4.2])))
    out.loss.backward()
    with pytest.raises(ValueError, match="num_labels"):
        ForSequenceClassification(tiny(), num_labels=0)


def test_input_validation():
    model = ForMaskedLM(tiny())
    with pytest.raises(ValueError, match="input_ids"):
        model(torch.zeros(2, 3))
    with pytest.raises(ValueError, match="max_positions"):
        model(torch.zeros(1, 65, dtype=torch.long))
    with pytest.raises(ValueError, match="attention_mask"):
        model(torch.zeros(2, 3, dtype=torch.long), torch.ones(2, 4))
