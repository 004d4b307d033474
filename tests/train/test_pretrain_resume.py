"""pretrain: a 20-step run equals a run stopped at step 10 and resumed; run-folder contents; config checks."""
import json

import pytest
import torch

from autobert.model import ForMaskedLM, from_pretrained, tiny
from autobert.train import MaskingIds, PretrainConfig, pretrain
from autobert.train.metrics_log import CSV_COLUMNS, read_metrics

IDS = MaskingIds(mask_token_id=4, vocab_size=97, special_token_ids={1, 2, 3, 4}, pad_token_id=0)
CFG = PretrainConfig(steps=20, batch_size=4, grad_accum=2, seq_len=16, lr=2e-3, eval_interval=5, log_interval=1,
                     checkpoint_interval=10, holdout_fraction=0.1, eval_batch_size=4, seed=3)


def _blocks():
    g = torch.Generator().manual_seed(0)
    x = torch.randint(5, 97, (40, 16), generator=g)
    x[:, 0], x[:, -1] = 2, 3
    return x


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    out = tmp_path_factory.mktemp("pt") / "full"
    return pretrain(tiny(), _blocks(), CFG, out, masking=IDS)


def test_resume_reproduces_the_uninterrupted_losses(uninterrupted, tmp_path):
    out = tmp_path / "resumed"
    first = pretrain(tiny(), _blocks(), CFG, out, masking=IDS, stop_after=10)
    assert not first.finished and first.step == 10 and not (out / "model.safetensors").exists()
    second = pretrain(tiny(), _blocks(), CFG, out, masking=IDS, resume=True)
    assert second.finished and second.step == 20
    full = [loss for _, loss in uninterrupted.train_losses]
    assert [s for s, _ in first.train_losses + second.train_losses] == list(range(1, 21))
    assert [loss for _, loss in first.train_losses + second.train_losses] == full  # bit-identical
    assert second.eval == uninterrupted.eval
    # The resumed run's log reads like the uninterrupted one (nothing duplicated).
    logged = [(r["step"], r["loss"]) for r in read_metrics(out / "metrics.jsonl", "train")]
    assert logged == [(r["step"], r["loss"]) for r in read_metrics(uninterrupted.out_dir / "metrics.jsonl", "train")]
    a, b = from_pretrained(out), from_pretrained(uninterrupted.out_dir)
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


def test_run_folder_contents(uninterrupted):
    out = uninterrupted.out_dir
    assert PretrainConfig.load(out / "pretrain_config.json") == CFG
    assert isinstance(from_pretrained(out), ForMaskedLM)
    evals = read_metrics(out / "metrics.jsonl", "eval")
    assert [r["step"] for r in evals] == [5, 10, 15, 20] and all(r["perplexity"] > 1 for r in evals)
    train = read_metrics(out / "metrics.jsonl", "train")
    assert len(train) == 20 and all(r["tokens_per_s"] > 0 for r in train)
    assert train[0]["loss"] > train[-1]["loss"]  # it learns something (random tokens: the unigram)
    header = (out / "metrics.csv").read_text().splitlines()[0]
    assert header == ",".join(CSV_COLUMNS) and len((out / "metrics.csv").read_text().splitlines()) == 25
    summary = json.loads((out / "summary.json").read_text())
    assert summary["steps"] == 20 and summary["tokens_per_s"] > 0
    assert uninterrupted.tokens_per_s > 0 and uninterrupted.parameters == tiny().num_parameters("mlm")
    assert (out / "checkpoint" / "trainer_state.pt").is_file()


def test_existing_run_and_resume_mismatches(uninterrupted, tmp_path):
    with pytest.raises(FileExistsError, match="resume"):
        pretrain(tiny(), _blocks(), CFG, uninterrupted.out_dir, masking=IDS)
    with pytest.raises(ValueError, match=r"\['lr'\]"):
        pretrain(tiny(), _blocks(), CFG.replace(lr=1e-3), uninterrupted.out_dir, masking=IDS, resume=True)
    with pytest.raises(FileNotFoundError, match="nothing to resume"):
        pretrain(tiny(), _blocks(), CFG, tmp_path / "new", masking=IDS, resume=True)


@pytest.mark.parametrize("field, value", [("steps", 0), ("lr", 0.0), ("mask_prob", 1.0), ("precision", "fp16"),
                                          ("adam_betas", (0.9,)), ("holdout_fraction", 1.0), ("batch_size", 2.5)])
def test_bad_config_values(field, value):
    with pytest.raises(ValueError, match=field):
        PretrainConfig(**{field: value})


def test_config_json_round_trip_and_bad_file(tmp_path):
    path = CFG.save(tmp_path)
    assert PretrainConfig.load(path) == CFG
    (tmp_path / "bad.json").write_text('{"steps": 10, "learning_rate": 1}')
    with pytest.raises(ValueError, match="unknown fields"):
        PretrainConfig.load(tmp_path / "bad.json")


def test_too_small_corpus_and_vocab_mismatch(tmp_path):
    with pytest.raises(ValueError, match="fewer than one global batch"):
        pretrain(tiny(), _blocks()[:5], CFG.replace(batch_size=8), tmp_path / "a", masking=IDS)
    with pytest.raises(ValueError, match="vocab_size"):
        pretrain(tiny(vocab_size=50), _blocks(), CFG, tmp_path / "b", masking=IDS)
