"""What an attention graph cannot express is refused with AttentionNotSupported naming the model and
the reason, never computed wrongly; bad arguments get clear errors."""
import pytest
import torch

transformers = pytest.importorskip("transformers", minversion="5")

from families import build, hidden, padded_batch  # noqa: E402

from autobert.hf import (ATTN_IMPLEMENTATION, AttentionNotSupported, graph_attention_forward,  # noqa: E402
                         use_graph_attention)


def _raises(match, fn, *args, **kwargs):
    with pytest.raises(AttentionNotSupported, match=match) as info:
        fn(*args, **kwargs)
    assert "bert" in str(info.value).lower()  # the model is named
    return info


def test_decoder_and_cross_attention():
    ids, mask = padded_batch()
    _raises("causal", use_graph_attention, build("bert", "sdpa", is_decoder=True))
    _raises("causal", hidden, build("bert", ATTN_IMPLEMENTATION, is_decoder=True), ids, mask)
    decoder = build("bert", ATTN_IMPLEMENTATION, is_decoder=True, add_cross_attention=True)
    _raises("cross-attention", use_graph_attention, decoder)
    cross = decoder.encoder.layer[0].crossattention.self  # keys and values from 5 encoder positions
    q, kv = torch.randn(3, 4, 13, 8), torch.randn(3, 4, 5, 8)
    _raises("cross-attention", graph_attention_forward, cross, q, kv, kv, None)


def test_packed_inputs_and_sliding_windows():
    ids, mask = padded_batch()
    model = build("bert", ATTN_IMPLEMENTATION)
    cu = torch.tensor([0, 6, 13], dtype=torch.int32)
    _raises("packed", hidden, model, ids[:1], None, cu_seq_lens_q=cu, cu_seq_lens_k=cu, max_length_q=7, max_length_k=7)
    modern = build("modernbert", "sdpa", layer_types=["sliding_attention", "full_attention"], local_attention=8)
    _raises("sliding", use_graph_attention, modern)
    local = dict(layer_types=["sliding_attention", "full_attention"], local_attention=8)
    _raises("sliding", hidden, build("modernbert", ATTN_IMPLEMENTATION, **local), ids, mask)


def test_position_biases_and_query_dependent_masks():
    ids, mask = padded_batch()
    model = build("bert", ATTN_IMPLEMENTATION)
    bias = torch.zeros(3, 1, 13, 13)
    bias[..., 2] = 0.5  # an additive bias, not a mask
    _raises("position bias", hidden, model, ids, bias)
    causal = torch.tril(torch.ones(13, 13, dtype=torch.bool))[None, None].expand(3, 1, 13, 13)
    _raises("differs between query positions", hidden, model, ids, causal)
    # a 4-D mask that is key padding only is accepted and equals the 2-D mask
    padding_4d = mask.bool()[:, None, None, :].expand(3, 1, 13, 13)
    real = mask.bool()
    torch.testing.assert_close(hidden(model, ids, padding_4d)[real], hidden(model, ids, mask)[real], atol=0, rtol=0)


def test_output_attentions():
    ids, mask = padded_batch()
    _raises("output_attentions", hidden, build("bert", ATTN_IMPLEMENTATION), ids, mask, output_attentions=True)


def test_bad_arguments():
    model = build("bert", "sdpa")
    with pytest.raises(TypeError, match="PreTrainedModel"):
        use_graph_attention(torch.nn.Linear(2, 2))
    with pytest.raises(ValueError, match="2 self-attention modules; got 3 graphs"):
        use_graph_attention(model, ["standard"] * 3)
    with pytest.raises(ValueError, match=r"graph\[1\]"):
        use_graph_attention(model, ["standard", "matmul(Q, K)"])
    assert model.config._attn_implementation == "sdpa"  # nothing changed by a refused call
    with pytest.raises(ValueError, match="does not fit batch"):
        hidden(build("bert", ATTN_IMPLEMENTATION), *padded_batch()[:1], torch.ones(2, 1, 13, 13, dtype=torch.bool))
