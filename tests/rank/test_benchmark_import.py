"""NAS-Bench-BERT import: entries, labels, both constructions, and errors naming file, entry and field."""
import copy
import json

import pytest

from autobert.model import FlexiLayer, Operation, layer_sizes
from autobert.rank import BenchmarkError, as_labelled, as_trained, construct, load_nas_bench_bert

from rank_paths import FIXTURE


@pytest.fixture(scope="module")
def raw():
    return json.loads((FIXTURE / "BERT_benchmark.json").read_text())


def test_fixture_reads_into_entries(raw):
    bench = load_nas_bench_bert(FIXTURE)
    assert len(bench) == 20 and bench.ids == list(range(20))
    first = bench.entries[0]
    assert first.encoding.hidden == 256 and len(first.encoding.layers) == 4
    assert first.encoding.layers[0].operation == Operation("wma") and first.encoding.layers[1].operation.kind == "dct"
    assert first.glue == pytest.approx(74.73375) and first.scores["cola"] == pytest.approx(42.69)
    assert bench.labels("rte")[0] == pytest.approx(62.82)
    assert bench.subset([3, 1]).ids == [3, 1] and bench.head(5).ids == [0, 1, 2, 3, 4]
    assert load_nas_bench_bert(FIXTURE / "BERT_benchmark.json").ids == bench.ids


def test_as_trained_is_plain_attention_with_the_trained_ffn():
    enc = load_nas_bench_bert(FIXTURE).entries[0].encoding  # hidden 256: WMA, DCT, SDP, SDP
    arch = as_trained(enc)
    assert arch.hidden == 256 and arch.embedding_width == 128 and arch.vocab_size == 30522
    assert all(layer.operation == Operation("sdp") for layer in arch.layers)
    sizes = [(layer.heads or arch.heads, layer.ffn or (arch.ffn,)) for layer in arch.layers]
    assert sizes == [(4, (1024, 1024, 1024)), (2, (1024, 512, 512)), (4, (1024, 512, 512)), (4, (1024,))]


def test_as_labelled_honours_every_label():
    enc = load_nas_bench_bert(FIXTURE).entries[0].encoding
    arch = as_labelled(enc)
    assert [str(layer.operation) for layer in arch.layers] == ["wma", "dct", "sdp", "sdp"]
    assert arch.layers[0] == FlexiLayer("wma", ffn=(1024, 1024, 1024)) and (arch.heads, arch.ffn) == (4, 1024)
    assert arch.layers[1] == FlexiLayer("dct", heads=2, ffn=(512, 512, 512))
    assert arch.layers[3] == FlexiLayer("sdp")  # its sizes are the architecture's defaults (canonical form)
    assert layer_sizes(arch, arch.layers[3]) == (256, 4, (1024,))
    assert construct(enc, "as-labelled") == arch and construct(enc) == as_trained(enc)
    with pytest.raises(ValueError, match="construction"):
        construct(enc, "as-imagined")


def test_shared_benchmark_anchors(shared_benchmark):
    from autobert.search.rankcorr import kendall_tau
    bench = load_nas_bench_bert(shared_benchmark)
    assert len(bench) == 500
    trained = [as_trained(e.encoding) for e in bench.entries]
    params = [a.num_parameters() for a in trained]
    assert kendall_tau(params, bench.labels()) == pytest.approx(0.5727, abs=1e-3)  # the 0.57 anchor
    assert len({a.fingerprint() for a in trained}) < len({as_labelled(e.encoding).fingerprint()
                                                          for e in bench.entries})
    ops = {str(layer.operation) for e in bench.entries for layer in e.encoding.layers}
    assert ops == {"sdp", "wma", "dft", "dct", "dsc(5)", "dsc(9)"}


def _write(tmp_path, doc):
    path = tmp_path / "BERT_benchmark.json"
    path.write_text(doc if isinstance(doc, str) else json.dumps(doc))
    return path


@pytest.mark.parametrize("mutate,message", [
    (lambda d: d[3].pop("scores"), r"entry \[3\] \(id 3\): missing 'scores'"),
    (lambda d: d[2]["scores"].__setitem__("rte", "n/a"), r"entry \[2\] \(id 2\)\.scores\.rte: expected a finite"),
    (lambda d: d[1].__setitem__("id", 0), r"entry \[1\] repeats id 0"),
    (lambda d: d[4].__setitem__("id", "4"), r"entry \[4\]: 'id' must be an int"),
    (lambda d: d[5]["hparams"]["model_hparam_overrides"].__setitem__("hidden_size", 0), r"id 5\).*hidden_size"),
    (lambda d: d[6]["hparams"]["model_hparam_overrides"]["nas_config"]["encoder_layers"][1].update(
        operation_type="LT", operation_parameter="FFT"), r"id 6\).*encoder_layers\[1\]: unknown operation 'LT' / 'FFT'"),
    (lambda d: d[7]["hparams"]["model_hparam_overrides"]["nas_config"]["encoder_layers"][0].update(
        operation_type="DSC", operation_parameter=4), r"id 7\).*encoder_layers\[0\].operation_parameter: .*odd"),
    (lambda d: d[8]["hparams"]["model_hparam_overrides"]["nas_config"]["encoder_layers"][0].__setitem__(
        "num_operation_heads", 3), r"id 8\).*num_operation_heads: 3 does not divide"),
    (lambda d: d[9]["hparams"]["model_hparam_overrides"]["nas_config"].__setitem__("encoder_layers", []),
     r"id 9\).*encoder_layers: expected a non-empty list"),
    (lambda d: d[0]["hparams"]["model_hparam_overrides"]["nas_config"]["encoder_layers"][0].pop("num_feed_forward"),
     r"id 0\).*encoder_layers\[0\]: missing 'num_feed_forward'"),
])
def test_malformed_entries_name_file_entry_and_field(tmp_path, raw, mutate, message):
    doc = copy.deepcopy(raw)
    mutate(doc)
    path = _write(tmp_path, doc)
    with pytest.raises(BenchmarkError, match=message) as info:
        load_nas_bench_bert(path)
    assert str(path) in str(info.value)


def test_unreadable_files(tmp_path):
    with pytest.raises(BenchmarkError, match="not valid JSON"):
        load_nas_bench_bert(_write(tmp_path, "[{"))
    with pytest.raises(BenchmarkError, match="non-empty JSON list"):
        load_nas_bench_bert(_write(tmp_path, {"id": 0}))
    with pytest.raises(FileNotFoundError, match="BERT_benchmark.json"):
        load_nas_bench_bert(tmp_path / "nowhere")
