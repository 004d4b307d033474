"""Ahead-of-time compilation of every Triton kernel the planner generates, for sm_80 and sm_90.

No GPU or driver is needed: each kernel is compiled with ``triton.compile(ASTSource(...),
target=GPUTarget("cuda", arch, 32))`` at the tile configuration a GPU would launch it with
(``autobert_ext.triton.config``), and the PTX is assembled by Triton's own ptxas with Triton's
flags and ``-v``, whose report gives registers and spilled bytes; shared memory comes from the
compiled kernel's metadata. Kernels: streaming attention (forward, dK/dV, dQ) of streaming plans,
row softmax (forward, backward) and elementwise programs (forward, backward) of general plans,
for float32 (IEEE and TF32 dots), bfloat16 and float16.

    python benchmarks/triton_compile.py                 # library graphs + 8 random, both archs
    python benchmarks/triton_compile.py --graphs standard --random 0 --dtypes bfloat16

Writes benchmarks/results/triton-compile-sm80.json and -sm90.json (``--out-dir``); exits 1 when a
kernel spills or needs more shared memory than ``config.SHARED_BUDGET``.
"""
from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# The kernels must be real JIT functions, not the CPU interpreter's stand-ins.
os.environ["TRITON_INTERPRET"] = "0"

ARCHS = (80, 90)
DTYPES = ("float32", "bfloat16", "float16")
_PTR = {"float32": "*fp32", "bfloat16": "*bf16", "float16": "*fp16"}
_SCALARS = {"H", "M", "N", "DQK", "DV", "numel", "rows_per_b"}
_FP32_PTRS = {"LSE", "DELTA"}


def _kernel_specs(graph_names, n_random: int, seed: int, head_dim: int, dtypes) -> list[dict]:
    """One entry per distinct generated kernel: module kind, spec, function, launch constants."""
    from autobert.fusion import plan
    from autobert.graph import library, random_graph
    from autobert_ext.plan import worth_fusing
    from autobert_ext.triton import attention_source as attn
    from autobert_ext.triton import softmax_source as sm
    from autobert_ext.triton.config import default_attention_config, default_row_config
    from autobert_ext.triton.elementwise_source import module_for as elementwise_module

    graphs = [(name, library[name]) for name in graph_names]
    rng = random.Random(seed)
    graphs += [(f"random{seed}-{i}", random_graph(rng, 10)) for i in range(n_random)]
    row = default_row_config()
    d_p = max(16, 1 << (head_dim - 1).bit_length())
    specs, seen = [], set()

    def add(graph, kind, make, fn, constants, warps, stages, dtype, precision=""):
        mod = make()
        key = (mod.__name__, fn, tuple(sorted(constants.items())), warps, stages)
        if key in seen:
            return
        seen.add(key)
        specs.append(dict(graph=graph, kind=kind, module=mod.__name__, file=mod.__file__, fn=fn, dtype=dtype,
                          precision=precision, constants=constants, num_warps=warps, num_stages=stages))

    for name, g in graphs:
        p = plan(g, head_dim)
        for dtype in dtypes:
            for precision in (("ieee", "tf32") if dtype == "float32" else ("",)):
                for st in p.steps:
                    if st.kind == "streaming":
                        cfg = default_attention_config(d_p, dtype, precision or "ieee")
                        make = (lambda st=st, cfg=cfg, dtype=dtype, precision=precision: attn.module_for(
                            st.score, st.score_bwd, st.norm, dtype, cfg, precision or "ieee"))
                        base = dict(HAS_MASK=True, DQK_P=d_p, DV_P=d_p)
                        add(name, "attention", make, "attn_fwd", dict(base, BLOCK_M=cfg.block_m, BLOCK_N=cfg.block_n),
                            cfg.num_warps, cfg.num_stages, dtype, precision)
                        for fn in ("attn_bwd_dkdv", "attn_bwd_dq"):
                            add(name, "attention", make, fn, dict(base, BLOCK_M=cfg.bwd_block_m,
                                                                  BLOCK_N=cfg.bwd_block_n),
                                cfg.bwd_num_warps, cfg.bwd_num_stages, dtype, precision)
                    if precision == "tf32":
                        continue  # only attention kernels use tl.dot
                    if st.kind == "softmax":
                        n_in = len(st.inputs)
                        block = min(max(16, 1 << (512 - 1).bit_length()), row.max_row_block)  # N = 512
                        add(name, "softmax", lambda st=st, n_in=n_in, dtype=dtype: sm.module_for(
                            st.program, None, st.post, None, n_in, dtype, row, backward=False), "softmax_fwd",
                            dict(HAS_MASK=True, STORE_Y=False, SINGLE=True, BLOCK_N=block), row.num_warps, 3, dtype)
                        add(name, "softmax", lambda st=st, n_in=n_in, dtype=dtype: sm.module_for(
                            st.program, st.program_bwd, None, st.post_bwd, n_in, dtype, row, backward=True),
                            "softmax_bwd", dict(HAS_MASK=True, BLOCK_N=block), row.num_warps, 3, dtype)
                    if st.kind == "elementwise":
                        for prog in (st.program, st.program_bwd):
                            if prog is not None and worth_fusing(prog):
                                add(name, "elementwise", lambda prog=prog, dtype=dtype: elementwise_module(
                                    prog, dtype, row), "elementwise", dict(BLOCK=row.block), row.num_warps, 3, dtype)
    return specs


