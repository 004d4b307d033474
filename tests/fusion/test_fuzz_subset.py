"""The CI subset of the fuzzing campaign (tools/fuzz_graphs.py): a seeded sample of random, mutated and
Hypothesis-drawn graphs (every op, deep chains, extreme scales, masks with empty rows, N = 1) through
the planner, the C++ kernels and (a few) the Triton interpreter against eager under DESIGN.md §5's
rule, and malformed expressions / JSON documents that must each raise GraphError."""
import importlib.util
from pathlib import Path

import pytest

pytest.importorskip("hypothesis")
ROOT = Path(__file__).resolve().parents[2]


def _fuzzer():
    spec = importlib.util.spec_from_file_location("fuzz_graphs", ROOT / "tools" / "fuzz_graphs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_fuzz_graphs_seeded_subset():
    """No crash, no mismatch under DESIGN.md §5's rule as tests/fusion/numerics.py applies it to
    arbitrary graphs (float32 eager's error estimated with Monte Carlo arithmetic samples too)."""
    fz = _fuzzer()
    result = fz.fuzz_graphs(40, seed=7, triton_every=10, log_every=0, batch=20)
    assert result["graphs_checked"] == 40 and result["stopped"] == "done"
    assert result["crashes"] == 0 and result["mismatches"] == 0, result["findings"]
    assert result["triton_checked"] >= 1 and len(result["sources"]) >= 3


def test_malformed_documents_raise_graph_error():
    fz = _fuzzer()
    result = fz.fuzz_malformed(200, seed=7)
    assert result["malformed"] == 200 and result["graph_errors"] == 200, result["findings"]
    assert result["json_docs"] > 50 and result["expressions"] > 50
