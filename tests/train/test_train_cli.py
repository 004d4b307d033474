"""`autobert pretrain | finetune | glue` end to end on tiny inputs, and the errors a user can cause."""
import json

import pytest

from autobert.cli import main
from autobert.model import tiny


@pytest.fixture(scope="module")
def arch_json(tmp_path_factory, tiny_tokenizer):
    path = tmp_path_factory.mktemp("cli") / "arch.json"
    path.write_text(tiny(["standard", 3], vocab_size=tiny_tokenizer.vocab_size).to_json())
    return path


def _pretrain_args(tiny_data, arch_json, out, *extra):
    return ["pretrain", "--arch", str(arch_json), "--corpus", str(tiny_data["corpus"]), "--vocab",
            str(tiny_data["vocab"]), "--out", str(out), "--steps", "4", "--batch-size", "4", "--seq-len", "16",
            "--eval-interval", "2", "--checkpoint-interval", "2", "--log-interval", "1", "--no-progress", *extra]


@pytest.fixture(scope="module")
def pretrained_run(tmp_path_factory, tiny_data, arch_json):
    out = tmp_path_factory.mktemp("cli") / "run"
    assert main(_pretrain_args(tiny_data, arch_json, out, "--stop-after", "2")) == 0
    assert main(_pretrain_args(tiny_data, arch_json, out, "--resume")) == 0
    return out


def test_pretrain_stop_and_resume(pretrained_run, capsys):
    summary = json.loads((pretrained_run / "summary.json").read_text())
    assert summary["steps"] == 4 and summary["tokens_per_s"] > 0
    assert (pretrained_run / "vocab.txt").is_file() and (pretrained_run / "model.safetensors").is_file()
    steps = [json.loads(line)["step"] for line in (pretrained_run / "metrics.jsonl").read_text().splitlines()
             if json.loads(line)["kind"] == "train"]
    assert steps == [1, 2, 3, 4]


def test_finetune_and_glue_commands(pretrained_run, tiny_data, tmp_path, capsys):
    common = ["--glue-dir", str(tiny_data["glue"]), "--seeds", "2", "--epochs", "1", "--batch-size", "16",
              "--max-length", "24", "--no-progress"]
    # No --vocab: the pretraining run folder carries its vocab.txt.
    assert main(["finetune", "--task", "RTE", "--model", str(pretrained_run), "--out", str(tmp_path / "rte"),
                 *common]) == 0
    out = capsys.readouterr().out
    assert "| rte | accuracy |" in out and "RTE.tsv" in out
    assert len((tmp_path / "rte" / "submission" / "RTE.tsv").read_text().splitlines()) == 13
    assert main(["glue", "--model", str(pretrained_run), "--vocab", str(tiny_data["vocab"]), "--out",
                 str(tmp_path / "glue"), "--tasks", "sst2,qnli", *common]) == 0
    out = capsys.readouterr().out
    assert "GLUE (dev, 1 tasks)" in out and "skipped qnli" in out
    assert (tmp_path / "glue" / "submission.zip").is_file() and (tmp_path / "glue" / "results.json").is_file()


def _error(argv, capsys) -> str:
    assert main(argv) == 2
    return capsys.readouterr().err


def test_pretrain_bad_inputs(tiny_data, arch_json, tmp_path, capsys):
    args = _pretrain_args(tiny_data, arch_json, tmp_path / "x")
    missing = list(args)
    missing[missing.index("--corpus") + 1] = str(tmp_path / "nope")
    assert "corpus not found" in _error(missing, capsys)
    (tmp_path / "empty.txt").write_text("\n\n")
    empty = list(args)
    empty[empty.index("--corpus") + 1] = str(tmp_path / "empty.txt")
    assert "no text" in _error(empty, capsys)
    (tmp_path / "cfg.json").write_text('{"steps": 3, "learnin_rate": 0.1}')
    assert "unknown fields" in _error(args + ["--config", str(tmp_path / "cfg.json")], capsys)
    assert "PretrainConfig.steps" in _error(args[:-1] + ["--steps", "0"], capsys)
    bad_arch = list(args)
    bad_arch[bad_arch.index("--arch") + 1] = "bert-huge"
    assert "unknown architecture" in _error(bad_arch, capsys)
    assert "vocab file not found" in _error(args[:args.index("--vocab") + 1] + ["/nope/vocab.txt"]
                                            + args[args.index("--vocab") + 2:], capsys)


def test_finetune_bad_inputs(pretrained_run, tiny_data, tmp_path, capsys):
    base = ["--glue-dir", str(tiny_data["glue"]), "--out", str(tmp_path / "o"), "--no-progress"]
    assert "no train split" in _error(["finetune", "--task", "QNLI", "--model", str(pretrained_run), *base], capsys)
    assert "unknown GLUE task" in _error(["finetune", "--task", "XNLI", "--model", str(pretrained_run), *base], capsys)
    assert "unknown architecture" in _error(["finetune", "--task", "RTE", "--model", str(tmp_path / "none"),
                                             "--vocab", str(tiny_data["vocab"]), *base], capsys)
