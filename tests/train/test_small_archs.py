"""Compact BERT / AutoBERT-Zero architectures: parameter matching, layer mix, resolve_arch."""
import pytest

from autobert.graph import AUTOBERT_ZERO, library
from autobert.model import AttentionLayer, ConvLayer, tiny
from autobert.train import ARCHS, resolve_arch, small_abz, small_bert


@pytest.mark.parametrize("size", ["tiny", "mini", "small"])
def test_abz_matches_bert_parameters(size):
    bert, abz = small_bert(size, vocab_size=1000), small_abz(size, vocab_size=1000)
    assert (bert.n_layers, bert.hidden, bert.heads) == (abz.n_layers, abz.hidden, abz.heads)
    # One FFN unit per layer is 2 * hidden + 1 parameters: the closest integer width is within that.
    assert abs(abz.num_parameters() - bert.num_parameters()) <= abz.n_layers * (2 * abz.hidden + 1)
    assert abz.ffn > bert.ffn  # conv layers and Q/K-only graphs have fewer weights than attention


def test_abz_layer_mix_conv_low_attention_high():
    layers = small_abz("mini").layers
    assert isinstance(layers[0], ConvLayer) and all(isinstance(x, AttentionLayer) for x in layers[1:])
    assert [x.graph for x in layers[1:]] == [library[n] for n in AUTOBERT_ZERO[:3]]


def test_resolve_arch_names_files_and_errors(tmp_path):
    assert resolve_arch("bert-tiny", 123).vocab_size == 123 and "abz-mini" in ARCHS
    path = tmp_path / "a.json"
    path.write_text(tiny(vocab_size=200).to_json())
    assert resolve_arch(str(path), 150) == tiny(vocab_size=200)
    with pytest.raises(ValueError, match="smaller than the tokenizer"):
        resolve_arch(str(path), 300)
    with pytest.raises(ValueError, match="unknown architecture"):
        resolve_arch("gpt-2", 100)
    with pytest.raises(FileNotFoundError):
        resolve_arch(str(tmp_path / "missing.json"), 100)
    (tmp_path / "bad.json").write_text('{"layers": []}')
    with pytest.raises(ValueError, match="bad.json"):
        resolve_arch(str(tmp_path / "bad.json"), 100)
