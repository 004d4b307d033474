"""The optional quick GLUE proxy of the BIWS evaluation: a tiny synthetic SST-2 folder in tmp_path."""
import json
import random

import pytest
import torch

from conftest import TINY_MLM
from autobert.graph import library
from autobert.model import AttentionLayer, ConvLayer
from autobert.search import BIWSConfig, SearchConfig, SearchStore, run_search
from autobert.search.biws import combined_fitness
from autobert.search.cli import add_commands
from autobert.search.runner import _biws_evaluator

GLUE = {"glue_task": "SST-2", "glue_train_examples": 48, "glue_dev_examples": 24, "glue_epochs": 1,
        "glue_batch_size": 16, "glue_max_length": 16, "glue_weight": 0.5}


def _write_sst2(root, n_train=200, n_dev=40):
    """glue_data/SST-2/{train,dev}.tsv: the label is whether the sentence says 'big' or 'small'."""
    folder = root / "SST-2"
    folder.mkdir(parents=True)
    rng = random.Random(0)
    for split, n in (("train", n_train), ("dev", n_dev)):
        rows = ["sentence\tlabel"]
        for _ in range(n):
            label = rng.randrange(2)
            rows.append(f"the {'big' if label else 'small'} {rng.choice(['cat', 'dog'])} sat on a mat .\t{label}")
        (folder / f"{split}.tsv").write_text("\n".join(rows) + "\n")
    return root


@pytest.fixture(scope="module")
def glue_dir(tmp_path_factory):
    return _write_sst2(tmp_path_factory.mktemp("glue_data"))


def _config(tiny_corpus, glue_dir, **biws):
    corpus, vocab = tiny_corpus
    return SearchConfig.preset("tiny", corpus=corpus, vocab=vocab, budget=3,
                               **{**TINY_MLM, "biws": {**TINY_MLM["biws"], **GLUE, "glue_dir": str(glue_dir),
                                                       **biws}})


def test_glue_metric_recorded_and_fitness_combined(tiny_corpus, glue_dir):
    threads = torch.get_num_threads()
    try:
        ev = _biws_evaluator(_config(tiny_corpus, glue_dir))
        ev.warm_up(steps=5)
        arch = ev.base.replace(layers=(AttentionLayer(library["standard"]), ConvLayer(3)))
        before = {k: v.clone() for k, v in ev.supernet.state_dict().items()}
        fitness, metrics = ev(arch)
        again, metrics2 = ev(arch)
    finally:
        torch.set_num_threads(threads)
    assert metrics["glue_task"] == "sst2" and set(metrics["glue_metrics"]) == {"accuracy"}
    assert 0 <= metrics["glue_score"] <= 1 and metrics["glue_seconds"] > 0
    assert fitness == pytest.approx(metrics["mlm_loss"] - 0.5 * metrics["glue_score"])
    assert (fitness, metrics["glue_score"]) == (again, metrics2["glue_score"])  # seeded: deterministic
    assert all(torch.equal(before[k], v) for k, v in ev.supernet.state_dict().items())


def test_combined_fitness_arithmetic():
    cfg = BIWSConfig(glue_task="rte", glue_dir="x", glue_weight=2.0)
    assert combined_fitness(6.0, 0.75, cfg) == 4.5
    assert combined_fitness(6.0, None, cfg) == 6.0  # proxy off: the MLM loss
    only = BIWSConfig(glue_task="rte", glue_dir="x", glue_only=True)
    assert combined_fitness(6.0, 0.75, only) == -0.75


def test_search_records_glue_metrics_in_the_database(tiny_corpus, glue_dir, tmp_path):
    threads = torch.get_num_threads()
    try:
        summary = run_search(tmp_path / "run", _config(tiny_corpus, glue_dir, warmup_steps=4))
    finally:
        torch.set_num_threads(threads)
    assert summary.done == 3
    with SearchStore(tmp_path / "run" / "search.sqlite") as store:
        for row in store.rows():
            if row["status"] == "done":
                m = json.loads(row["metrics_json"])
                assert row["fitness"] == pytest.approx(m["mlm_loss"] - 0.5 * m["glue_score"])
    loaded = SearchConfig.load(tmp_path / "run" / "config.json")
    assert loaded.biws.glue_task == "sst2" and loaded.biws.glue_weight == 0.5


