"""The corpus and vocabulary shipped in the package, and the commands that default to them."""
import json
import subprocess
import sys


from autobert.data import NOTICE, default_corpus, default_vocab, resolve_data
from autobert.train import WordPieceTokenizer


def test_embedded_files_are_whole_and_attributed():
    corpus, vocab = default_corpus(), default_vocab()
    assert sum(1 for _ in corpus.open(encoding="utf-8")) == 3760  # WikiText-2 valid, every line
    tok = WordPieceTokenizer.from_vocab(vocab)
    assert tok.vocab_size == 30522 and tok.mask_token_id == 103
    notice = NOTICE.read_text(encoding="utf-8")
    for needle in ("CC BY-SA 3.0", "Merity", "Apache License 2.0", "google-research/bert", corpus.name, vocab.name):
        assert needle in notice


def test_resolve_data_fills_only_what_is_missing(tmp_path):
    assert resolve_data("c.txt", "v.txt") == ("c.txt", "v.txt", [])
    corpus, vocab, filled = resolve_data(None, "v.txt")
    assert (corpus, vocab, filled) == (str(default_corpus()), "v.txt", ["corpus"])
    assert resolve_data("", None)[2] == ["corpus", "vocab"]


def test_package_data_is_installed(tmp_path):
    """setup.py declares the data files (pyproject has include-package-data = false): build_py copies them."""
    root = default_corpus().parents[3]
    out = tmp_path / "build"
    subprocess.run([sys.executable, "setup.py", "-q", "build_py", "-d", str(out)], cwd=root, check=True,
                   capture_output=True)
    shipped = {p.name for p in (out / "autobert" / "data").iterdir()}
    assert {default_corpus().name, default_vocab().name, NOTICE.name, "__init__.py"} <= shipped


def test_search_without_data_arguments_uses_the_embedded_data(tmp_path, capsys):
    from autobert.cli import main
    cfg = tmp_path / "cfg.json"
    cfg.write_text(json.dumps({"model": {"n_layers": 2, "hidden": 16, "heads": 2, "ffn": 32, "max_positions": 32},
                               "biws": {"seq_len": 16, "batch_size": 4, "eval_blocks": 8, "warmup_steps": 2,
                                        "child_steps": 1, "max_tokens": 4000}}))
    run = tmp_path / "run"
    assert main(["search", "--preset", "demo", "--out", str(run), "--config", str(cfg), "--budget", "2",
                 "--no-progress"]) == 0
    out = capsys.readouterr()
    assert "no --corpus given: using the embedded WikiText-2" in out.err and "no --vocab given" in out.err
    assert f"report: {run / 'report.html'}" in out.out and (run / "report.html").is_file()
    saved = json.loads((run / "config.json").read_text())
    assert (saved["corpus"], saved["vocab"]) == (str(default_corpus()), str(default_vocab()))
    assert saved["budget"] == 2 and saved["evolution"]["population_size"] == 6  # the demo preset


def test_demo_preset_keeps_user_data(tmp_path):
    from autobert.search import SearchConfig
    cfg = SearchConfig.preset("demo", corpus="my.txt", vocab="my_vocab.txt")
    assert (cfg.corpus, cfg.vocab, cfg.budget, cfg.biws.warmup_steps) == ("my.txt", "my_vocab.txt", 10, 400)


def test_pretrain_without_data_arguments_uses_the_embedded_data(tmp_path, capsys):
    from autobert.cli import main
    out = tmp_path / "pt"
    assert main(["pretrain", "--preset", "demo", "--out", str(out), "--steps", "2", "--batch-size", "2",
                 "--seq-len", "16", "--max-tokens", "2000", "--eval-interval", "2", "--no-progress"]) == 0
    printed = capsys.readouterr()
    assert "no --arch given: bert-tiny" in printed.err and "embedded WikiText-2" in printed.err
    data = json.loads((out / "data.json").read_text())
    assert data == {"corpus": str(default_corpus()), "vocab": str(default_vocab())}
    assert (out / "model.safetensors").is_file() and (out / "vocab.txt").read_bytes() == default_vocab().read_bytes()
    # A resume reads the run's own arch, corpus and vocabulary (nothing to do: it is finished).
    assert main(["pretrain", "--out", str(out), "--resume", "--no-progress"]) == 0
    assert "finished: 2 steps" in capsys.readouterr().out
