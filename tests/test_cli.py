"""The ``autobert`` command as a user runs it."""
import json
import subprocess
import sys

import pytest

from autobert.cli import main


def test_graph_show_prints_summary(capsys):
    assert main(["graph", "show", "matmul(softmax(scale(matmul(Q, transpose(K)))), V)"]) == 0
    out = capsys.readouterr().out
    assert "fingerprint  d9bd799dc135c6aa (structure)   c60d57557559a501 (function)" in out
    assert "valid        yes" in out and "(N,N)" in out and "FLOPs/head" in out
    assert "finite 100.0%" in out


def test_graph_show_says_why_a_graph_is_degenerate(capsys):
    assert main(["graph", "show", "mul(V, div(K, K))", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert not info["valid"] and info["degenerate_reason"].startswith("dead input: K")
    assert info["live_inputs"] == ["V"] and len(info["functional_fingerprint"]) == 16


def test_graph_show_json_and_library_name(capsys):
    assert main(["graph", "show", "abz_sqrt_score", "--json", "--n", "16", "--d", "8"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["n"] == 16 and info["output"]["shape"] == [2, 4, 16, 8]
    assert info["flops_per_head"] > 2 * 16 * 16 * 8


def test_graph_show_bad_expression(capsys):
    assert main(["graph", "show", "matmul(Q, K)"]) == 2
    assert "contraction mismatch" in capsys.readouterr().err


def test_graph_list(capsys):
    assert main(["graph", "list"]) == 0
    assert "standard" in capsys.readouterr().out


def test_console_script_is_installed():
    res = subprocess.run([sys.executable, "-m", "autobert.cli", "info"], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0 and "torch" in res.stdout


def test_unknown_command_exits_nonzero():
    with pytest.raises(SystemExit):
        main(["frobnicate"])
