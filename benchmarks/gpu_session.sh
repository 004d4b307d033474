#!/usr/bin/env bash
# One GPU session, under 12 minutes on an H100/H200: build autobert_ext._C with its CUDA kernels,
# run the GPU tests, run the GPU benchmark suite (standard attention vs SDPA/FlashAttention forward
# and backward, searched graphs vs eager, torch.compile and FlexAttention, masked AdamW bandwidth)
# and write everything, with the device name, under $OUT:
#
#   $OUT/gpu_session.json         device, versions, per-step status and seconds
#   $OUT/build.log, gpu-tests.log, gpu-tests.xml, bench.log
#   $OUT/gpu_attention-<device>.json   the benchmark records (also in benchmarks/results/)
#
# Usage (from anywhere): OUT=/path/to/results benchmarks/gpu_session.sh
# Each step has its own time limit; a failed step is recorded and the session goes on, so one
# broken piece still leaves the other results. Exit status: 0 when every step passed.
set -uo pipefail

if [[ -z "${OUT:-}" ]]; then
    echo "gpu_session.sh: set OUT to the folder that receives the results" >&2
    exit 2
fi
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT" || exit 2
mkdir -p "$OUT"
export PYTHONPATH="$ROOT/python:$ROOT"
unset TRITON_INTERPRET AUTOBERT_BACKEND
PY="${PYTHON:-python}"
JOBS="$(nproc)"
START="$(date +%s)"
STEPS_JSON="$OUT/.steps.jsonl"
: > "$STEPS_JSON"

log() { printf '[%s +%4ss] %s\n' "$(date -u +%H:%M:%S)" "$(( $(date +%s) - START ))" "$*"; }

# run_step NAME LIMIT_SECONDS LOGFILE COMMAND...: runs COMMAND under a time limit, records the result.
run_step() {
    local name="$1" limit="$2" logfile="$3"
    shift 3
    local t0 rc
    t0="$(date +%s)"
    log "$name (limit ${limit}s)"
    timeout --kill-after=10 "$limit" "$@" > "$logfile" 2>&1
    rc=$?
    printf '{"step": "%s", "rc": %d, "seconds": %d, "log": "%s"}\n' \
        "$name" "$rc" "$(( $(date +%s) - t0 ))" "$(basename "$logfile")" >> "$STEPS_JSON"
    if [[ $rc -ne 0 ]]; then
        log "$name FAILED (rc=$rc, see $logfile)"
        tail -n 20 "$logfile"
    fi
    return 0
}

# 1. Build with CUDA (forced: a session without its CUDA kernels measures the wrong thing).
#    MAX_JOBS parallelises ninja; about 3 minutes on 16 cores for sm_80 + sm_90. The limits
#    (330 + 150 + 220 s) keep the whole session under 12 minutes even when a step hangs.
run_step build 330 "$OUT/build.log" env AUTOBERT_CUDA=1 MAX_JOBS="$JOBS" "$PY" setup.py build_ext --inplace

# 2. GPU tests: every test marked gpu (the CUDA and Triton kernels against their references).
run_step gpu_tests 150 "$OUT/gpu-tests.log" "$PY" -m pytest -q -m gpu -p no:cacheprovider \
    --junitxml="$OUT/gpu-tests.xml" tests

# 3. GPU benchmark suite; N up to 4096 fits the budget (about 3 minutes on an H100).
run_step bench 220 "$OUT/bench.log" env AUTOBERT_BENCH_N="${AUTOBERT_BENCH_N:-512,1024,4096}" \
    "$PY" -m pytest -q -p no:cacheprovider benchmarks/test_gpu_attention.py
cp benchmarks/results/gpu_attention-*.json "$OUT/" 2>/dev/null || log "no gpu_attention results were written"

# 4. Summary with the device name and the versions that produced the numbers.
"$PY" - "$OUT" "$STEPS_JSON" "$(( $(date +%s) - START ))" <<'EOF'
import json, sys
import torch
out, steps_path, seconds = sys.argv[1], sys.argv[2], int(sys.argv[3])
try:
    import triton
    triton_version = triton.__version__
except ImportError:
    triton_version = None
import autobert_ext
cuda = torch.cuda.is_available()
summary = {
    "device": torch.cuda.get_device_name(0) if cuda else None,
    "capability": list(torch.cuda.get_device_capability(0)) if cuda else None,
    "torch": torch.__version__, "torch_cuda": torch.version.cuda, "triton": triton_version,
    "extension_loaded": autobert_ext.available(), "extension_with_cuda": autobert_ext.with_cuda(),
    "load_error": autobert_ext.load_error(), "seconds": seconds,
    "steps": [json.loads(line) for line in open(steps_path)],
}
with open(f"{out}/gpu_session.json", "w") as f:
    json.dump(summary, f, indent=1)
print(json.dumps(summary, indent=1))
sys.exit(0 if all(s["rc"] == 0 for s in summary["steps"]) else 1)
EOF
rc=$?
rm -f "$STEPS_JSON"
log "done in $(( $(date +%s) - START ))s, status $rc"
exit "$rc"
