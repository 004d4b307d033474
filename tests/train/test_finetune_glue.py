"""finetune / finetune_glue on a tiny synthetic GLUE folder: runs per (lr, seed), mean ± std,
submission files with official names and the test files' row counts, skipped tasks."""
import json
import zipfile

import pytest
import torch

from autobert.model import ForMaskedLM, tiny
from autobert.train import FinetuneConfig, MissingTrainSplit, finetune, finetune_glue, load_backbone

CFG = FinetuneConfig(lr=1e-3, epochs=1, batch_size=16, eval_batch_size=32, max_length=24, seeds=(0, 1))


@pytest.fixture(scope="module")
def arch(tiny_tokenizer):
    return tiny(vocab_size=tiny_tokenizer.vocab_size)


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory, arch):
    folder = tmp_path_factory.mktemp("ft") / "pretrained"
    torch.manual_seed(0)
    ForMaskedLM(arch).save_pretrained(folder)
    return folder


def _submission_rows(path):
    lines = path.read_text().splitlines()
    assert lines[0] == "index\tprediction"
    return [line.split("\t") for line in lines[1:]]


def test_finetune_lr_grid_seeds_and_submission(tiny_data, tiny_tokenizer, pretrained, tmp_path):
    cfg = CFG.replace(lr_grid=(1e-3, 3e-4))
    result = finetune("SST-2", pretrained, tiny_data["glue"], tiny_tokenizer, cfg, tmp_path / "sst2")
    assert [(r["lr"], r["seed"]) for r in result["runs"]] == [(1e-3, 0), (1e-3, 1), (3e-4, 0), (3e-4, 1)]
    assert result["best_lr"] in (1e-3, 3e-4)
    acc = result["summary"]["sst2"]["accuracy"]
    assert len(acc["values"]) == 2 and 0.0 <= acc["mean"] <= 1.0 and acc["std"] >= 0.0
    rows = _submission_rows(tmp_path / "sst2" / "submission" / "SST-2.tsv")
    assert [r[0] for r in rows] == [str(i) for i in range(12)] and {r[1] for r in rows} <= {"0", "1"}
    saved = json.loads((tmp_path / "sst2" / "results.json").read_text())
    assert saved["task"] == "sst2" and len(saved["runs"]) == 4
    assert FinetuneConfig.load(tmp_path / "sst2" / "finetune_config.json") == cfg
    assert "| sst2 | accuracy |" in (tmp_path / "sst2" / "results.md").read_text()


def test_regression_task_from_fresh_arch(tiny_data, tiny_tokenizer, arch, tmp_path):
    result = finetune("sts-b", arch, tiny_data["glue"] / "STS-B", tiny_tokenizer, CFG.replace(seeds=(3,)), tmp_path)
    assert set(result["summary"]["stsb"]) == {"pearson", "spearmanr", "score"}
    rows = _submission_rows(tmp_path / "submission" / "STS-B.tsv")
    assert len(rows) == 12 and all(0.0 <= float(r[1]) <= 5.0 and len(r[1].split(".")[1]) == 3 for r in rows)


def test_task_without_train_split(tiny_data, tiny_tokenizer, arch, tmp_path):
    with pytest.raises(MissingTrainSplit, match="no train split"):
        finetune("qnli", arch, tiny_data["glue"], tiny_tokenizer, CFG, tmp_path)


def test_load_backbone_takes_the_pretrained_weights(pretrained, arch):
    got_arch, state = load_backbone(pretrained)
    assert got_arch == arch
    model = ForMaskedLM.from_pretrained(pretrained)
    assert all(torch.equal(state[k], v) for k, v in model.backbone.state_dict().items())
    assert load_backbone(arch) == (arch, None)


def test_glue_suite_runs_present_tasks_and_skips_the_rest(tiny_data, tiny_tokenizer, pretrained, tmp_path):
    doc = finetune_glue(pretrained, tiny_data["glue"], tiny_tokenizer, CFG.replace(seeds=(0,)), tmp_path)
    assert list(doc["tasks"]) == ["cola", "sst2", "stsb", "rte"]
    assert "no train split" in doc["skipped"]["qnli"] and "no MRPC folder" in doc["skipped"]["mrpc"]
    with zipfile.ZipFile(tmp_path / "submission.zip") as zf:
        assert sorted(zf.namelist()) == ["CoLA.tsv", "RTE.tsv", "SST-2.tsv", "STS-B.tsv"]
    assert {r[1] for r in _submission_rows(tmp_path / "submission" / "RTE.tsv")} <= {"entailment", "not_entailment"}
    md = (tmp_path / "results.md").read_text()
    assert "GLUE (dev, 4 tasks)" in md and "skipped qnli" in md
    assert doc["glue_dev_average"] is not None and (tmp_path / "rte" / "results.json").is_file()


@pytest.mark.parametrize("field, value", [("seeds", ()), ("seeds", (1, 1)), ("lr_grid", (0.1, -1.0)),
                                          ("epochs", 0), ("max_length", 2), ("precision", "half")])
def test_bad_finetune_config(field, value):
    with pytest.raises(ValueError, match=field.split("_")[0]):
        FinetuneConfig(**{field: value})
