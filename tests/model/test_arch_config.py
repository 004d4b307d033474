"""ArchConfig: validation naming the field, JSON round trip, fingerprint, presets and cost counts."""
import json

import pytest

from autobert.graph import AUTOBERT_ZERO, library, parse
from autobert.model import (ArchConfig, AttentionLayer, ConvLayer, ForMaskedLM, ForSequenceClassification,
                            autobert_zero_base, bert_base, count_flops, count_parameters, tiny)


def test_layer_choices_accept_names_and_expressions():
    assert AttentionLayer("standard").graph == library["standard"]
    expr = "matmul(softmax(scale(matmul(Q, transpose(K)))), add(Q, K))"
    assert AttentionLayer(expr).graph == parse(expr)
    assert ConvLayer(7).kernel == 7


@pytest.mark.parametrize("kernel", [0, 2, -3, 4.0, True, "3"])
def test_conv_kernel_must_be_odd_positive_int(kernel):
    with pytest.raises(ValueError, match="kernel"):
        ConvLayer(kernel)


def test_bad_graph_names_the_field():
    with pytest.raises(ValueError, match="AttentionLayer.graph"):
        AttentionLayer("matmul(Q, K)")
    with pytest.raises(ValueError, match="AttentionLayer.graph"):
        AttentionLayer(3)


@pytest.mark.parametrize("field,value", [
    ("vocab_size", 0), ("hidden", -1), ("heads", 0), ("ffn", 1.5), ("max_positions", 0),
    ("type_vocab_size", True), ("dropout", 1.0), ("dropout", -0.1), ("layer_norm_eps", 0.0),
])
def test_invalid_fields_raise_naming_the_field(field, value):
    with pytest.raises(ValueError, match=field):
        tiny(**{field: value})


def test_hidden_divisible_by_heads_and_layers_validated():
    with pytest.raises(ValueError, match="heads"):
        tiny(hidden=30, heads=4)
    with pytest.raises(ValueError, match="layers"):
        ArchConfig(layers=())
    with pytest.raises(ValueError, match=r"layers\[1\]"):
        ArchConfig(layers=(ConvLayer(3), "standard"))


def test_config_is_frozen_and_hashable():
    cfg = tiny()
    with pytest.raises(Exception):
        cfg.hidden = 64
    assert {cfg: 1}[tiny()] == 1
    assert isinstance(tiny(layers=["standard"]).layers, tuple)


def test_json_round_trip_and_fingerprint():
    for cfg in (tiny(["abz_sqrt_score", 5, "linear"]), bert_base(), autobert_zero_base()):
        again = ArchConfig.from_json(cfg.to_json())
        assert again == cfg and again.fingerprint() == cfg.fingerprint()
        assert ArchConfig.from_dict(cfg.to_dict()) == cfg
    doc = tiny(["standard", 3]).to_dict()
    assert doc["layers"][0]["expr"] == library["standard"].to_expr()
    assert doc["layers"][1] == {"type": "conv", "kernel": 3}
    assert tiny(["standard", 3]).fingerprint() != tiny(["standard", 5]).fingerprint()
    assert len(tiny().fingerprint()) == 16


def test_json_errors_name_the_problem():
    doc = tiny().to_dict()
    with pytest.raises(ValueError, match="does not parse"):
        ArchConfig.from_json("{not json")
    with pytest.raises(ValueError, match="hidden"):
        ArchConfig.from_dict({**doc, "hidden": "wide"})
    with pytest.raises(ValueError, match="unknown keys"):
        ArchConfig.from_dict({**doc, "colour": "red"})
    bad_layer = {**doc, "layers": [{"type": "pool", "kernel": 3}]}
    with pytest.raises(ValueError, match=r"layers\[0\].*type"):
        ArchConfig.from_dict(bad_layer)
    lying = {**doc, "layers": [{**doc["layers"][0], "expr": "matmul(softmax(matmul(Q, transpose(K))), V)"}]}
    with pytest.raises(ValueError, match="does not match"):
        ArchConfig.from_dict(lying)
    with pytest.raises(ValueError, match="version"):
        ArchConfig.from_dict({**doc, "version": 99})
    expr_only = {**doc, "layers": [{"type": "attention", "expr": "standard"}]}
    assert ArchConfig.from_dict(expr_only).layers[0].graph == library["standard"]
    json.loads(tiny().to_json(indent=2))


def test_presets():
    bert = bert_base()
    assert (bert.n_layers, bert.hidden, bert.heads, bert.ffn) == (12, 768, 12, 3072)
    assert all(layer.graph == library["standard"] for layer in bert.layers)
    abz = autobert_zero_base()
    graphs = {layer.graph for layer in abz.layers if isinstance(layer, AttentionLayer)}
    assert {library[n] for n in AUTOBERT_ZERO} <= graphs
    assert any(isinstance(layer, ConvLayer) for layer in abz.layers)


def test_bert_base_parameter_count_matches_hugging_face():
    # HF BertModel(bert-base-uncased) has 109,482,240 parameters including a 590,592-parameter pooler.
    assert count_parameters(bert_base()) == 109_482_240 - 590_592


@pytest.mark.parametrize("layers", [["standard", 3], ["abz_softsign_key_qv", 5, "linear"], [1, "abz_log_key_qkv"]])
def test_parameter_count_matches_modules(layers):
    cfg = tiny(layers)
    mlm, cls = ForMaskedLM(cfg), ForSequenceClassification(cfg, num_labels=3)
    assert cfg.num_parameters() == sum(p.numel() for p in mlm.backbone.parameters())
    assert cfg.num_parameters("mlm") == sum(p.numel() for p in mlm.parameters())
    assert count_parameters(cfg, "classification", num_labels=3) == sum(p.numel() for p in cls.parameters())


def test_flops_scale_with_sequence_and_choices():
    bert = bert_base()
    assert count_flops(bert, 256) > 2 * count_flops(bert, 128)  # attention is quadratic in n
    # a graph that reads no V skips a projection
    assert tiny(["abz_softsign_key_qv"]).flops(32) < tiny(["standard"]).flops(32)
    assert tiny([3]).flops(32) < tiny([9]).flops(32)
    with pytest.raises(ValueError, match="n must"):
        bert.flops(0)
