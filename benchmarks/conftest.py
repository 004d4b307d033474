"""Shared setup of the benchmark suites (pytest-benchmark; run e.g. `pytest benchmarks/test_X.py`).

At import: glibc malloc is told to keep freed memory (no trimming, no per-call mmap for
tensors up to its 32 MiB limit, one arena) so a timed call does not pay page faults that the
previous round's frees caused, and torch uses every core.

Fixtures:
  bench_record(benchmark, suite=..., case=..., variant=..., ...) -- call after benchmark(...):
      keeps median/p20/p80 of the per-call times; at session end writes
      benchmarks/results/<suite>-<device-slug>.json and the suite's table in benchmarks/README.md.
  peak_memory(fn, device="cpu") -> bytes: see ``peak_memory_bytes``.
"""
from __future__ import annotations

import ctypes
import datetime
import json
import os
import platform
import re
import statistics
import time

import pytest
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
RESULTS = os.path.join(HERE, "results")
README = os.path.join(HERE, "README.md")

# glibc mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD, _M_ARENA_MAX = -1, -3, -8
_INT_MAX = 2**31 - 1


def _libc():
    try:
        return ctypes.CDLL("libc.so.6")
    except OSError:  # not glibc (macOS, musl): keep the default allocator behaviour
        return None


def _tune_malloc() -> None:
    libc = _libc()
    if libc is None:
        return
    libc.mallopt(_M_TRIM_THRESHOLD, _INT_MAX)
    # glibc caps the mmap threshold (32 MiB on 64-bit) and rejects larger values: try, then cap.
    if not libc.mallopt(_M_MMAP_THRESHOLD, _INT_MAX):
        libc.mallopt(_M_MMAP_THRESHOLD, 32 * 1024 * 1024)
    libc.mallopt(_M_ARENA_MAX, 1)


_tune_malloc()
torch.set_num_threads(os.cpu_count() or 1)


# ---- peak memory ---------------------------------------------------------------------------------

def _rss_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def peak_memory_bytes(fn, device: str = "cpu") -> int | None:
    """Peak extra memory while ``fn()`` runs once, in bytes (None where it cannot be measured).

    CUDA: torch.cuda.max_memory_allocated above the level before the call (the caching
    allocator's own count). CPU: the rise of the process's resident-set high-water mark. Before
    the call, malloc_trim(0) hands freed heap pages back to the OS and writing 5 to
    /proc/self/clear_refs resets VmHWM to the current RSS, so every page the call touches anew
    (tensors, temporaries, C++ buffers alike) counts; allocated-but-untouched pages do not.
    """
    if device.startswith("cuda"):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
        fn()
        torch.cuda.synchronize()
        return torch.cuda.max_memory_allocated() - before
    libc = _libc()
    try:
        if libc is not None:
            libc.malloc_trim(0)
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        before = _rss_kib("VmRSS")
    except OSError:  # no procfs or no permission: report nothing rather than a wrong number
        return None
    fn()
    return max(0, _rss_kib("VmHWM") - before) * 1024


@pytest.fixture(scope="session")
def peak_memory():
    return peak_memory_bytes


# ---- device facts --------------------------------------------------------------------------------

def device_name(device: str = "cpu") -> str:
    if device.startswith("cuda"):
        return torch.cuda.get_device_name(torch.device(device))
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def median_seconds(fn, calls: int) -> float:
    """Median wall time of ``calls`` calls of ``fn``, after one untimed warm-up call (plans,
    allocator, thread pool) -- for the scripts that time outside pytest-benchmark."""
    fn()
    times = []
    for _ in range(calls):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


# ---- results recorder ----------------------------------------------------------------------------

def _quantile(data: list[float], q: float) -> float:
    if len(data) < 2:
        return data[0]
    return statistics.quantiles(data, n=100, method="inclusive")[round(q * 100) - 1]


def _jsonable(x):
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, torch.Size):
        return list(x)
    return x if x is None or isinstance(x, (int, float, str, bool, dict)) else str(x)


def _with_ratios(records: list[dict]) -> list[dict]:
    """ratio_to_baseline = median of the case's baseline variant / this median (> 1: faster)."""
    medians = {(r["case"], r["variant"]): r["median_s"] for r in records}
    for r in records:
        base = medians.get((r["case"], r["baseline"]))
        r["ratio_to_baseline"] = None if base is None else base / r["median_s"]
    return records


def _write_suite(suite: str, device: str, records: list[dict]) -> None:
    """Merge this session's records into results/<suite>-<device>.json (same case+variant: replaced).

    Records from a file written under another torch version or thread count are dropped, not
    mixed, so a table never compares runs from different setups.
    """
    os.makedirs(RESULTS, exist_ok=True)
    path = os.path.join(RESULTS, f"{suite}-{slug(device_name(device))}.json")
    header = {"suite": suite, "device": device_name(device), "device_type": device.split(":")[0],
              "torch": torch.__version__, "threads": torch.get_num_threads(),
              "date": datetime.date.today().isoformat(), "python": platform.python_version()}
    old = []
    if os.path.exists(path):
        with open(path) as f:
            prev = json.load(f)
        if (prev.get("torch"), prev.get("threads")) == (header["torch"], header["threads"]):
            new_keys = {(r["case"], r["variant"]) for r in records}
            old = [r for r in prev.get("records", []) if (r["case"], r["variant"]) not in new_keys]
    header["records"] = _with_ratios(old + records)
    with open(path, "w") as f:
        json.dump(header, f, indent=1)
        f.write("\n")


