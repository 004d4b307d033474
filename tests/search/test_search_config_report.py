"""SearchConfig validation and JSON round trip; results files, report and CLI output of a toy run."""
import json

import pytest

from autobert.search import SearchConfig, pareto_front, run_search


def test_config_round_trip_presets_and_validation(tmp_path):
    cfg = SearchConfig.preset("tiny", corpus="c.txt", vocab="v.txt", evolution={"strategy": "random"})
    assert cfg.evolution.strategy == "random" and cfg.biws.threads == 1
    path = tmp_path / "config.json"
    path.write_text(cfg.to_json())
    assert SearchConfig.load(path) == cfg
    assert cfg.replace(budget=5, biws={"child_steps": 3}).biws.child_steps == 3
    with pytest.raises(ValueError, match="corpus"):
        SearchConfig()  # mlm fitness needs data
    with pytest.raises(ValueError, match="strategy"):
        SearchConfig(fitness="toy", evolution={"strategy": "greedy"})
    with pytest.raises(ValueError, match="unknown keys"):
        SearchConfig.from_dict({"fitness": "toy", "bugdet": 3})
    with pytest.raises(ValueError, match="max_params"):
        SearchConfig(fitness="toy", constraints={"max_params": -1})
    with pytest.raises(ValueError, match="preset"):
        SearchConfig.preset("huge")


def test_pareto_front():
    pts = [(3, 1.0), (1, 3.0), (2, 2.0), (2, 2.5), (4, 1.0), (1, 3.5)]
    assert pareto_front(pts) == [1, 2, 0]


def test_results_report_and_cli(tmp_path, capsys):
    from autobert.cli import main
    run = tmp_path / "run"
    run_search(run, SearchConfig(fitness="toy", budget=30, model={"n_layers": 2},
                                 evolution={"population_size": 8, "sample_size": 4}))
    best = json.loads((run / "best.json").read_text())
    assert best[0]["fitness"] == min(b["fitness"] for b in best) and len(best[0]["layers"]) == 2
    pareto = json.loads((run / "pareto.json").read_text())
    assert [p["params"] for p in pareto] == sorted(p["params"] for p in pareto)
    other = tmp_path / "random"
    run_search(other, SearchConfig(fitness="toy", budget=10, model={"n_layers": 2},
                                   evolution={"strategy": "random"}))
    out = tmp_path / "report.html"
    assert main(["report", str(run), str(other), "--out", str(out)]) == 0
    assert str(out) in capsys.readouterr().out
    html = out.read_text()
    assert html.count("<img") >= 6 and "op priority per arm" in html and "random" in html
    assert "redrawn: functional duplicate" in html and "redrawn: degenerate" in html
    assert main(["report", str(tmp_path / "missing")]) == 2
    assert "not a search run folder" in capsys.readouterr().err


def test_report_write_that_fails_leaves_the_previous_report(tmp_path, monkeypatch):
    """report.html is replaced at once: a write cut short (here ENOSPC at fsync; a SIGKILL likewise)
    leaves the previous report whole and no temporary file behind."""
    import errno
    import os

    from autobert.report import write_report
    run = tmp_path / "run"
    run_search(run, SearchConfig(fitness="toy", budget=3, model={"n_layers": 2}))
    previous = write_report([run]).read_text()

    def full_disk(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full_disk)
    with pytest.raises(OSError, match="No space"):
        write_report([run])
    assert (run / "report.html").read_text() == previous
    assert not list(run.glob(".report.html.*"))
