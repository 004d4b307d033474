#!/usr/bin/env bash
# The CUDA build check: builds autobert_ext._C with its CUDA kernels against the CUDA torch wheel from
# the package registry, in a throwaway virtual environment, from a clean copy of the committed source
# (git archive HEAD), runs the test suite there and writes the result JSON. No GPU is needed (tests
# marked gpu are skipped); nvcc is. Rerun it, and commit its result, whenever csrc/, setup.py or
# autobert_ext/_loader.py change: tests/test_cuda_build_check.py fails until then.
#
#   tools/cuda_build_check.sh [--venv DIR] [--out FILE] [--build-dir DIR] [--torch VERSION]
#                             [--jobs N] [--clean] [--pytest-args ARGS]
#
#   --venv DIR         the virtual environment (default: $TMPDIR/autobert-cuda-venv); created with the
#                      CUDA torch wheel and the test extra when missing, reused when present
#   --out FILE         the result JSON (default: benchmarks/results/cuda_build_check.json)
#   --build-dir DIR    where the source copy is built (default: DIR-of-venv/autobert-src); its build/
#                      folder is kept between runs, so an unchanged csrc/ is not recompiled
#   --torch VERSION    the torch wheel (default: 2.13.0, whose PyPI Linux wheel is built with CUDA 13.0)
#   --jobs N           parallel compile jobs, MAX_JOBS (default: nproc)
#   --clean            delete the build folder first: a full build, as a fresh checkout gets
#   --pytest-args ARGS (default: -m "not slow")
#
# The registry is PyPI: torch and triton are installed with `pip --isolated`, so neither a local
# wheel folder (often holding the CPU build) nor a constraints file can substitute another torch.
# $PIP_CERT or $SSL_CERT_FILE, when set, is passed on as --cert. The rest of the test extra comes
# from the index pip is configured with. Measured on 2 shared cores: clean build 797 s, suite 483 s;
# a rerun with csrc/ unchanged about 8 minutes.
# Exit status: 0 when the build has its CUDA kernels and the suite passed; 1 otherwise; 2 usage.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${TMPDIR:-/tmp}/autobert-cuda-venv"
OUT="$ROOT/benchmarks/results/cuda_build_check.json"
BUILD_DIR=""
TORCH_VERSION="2.13.0"
JOBS="$(nproc)"
CLEAN=0
PYTEST_ARGS='-m "not slow"'

usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; exit "${1:-2}"; }
need() { [[ $# -ge 2 && -n "$2" ]] || { echo "cuda_build_check.sh: $1 needs a value" >&2; exit 2; }; }
while [[ $# -gt 0 ]]; do
    case "$1" in
        --venv) need "$@"; VENV="$2"; shift 2 ;;
        --out) need "$@"; OUT="$2"; shift 2 ;;
        --build-dir) need "$@"; BUILD_DIR="$2"; shift 2 ;;
        --torch) need "$@"; TORCH_VERSION="$2"; shift 2 ;;
        --jobs) need "$@"; JOBS="$2"; shift 2 ;;
        --clean) CLEAN=1; shift ;;
        --pytest-args) need "$@"; PYTEST_ARGS="$2"; shift 2 ;;
        -h|--help) usage 0 ;;
        *) echo "cuda_build_check.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done
[[ "$JOBS" =~ ^[1-9][0-9]*$ ]] || { echo "cuda_build_check.sh: --jobs must be a positive integer, got $JOBS" >&2; exit 2; }
VENV="$(realpath -m "$VENV")"
OUT="$(realpath -m "$OUT")"
BUILD_DIR="$(realpath -m "${BUILD_DIR:-$(dirname "$VENV")/autobert-src}")"
LOGS="$BUILD_DIR.logs"
START="$(date +%s)"
log() { printf '[%s +%4ss] %s\n' "$(date -u +%H:%M:%S)" "$(( $(date +%s) - START ))" "$*"; }

# The CUDA toolkit: $CUDA_HOME, then the one whose nvcc is on PATH, then /usr/local/cuda (torch's
# cpp_extension looks there too). A toolkit is a folder with bin/nvcc and include/cuda_runtime.h (an
# nvcc on PATH may be a wrapper script elsewhere; its toolkit is then found through /usr/local/cuda).
CUDA_ROOT=""
ON_PATH="$(command -v nvcc || true)"
for candidate in "${CUDA_HOME:-}" "${ON_PATH:+$(dirname "$(dirname "$(realpath "$ON_PATH")")")}" /usr/local/cuda; do
    if [[ -n "$candidate" && -x "$candidate/bin/nvcc" && -f "$candidate/include/cuda_runtime.h" ]]; then
        CUDA_ROOT="$(realpath "$candidate")"; break
    fi
