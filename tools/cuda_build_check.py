"""Helpers of ``tools/cuda_build_check.sh`` (the CUDA build check): the hash of the build's inputs and
the result JSON.

The check builds ``autobert_ext._C`` with its CUDA kernels against the CUDA torch wheel in a throwaway
virtual environment and runs the test suite there. Its result, ``benchmarks/results/cuda_build_check.json``,
records ``source_hash``: the hash of every file that decides what the extension build compiles and how
the compiled module is loaded (``HASHED``). ``tests/test_cuda_build_check.py`` recomputes it from the
working tree, so a change to any of those files fails CI until the check is rerun and its result
committed.

    python tools/cuda_build_check.py hash [ROOT]
    python tools/cuda_build_check.py sync STAGING BUILD_DIR
    python tools/cuda_build_check.py summarize --root SRC --junit JUNIT.xml --out RESULT.json ...
"""
from __future__ import annotations

import argparse
import hashlib
import json
import re
import shutil
import sys
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

# What the hash covers, relative to the repository root: every file under csrc/ (kernels and the
# pybind/torch.library bindings; setup.py compiles whatever *.cpp / *.cu it finds there, tracked or
# not), the build script (which sources, flags, CUDA or not) and the loader that decides whether the
# compiled module is used. Python wrappers that merely call _C are left out: they are tested by the
# ordinary CPU suite, and including them would demand a 15-minute CUDA rebuild for every edit.
HASHED_DIRS = ("csrc",)
HASHED_FILES = ("setup.py", "autobert_ext/_loader.py")
SKIPPED_PARTS = ("__pycache__",)

RERUN = "tools/cuda_build_check.sh"


def hashed_files(root: Path) -> list[str]:
    """The repository-relative paths, sorted, that ``source_hash`` reads."""
    root = Path(root)
    found = []
    for d in HASHED_DIRS:
        base = root / d
        if not base.is_dir():
            raise FileNotFoundError(f"{base}: the CUDA build check hashes this folder, and it is missing")
        found += [p.relative_to(root).as_posix() for p in base.rglob("*")
                  if p.is_file() and not any(part in SKIPPED_PARTS for part in p.parts)]
    for f in HASHED_FILES:
        if not (root / f).is_file():
            raise FileNotFoundError(f"{root / f}: the CUDA build check hashes this file, and it is missing")
        found.append(f)
    return sorted(found)


def source_hash(root: Path) -> str:
    """sha256 over (path, sha256 of content) of ``hashed_files(root)``: any edit, addition, removal or
    rename of a hashed file changes it."""
    outer = hashlib.sha256()
    for rel in hashed_files(root):
        outer.update(rel.encode() + b"\0" + hashlib.sha256((Path(root) / rel).read_bytes()).digest())
    return "sha256:" + outer.hexdigest()


# What a build leaves in its source copy and the next build reuses (ninja's object files, the compiled
# module and its torch record, the editable install's metadata).
BUILD_OUTPUTS = ("build", "autobert.egg-info", "autobert_ext/_build.json")


def _is_build_output(rel: str) -> bool:
    return (any(rel == o or rel.startswith(o + "/") for o in BUILD_OUTPUTS)
            or re.fullmatch(r"autobert_ext/_C\..*\.so", rel) is not None or "__pycache__" in rel.split("/"))


def sync_tree(src: Path, dst: Path) -> int:
    """Make ``dst`` hold exactly the files of ``src`` (plus build outputs), copying only files whose
    content differs: an unchanged source keeps its old timestamp and ninja does not recompile it,
    a changed one is newer than its object file whatever the commit's date. Returns files copied."""
    src, dst = Path(src), Path(dst)
    wanted = {p.relative_to(src).as_posix() for p in src.rglob("*") if p.is_file()}
    copied = 0
    for rel in sorted(wanted):
        s, d = src / rel, dst / rel
        if not d.is_file() or d.read_bytes() != s.read_bytes():
            d.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(s, d)  # (not copy2: the copy gets the current time)
            copied += 1
    for p in sorted(dst.rglob("*"), reverse=True):  # children before their folders
        rel = p.relative_to(dst).as_posix()
        if _is_build_output(rel) or rel in wanted:
            continue
        if p.is_dir() and not p.is_symlink():
            if not any(p.iterdir()):
                p.rmdir()
        else:
            p.unlink()
    return copied


