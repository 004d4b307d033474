"""One kill/resume equality test per command, through ``tools/kill_resume.py`` on tiny inputs:
``autobert pretrain`` and ``autobert glue`` are SIGKILLed twice at chosen moments, resumed, and must
end equal to an uninterrupted run (``autobert search``: tests/search/test_search_resume.py and the
search campaign here)."""
from __future__ import annotations

import argparse

import pytest

VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", ".", "the", "cat", "dog", "sat", "on", "mat", "a", "ran",
         "big", "small", "red", "tree"]


@pytest.fixture
def data(tmp_path):
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("\n".join(VOCAB) + "\n")
    corpus = tmp_path / "corpus.txt"
    words = VOCAB[5:]
    corpus.write_text("\n".join(" ".join(words[(i * 7 + j) % len(words)] for j in range(9)) for i in range(400)) + "\n")
    glue = tmp_path / "glue" / "SST-2"
    glue.mkdir(parents=True)
    for split, n in (("train", 32), ("dev", 16)):
        rows = [f"the {'big' if k % 2 else 'small'} cat sat on a mat .\t{k % 2}" for k in range(n)]
        (glue / f"{split}.tsv").write_text("\n".join(["sentence\tlabel", *rows]) + "\n")
    return {"vocab": str(vocab), "corpus": str(corpus), "glue": str(glue.parent)}


def _args(data, **changes):
    base = dict(kills=2, seed=0, budget=4, corpus=data["corpus"], vocab=data["vocab"], glue_dir=data["glue"],
                tasks="sst2", timeout=600.0)
    return argparse.Namespace(**{**base, **changes})


@pytest.mark.slow
@pytest.mark.parametrize("command", ["pretrain", "glue", "search"])
def test_killed_and_resumed_run_equals_the_uninterrupted_one(harness, data, tmp_path, command):
    work = tmp_path / "work"
    work.mkdir()
    result = harness.campaign(command, _args(data), work)
    assert result["kills"] >= 2, result["cycles"]
    landed = [c["landed"] for c in result["cycles"] if c["killed"]]
    assert sum(p in harness.COMMANDS[command].PHASES for p in landed) >= 2, result["cycles"]  # not all at startup
    assert result["equal"], result["comparison"]
    assert not result["tmp_leftovers"]
    if command == "pretrain":
        assert result["comparison"]["weights_bitwise_equal"] and result["comparison"]["losses_equal"]
    if command == "search":
        c = result["comparison"]
        assert (c["integrity"], c["duplicates"], c["unfinished"], c["done"]) == ("ok", 0, 0, 4)
