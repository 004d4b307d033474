"""patch_attention on randomly initialised tiny transformers models (no downloads)."""
import pytest
import torch

transformers = pytest.importorskip("transformers")
from transformers import BertConfig, BertForSequenceClassification, BertModel, RobertaConfig, RobertaModel  # noqa: E402

from autobert.model import GraphSelfAttention, patch_attention  # noqa: E402
from autobert.model.hf_masks import key_padding_mask_from_hf  # noqa: E402

SIZES = dict(vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37,
             max_position_embeddings=64)


def _bert(impl="sdpa", cls=BertModel, **extra):
    torch.manual_seed(0)
    return cls(BertConfig(**SIZES, attn_implementation=impl, **extra)).eval()


def _inputs(pad=True):
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(3, 99, (3, 17), generator=g)
    mask = torch.ones(3, 17, dtype=torch.long)
    if pad:
        mask[1, 12:] = 0
        mask[2, 5:] = 0
    return ids, mask


def _hidden(model, ids, mask):
    with torch.no_grad():
        return model(input_ids=ids, attention_mask=mask).last_hidden_state


@pytest.mark.parametrize("impl", ["eager", "sdpa"])
@pytest.mark.parametrize("pad", [True, False])
def test_standard_graph_matches_unpatched_and_revert_restores(impl, pad):
    model = _bert(impl)
    ids, mask = _inputs(pad)
    ref = _hidden(model, ids, mask)
    originals = [m.attention.self for m in model.encoder.layer]
    handle = patch_attention(model, "standard")
    assert handle.num_patched == 2 and all(isinstance(m.attention.self, GraphSelfAttention) for m in model.encoder.layer)
    assert model.encoder.layer[0].attention.self.query is originals[0].query  # pretrained weights kept
    torch.testing.assert_close(_hidden(model, ids, mask), ref, atol=1e-5, rtol=0)
    handle.revert()
    assert [m.attention.self for m in model.encoder.layer] == originals
    assert torch.equal(_hidden(model, ids, mask), ref)
    handle.revert()  # a second revert does nothing


def test_other_graph_differs_and_state_dict_names_unchanged():
    model = _bert()
    ids, mask = _inputs()
    names = list(model.state_dict())
    ref = _hidden(model, ids, mask)
    with patch_attention(model, "abz_sqrt_key_qkv"):
        assert list(model.state_dict()) == names
        out = _hidden(model, ids, mask)
        assert (out - ref).abs().max() > 1e-3
    assert torch.equal(_hidden(model, ids, mask), ref)


@pytest.mark.parametrize("graph", ["standard", "abz_softsign_key_qv", "linear"])
def test_patched_model_honours_padding(graph):
    model = _bert()
    ids, mask = _inputs()
    patch_attention(model, graph)
    out = _hidden(model, ids, mask)
    ids2 = ids.clone()
    ids2[mask == 0] = 4
    out2 = _hidden(model, ids2, mask)
    real = mask.bool()
    torch.testing.assert_close(out[real], out2[real], atol=1e-5, rtol=1e-5)


def test_classification_model_and_roberta_are_patched():
    cls = _bert(cls=BertForSequenceClassification, num_labels=3)
    ids, mask = _inputs()
    with torch.no_grad():
        ref = cls(input_ids=ids, attention_mask=mask).logits
        with patch_attention(cls):
            torch.testing.assert_close(cls(input_ids=ids, attention_mask=mask).logits, ref, atol=1e-5, rtol=0)
    torch.manual_seed(0)
    rob = RobertaModel(RobertaConfig(**{**SIZES, "max_position_embeddings": 80}, pad_token_id=1)).eval()
    ref = _hidden(rob, ids, mask)
    handle = patch_attention(rob, "standard")
    torch.testing.assert_close(_hidden(rob, ids, mask), ref, atol=1e-5, rtol=0)
    handle.revert()


def test_patch_refusals():
    model = _bert()
    patch_attention(model)
    with pytest.raises(ValueError, match="already patched"):
        patch_attention(model)
    with pytest.raises(ValueError, match="no BertSelfAttention"):
        patch_attention(torch.nn.Linear(2, 2))
    with pytest.raises(ValueError, match="relative"):
        patch_attention(_bert("eager", position_embedding_type="relative_key"))
    with pytest.raises(ValueError, match="graph"):
        patch_attention(_bert(), "matmul(Q, K)")


def test_mask_conversion():
    real = torch.tensor([[True, True, False], [True, True, True]])
    finfo = torch.finfo(torch.float32).min
    extended = (1.0 - real[:, None, None, :].float()) * finfo  # eager BERT: (B, 1, 1, N)
    sdpa = extended.expand(2, 1, 3, 3)  # SDPA: (B, 1, Q, N)
    old = (1.0 - real[:, None, None, :].float()) * -10000.0
    for mask in (extended, sdpa, old, real[:, None, None, :], real.long()):
        assert torch.equal(key_padding_mask_from_hf(mask, 2, 3), real)
    assert key_padding_mask_from_hf(torch.zeros(2, 1, 1, 3), 2, 3) is None
    causal = torch.triu(torch.full((3, 3), finfo), 1)[None, None].expand(2, 1, 3, 3)
    with pytest.raises(ValueError, match="query positions"):
        key_padding_mask_from_hf(causal, 2, 3)
    with pytest.raises(ValueError, match="additive"):
        key_padding_mask_from_hf(torch.full((2, 1, 1, 3), -0.5), 2, 3)
    with pytest.raises(ValueError, match="shape"):
        key_padding_mask_from_hf(torch.zeros(2, 1, 1, 4), 2, 3)
