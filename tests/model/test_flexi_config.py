"""FlexiLayer / Operation values, the ArchConfig extension (canonical form, JSON versions, unchanged
fingerprints of version-1 architectures) and parameter / FLOP counts of heterogeneous backbones."""
import pytest

from autobert.model import (ArchConfig, FlexiLayer, ForMaskedLM, ForSequenceClassification, Operation,
                            autobert_zero_base, bert_base, count_parameters, tiny)

HETERO = ["standard", FlexiLayer("dsc(5)", hidden=48, heads=3, ffn=(64, 32)), FlexiLayer("wma", heads=2),
          FlexiLayer("dft", hidden=40, heads=5, ffn=(7,)), FlexiLayer("dct", hidden=40, ffn=(16, 16, 16)), 3]


def test_version1_fingerprints_and_counts_are_unchanged():
    # Values computed before flexi layers existed: search databases store these fingerprints.
    expected = {"cdc11b66e776a2b8": (tiny(), 21324, 6594560),
                "f634f2b4acc02519": (tiny(["abz_sqrt_score", 5, "linear"]), 29876, 8974336),
                "b3585e44a3e0b13f": (bert_base(), 108891648, 22380969984),
                "339caede9812f82d": (autobert_zero_base(), 104757936, 21126905856)}
    for fingerprint, (cfg, params, flops) in expected.items():
        assert cfg.fingerprint() == fingerprint
        assert (cfg.num_parameters(), cfg.flops(128)) == (params, flops)
        assert cfg.to_dict()["version"] == 1 and "embedding_size" not in cfg.to_dict()


@pytest.mark.parametrize("text,kind,kernel", [("sdp", "sdp", None), ("wma", "wma", None), (" dct ", "dct", None),
                                              ("dsc(9)", "dsc", 9), ("dsc( 5 )", "dsc", 5)])
def test_operation_written_form(text, kind, kernel):
    op = Operation.parse(text)
    assert (op.kind, op.kernel) == (kind, kernel)
    assert Operation.parse(str(op)) == op


@pytest.mark.parametrize("bad", ["attention", "dsc", "dsc(4)", "sdp(3)", "dsc(0)", 5, None])
def test_bad_operations_name_the_field(bad):
    with pytest.raises(ValueError, match="FlexiLayer.operation"):
        FlexiLayer(bad)


@pytest.mark.parametrize("kwargs,field", [(dict(hidden=0), "hidden"), (dict(heads=1.5), "heads"),
                                          (dict(ffn=(64, 0)), r"ffn\[1\]"), (dict(ffn=(8, 8, 8, 8)), "at most 3"),
                                          (dict(ffn="64"), "ffn"), (dict(hidden=30, heads=4), "divisible")])
def test_flexi_layer_validation(kwargs, field):
    with pytest.raises(ValueError, match=field):
        FlexiLayer("sdp", **kwargs)


def test_layer_sizes_checked_against_the_architecture_defaults():
    with pytest.raises(ValueError, match=r"layers\[1\].*divisible"):
        tiny(["standard", FlexiLayer("sdp", hidden=34)])  # 34 not divisible by the default 4 heads


def test_canonical_form_stores_defaults_as_defaults():
    explicit = tiny([FlexiLayer("sdp", hidden=32, heads=4, ffn=(64,))], embedding_size=32)
    implicit = tiny([FlexiLayer("sdp")])
    assert explicit == implicit and explicit.fingerprint() == implicit.fingerprint()
    assert explicit.layers[0] == FlexiLayer("sdp") and explicit.embedding_size is None
    assert tiny([FlexiLayer("sdp", hidden=64)]).fingerprint() != implicit.fingerprint()


def test_json_round_trip_uses_version_2_only_when_needed():
    cfg = tiny(HETERO, embedding_size=24)
    doc = cfg.to_dict()
    assert doc["version"] == 2 and doc["embedding_size"] == 24
    assert doc["layers"][1] == {"type": "flexi", "operation": "dsc(5)", "hidden": 48, "heads": 3, "ffn": [64, 32]}
    again = ArchConfig.from_json(cfg.to_json())
    assert again == cfg and again.fingerprint() == cfg.fingerprint()
    assert tiny(embedding_size=16).to_dict()["version"] == 2
    assert "dsc(5) hidden=48 heads=3 ffn=64x32" in cfg.describe()


def test_json_errors_name_the_layer_and_field():
    doc = tiny(HETERO).to_dict()
    with pytest.raises(ValueError, match=r"layers\[1\]: unknown keys"):
        ArchConfig.from_dict({**doc, "layers": [doc["layers"][0], {**doc["layers"][1], "span": 3}]})
    with pytest.raises(ValueError, match=r"layers\[0\].*operation"):
        ArchConfig.from_dict({**doc, "layers": [{"type": "flexi", "operation": "fft"}]})
    with pytest.raises(ValueError, match=r"layers\[0\]: a flexi layer needs 'operation'"):
        ArchConfig.from_dict({**doc, "layers": [{"type": "flexi"}]})
    with pytest.raises(ValueError, match=r"layers\[0\].ffn must be a JSON list"):
        ArchConfig.from_dict({**doc, "layers": [{"type": "flexi", "operation": "sdp", "ffn": 64}]})
    with pytest.raises(ValueError, match="embedding_size"):
        ArchConfig.from_dict({**doc, "embedding_size": 0})


@pytest.mark.parametrize("layers,embedding", [(HETERO, 24), (HETERO, None),
                                              ([FlexiLayer("dct", hidden=40, heads=8)], None),
                                              ([FlexiLayer("sdp", ffn=(128, 96, 64))], 16)])
def test_parameter_count_matches_modules(layers, embedding):
    cfg = tiny(layers, embedding_size=embedding)
    mlm, cls = ForMaskedLM(cfg), ForSequenceClassification(cfg, num_labels=3)
    assert cfg.num_parameters() == sum(p.numel() for p in mlm.backbone.parameters())
    assert cfg.num_parameters("mlm") == sum(p.numel() for p in mlm.parameters())
    assert count_parameters(cfg, "classification", num_labels=3) == sum(p.numel() for p in cls.parameters())


def test_flops_follow_the_operations_and_sizes():
    n = 64
    flops = {op: tiny([FlexiLayer(op)]).flops(n) for op in ("sdp", "wma", "dft", "dct", "dsc(5)", "dsc(9)")}
    assert flops["dft"] < flops["sdp"] < flops["wma"]  # LT: one projection; WMA: SDP + Q W
    assert flops["dsc(5)"] < flops["dsc(9)"]
    assert tiny([FlexiLayer("sdp", ffn=(64, 64, 64))]).flops(n) > tiny([FlexiLayer("sdp")]).flops(n)
    assert tiny([FlexiLayer("sdp")]).flops(n) == tiny(["standard"]).flops(n)  # same arithmetic
