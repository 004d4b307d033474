"""Importing never fails and never initialises CUDA, with or without the compiled extension."""
import os
import subprocess
import sys
import textwrap

import torch

import autobert_ext

BLOCK_C = textwrap.dedent("""
    import importlib.abc, sys
    class Block(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path, target=None):
            if name == "autobert_ext._C":
                raise ImportError("blocked for the test")
    sys.meta_path.insert(0, Block())
""")

CHECK = textwrap.dedent("""
    import warnings
    warnings.simplefilter("always")
    with warnings.catch_warnings(record=True) as caught:
        import autobert, autobert.graph, autobert.cli, autobert_ext
        import autobert.fusion
        from autobert_ext._loader import get_C
        c1, c2 = get_C(), get_C()
    import torch
    from autobert.graph import eager, library
    q = torch.randn(1, 2, 5, 4)
    out = eager(library["standard"], q, q, q)
    print("C", c1 is not None, "warnings", sum("autobert_ext._C" in str(w.message) for w in caught),
          "cuda_init", torch.cuda.is_initialized(), "finite", bool(torch.isfinite(out).all()))
""")


def _run(code):
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    return res.stdout.split()


def test_import_without_extension_warns_once_and_falls_back():
    out = _run(BLOCK_C + CHECK)
    assert out == ["C", "False", "warnings", "1", "cuda_init", "False", "finite", "True"], out


def test_import_with_extension_does_not_initialise_cuda():
    out = _run(CHECK)
    assert out[out.index("cuda_init") + 1] == "False"
    assert out[out.index("warnings") + 1] == "0"


def test_extension_is_built():
    """The README install builds autobert_ext._C; if this fails, the build or the load broke."""
    assert autobert_ext.available(), autobert_ext.load_error()
    from autobert_ext._loader import get_C
    info = get_C().build_info()
    assert info["openmp"], "built without OpenMP: at::parallel_for would run serially"


def test_extension_built_for_another_torch_is_refused_with_one_warning(tmp_path):
    """A _C built against another torch is never loaded (that would be an undefined-symbol error or
    a crash): the import says which versions differ, warns once, and the eager fallback runs."""
    import json
    import pathlib
    import shutil

    src = pathlib.Path(autobert_ext.__file__).parent
    dst = tmp_path / "autobert_ext"
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("__pycache__", "_build.json"))
    (dst / "_build.json").write_text(json.dumps({"torch": "0.0.1"}))
    code = CHECK + "import autobert_ext; print('error', repr(autobert_ext.load_error()))\n"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(src.parent / "python")])}
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env,
                         cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    out = res.stdout.split()
    assert out[:4] == ["C", "False", "warnings", "1"], res.stdout
    assert "built against torch 0.0.1" in res.stdout and f"torch {torch.__version__} is installed" in res.stdout