def _signature(fn, dtype: str, constants: dict) -> tuple[dict, dict, dict]:
    """ASTSource signature, constexprs and attrs as a launch on contiguous tensors specialises them:
    unit strides of the last axis are constants, pointers are 16-byte aligned."""
    sig, const = {}, dict(constants)
    for name in fn.arg_names:
        if name in constants:
            sig[name] = "constexpr"
        elif name in _FP32_PTRS:
            sig[name] = "*fp32"
        elif name == "KM":
            sig[name] = "*u8"
        elif name in _SCALARS or name[0] == "s":
            sig[name] = "i32"
        else:
            sig[name] = _PTR[dtype]
    for name in fn.arg_names:  # sqd, skd, ..., sdqd: the head-dim stride of contiguous tensors is 1
        if name[0] == "s" and name.endswith("d") and len(name) >= 3 and sig[name] == "i32" and name != "smb":
            sig[name], const[name] = "constexpr", 1
    attrs = {(i,): [["tt.divisibility", 16]] for i, n in enumerate(fn.arg_names) if sig[n].startswith("*")}
    return sig, const, attrs


def _compile(spec: dict, arch: int) -> dict:
    """Compile one kernel for ``arch``; registers, spills and shared memory."""
    import importlib.util

    import triton
    from triton.backends.compiler import GPUTarget
    from triton.backends.nvidia.compiler import get_ptxas, sm_arch_from_capability
    from triton.compiler import ASTSource

    loader = importlib.util.spec_from_file_location(spec["module"], spec["file"])
    mod = importlib.util.module_from_spec(loader)
    loader.loader.exec_module(mod)
    fn = getattr(mod, spec["fn"])
    sig, const, attrs = _signature(fn, spec["dtype"], spec["constants"])
    t0 = time.perf_counter()
    kernel = triton.compile(ASTSource(fn, sig, const, attrs), target=GPUTarget("cuda", arch, 32),
                            options=dict(num_warps=spec["num_warps"], num_stages=spec["num_stages"]))
    sm = sm_arch_from_capability(arch)
    with tempfile.TemporaryDirectory() as tmp:
        ptx = Path(tmp) / "k.ptx"
        ptx.write_text(kernel.asm["ptx"])
        log = subprocess.run([get_ptxas(arch).path, "-lineinfo", "-v", "--regAllocOptLevel=2", f"--gpu-name={sm}",
                              str(ptx), "-o", str(ptx) + ".o"], capture_output=True, text=True, check=True).stderr
    regs = re.search(r"Used (\d+) registers", log)
    spill = re.search(r"(\d+) bytes spill stores, (\d+) bytes spill loads", log)
    return dict(n_regs=int(regs.group(1)), n_spills=int(spill.group(1)), spill_loads=int(spill.group(2)),
                shared=int(kernel.metadata.shared), compile_s=round(time.perf_counter() - t0, 2))


