"""The CUDA build check (tools/cuda_build_check.sh) has been run on the current csrc/: its committed
result records the hash of the build's inputs, which must equal the working tree's, and says the CUDA
build passed the suite. Plus the helpers the script relies on (hash, source sync, junit summary).
None of this needs the check's virtual environment or nvcc."""
import json
import os
import runpy
import shutil
import subprocess
from pathlib import Path
from types import SimpleNamespace

import pytest

ROOT = Path(__file__).resolve().parents[1]
RESULT = ROOT / "benchmarks" / "results" / "cuda_build_check.json"
SCRIPT = ROOT / "tools" / "cuda_build_check.sh"


def _tool():
    """tools/cuda_build_check.py's functions and constants (tools/ is not a package)."""
    return SimpleNamespace(**runpy.run_path(str(ROOT / "tools" / "cuda_build_check.py"), run_name="cuda_build_check"))


def test_committed_result_matches_current_sources():
    tool = _tool()
    assert RESULT.is_file(), f"{RESULT} is missing: run {tool.RERUN} and commit its result"
    result = json.loads(RESULT.read_text())
    current = tool.source_hash(ROOT)
    assert result["source_hash"] == current, (
        f"a CUDA build input ({', '.join(tool.HASHED_DIRS + tool.HASHED_FILES)}) changed since the "
        f"CUDA build check ran on commit {result['source_commit'][:12]} (recorded {result['source_hash']}, "
        f"now {current}): rerun `{tool.RERUN}` and commit {RESULT.relative_to(ROOT)}")


def test_committed_result_is_a_passing_cuda_build():
    result = json.loads(RESULT.read_text())
    assert result["torch_cuda"] is not None and result["extension"]["with_cuda"], result["extension"]
    assert result["build"]["rc"] == 0
    counts = result["pytest"]["counts"]
    assert result["pytest"]["rc"] == 0 and counts["failed"] == 0 and counts["errors"] == 0, result["pytest"]["failures"]
    assert counts["passed"] > 0 and result["passed"] is True


def _tree(root: Path):
    for rel, text in {"csrc/a/k.cpp": "int k;", "csrc/b/k.cu": "__global__ void k() {}", "setup.py": "setup()",
                      "autobert_ext/_loader.py": "_C = None", "autobert_ext/other.py": "x = 1"}.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)


def test_source_hash_covers_csrc_and_the_build_files_only(tmp_path):
    tool = _tool()
    _tree(tmp_path)
    base = tool.source_hash(tmp_path)
    assert tool.hashed_files(tmp_path) == ["autobert_ext/_loader.py", "csrc/a/k.cpp", "csrc/b/k.cu", "setup.py"]
    (tmp_path / "autobert_ext/other.py").write_text("x = 2")  # a Python wrapper: not a build input
    (tmp_path / "csrc/a/__pycache__").mkdir()
    (tmp_path / "csrc/a/__pycache__/x.pyc").write_bytes(b"\0")
    assert tool.source_hash(tmp_path) == base
    changes = [lambda: (tmp_path / "csrc/a/k.cpp").write_text("int k2;"),
               lambda: (tmp_path / "csrc/b/new.cuh").write_text(""),
               lambda: (tmp_path / "csrc/b/k.cu").rename(tmp_path / "csrc/b/k2.cu"),
               lambda: (tmp_path / "setup.py").write_text("setup(x=1)"),
               lambda: (tmp_path / "autobert_ext/_loader.py").write_text("_C = 1")]
    seen = {base}
    for change in changes:
        change()
        seen.add(tool.source_hash(tmp_path))
    assert len(seen) == len(changes) + 1, "every change to a build input must change the hash"
    (tmp_path / "setup.py").unlink()
    with pytest.raises(FileNotFoundError, match="setup.py"):
        tool.source_hash(tmp_path)


def test_sync_copies_changed_files_only_and_keeps_build_outputs(tmp_path):
    tool = _tool()
    src, dst = tmp_path / "src", tmp_path / "dst"
    _tree(src)
    assert tool.sync_tree(src, dst) == 5
    for rel, text in {"build/temp/k.o": "obj", "autobert_ext/_C.cpython-311-x86_64-linux-gnu.so": "so",
                      "autobert_ext/_build.json": "{}", "csrc/stale.cpp": "gone", "old/dir/f.py": "gone"}.items():
        (dst / rel).parent.mkdir(parents=True, exist_ok=True)
        (dst / rel).write_text(text)
    old = dst / "csrc/a/k.cpp"
    os.utime(old, (1, 1))
    (src / "csrc/b/k.cu").write_text("changed")
    assert tool.sync_tree(src, dst) == 1
    assert old.stat().st_mtime == 1, "an unchanged source must keep its timestamp (ninja would recompile it)"
    assert (dst / "csrc/b/k.cu").read_text() == "changed"
    assert not (dst / "csrc/stale.cpp").exists() and not (dst / "old").exists()
    for kept in ("build/temp/k.o", "autobert_ext/_C.cpython-311-x86_64-linux-gnu.so", "autobert_ext/_build.json"):
        assert (dst / kept).is_file(), kept


def test_junit_summary_counts_outcomes_and_reasons(tmp_path):
    junit = tmp_path / "j.xml"
    junit.write_text("""<testsuites><testsuite>
      <testcase classname="tests.a" name="ok"/>
      <testcase classname="tests.a" name="bad"><failure message="AssertionError: 1 != 2&#10;more">tb</failure></testcase>
      <testcase classname="tests.a" name="boom"><error message="fixture failed">tb</error></testcase>
      <testcase classname="tests.b" name="g1"><skipped type="pytest.skip" message="/x/t.py:12: needs a CUDA GPU"/></testcase>
      <testcase classname="tests.b" name="g2"><skipped type="pytest.skip" message="/x/u.py:3: needs a CUDA GPU"/></testcase>
      <testcase classname="tests.b" name="x"><skipped type="pytest.xfail" message="known"/></testcase>
    </testsuite></testsuites>""")
    summary = _tool().junit_summary(junit)
    assert summary["counts"] == {"passed": 1, "failed": 1, "errors": 1, "skipped": 2, "xfailed": 1}
    assert summary["failures"] == [
        {"test": "tests.a::bad", "kind": "failure", "message": "AssertionError: 1 != 2"},
        {"test": "tests.a::boom", "kind": "error", "message": "fixture failed"}]
    assert summary["skip_reasons"] == {"needs a CUDA GPU": 2}


def test_script_is_valid_bash_and_rejects_bad_arguments():
    assert subprocess.run(["bash", "-n", str(SCRIPT)]).returncode == 0
    if shutil.which("shellcheck"):
        res = subprocess.run(["shellcheck", str(SCRIPT)], capture_output=True, text=True)
        assert res.returncode == 0, res.stdout
    for args, message in ((["--bogus"], "unknown argument --bogus"), (["--venv"], "--venv needs a value"),
                          (["--jobs", "0"], "--jobs must be a positive integer")):
        res = subprocess.run(["bash", str(SCRIPT), *args], capture_output=True, text=True, timeout=60)
        assert res.returncode == 2 and message in res.stderr, (args, res.stderr)
    res = subprocess.run(["bash", str(SCRIPT), "--help"], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0 and "--venv DIR" in res.stdout and "set -euo" not in res.stdout, res.stdout