done
[[ -n "$CUDA_ROOT" ]] || { echo "cuda_build_check.sh: no CUDA toolkit found (set CUDA_HOME to the folder holding bin/nvcc and include/)" >&2; exit 2; }
export CUDA_HOME="$CUDA_ROOT"
export PATH="$CUDA_HOME/bin:$PATH"
NVCC="$CUDA_HOME/bin/nvcc"
NVCC_VERSION="$("$NVCC" --version | sed -n 's/.*release \([0-9.]*\).*/\1/p')"
log "nvcc $NVCC_VERSION at $NVCC"

# 1. The virtual environment: CUDA torch + triton from PyPI, then the project's runtime and test
#    dependencies (read from pyproject.toml) from the configured index.
PY="$VENV/bin/python"
if [[ ! -x "$PY" ]]; then
    log "creating $VENV"
    python3 -m venv "$VENV"
fi
CERT="${PIP_CERT:-${SSL_CERT_FILE:-}}"
TRITON_PIN="$("$PY" - "$ROOT/pyproject.toml" <<'EOF'
import re, sys, tomllib
test = tomllib.load(open(sys.argv[1], "rb"))["project"]["optional-dependencies"]["test"]
print(next(r for r in test if re.match(r"triton\b", r)).replace(" ", ""))
EOF
)"
if ! "$PY" -c "import sys, torch; sys.exit(torch.__version__.split('+')[0] != '$TORCH_VERSION' or torch.version.cuda is None)" 2>/dev/null; then
    log "installing torch==$TORCH_VERSION and $TRITON_PIN from PyPI into $VENV (several GB)"
    env PIP_FIND_LINKS= PIP_CONSTRAINT= "$PY" -m pip install --isolated ${CERT:+--cert "$CERT"} \
        "torch==$TORCH_VERSION" "$TRITON_PIN"
fi
mapfile -t DEPS < <("$PY" - "$ROOT/pyproject.toml" <<'EOF'
import re, sys, tomllib
project = tomllib.load(open(sys.argv[1], "rb"))["project"]
for req in project["dependencies"] + project["optional-dependencies"]["test"]:
    if not re.match(r"(torch|triton)\b", req):  # installed above, from PyPI, and kept
        print(req.replace(" ", ""))
EOF
)
log "installing the runtime and test dependencies (${#DEPS[@]} requirements)"
"$PY" -m pip install --quiet "${DEPS[@]}" "setuptools>=64" wheel "pybind11>=2.12" ninja "torch==$TORCH_VERSION" \
    2> >(grep -v "^WARNING: Location .* is ignored" >&2)  # (an index folder missing a package: noise)
"$PY" -c "import sys, torch; sys.exit(torch.version.cuda is None)" \
    || { echo "cuda_build_check.sh: torch in $VENV has no CUDA ($("$PY" -c 'import torch; print(torch.__version__)'))" >&2; exit 1; }

# 2. A clean copy of the committed source, synced into the build copy file by file: only files whose
#    content changed get a new timestamp, so ninja recompiles exactly what changed.
COMMIT="$(git -C "$ROOT" rev-parse HEAD)"
if [[ -n "$(git -C "$ROOT" status --porcelain -- csrc setup.py autobert_ext/_loader.py)" ]]; then
    log "WARNING: uncommitted changes to csrc/, setup.py or autobert_ext/_loader.py are not built: the check builds HEAD"
fi
if [[ $CLEAN -eq 1 ]]; then
    log "--clean: removing $BUILD_DIR"
    rm -rf "$BUILD_DIR"
fi
STAGING="$BUILD_DIR.staging"
rm -rf "$STAGING"
mkdir -p "$BUILD_DIR" "$LOGS" "$STAGING"
git -C "$ROOT" archive --format=tar "$COMMIT" | tar -x -C "$STAGING"
COPIED="$("$PY" "$ROOT/tools/cuda_build_check.py" sync "$STAGING" "$BUILD_DIR")"
rm -rf "$STAGING"
CLEAN_BUILD=0
if [[ ! -d "$BUILD_DIR/build" ]]; then
    # No object files: every source compiles. A compiled module left without them would look up to date.
    CLEAN_BUILD=1
    rm -f "$BUILD_DIR"/autobert_ext/_C.*.so "$BUILD_DIR/autobert_ext/_build.json"
