"""The bert_vs_abz experiment end to end at toy size: equal parameters, both models pretrained and
fine-tuned, the comparison written, finished stages reused by a second invocation."""
import json

import pytest

from autobert.experiments.bert_vs_abz import architectures, main, searched_layers
from autobert.model import tiny


def test_bert_vs_abz_toy_run(tiny_data, tmp_path, capsys):
    argv = ["--corpus", str(tiny_data["corpus"]), "--glue-dir", str(tiny_data["glue"]), "--vocab",
            str(tiny_data["vocab"]), "--out", str(tmp_path), "--layers", "2", "--hidden", "32", "--heads", "2",
            "--ffn", "64", "--seq-len", "32", "--steps", "2", "--batch-size", "4", "--eval-interval", "2",
            "--epochs", "1", "--seeds", "1", "--max-length", "32", "--threads", "1"]
    assert main(argv) == 0
    doc = json.loads((tmp_path / "comparison.json").read_text())
    bert, abz = doc["models"]["bert"], doc["models"]["abz"]
    assert abs(bert["backbone_parameters"] - abz["backbone_parameters"]) <= 2 * (2 * 32 + 1)
    assert bert["pretrain"]["steps"] == abz["pretrain"]["steps"] == 2
    assert list(bert["glue"]["tasks"]) == ["cola", "sst2", "stsb", "rte"] and "qnli" in abz["glue"]["skipped"]
    assert "AutoBERT-Zero hybrid" in (tmp_path / "comparison.md").read_text()
    capsys.readouterr()
    assert main(argv + ["--scratch-control"]) == 0  # pretraining and GLUE reused; only the controls run
    doc = json.loads((tmp_path / "comparison.json").read_text())
    assert set(doc["scratch"]) == {"bert", "abz"} and "no pretraining" in capsys.readouterr().out


def test_searched_architecture_joins_resized_and_parameter_matched(tiny_data, tmp_path, capsys):
    best = [{"fingerprint": "x", "arch": tiny(["abz_sqrt_score", 3], hidden=16, heads=4).to_dict()}]
    run = tmp_path / "search"
    run.mkdir()
    (run / "best.json").write_text(json.dumps(best))
    assert [str(layer) for layer in searched_layers(run)] == [str(layer) for layer in tiny(["abz_sqrt_score", 3]).layers]
    archs = architectures(2, 32, 2, 64, 100, 32, searched_layers(run / "best.json"))
    assert archs["searched"].hidden == 32 and archs["searched"].heads == 2
    assert abs(archs["searched"].num_parameters() - archs["bert"].num_parameters()) <= 2 * (2 * 32 + 1)
    with pytest.raises(ValueError, match="2 layers, the experiment 3"):
        architectures(3, 32, 2, 64, 100, 32, searched_layers(run))
    with pytest.raises(FileNotFoundError, match="best.json"):
        searched_layers(tmp_path)
    (run / "best.json").write_text("[]")
    with pytest.raises(ValueError, match="lists no architecture"):
        searched_layers(run)
    (run / "best.json").write_text(json.dumps(best))
    argv = ["--corpus", str(tiny_data["corpus"]), "--glue-dir", str(tiny_data["glue"]), "--vocab",
            str(tiny_data["vocab"]), "--out", str(tmp_path / "exp"), "--layers", "2", "--hidden", "32", "--heads", "2",
            "--ffn", "64", "--seq-len", "32", "--steps", "2", "--batch-size", "4", "--eval-interval", "2",
            "--epochs", "1", "--seeds", "1", "--max-length", "32", "--threads", "1", "--searched", str(run),
            "--scratch-control", "searched"]
    assert main(argv) == 0
    doc = json.loads((tmp_path / "exp" / "comparison.json").read_text())
    assert list(doc["models"]) == ["bert", "abz", "searched"] and list(doc["scratch"]) == ["searched"]
    assert "best searched (OP-NAS)" in capsys.readouterr().out
    with pytest.raises(ValueError, match="unknown model"):
        main(argv[:-1] + ["gpt"])
