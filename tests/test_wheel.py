"""The wheel: `pip wheel --no-build-isolation --no-deps .` holds the compiled extension and the torch
version it was built against, installs into a fresh virtual environment (torch from the system
site-packages) and runs there with no compiler on PATH."""
import os
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

SMOKE = textwrap.dedent("""
    import json, os, sys
    import torch
    import autobert_ext
    from autobert.fusion import fused_attention
    from autobert.graph import eager, library
    assert autobert_ext.available(), autobert_ext.load_error()
    assert os.environ["VENV"] in autobert_ext.__file__, autobert_ext.__file__
    os.environ["AUTOBERT_BACKEND"] = "cpp"
    q, k, v = (torch.randn(2, 2, 13, 8) for _ in range(3))
    mask = torch.ones(2, 13, dtype=torch.bool)
    mask[1, 9:] = False
    for name in ("standard", "abz_sqrt_score"):
        got = fused_attention(library[name], q, k, v, mask)
        want = eager(library[name], q, k, v, mask)
        rows = mask[:, None, :, None].expand_as(got)
        torch.testing.assert_close(got[rows], want[rows], rtol=1e-4, atol=1e-5)
    p = torch.nn.Parameter(torch.randn(5))
    opt = autobert_ext.MaskedAdamW([p], lr=0.1)
    p.grad = torch.ones(5)
    opt.set_masks({p: torch.tensor([True, False, True, False, True])})
    before = p.detach().clone()
    opt.step()
    assert torch.equal(p[1::2], before[1::2]) and not torch.equal(p[0::2], before[0::2])
    print(json.dumps({"ok": True, "file": autobert_ext.__file__}))
""")


@pytest.mark.slow
def test_wheel_installs_and_runs_without_a_compiler(tmp_path):
    wheels = tmp_path / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-build-isolation", "--no-deps", "-w", str(wheels),
                    str(ROOT)], check=True, capture_output=True, text=True, timeout=3600)
    (wheel,) = wheels.glob("autobert-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert any(n.startswith("autobert_ext/_C.") and n.endswith(".so") for n in names), names
    assert "autobert_ext/_build.json" in names, names

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], check=True, timeout=600)
    py = venv / "bin" / "python"
    subprocess.run([str(py), "-m", "pip", "install", "--no-deps", "--no-index", str(wheel)], check=True,
                   capture_output=True, text=True, timeout=600)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "CC", "CXX", "CUDA_HOME")}
    env.update(PATH=str(venv / "bin"), VENV=str(venv))  # no compiler on PATH: nothing may build at import
    res = subprocess.run([str(py), "-c", SMOKE], capture_output=True, text=True, timeout=600, env=env,
                         cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    assert '"ok": true' in res.stdout
