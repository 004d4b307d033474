"""``autobert bench-search`` end to end on the 20-entry fixture: regret curves, surrogate study,
proxy features from a rank run's proxies.csv, resuming, and errors."""
import json

import pytest

from autobert.cli import main
from autobert.rank.bench_search import SearchStudyConfig, mean_ci_difference, read_proxies_csv

from rank_paths import FIXTURE


def _args(out, *extra):
    return ["bench-search", "--benchmark", str(FIXTURE), "--out", str(out), "--repeats", "2", "--budget", "12",
            "--labelled", "6", "--surrogate-splits", "2", "--no-progress", *extra]


def test_bench_search_end_to_end_and_resume(tmp_path, capsys):
    out = tmp_path / "search"
    assert main(_args(out)) == 0
    printed = capsys.readouterr().out
    assert "boshnas" in printed and "surrogates trained on 6 labels" in printed
    regret = json.loads((out / "regret.json").read_text())
    assert set(regret["strategies"]) == {"random", "evolution", "opnas", "boshnas"} and regret["budget"] == 12
    for s in regret["strategies"].values():
        assert len(s["mean"]) == 12 and all(lo <= m + 1e-9 for lo, m in zip(s["ci_low"], s["mean"]))
        assert s["mean"] == sorted(s["mean"], reverse=True)  # regret never grows
    assert "boshnas - random" in regret["comparisons"]
    study = json.loads((out / "surrogate.json").read_text())
    assert set(study["surrogates"]) == {"ensemble", "gp", "rf"} and study["held_out"] == 14
    assert (out / "regret.png").stat().st_size > 0
    cached = (out / "cache.jsonl").read_text()
    assert main(_args(out)) == 0
    assert (out / "cache.jsonl").read_text() == cached  # resumed: nothing recomputed


def test_proxy_features_and_errors(tmp_path, capsys):
    csv = tmp_path / "proxies.csv"
    csv.write_text("id,a,b\n" + "".join(f"{i},{i * 0.5},{-i}\n" for i in range(20)))
    assert read_proxies_csv(csv, [3, 1]) == {"a": [1.5, 0.5], "b": [-3.0, -1.0]}
    assert main(_args(tmp_path / "with", "--proxies", str(csv), "--strategies", "boshnas")) == 0
    assert json.loads((tmp_path / "with" / "regret.json").read_text())["features"] == ["a", "b"]
    csv.write_text("id,a\n0,1.0\n")
    assert main(_args(tmp_path / "short", "--proxies", str(csv))) == 2
    assert "no proxy values for benchmark ids" in capsys.readouterr().err
    assert main(_args(tmp_path / "bad", "--strategies", "annealing")) == 2
    assert main(_args(tmp_path / "many", "--labelled", "19")) == 2
    assert "fewer than 2" in capsys.readouterr().err
    with pytest.raises(ValueError, match="repeats"):
        SearchStudyConfig(repeats=0)
    lo, hi = mean_ci_difference([1.0, 1.0, 1.0], [0.0, 0.0, 0.0])
    assert lo == hi == 1.0