def test_config_json_round_trip(tiny_corpus, glue_dir):
    cfg = _config(tiny_corpus, glue_dir, glue_only=True)
    back = SearchConfig.from_dict(json.loads(cfg.to_json()))
    assert back == cfg and back.biws.glue_task == "sst2" and back.biws.glue_only


def test_bad_task_and_missing_folder_errors(tiny_corpus, glue_dir, tmp_path):
    with pytest.raises(ValueError, match="unknown GLUE task 'sst3'"):
        _config(tiny_corpus, glue_dir, glue_task="sst3")
    with pytest.raises(ValueError, match="needs glue_dir"):
        BIWSConfig(glue_task="rte")
    with pytest.raises(ValueError, match="glue_max_length"):
        _config(tiny_corpus, glue_dir, glue_max_length=64)  # > model.max_positions 32
    missing = tmp_path / "no_such_glue"
    with pytest.raises(ValueError, match="no_such_glue"):
        _biws_evaluator(_config(tiny_corpus, missing))
    with pytest.raises(ValueError, match="'rte'.*" + str(glue_dir.name)):  # folder exists, RTE does not
        _biws_evaluator(_config(tiny_corpus, glue_dir, glue_task="rte"))


def test_cli_flags_reach_the_config(tiny_corpus, glue_dir):
    import argparse
    from autobert.search.cli import _config_from_args
    parser = argparse.ArgumentParser()
    add_commands(parser.add_subparsers())
    corpus, vocab = tiny_corpus
    args = parser.parse_args(["search", "--out", "x", "--corpus", corpus, "--vocab", vocab, "--glue-task", "rte",
                              "--glue-dir", str(glue_dir), "--glue-weight", "0.25"])
    cfg = _config_from_args(args)
    assert (cfg.biws.glue_task, cfg.biws.glue_dir, cfg.biws.glue_weight) == ("rte", str(glue_dir), 0.25)


def test_proxy_learns_a_separable_task(tiny_corpus, glue_dir):
    """The label is one word ('big' vs 'small'): a few epochs must beat the majority class."""
    threads = torch.get_num_threads()
    try:
        ev = _biws_evaluator(_config(tiny_corpus, glue_dir, glue_train_examples=200, glue_dev_examples=40,
                                     glue_epochs=15, glue_lr=3e-3))
        ev.warm_up(steps=5)
        _, metrics = ev(ev.base)
    finally:
        torch.set_num_threads(threads)
    majority = max(sum(r.label for r in ev.glue.dev), len(ev.glue.dev) - sum(r.label for r in ev.glue.dev))
    assert metrics["glue_score"] > majority / len(ev.glue.dev) + 0.1


def test_best_json_carries_the_glue_score(tiny_corpus, glue_dir, tmp_path):
    threads = torch.get_num_threads()
    try:
        run_search(tmp_path / "run", _config(tiny_corpus, glue_dir, warmup_steps=2).replace(budget=1))
    finally:
        torch.set_num_threads(threads)
    best = json.loads((tmp_path / "run" / "best.json").read_text())[0]
    assert best["glue_task"] == "sst2" and best["fitness"] == pytest.approx(best["mlm_loss"] - 0.5 * best["glue_score"])


def test_missing_data_fails_before_the_run_folder_exists(tiny_corpus, glue_dir, tmp_path):
    run = tmp_path / "run"
    with pytest.raises(FileNotFoundError, match="RTE"):  # the SST-2 folder exists, RTE's does not
        run_search(run, _config(tiny_corpus, glue_dir, glue_task="rte"))
    assert not run.exists()
    with pytest.raises(FileNotFoundError, match="vocab"):
        run_search(run, _config(tiny_corpus, glue_dir).replace(vocab=str(tmp_path / "missing.txt")))
    assert not run.exists()
    summary = run_search(run, _config(tiny_corpus, glue_dir, warmup_steps=2).replace(budget=1))  # the folder is usable
    assert summary.done == 1
