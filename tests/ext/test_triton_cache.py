"""Generated-module cache: compile once per specification, reuse from memory and from disk."""
import os
import subprocess
import sys
import textwrap

import pytest
import torch

pytest.importorskip("triton")

import autobert_ext.triton.config as triton_config  # noqa: E402
from autobert_ext import elementwise  # noqa: E402
from autobert_ext.elementwise import run  # noqa: E402
from autobert_ext import streaming_attention  # noqa: E402
from autobert_ext.program import Program  # noqa: E402
from autobert_ext.triton import AttentionConfig, cache_info, clear_cache  # noqa: E402

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
COUNTERS = ("generated", "loaded", "memory_hits", "disk_hits")


@pytest.fixture(autouse=True)
def _cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("AUTOBERT_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("AUTOBERT_BACKEND", "triton")
    yield
    clear_cache()


def triton_elementwise(program, inputs):
    return run("triton", program, inputs)


def _delta(before):
    after = cache_info()
    return {k: after[k] - before[k] for k in COUNTERS}


def _scale(c: float) -> tuple[Program, Program]:
    """Score program mulc(c) and its derivative (s, g) -> g * c."""
    return Program(1, ((5, 1, 0, -1, c),), (1,)), Program(2, ((5, 2, 1, -1, c),), (2,))


def test_second_call_hits_memory_and_cleared_cache_reuses_disk(tmp_path):
    f, fb = _scale(0.123)
    q = torch.randn(1, 2, 9, 8, device=DEVICE)
    before = cache_info()
    out1 = streaming_attention(q, q, q, f, fb)
    assert _delta(before) == {"generated": 1, "loaded": 1, "memory_hits": 0, "disk_hits": 0}
    files = list(tmp_path.glob("attention_*.py"))
    assert len(files) == 1 and "def attn_fwd" in files[0].read_text()

    before = cache_info()
    out2 = streaming_attention(q, q, q, *_scale(0.123))  # equal programs, new objects
    assert _delta(before) == {"generated": 0, "loaded": 0, "memory_hits": 1, "disk_hits": 0}

    clear_cache()
    assert cache_info()["entries"] == 0
    before = cache_info()
    out3 = streaming_attention(q, q, q, f, fb)
    assert _delta(before) == {"generated": 0, "loaded": 1, "memory_hits": 0, "disk_hits": 1}
    assert torch.equal(out1, out2) and torch.equal(out1, out3)


def test_key_covers_program_norm_and_tiles(tmp_path):
    f, fb = _scale(0.5)
    q = torch.randn(1, 1, 5, 8, device=DEVICE)
    before = cache_info()
    streaming_attention(q, q, q, f, fb, "softmax")
    streaming_attention(q, q, q, f, fb, "none")
    streaming_attention(q, q, q, *_scale(0.25), "softmax")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(triton_config, "default_attention_config", lambda *a: AttentionConfig(16, 16, 1, 1, 16, 16, 1, 1))
        streaming_attention(q, q, q, f, fb, "softmax")
    assert _delta(before)["generated"] == 4  # forward-only modules: the op runs its backward only when asked
    assert len(list(tmp_path.glob("attention_*.py"))) == 4


def test_elementwise_cache_and_stale_file_regenerated(tmp_path):
    prog = Program(1, ((13, 1, 0, -1, 0.0),), (1,))
    x = torch.randn(10, device=DEVICE)
    before = cache_info()
    triton_elementwise(prog, [x])
    triton_elementwise(prog, [x + 1])
    assert _delta(before) == {"generated": 1, "loaded": 1, "memory_hits": 1, "disk_hits": 0}
    # A file whose header does not carry its key (truncated, foreign) is rewritten, not imported.
    (path,) = tmp_path.glob("elementwise_*.py")
    path.write_text("raise RuntimeError('stale')\n")
    clear_cache()
    before = cache_info()
    out = triton_elementwise(prog, [x])[0]
    assert _delta(before)["generated"] == 1
    torch.testing.assert_close(out, torch.tanh(x), rtol=1e-6, atol=1e-6)


def test_clear_cache_disk_removes_files(tmp_path):
    triton_elementwise(Program(1, ((2, 1, 0, -1, 0.0),), (1,)), [torch.ones(3, device=DEVICE)])
    assert list(tmp_path.glob("elementwise_*.py"))
    clear_cache(disk=True)
    assert not list(tmp_path.glob("elementwise_*.py"))


def test_cpu_tensors_without_interpreter_raise(monkeypatch):
    monkeypatch.setenv("TRITON_INTERPRET", "0")
    x = torch.ones(3)
    with pytest.raises(RuntimeError, match="TRITON_INTERPRET"):
        elementwise(Program(1, ((2, 1, 0, -1, 0.0),), (1,)), None, [x])


def test_import_needs_no_triton_and_no_cuda():
    code = textwrap.dedent("""
        import sys
        # As if triton were not installed: `import triton` raises ImportError and
        # importlib.util.find_spec("triton") is None (torch's CUDA build probes it at import).
        sys.modules["triton"] = None
        import torch
        import autobert_ext.triton
        from autobert_ext import elementwise
        from autobert_ext.program import Program
        assert sys.modules["triton"] is None and not torch.cuda.is_initialized()
        try:
            elementwise(Program(1, ((2, 1, 0, -1, 0.0), (2, 2, 1, -1, 0.0)), (2,)), None, [torch.ones(2)])
        except RuntimeError as e:
            print("raised:", "the triton package is not installed" in str(e))
    """)
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         env=dict(os.environ, TRITON_INTERPRET="1", AUTOBERT_BACKEND="triton"))
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "raised: True"