fi
log "source $COMMIT in $BUILD_DIR ($COPIED files changed; clean build: $CLEAN_BUILD)"

# 3. Build with the CUDA kernels (forced: a build that quietly skips them checks nothing), in place:
#    build_ext keeps its object files under build/, where the next run finds them (pip install -e
#    compiles in a fresh temporary folder every time). The suite imports the copy through PYTHONPATH.
log "building (MAX_JOBS=$JOBS; log: $LOGS/build.log)"
T0="$(date +%s)"
set +e
(cd "$BUILD_DIR" && env AUTOBERT_CUDA=1 MAX_JOBS="$JOBS" "$PY" setup.py build_ext --inplace > "$LOGS/build.log" 2>&1)
BUILD_RC=$?
set -e
BUILD_SECONDS=$(( $(date +%s) - T0 ))
log "build rc=$BUILD_RC in ${BUILD_SECONDS}s"
[[ $BUILD_RC -eq 0 ]] || tail -n 30 "$LOGS/build.log"

# 4. The test suite, in the copy, with the venv's python (no GPU: conftest skips tests marked gpu).
cd "$BUILD_DIR"
export PYTHONPATH="$BUILD_DIR/python:$BUILD_DIR"
unset AUTOBERT_BACKEND TRITON_INTERPRET
PYTEST_RC=1
PYTEST_SECONDS=0
rm -f "$LOGS/pytest.xml"
if [[ $BUILD_RC -eq 0 ]]; then
    log "pytest $PYTEST_ARGS (log: $LOGS/pytest.log)"
    T0="$(date +%s)"
    set +e
    # The two tests of the committed result read the JSON this run is about to replace: inside the
    # check they would judge the previous run, so they are left to the main suite.
    eval "\"$PY\" -m pytest -q -p no:cacheprovider --junitxml=\"$LOGS/pytest.xml\" $PYTEST_ARGS" \
        "--deselect tests/test_cuda_build_check.py::test_committed_result_matches_current_sources" \
        "--deselect tests/test_cuda_build_check.py::test_committed_result_is_a_passing_cuda_build" \
        > "$LOGS/pytest.log" 2>&1
    PYTEST_RC=$?
    set -e
    PYTEST_SECONDS=$(( $(date +%s) - T0 ))
    log "pytest rc=$PYTEST_RC in ${PYTEST_SECONDS}s: $(tail -n 1 "$LOGS/pytest.log")"
fi

# 5. The result: versions from the venv's python, the rest from the run.
"$PY" - "$LOGS/env.json" "$NVCC_VERSION" <<'EOF'
import json, platform, sys
from importlib import metadata
import torch
import triton
import autobert_ext
from autobert_ext import _loader
json.dump({
    "torch": torch.__version__, "torch_cuda": torch.version.cuda, "nvcc": sys.argv[2],
    "triton": triton.__version__, "python": platform.python_version(),
    "gpu_available": torch.cuda.is_available(),
    "packages": {name: metadata.version(name) for name in ("pytest", "numpy", "transformers", "sentence-transformers",
                                                            "accelerate", "ray", "setuptools", "ninja", "pybind11")},
    "extension": {"loaded": autobert_ext.available(), "with_cuda": autobert_ext.with_cuda(),
                  "built_against": _loader.built_against(), "load_error": autobert_ext.load_error()},
}, open(sys.argv[1], "w"))
EOF
set +e
"$PY" "$ROOT/tools/cuda_build_check.py" summarize --root "$BUILD_DIR" --commit "$COMMIT" \
    --env-json "$LOGS/env.json" --junit "$LOGS/pytest.xml" --out "$OUT" \
    --build-seconds "$BUILD_SECONDS" --build-rc "$BUILD_RC" --clean-build "$CLEAN_BUILD" --max-jobs "$JOBS" \
    --pytest-args "$PYTEST_ARGS" --pytest-rc "$PYTEST_RC" --pytest-seconds "$PYTEST_SECONDS"
RC=$?
set -e
log "done in $(( $(date +%s) - START ))s: $OUT (status $RC; logs in $LOGS)"
exit "$RC"