def junit_summary(junit: Path) -> dict:
    """Counts, failures (test id and first line of the message) and skip reasons from a pytest junit XML."""
    tree = ET.parse(junit)
    failures, skips = [], Counter()
    counts = Counter()
    for case in tree.iter("testcase"):
        test_id = f"{case.get('classname', '')}::{case.get('name', '')}"
        outcome = "passed"
        for child in case:
            if child.tag in ("failure", "error"):
                outcome = "failed" if child.tag == "failure" else "errors"
                message = (child.get("message") or child.text or "").strip().splitlines()
                failures.append({"test": test_id, "kind": child.tag, "message": message[0][:300] if message else ""})
            elif child.tag == "skipped":
                outcome = "xfailed" if child.get("type") == "pytest.xfail" else "skipped"
                if outcome == "skipped":
                    # "needs a CUDA GPU" rather than "/path/test_x.py:12: needs a CUDA GPU"
                    reason = re.sub(r"^.*?:\d+: ", "", child.get("message") or "")
                    skips[reason[:200]] += 1
        counts[outcome] += 1
    return {"counts": {k: counts.get(k, 0) for k in ("passed", "failed", "errors", "skipped", "xfailed")},
            "failures": failures, "skip_reasons": dict(skips.most_common())}


def _summarize(args) -> int:
    result = {
        "what": "autobert_ext._C built with its CUDA kernels against the CUDA torch wheel in a separate virtual "
                "environment, from a clean copy of source_commit, then the test suite run there (no GPU: "
                "tests marked gpu are skipped)",
        "rerun": f"{RERUN} (whenever csrc/, setup.py or autobert_ext/_loader.py change)",
        "source_commit": args.commit,
        "source_hash": source_hash(Path(args.root)),
        "hashed": list(HASHED_DIRS) + list(HASHED_FILES),
        **json.loads(Path(args.env_json).read_text()),
        "build": {"seconds": args.build_seconds, "clean": args.clean_build == "1", "rc": args.build_rc,
                  "max_jobs": args.max_jobs},
        "pytest": {"args": args.pytest_args, "rc": args.pytest_rc, "seconds": args.pytest_seconds},
    }
    if Path(args.junit).is_file():
        result["pytest"].update(junit_summary(Path(args.junit)))
    else:
        result["pytest"]["counts"] = None  # the suite did not run (the build failed) or crashed before reporting
    ok = args.build_rc == 0 and args.pytest_rc == 0 and result["extension"]["with_cuda"]
    result["passed"] = bool(ok)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps({k: result[k] for k in ("passed", "torch", "source_hash")} | {"pytest": result["pytest"].get("counts")}))
    return 0 if ok else 1


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    h = sub.add_parser("hash", help="print the source hash of a checkout")
    h.add_argument("root", nargs="?", default=str(Path(__file__).resolve().parents[1]))
    y = sub.add_parser("sync", help="copy a source tree over a build copy, changed files only")
    y.add_argument("src")
    y.add_argument("dst")
    s = sub.add_parser("summarize", help="write the result JSON")
    s.add_argument("--root", required=True, help="the built source copy")
    s.add_argument("--commit", required=True)
    s.add_argument("--env-json", required=True, help="versions, written by the venv's python")
    s.add_argument("--junit", required=True)
    s.add_argument("--out", required=True)
    s.add_argument("--build-seconds", type=int, required=True)
    s.add_argument("--build-rc", type=int, required=True)
    s.add_argument("--clean-build", choices=("0", "1"), required=True)
    s.add_argument("--max-jobs", type=int, required=True)
    s.add_argument("--pytest-args", required=True)
    s.add_argument("--pytest-rc", type=int, required=True)
    s.add_argument("--pytest-seconds", type=int, required=True)
    args = ap.parse_args(argv)
    if args.cmd == "hash":
        print(source_hash(Path(args.root)))
        return 0
    if args.cmd == "sync":
        print(sync_tree(Path(args.src), Path(args.dst)))
        return 0
    return _summarize(args)


if __name__ == "__main__":
    sys.exit(main())
