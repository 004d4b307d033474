"""The bert_vs_abz experiment end to end at toy size: equal parameters, both models pretrained and
fine-tuned, the comparison written, finished stages reused by a second invocation."""
import json

from autobert.experiments.bert_vs_abz import main


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
