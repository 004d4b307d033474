"""``autobert compare`` end to end on the toy corpus: models at equal parameters, cached, a table."""
import json

import pytest
import torch

from conftest import TINY_MLM
from autobert.cli import main
from autobert.search import SearchConfig, run_search
from autobert.search.compare import PARAM_TOLERANCE, run_compare
from autobert.graph import library
from autobert.model.config import ArchConfig, AttentionLayer, ConvLayer
from autobert.search.finalists import FinalistConfig, layer_layout, selection_data, top_k
from autobert.search.standalone import MLMBlocks, StandaloneConfig
from autobert.search.stats import mean_ci, paired_ci


@pytest.fixture(scope="module")
def two_runs(tiny_corpus, tmp_path_factory):
    corpus, vocab = tiny_corpus
    root = tmp_path_factory.mktemp("runs")
    for seed in (0, 1):
        run_search(root / f"s{seed}", SearchConfig.preset("tiny", corpus=corpus, vocab=vocab, budget=4, seed=seed,
                                                          **TINY_MLM))
    return [root / "s0", root / "s1"]


def test_compare_end_to_end(two_runs, tiny_corpus, tmp_path, capsys):
    corpus, vocab = tiny_corpus
    out = tmp_path / "cmp"
    argv = ["compare", *map(str, two_runs), "--corpus", corpus, "--vocab", vocab, "--out", str(out),
            "--seeds", "0", "1", "--steps", "12", "--eval-every", "6", "--eval-blocks", "8", "--no-progress",
            "--finalists", "2", "--finalist-steps", "5"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "| searched - bert |" in printed and "learning curves" in printed
    summary = json.loads((out / "comparison.json").read_text())
    names = set(summary["models"])
    assert names == {"bert", "autobert-zero", "searched/s0", "searched/s1", "random/s0", "random/s1"}
    bert = summary["models"]["bert"]["parameters"]
    for name, row in summary["models"].items():
        assert abs(row["parameters"] - bert) <= PARAM_TOLERANCE * bert, name
        assert set(row["per_seed"]) == {"0", "1"} and len(row["curve"]) == 2  # steps 6 and 12
    assert set(summary["differences"]) >= {"searched - bert", "searched - autobert-zero", "searched - random"}
    # the random baseline searched as many candidates as each run, on that run's supernet
    assert summary["setup"]["random_budget"] == {"s0": 4, "s1": 4}
    assert (out / "random" / "s0" / "search.sqlite").is_file() and (out / "learning_curves.png").stat().st_size
    from autobert.search import SearchStore
    with SearchStore(out / "random" / "s0" / "search.sqlite") as store:  # scored on the run's own supernet
        assert store.meta("warmup")["copied_from"] == str(two_runs[0].resolve())
    assert "| bert |" in (out / "comparison.md").read_text()
    # final selection: each answer is the finalist with the lowest from-scratch loss
    selection = summary["setup"]["final_selection"]
    assert set(selection) == {"searched/s0", "searched/s1", "random/s0", "random/s1"}
    for name, table in selection.items():
        # the 2 best layouts, plus the best of each attention-layer count beyond them
        assert len(table) >= 2 and [row["rank"] for row in table] == list(range(len(table)))
        chosen = [row for row in table if row.get("selected")]
        assert len(chosen) == 1 and chosen[0]["loss"] == min(row["loss"] for row in table), name
    assert summary["setup"]["finalists"] == {"k": 2, "steps": 5, "seed": 0, "per_layout": True,
                                             "per_attention_count": True}


def test_compare_reuses_finished_trainings(two_runs, tiny_corpus, tmp_path, monkeypatch):
    corpus, vocab = tiny_corpus
    cfg = StandaloneConfig(steps=6, eval_every=3, eval_blocks=8)
    picks = FinalistConfig(k=2, steps=4)
    first = run_compare(two_runs[:1], corpus, vocab, tmp_path, seeds=[0], config=cfg, random_search=False,
                        finalists=picks)
    import autobert.search.standalone as standalone

    def fail(*args, **kwargs):
        raise AssertionError("a finished training ran again")
    monkeypatch.setattr(standalone, "train_standalone", fail)  # every cached training goes through it
    again = run_compare(two_runs[:1], corpus, vocab, tmp_path, seeds=[0], config=cfg, random_search=False,
                        finalists=picks)
    assert again["models"] == first["models"]


def test_final_selection_never_reads_the_scored_text():
    train, heldout = torch.arange(400).reshape(100, 4), torch.full((10, 4), -1)
    data = selection_data(MLMBlocks(train, heldout, masking=None))
    assert len(data.train) + len(data.heldout) == 100 and bool((data.heldout >= 0).all())
    assert not set(data.train[:, 0].tolist()) & set(data.heldout[:, 0].tolist())
    with pytest.raises(ValueError, match="FinalistConfig.k"):
        FinalistConfig(k=0)


def test_compare_rejects_bad_input(two_runs, tiny_corpus, tmp_path, capsys):
    corpus, vocab = tiny_corpus
    assert main(["compare", str(tmp_path / "nope"), "--corpus", corpus, "--vocab", vocab, "--out",
                 str(tmp_path / "o"), "--no-progress"]) == 2
    assert "not a search run folder" in capsys.readouterr().err
    assert main(["compare", str(two_runs[0]), "--corpus", str(tmp_path / "missing.txt"), "--vocab", vocab,
                 "--out", str(tmp_path / "o"), "--no-progress"]) == 2
    assert "compare corpus not found" in capsys.readouterr().err
    assert main(["compare", str(two_runs[0]), "--corpus", corpus, "--vocab", vocab, "--out", str(tmp_path / "o"),
                 "--steps", "0", "--no-progress"]) == 2
    assert "StandaloneConfig.steps" in capsys.readouterr().err


def test_confidence_intervals():
    assert mean_ci([1.0, 2.0, 3.0])["ci"] == pytest.approx([2 - 4.303 / 3 ** 0.5, 2 + 4.303 / 3 ** 0.5])
    d = paired_ci([1.0, 1.1, 0.9], [2.0, 2.05, 1.95])  # consistently lower
    assert d["mean"] == pytest.approx(-1.0) and d["excludes_zero"]
    assert not paired_ci([1.0, 2.0], [1.5, 1.5])["excludes_zero"]


def _store_with(path, fitnesses_and_layers):
    """A search database whose done candidates have the given (fitness, layers)."""
    from autobert.search import SearchStore
    with SearchStore(path) as store:
        for i, (fitness, layers) in enumerate(fitnesses_and_layers):
            arch = ArchConfig(hidden=8, heads=2, ffn=16, vocab_size=30, max_positions=16, layers=layers)
            store.add(i, arch.fingerprint(), arch.to_json(), params=1, flops=1)
            store.finish(i, "done", fitness=fitness)
    return path


def test_finalists_are_the_best_of_each_layout(tmp_path):
    bert, other = AttentionLayer(library["standard"]), AttentionLayer(library["abz_log_key_qkv"])
    db = _store_with(tmp_path / "s.sqlite", [
        (1.0, (bert, ConvLayer(3))), (1.1, (other, ConvLayer(3))), (1.2, (bert, ConvLayer(5))),
        (1.3, (ConvLayer(3), ConvLayer(3))), (1.4, (ConvLayer(3), ConvLayer(5)))])
    assert [c["id"] for c in top_k(db, 3)] == [0, 1, 2]                   # the plain top 3
    assert [c["id"] for c in top_k(db, 3, per_layout=True)] == [0, 2, 3]  # id 1 repeats id 0's layout
    assert layer_layout(top_k(db, 1, per_layout=True)[0]["arch"]) == ("attention", "conv k=3")
    # fewer layouts than k: topped up with the next best by proxy, best first
    few = _store_with(tmp_path / "few.sqlite", [(2.0, (bert, bert)), (1.0, (other, bert)), (3.0, (ConvLayer(3),) * 2)])
    assert [c["id"] for c in top_k(few, 3, per_layout=True)] == [1, 0, 2]
    assert [c["id"] for c in top_k(few, 2, per_layout=True)] == [1, 2]
    with pytest.raises(ValueError, match="per_layout"):
        FinalistConfig(per_layout="yes")


def test_finalists_hold_the_best_of_each_attention_count(tmp_path):
    att = AttentionLayer(library["standard"])
    db = _store_with(tmp_path / "s.sqlite", [
        (1.0, (att, ConvLayer(3))), (1.1, (att, ConvLayer(5))), (1.2, (ConvLayer(5), att)),
        (1.3, (att, att)), (1.4, (ConvLayer(3), ConvLayer(3))), (1.5, (ConvLayer(5), ConvLayer(5)))])
    picks = top_k(db, 2, per_layout=True, per_attention_count=True)
    # the 2 best layouts (ids 0, 1), then the best with 2 attention layers and with none; best first
    assert [c["id"] for c in picks] == [0, 1, 3, 4]
    assert [c["id"] for c in top_k(db, 2, per_attention_count=True)] == [0, 1, 3, 4]
    assert [c["id"] for c in top_k(db, 3, per_layout=True, per_attention_count=True)] == [0, 1, 2, 3, 4]
    with pytest.raises(ValueError, match="per_attention_count"):
        FinalistConfig(per_attention_count=1)
