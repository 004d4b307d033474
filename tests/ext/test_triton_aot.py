"""Generated Triton kernels compile ahead of time for real GPUs (no GPU needed) without spilling and
within the shared-memory budget; float32 attention picks TF32 or IEEE dots as torch allows.

The fast subset here compiles the standard graph's attention kernels in bfloat16 for sm_90;
benchmarks/triton_compile.py compiles every planner kernel (library and seeded random graphs) for
sm_80 and sm_90, and the results committed in benchmarks/results are checked below."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from autobert.graph import library
from autobert_ext.program import BY_NAME, Program
from autobert_ext.triton.attention_source import attention_source
from autobert_ext.triton.config import SHARED_BUDGET, default_attention_config, float32_precision

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "benchmarks" / "results"
SCORE = Program(1, ((BY_NAME["mulc"].code, 1, 0, -1, 0.125),), (1,))          # s -> s / 8
SCORE_BWD = Program(2, ((BY_NAME["mulc"].code, 2, 1, -1, 0.125),), (2,))      # (s, g) -> g / 8


def test_fast_subset_compiles_for_sm90_without_spills(tmp_path):
    pytest.importorskip("triton")
    env = {**os.environ, "AUTOBERT_CACHE_DIR": str(tmp_path / "cache"),
           "PYTHONPATH": os.pathsep.join([str(ROOT / "python"), str(ROOT)])}
    res = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "triton_compile.py"), "--graphs", "standard",
                          "--random", "0", "--dtypes", "bfloat16", "--archs", "90", "--jobs", "2",
                          "--out-dir", str(tmp_path)], capture_output=True, text=True, timeout=900, env=env)
    assert res.returncode == 0, res.stdout + res.stderr[-3000:]
    report = json.loads((tmp_path / "triton-compile-sm90.json").read_text())
    kernels = report["kernels"]
    assert {"attn_fwd", "attn_bwd_dkdv", "attn_bwd_dq"} <= {k["fn"] for k in kernels}
    for k in kernels:
        assert "error" not in k, k
        assert 0 < k["n_regs"] <= 255 and k["n_spills"] == 0 and k["shared"] <= SHARED_BUDGET, k


@pytest.mark.parametrize("arch", [80, 90])
def test_committed_compile_results_have_no_spills(arch):
    report = json.loads((RESULTS / f"triton-compile-sm{arch}.json").read_text())
    assert report["target"] == f"cuda sm_{arch}"
    assert set(report["graphs"]) == set(library) and report["random_graphs"] > 0  # the full sweep
    assert report["n_kernels"] == len(report["kernels"]) > 0
    kernels = report["kernels"]
    assert {(k["dtype"], k["precision"]) for k in kernels if k["kind"] == "attention"} == {
        ("float32", "ieee"), ("float32", "tf32"), ("bfloat16", ""), ("float16", "")}
    bad = [k for k in kernels if "error" in k or k["n_spills"] or k["shared"] > report["shared_budget"]]
    assert not bad, bad[:3]
    assert report["shared_budget"] == SHARED_BUDGET


def test_float32_dots_follow_torch_tf32_setting():
    # Saved and restored by hand: allow_tf32 is computed by the module's __getattr__, which pytest's
    # monkeypatch (9.2) records as absent and then fails to delete.
    matmul = torch.backends.cuda.matmul
    prev, prev_tf32 = torch.get_float32_matmul_precision(), matmul.allow_tf32
    try:
        torch.set_float32_matmul_precision("highest")
        matmul.allow_tf32 = False
        assert float32_precision() == "ieee"
        matmul.allow_tf32 = True
        assert float32_precision() == "tf32"
        matmul.allow_tf32 = False
        torch.set_float32_matmul_precision("high")
        assert float32_precision() == "tf32"
    finally:
        torch.set_float32_matmul_precision(prev)
        matmul.allow_tf32 = prev_tf32
    cfg = default_attention_config(64)
    assert 'input_precision="tf32"' in attention_source(SCORE, SCORE_BWD, "softmax", "float32", cfg, "tf32")
    assert 'input_precision="ieee"' in attention_source(SCORE, SCORE_BWD, "softmax", "float32", cfg, "ieee")
    assert "input_precision" not in attention_source(SCORE, SCORE_BWD, "softmax", "bfloat16", cfg, "tf32")
    with pytest.raises(ValueError, match="precision"):
        attention_source(SCORE, None, "softmax", "float32", cfg, "fp8")


def test_tiles_differ_by_dtype_and_precision(monkeypatch):
    monkeypatch.setenv("TRITON_INTERPRET", "0")  # the GPU tables, not the interpreter's tiles
    half, tf32, ieee = (default_attention_config(64, d, p) for d, p in
                        (("bfloat16", "ieee"), ("float32", "tf32"), ("float32", "ieee")))
    assert half.block_m * half.block_n > tf32.block_m * tf32.block_n > ieee.block_m * ieee.block_n