def _fmt_ms(s: float | None) -> str:
    return "" if s is None else f"{s * 1e3:.3g}"


def _suite_markdown(suite: str) -> str:
    """The README section body: one table per results file of the suite (one per device)."""
    files = sorted(p for p in os.listdir(RESULTS) if p.startswith(suite + "-") and p.endswith(".json"))
    parts = []
    for name in files:
        with open(os.path.join(RESULTS, name)) as f:
            res = json.load(f)
        if res.get("suite") != suite:
            continue  # another suite whose name starts with this one
        loads = [r["loadavg_1m"] for r in res["records"] if isinstance(r.get("loadavg_1m"), (int, float))]
        load = f" · load avg {min(loads):.1f}–{max(loads):.1f}" if loads else ""
        parts.append(f"**{res['device']}** · torch {res['torch']} · {res['threads']} threads{load} · "
                     f"{res['date']} · [`results/{name}`](results/{name})\n")
        parts.append("| case | variant | dtype | shapes | median ms | p20–p80 ms | peak MiB | × baseline |")
        parts.append("|---|---|---|---|---:|---:|---:|---:|")
        for r in res["records"]:
            peak, ratio = r.get("peak_mem_bytes"), r.get("ratio_to_baseline")
            peak_s = "" if peak is None else f"{peak / 2**20:.1f}"
            ratio_s = "" if ratio is None else f"{ratio:.2f}× vs {r['baseline']}"
            parts.append(
                f"| {r['case']} | {r['variant']} | {r.get('dtype') or ''} | {r.get('shapes') or ''} | "
                f"{_fmt_ms(r['median_s'])} | {_fmt_ms(r['p20_s'])}–{_fmt_ms(r['p80_s'])} | {peak_s} | {ratio_s} |")
        parts.append("")
    return "\n".join(parts)


_README_INTRO = """# Benchmarks

pytest-benchmark suites comparing autobert's fused kernels with eager PyTorch baselines
(DESIGN.md section 5). Run one suite with `pytest benchmarks/test_<suite>.py`; each run writes
`results/<suite>-<device>.json` and regenerates that suite's table below (between its
`<!-- suite:NAME -->` markers; text outside the markers is kept).

Columns: median and p20–p80 of the per-call wall time over all rounds; peak = extra memory one
call needs (CPU: rise of the resident-set high-water mark after `malloc_trim`, i.e. pages the
call touches anew; CUDA: `torch.cuda.max_memory_allocated` above the starting level);
× baseline = the baseline variant's median / this median (> 1 is faster). The load average
(1 min, at each record) shows how busy the machine was: on a shared machine, timings taken at a
load above the thread count are inflated, multi-kernel baselines most.
"""


def _update_readme(suite: str) -> None:
    start, end = f"<!-- suite:{suite} -->", f"<!-- /suite:{suite} -->"
    write_readme_section(start, end, f"## {suite}\n\n{_suite_markdown(suite)}")


def write_readme_section(start: str, end: str, body: str) -> None:
    """Replace the text between the ``start`` and ``end`` markers of benchmarks/README.md with
    ``body`` (appended with its markers when absent); text outside the markers is kept."""
    import fcntl  # POSIX only, like the benchmarks' malloc tuning

    section = f"{start}\n{body}{end}"
    with open(README, "a+") as f:
        fcntl.flock(f, fcntl.LOCK_EX)  # suites may finish concurrently in one checkout
        f.seek(0)
        text = f.read() or _README_INTRO
        pattern = re.compile(re.escape(start) + r".*?" + re.escape(end), re.S)
        if pattern.search(text):
            text = pattern.sub(lambda _: section, text)
        else:
            text = text.rstrip("\n") + "\n\n" + section + "\n"
        f.seek(0)
        f.truncate()
        f.write(text)


class _Recorder:
    """bench_record(benchmark, suite=, case=, variant=, baseline="eager", shapes=, dtype=,
    peak_mem_bytes=, device="cpu", **extra) -> the record dict (None when benchmarks are disabled)."""

    def __init__(self):
        self.pending: dict[tuple[str, str], list[dict]] = {}

    def __call__(self, benchmark, *, suite: str, case: str, variant: str, baseline: str = "eager",
                 shapes=None, dtype=None, peak_mem_bytes: int | None = None, device: str = "cpu", **extra):
        meta = benchmark.stats
        if not meta or not meta.stats.data:  # --benchmark-disable: nothing was timed
            return None
        data = sorted(meta.stats.data)  # seconds per call
        rec = {"case": case, "variant": variant, "baseline": baseline, "shapes": _jsonable(shapes),
               "dtype": None if dtype is None else str(dtype).replace("torch.", ""),
               "median_s": statistics.median(data), "p20_s": _quantile(data, 0.2),
               "p80_s": _quantile(data, 0.8), "rounds": len(data), "iterations": meta.iterations,
               "peak_mem_bytes": peak_mem_bytes,
               # Other processes competing for the cores inflate timings; keep the evidence.
               "loadavg_1m": round(os.getloadavg()[0], 2),
               **{k: _jsonable(v) for k, v in extra.items()}}
        self.pending.setdefault((suite, device), []).append(rec)
        return rec

    def flush(self) -> None:
        for (suite, device), records in self.pending.items():
            _write_suite(suite, device, records)
        for suite in sorted({s for s, _ in self.pending}):
            _update_readme(suite)
        self.pending.clear()


@pytest.fixture(scope="session")
def bench_record():
    recorder = _Recorder()
    yield recorder
    recorder.flush()
