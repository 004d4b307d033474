"""Fixtures for the search tests: a tiny synthetic corpus + vocabulary and tiny search configs."""
from __future__ import annotations

import contextlib
import random
import signal

import pytest

WORDS = ["the", "cat", "dog", "sat", "on", "mat", "a", "big", "small", "red", "ran", "to", "house", "and",
         "saw", "bird", "tree", "under", "green", "old"]


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory):
    """(corpus path, vocab path): a seeded toy grammar over 20 words, ~6k tokens."""
    root = tmp_path_factory.mktemp("corpus")
    vocab = root / "vocab.txt"
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", ".", *WORDS]) + "\n")
    rng = random.Random(0)
    lines = []
    for _ in range(600):
        subj = f"the {rng.choice(['big', 'small', 'old'])} {rng.choice(['cat', 'dog', 'bird'])}"
        lines.append(f"{subj} {rng.choice(['sat', 'ran', 'saw'])} {rng.choice(['on', 'to', 'under'])} "
                     f"a {rng.choice(['red', 'green'])} {rng.choice(['mat', 'house', 'tree'])} .")
    corpus = root / "corpus.txt"
    corpus.write_text("\n".join(lines) + "\n")
    return str(corpus), str(vocab)


# Seconds-sized MLM search: 2 layers of width 16, 16-token blocks, a few training steps per candidate.
TINY_MLM = {
    "model": {"n_layers": 2, "hidden": 16, "heads": 2, "ffn": 32, "max_positions": 32},
    "biws": {"seq_len": 16, "batch_size": 8, "eval_blocks": 16, "warmup_steps": 20, "child_steps": 4,
             "threads": 1},
    "evolution": {"population_size": 4, "sample_size": 2, "max_nodes": 8},
}


@contextlib.contextmanager
def hang_guard(seconds: float, what: str):
    """Fail with TimeoutError when the block runs past ``seconds`` instead of blocking the test run
    (SIGALRM in the main thread: it interrupts Python code, e.g. a driver polling Ray)."""
    def _fire(signum, frame):
        raise TimeoutError(f"{what} did not finish within {seconds:g} s")
    previous = signal.signal(signal.SIGALRM, _fire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