def _row(spec: dict, arch: int) -> dict:
    out = {k: spec[k] for k in ("graph", "kind", "fn", "dtype", "precision", "num_warps", "num_stages")}
    out["tiles"] = {k: v for k, v in spec["constants"].items() if k.startswith("BLOCK")}
    out["module"] = spec["module"]
    try:
        out.update(_compile(spec, arch))
    except Exception as e:  # a kernel that does not compile is a result, not a crash of the sweep
        out["error"] = f"{type(e).__name__}: {str(e)[:300]}"
    return out


def run(graph_names, n_random=8, seed=0, head_dim=64, dtypes=DTYPES, archs=ARCHS, jobs=None) -> dict[int, dict]:
    """Compile every kernel for every arch; {arch: report}."""
    from autobert_ext.triton.config import SHARED_BUDGET

    specs = _kernel_specs(graph_names, n_random, seed, head_dim, dtypes)
    tasks = [(s, a) for a in archs for s in specs]
    with concurrent.futures.ProcessPoolExecutor(jobs or os.cpu_count()) as pool:
        rows = list(pool.map(_row, *zip(*tasks))) if tasks else []
    import triton
    reports = {}
    for arch in archs:
        kernels = [r for (s, a), r in zip(tasks, rows) if a == arch]
        bad = [r for r in kernels if "error" in r or r["n_spills"] or r["shared"] > SHARED_BUDGET]
        reports[arch] = dict(
            target=f"cuda sm_{arch}", triton=triton.__version__, head_dim=head_dim, shared_budget=SHARED_BUDGET,
            graphs=list(graph_names), random_graphs=n_random, seed=seed, n_kernels=len(kernels),
            max_regs=max((r.get("n_regs", 0) for r in kernels), default=0),
            total_spill_bytes=sum(r.get("n_spills", 0) for r in kernels),
            max_shared=max((r.get("shared", 0) for r in kernels), default=0),
            failing=len(bad), kernels=kernels)
    return reports


def main(argv=None) -> int:
    from autobert.graph import library
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--graphs", default="all", help="comma-separated library graph names, or 'all'")
    ap.add_argument("--random", type=int, default=8, help="seeded random graphs to add")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--head-dim", type=int, default=64)
    ap.add_argument("--dtypes", default=",".join(DTYPES))
    ap.add_argument("--archs", default="80,90")
    ap.add_argument("--jobs", type=int, default=None)
    ap.add_argument("--out-dir", type=Path, default=Path(__file__).parent / "results")
    a = ap.parse_args(argv)
    names = sorted(library) if a.graphs == "all" else a.graphs.split(",")
    unknown = [n for n in names if n not in library]
    if unknown:
        ap.error(f"unknown graph(s) {unknown}; known: {', '.join(sorted(library))}")
    reports = run(names, a.random, a.seed, a.head_dim, a.dtypes.split(","), [int(x) for x in a.archs.split(",")],
                  a.jobs)
    a.out_dir.mkdir(parents=True, exist_ok=True)
    for arch, rep in reports.items():
        path = a.out_dir / f"triton-compile-sm{arch}.json"
        path.write_text(json.dumps(rep, indent=1) + "\n")
        print(f"sm_{arch}: {rep['n_kernels']} kernels, max {rep['max_regs']} registers, "
              f"{rep['total_spill_bytes']} spilled bytes, max shared {rep['max_shared']} B, "
              f"{rep['failing']} failing -> {path}")
    return 1 if any(r["failing"] for r in reports.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
