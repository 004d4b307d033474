"""``autobert rank nas-bench-bert`` end to end on the 20-entry fixture (tiny probe batch), resuming,
and the proof that proxies never read labels: permuting the benchmark's scores changes the
metrics, never a proxy value."""
import csv
import json
import random

import numpy as np
import pytest

from autobert.cli import main
from autobert.rank import PROXIES
from autobert.rank.config import RankConfig
from autobert.rank.run import run_rank

from rank_paths import FIXTURE

TINY = RankConfig(batch_size=2, seq_len=12, sample_tokens=16, n_boot=20)


def _args(out, vocab, corpus, *extra):
    return ["rank", "nas-bench-bert", "--benchmark", str(FIXTURE), "--corpus", str(corpus), "--vocab", str(vocab),
            "--out", str(out), "--batch-size", "2", "--seq-len", "12", "--n-boot", "20", "--no-progress", *extra]


def test_rank_command_end_to_end_and_resume(tmp_path, text_files, capsys):
    vocab, corpus = text_files
    out = tmp_path / "run"
    assert main(_args(out, vocab, corpus)) == 0
    printed = capsys.readouterr().out
    assert "20 architectures" in printed and "expressivity" in printed
    with open(out / "proxies.csv") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["id", *PROXIES] and len(rows) == 21
    assert [int(r[0]) for r in rows[1:]] == list(range(20)) and not any("glue" in c for c in rows[0])
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics["proxies"]) == set(PROXIES) and metrics["compute"]["architectures"] == 20
    m = metrics["proxies"]["params"]
    for key in ("kendall_tau", "spearman_rho", "ndcg@10", "precision@top10%"):
        lo, hi = m[key + "_ci"]
        assert lo <= hi and np.isfinite(m[key])
    assert "vs_depth_params" in m and len(m["kendall_tau_halves"]) == 2
    assert (out / "proxy_vs_glue.png").stat().st_size > 0 and (out / "rank_vs_rank.png").stat().st_size > 0
    assert json.loads((out / "config.json").read_text())["construction"] == "as-trained"

    cached = (out / "cache.jsonl").read_text()
    assert main(_args(out, vocab, corpus, "--no-plots")) == 0  # resumes: nothing recomputed
    assert (out / "cache.jsonl").read_text() == cached


def test_resume_after_a_torn_line(tmp_path, text_files):
    vocab, corpus = text_files
    cfg = RankConfig(batch_size=2, seq_len=12, sample_tokens=16, n_boot=0, limit=6, proxies=("naswot", "params"))
    first = run_rank(FIXTURE, corpus, vocab, tmp_path, cfg, plots=False)
    lines = (tmp_path / "cache.jsonl").read_text().splitlines()
    (tmp_path / "cache.jsonl").write_text("\n".join(lines[:3]) + "\n" + lines[3][:20])  # killed mid-write
    again = run_rank(FIXTURE, corpus, vocab, tmp_path, cfg, plots=False)
    assert again["proxies"]["naswot"]["kendall_tau"] == first["proxies"]["naswot"]["kendall_tau"]


def test_proxies_do_not_change_when_labels_are_permuted(tmp_path, text_files):
    vocab, corpus = text_files
    doc = json.loads((FIXTURE / "BERT_benchmark.json").read_text())
    scores = [e["scores"] for e in doc]
    random.Random(1).shuffle(scores)
    for entry, s in zip(doc, scores):
        entry["scores"] = s
    permuted = tmp_path / "permuted"
    permuted.mkdir()
    (permuted / "BERT_benchmark.json").write_text(json.dumps(doc))
    a = run_rank(FIXTURE, corpus, vocab, tmp_path / "a", TINY, plots=False)
    b = run_rank(permuted, corpus, vocab, tmp_path / "b", TINY, plots=False)
    assert (tmp_path / "a" / "proxies.csv").read_bytes() == (tmp_path / "b" / "proxies.csv").read_bytes()
    assert a["proxies"]["params"]["kendall_tau"] != b["proxies"]["params"]["kendall_tau"]


def test_as_labelled_construction_and_bad_arguments(tmp_path, text_files, capsys):
    vocab, corpus = text_files
    out = tmp_path / "labelled"
    assert main(_args(out, vocab, corpus, "--construction", "as-labelled", "--limit", "5", "--proxies",
                      "head_confidence,params", "--no-plots")) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["construction"] == "as-labelled" and set(metrics["proxies"]) == {"head_confidence", "params"}
    assert main(_args(tmp_path / "x", vocab, corpus, "--proxies", "telepathy")) == 2
    assert "unknown proxies" in capsys.readouterr().err
    assert main(_args(tmp_path / "y", vocab, corpus, "--limit", "1")) == 2
    with pytest.raises(SystemExit):
        main(_args(tmp_path / "z", vocab, corpus, "--construction", "as-imagined"))
