"""Bad input everywhere: each wrong argument or file gives one ``error:`` line naming the file or field
and what was expected, exit status 2, no traceback, and leaves nothing half-written.

Every case is (name, argv builder, expected words in the message, folder that must be left as it was
— absent when it did not exist). Builders get the ``Inputs`` of this module (good files to spoil).
"""
from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

import pytest

from autobert.cli import main

GOOD_VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", ".", "the", "cat", "dog", "sat", "on", "mat", "a", "ran"]
TINY = {"model": {"n_layers": 1, "hidden": 8, "heads": 2, "ffn": 8, "max_positions": 64},
        "biws": {"seq_len": 8, "batch_size": 2, "eval_blocks": 2, "warmup_steps": 1, "child_steps": 1}}
PT = ["--steps", "1", "--batch-size", "2", "--seq-len", "8", "--no-progress"]


class Inputs:
    """Good files in ``root``; cases copy and spoil them."""

    def __init__(self, root: Path):
        self.root = root
        self.vocab = self.write("vocab.txt", "\n".join(GOOD_VOCAB) + "\n")
        self.corpus = self.write("corpus.txt", "the cat sat on a mat .\nthe dog ran .\n" * 40)
        self.config = self.write("tiny.json", json.dumps(TINY))
        self.out = root / "out"

    def write(self, name: str, content) -> Path:
        path = self.root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
        return path

    def search(self, *extra, corpus=None, vocab=None, config=None):
        return ["search", "--out", str(self.out), "--corpus", str(corpus or self.corpus), "--vocab",
                str(vocab or self.vocab), "--config", str(config or self.config), "--no-progress", "--no-report",
                *extra]

    def pretrain(self, *extra, corpus=None, vocab=None, arch="bert-tiny"):
        return ["pretrain", "--out", str(self.out), "--arch", arch, "--corpus", str(corpus or self.corpus),
                "--vocab", str(vocab or self.vocab), *PT, *extra]

    def glue_dir(self, header: str, rows: list[str], task: str = "SST-2") -> Path:
        for split in ("train", "dev"):
            self.write(f"glue/{task}/{split}.tsv", "\n".join([header, *rows]) + "\n")
        return self.root / "glue"

    def glue(self, glue_dir, *extra, model="bert-tiny", tasks="sst2"):
        return ["glue", "--model", str(model), "--glue-dir", str(glue_dir), "--vocab", str(self.vocab),
                "--out", str(self.out), "--tasks", tasks, "--seeds", "1", "--epochs", "1", "--no-progress", *extra]

    def search_run(self) -> Path:
        """A finished toy search in ``out`` (for resume cases)."""
        assert main(["search", "--out", str(self.out), "--fitness", "toy", "--budget", "2", "--config",
                     str(self.write("toy.json", json.dumps({"model": {"n_layers": 1}}))), "--no-progress",
                     "--no-report"]) == 0
        return self.out

    def pretrain_run(self) -> Path:
        assert main(self.pretrain()) == 0
        return self.out

    def model_dir(self) -> Path:
        """A saved model folder (config.json + model.safetensors) to tamper with."""
        from autobert.model import ForMaskedLM, save_pretrained, tiny
        folder = self.root / "model"
        save_pretrained(ForMaskedLM(tiny(vocab_size=len(GOOD_VOCAB))), folder)
        return folder


def _spoil_config(i: Inputs, **fields) -> Path:
    doc = json.loads(json.dumps(TINY))
    for key, value in fields.items():
        group, _, name = key.partition("__")
        if name:
            doc.setdefault(group, {})[name] = value
        else:
            doc[group] = value
    return i.write("spoiled.json", json.dumps(doc))


def _truncate(path: Path, keep: float) -> None:
    data = path.read_bytes()
    path.write_bytes(data[:int(len(data) * keep)])


