"""Tiny inputs for the training tests: a WordPiece vocab, a text corpus and a GLUE folder, all
synthetic and small enough that a model of hidden 32 trains on them in seconds."""
from __future__ import annotations

import random
from pathlib import Path

import pytest

WORDS = ("the a cat dog bird sat ran flew on under over mat tree house good bad great awful movie film "
         "is was very not and but it this that plot actor red blue green big small").split()
PUNCT = list(".,!?;'\"()-")


def write_vocab(path: Path) -> Path:
    tokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + PUNCT + WORDS + [f"##{c}" for c in "sdeyr"]
    path.write_text("\n".join(tokens) + "\n", encoding="utf-8")
    return path


def sentence(rng: random.Random, n: int = 6) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n)) + " ."


def write_corpus(folder: Path, n_lines: int = 300, seed: int = 0) -> Path:
    """Two .txt files (plus a file that must be ignored) of WikiText-like lines."""
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("a.txt", "b.tokens"):
        lines = [" = heading = ", ""] + [sentence(rng, rng.randint(4, 12)) for _ in range(n_lines // 2)]
        (folder / name).write_text("\n".join(lines) + "\n", encoding="utf-8")
    (folder / "notes.md").write_text("not part of the corpus\n", encoding="utf-8")
    return folder


def _sst(rng, n, with_label=True):
    rows = []
    for _ in range(n):
        y = rng.randint(0, 1)
        s = f"the movie was {'good' if y else 'bad'} " + sentence(rng, 3)
        rows.append((s, y))
    return rows


def write_glue(root: Path, seed: int = 0) -> Path:
    """CoLA, SST-2, RTE, STS-B with train/dev/test; QNLI with dev/test only (no train)."""
    rng = random.Random(seed)
    sizes = {"train": 48, "dev": 16, "test": 12}

    def put(task, split, header, rows):
        d = root / task
        d.mkdir(parents=True, exist_ok=True)
        lines = ([header] if header else []) + ["\t".join(map(str, r)) for r in rows]
        (d / f"{split}.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")

    for split in ("train", "dev"):
        put("SST-2", split, "sentence\tlabel", _sst(rng, sizes[split]))
        put("CoLA", split, None, [("src", y, "*" if not y else "", s) for s, y in _sst(rng, sizes[split])])
        put("RTE", split, "index\tsentence1\tsentence2\tlabel",
            [(i, s, sentence(rng), "entailment" if y else "not_entailment")
             for i, (s, y) in enumerate(_sst(rng, sizes[split]))])
        put("STS-B", split, "index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\tsentence2\tscore",
            [(i, "g", "f", "2012", i, "s", "s", s, sentence(rng), f"{5.0 * y:.3f}")
             for i, (s, y) in enumerate(_sst(rng, sizes[split]))])
    n = sizes["test"]
    put("SST-2", "test", "index\tsentence", [(i, s) for i, (s, _) in enumerate(_sst(rng, n))])
    put("CoLA", "test", "index\tsentence", [(i, s) for i, (s, _) in enumerate(_sst(rng, n))])
    put("RTE", "test", "index\tsentence1\tsentence2", [(i, s, sentence(rng)) for i, (s, _) in enumerate(_sst(rng, n))])
    put("STS-B", "test", "index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\tsentence2",
        [(i, "g", "f", "2012", i, "s", "s", s, sentence(rng)) for i, (s, _) in enumerate(_sst(rng, n))])
    put("QNLI", "dev", "index\tquestion\tsentence\tlabel",
        [(i, s, sentence(rng), "entailment") for i, (s, _) in enumerate(_sst(rng, 8))])
    put("QNLI", "test", "index\tquestion\tsentence", [(i, s, sentence(rng)) for i, (s, _) in enumerate(_sst(rng, 8))])
    return root


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory):
    """{"vocab", "corpus", "glue"} paths shared by the tests of this folder (read-only use)."""
    root = tmp_path_factory.mktemp("train_data")
    return {"vocab": write_vocab(root / "vocab.txt"), "corpus": write_corpus(root / "corpus"),
            "glue": write_glue(root / "glue_data")}


@pytest.fixture(scope="session")
def tiny_tokenizer(tiny_data):
    from autobert.train import WordPieceTokenizer
    return WordPieceTokenizer.from_vocab(tiny_data["vocab"])


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny models gain nothing from intra-op threads, and on a busy machine the idle-spinning of a
    second OpenMP thread makes each op ~20x slower. Module scope: a module's fixtures and tests see
    the same thread count (float reductions, hence exact-equality checks, depend on it); restored
    after each module."""
    import torch
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