def _tamper_header(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[8:16] = b"{\"bad\": "  # the JSON header of a safetensors file starts at byte 8
    path.write_bytes(bytes(data))


def _old_db(i: Inputs) -> list[str]:
    run = i.search_run()
    (run / "search.sqlite").unlink()
    for suffix in ("-wal", "-shm"):
        Path(str(run / "search.sqlite") + suffix).unlink(missing_ok=True)
    db = sqlite3.connect(run / "search.sqlite")
    db.execute("CREATE TABLE candidates (id INTEGER PRIMARY KEY, arch TEXT)")  # an older layout
    db.commit()
    db.close()
    return ["search", "--resume", str(run), "--no-progress"]


def _config_of_another_version(i: Inputs) -> list[str]:
    run = i.search_run()
    doc = json.loads((run / "config.json").read_text())
    doc["accelerator_pool"] = "tpu"  # a field this version does not know
    (run / "config.json").write_text(json.dumps(doc))
    return ["search", "--resume", str(run), "--no-progress"]


def _pretrain_config_of_another_version(i: Inputs) -> list[str]:
    run = i.pretrain_run()
    doc = json.loads((run / "pretrain_config.json").read_text())
    doc["optimizer"] = "lamb"
    (run / "pretrain_config.json").write_text(json.dumps(doc))
    return ["pretrain", "--out", str(run), "--resume", "--no-progress"]


def _model_with(i: Inputs, spoil) -> Path:
    folder = i.model_dir()
    spoil(folder)
    return folder


def _config_json_field(folder: Path, **fields) -> None:
    doc = json.loads((folder / "config.json").read_text())
    doc.update(fields)
    (folder / "config.json").write_text(json.dumps(doc))


SST_HEADER = "sentence\tlabel"
SST_ROWS = [f"the cat sat on a mat {k} .\t{k % 2}" for k in range(8)]

# (id, argv(i), words the message must hold, folder left as it was: "out" (absent) or "run" (unchanged))
CASES = [
    # --- search: arguments
    ("search-no-out", lambda i: ["search", "--no-progress"], ["--out", "--resume"], "out"),
    ("search-out-and-resume", lambda i: ["search", "--out", "a", "--resume", "b"], ["exactly one"], "out"),
    ("search-unknown-preset", lambda i: i.search("--preset", "huge"), ["preset", "huge", "demo"], "out"),
    ("search-budget-zero", lambda i: i.search("--budget", "0"), ["budget", ">= 1"], "out"),
    ("search-budget-not-int", lambda i: i.search("--budget", "ten"), ["--budget", "invalid int"], "out"),
    ("search-unknown-strategy", lambda i: i.search("--strategy", "greedy"), ["--strategy", "greedy"], "out"),
    ("search-unknown-flag", lambda i: i.search("--bugdet", "3"), ["unrecognized", "--bugdet"], "out"),
    ("search-unknown-glue-task", lambda i: i.search("--glue-task", "squad", "--glue-dir", str(i.root)),
     ["glue_task", "squad"], "out"),
    ("search-glue-task-no-dir", lambda i: i.search("--glue-task", "rte"), ["glue_dir"], "out"),
    ("search-glue-dir-missing", lambda i: i.search("--glue-task", "rte", "--glue-dir", str(i.root / "nope")),
     ["nope"], "out"),
    # --- search: corpus and vocabulary
    ("corpus-missing", lambda i: i.search(corpus=i.root / "nope.txt"), ["corpus", "nope.txt"], "out"),
    ("corpus-empty", lambda i: i.search(corpus=i.write("empty.txt", "")), ["empty.txt", "no text"], "out"),
    ("corpus-blank-lines", lambda i: i.search(corpus=i.write("blank.txt", "\n \n\n")), ["blank.txt", "no text"],
     "out"),
    ("corpus-binary", lambda i: i.search(corpus=i.write("bin.txt", bytes(range(128)) * 8)),
     ["bin.txt", "NUL", "text"], "out"),
    ("corpus-not-utf8", lambda i: i.search(corpus=i.write("latin.txt", "caf\xe9 na\xefve .\n".encode("latin-1") * 50)),
     ["latin.txt", "UTF-8"], "out"),
    ("corpus-folder-without-text", lambda i: i.search(corpus=i.write("docs/readme.md", "x").parent),
     ["docs", ".txt"], "out"),
    ("corpus-too-short", lambda i: i.search(corpus=i.write("short.txt", "the cat\n")), ["short.txt", "fewer than"],
     "out"),
    ("vocab-missing", lambda i: i.search(vocab=i.root / "nope-vocab.txt"), ["vocab", "nope-vocab.txt"], "out"),
    ("vocab-without-mask", lambda i: i.search(vocab=i.write("nomask.txt", "\n".join(
        t for t in GOOD_VOCAB if t != "[MASK]") + "\n")), ["nomask.txt", "[MASK]"], "out"),
    ("vocab-empty", lambda i: i.search(vocab=i.write("empty-vocab.txt", "")), ["empty-vocab.txt", "empty"], "out"),
    ("vocab-binary", lambda i: i.search(vocab=i.write("bin-vocab.txt", b"\x00\x01\xff\xfe" * 64)),
     ["bin-vocab.txt", "vocab"], "out"),
    ("vocab-not-utf8", lambda i: i.search(vocab=i.write("latin-vocab.txt", "\n".join(GOOD_VOCAB + ["caf\xe9"]).encode(
        "latin-1"))), ["latin-vocab.txt", "UTF-8"], "out"),
    ("tokenizer-json-broken", lambda i: i.pretrain(vocab=i.write("tokenizer.json", "{not json")),
     ["tokenizer.json"], "out"),
    # --- search: config JSON
    ("config-missing", lambda i: i.search(config=i.root / "nope.json"), ["--config", "nope.json"], "out"),
    ("config-not-json", lambda i: i.search(config=i.write("bad.json", "{budget: 3")), ["bad.json", "JSON"], "out"),
    ("config-not-object", lambda i: i.search(config=i.write("list.json", "[1, 2]")), ["list.json", "object"], "out"),
    ("config-unknown-field", lambda i: i.search(config=_spoil_config(i, epochs=3)), ["unknown", "epochs"], "out"),
    ("config-unknown-nested-field", lambda i: i.search(config=_spoil_config(i, biws__lr=0.1)),
     ["biws", "unknown", "lr"], "out"),
    ("config-ill-typed-field", lambda i: i.search(config=_spoil_config(i, seed="zero")), ["seed", "'zero'"], "out"),
    ("config-ill-typed-nested", lambda i: i.search(config=_spoil_config(i, model__hidden=7.5)),
     ["hidden", "7.5"], "out"),
    ("config-group-not-object", lambda i: i.search(config=_spoil_config(i, biws=[1])), ["biws", "list"], "out"),
    ("config-out-of-range", lambda i: i.search(config=_spoil_config(i, biws__holdout_fraction=1.5)),
     ["holdout_fraction", "1.5"], "out"),
    # --- search: run folders
    ("resume-not-a-run", lambda i: ["search", "--resume", str(i.write("out/notes.txt", "x").parent)],
     ["not a search run folder"], "run"),
    ("resume-with-seed", lambda i: ["search", "--resume", str(i.search_run()), "--seed", "4"], ["only --budget"],
     "run"),
    ("new-run-in-a-run", lambda i: ["search", "--out", str(i.search_run()), "--fitness", "toy", "--no-progress"],
     ["already holds a search"], "run"),
    ("resume-config-of-another-version", _config_of_another_version, ["config.json", "accelerator_pool"], "run"),
    ("resume-db-not-sqlite", lambda i: (i.search_run(), (i.out / "search.sqlite").write_bytes(b"not a db" * 100),
                                        ["search", "--resume", str(i.out)])[-1], ["search.sqlite"], "run"),
    ("resume-db-of-another-layout", _old_db, ["search.sqlite", "columns"], "run"),
    ("report-missing-run", lambda i: ["report", str(i.root / "nope")], ["nope"], "out"),
    # --- pretrain
    ("pretrain-unknown-arch", lambda i: i.pretrain(arch="bert-huge"), ["bert-huge", "bert-tiny"], "out"),
    ("pretrain-arch-json-missing", lambda i: i.pretrain(arch=str(i.root / "arch.json")), ["arch.json"], "out"),
    ("pretrain-arch-json-bad", lambda i: i.pretrain(arch=str(i.write("a.json", '{"layers": 3}'))), ["a.json"], "out"),
    ("pretrain-bad-lr", lambda i: i.pretrain("--lr", "0"), ["lr", "0"], "out"),
    ("pretrain-seq-len-too-short", lambda i: i.pretrain("--seq-len", "2"), ["seq_len", "2"], "out"),
    ("pretrain-config-unknown-field", lambda i: i.pretrain("--config", str(i.write("pc.json", '{"epochs": 2}'))),
     ["pc.json", "epochs"], "out"),
    ("pretrain-config-ill-typed", lambda i: i.pretrain("--config", str(i.write("pc2.json", '{"steps": "many"}'))),
     ["pc2.json", "steps"], "out"),
    ("pretrain-corpus-binary", lambda i: i.pretrain(corpus=i.write("b.raw", b"\x00" * 500)), ["b.raw", "NUL"], "out"),
    ("pretrain-resume-nothing", lambda i: ["pretrain", "--out", str(i.write("out/x.txt", "x").parent), "--resume",
                                           "--no-progress"], ["nothing to resume"], "run"),
    ("pretrain-resume-other-config", lambda i: (i.pretrain_run(), i.pretrain("--resume", "--lr", "0.01"))[-1],
     ["lr", "differ"], "run"),
    ("pretrain-resume-config-of-another-version", _pretrain_config_of_another_version,
     ["pretrain_config.json", "optimizer"], "run"),
    ("pretrain-bad-preset", lambda i: i.pretrain("--preset", "huge"), ["--preset", "huge"], "out"),
    # --- GLUE: TSVs, models, configs
    ("glue-dir-missing", lambda i: i.glue(i.root / "no-glue"), ["no-glue"], "out"),
    ("glue-missing-column", lambda i: i.glue(i.glue_dir("sentence\tscore", SST_ROWS)), ["train.tsv", "label"], "out"),
    ("glue-bad-label", lambda i: i.glue(i.glue_dir(SST_HEADER, SST_ROWS[:-1] + ["the cat .\tmaybe"])),
     ["train.tsv", "maybe"], "out"),
    ("glue-short-row", lambda i: i.glue(i.glue_dir(SST_HEADER, SST_ROWS + ["no label here"])),
     ["train.tsv:10", "expected 2"], "out"),
    ("glue-unknown-task", lambda i: i.glue(i.glue_dir(SST_HEADER, SST_ROWS), tasks="squad"), ["squad"], "out"),
    ("glue-config-unknown-field", lambda i: i.glue(i.glue_dir(SST_HEADER, SST_ROWS), "--config",
                                                   str(i.write("fc.json", '{"optimizer": "sgd"}'))),
     ["fc.json", "optimizer"], "out"),
    ("finetune-unknown-task", lambda i: ["finetune", "--task", "squad", "--model", "bert-tiny", "--glue-dir",
                                         str(i.glue_dir(SST_HEADER, SST_ROWS)), "--vocab", str(i.vocab), "--out",
                                         str(i.out), "--no-progress"], ["squad"], "out"),
    ("model-safetensors-truncated", lambda i: i.glue(i.glue_dir(SST_HEADER, SST_ROWS), model=_model_with(
        i, lambda f: _truncate(f / "model.safetensors", 0.5))), ["model.safetensors"], "out"),
    ("model-safetensors-tampered", lambda i: i.glue(i.glue_dir(SST_HEADER, SST_ROWS), model=_model_with(
        i, lambda f: _tamper_header(f / "model.safetensors"))), ["model.safetensors"], "out"),
    ("model-safetensors-missing", lambda i: i.glue(i.glue_dir(SST_HEADER, SST_ROWS), model=_model_with(
        i, lambda f: (f / "model.safetensors").unlink())), ["model.safetensors"], "out"),
    ("model-config-of-another-version", lambda i: i.glue(i.glue_dir(SST_HEADER, SST_ROWS), model=_model_with(
        i, lambda f: _config_json_field(f, format_version=99))), ["config.json"], "out"),
]


def _state(folder: Path) -> dict:
    """{relative path: bytes} of every file under ``folder`` (the lock file's pid aside)."""
    if not folder.exists():
        return {}
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and p.name != ".lock"}


@pytest.mark.parametrize("name,build,words,kept", CASES, ids=[c[0] for c in CASES])
def test_bad_input_gives_one_clear_error(name, build, words, kept, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    inputs = Inputs(tmp_path)
    argv = build(inputs)
    before = _state(inputs.out)
    existed = inputs.out.exists()
    capsys.readouterr()
    try:
        code = main(argv)
    except SystemExit as e:  # argparse's usage errors
        code = e.code
    err = capsys.readouterr().err
    assert code == 2, err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.strip() and not line.startswith("usage:")
             and not line.startswith("  ") and not line.startswith("no --")]
    assert len(lines) == 1 and "error:" in lines[0], err
    for word in words:
        assert word in lines[0], (word, lines[0])
    if kept == "out" and not existed:
        assert not inputs.out.exists(), sorted(os.listdir(inputs.out))
    else:
        assert _state(inputs.out) == before


def test_the_corpus_has_at_least_40_cases():
    assert len(CASES) >= 40 and len({c[0] for c in CASES}) == len(CASES)
