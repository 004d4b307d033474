"""CUDA sources in csrc/cuda: torch-free, compile with nvcc, and the op-program interpreter
(packing + evaluation, run on the host through a small harness) agrees with run_program.

Nothing here needs a GPU; everything needs nvcc (skipped without it). No GPU run is possible
here: the kernels themselves are checked by compiling only.
"""
import math
import os
import random
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import torch

from autobert_ext.program import BY_NAME, OPCODES, Program, encode, run_program

ROOT = Path(__file__).resolve().parents[2]
CUDA_DIR = ROOT / "csrc" / "cuda"
SOURCES = sorted(p.name for p in CUDA_DIR.glob("*.cu"))


def _nvcc():
    found = shutil.which("nvcc")
    if found:
        return found
    for home in (os.environ.get("CUDA_HOME"), "/usr/local/cuda"):
        if home and (Path(home) / "bin" / "nvcc").exists():
            return str(Path(home) / "bin" / "nvcc")
    return None


NVCC = _nvcc()
needs_nvcc = pytest.mark.skipif(NVCC is None, reason="nvcc not found")
# The build's nvcc flags (setup.py) for one architecture.
FLAGS = ["-std=c++17", "-O3", "--use_fast_math", "-arch=sm_90", f"-I{ROOT / 'csrc'}"]


def test_sources_are_torch_free():
    files = list(CUDA_DIR.glob("*.cu")) + list(CUDA_DIR.glob("*.cuh"))
    assert {"elementwise.cu", "row_softmax.cu", "masked_adamw.cu"} <= set(SOURCES)
    assert not list(CUDA_DIR.glob("*.cpp")), "csrc/**/*.cpp is always compiled: no .cpp in csrc/cuda"
    for f in files:
        includes = [line for line in f.read_text().splitlines() if line.startswith("#include")]
        bad = [line for line in includes if any(w in line for w in ("torch", "ATen", "c10", "pybind"))]
        assert not bad, f"{f.name} includes {bad}: csrc/cuda must stay torch-free"


@pytest.mark.slow
@needs_nvcc
@pytest.mark.parametrize("name", SOURCES)
def test_nvcc_compiles(name, tmp_path):
    res = subprocess.run([NVCC, "-c", *FLAGS, str(CUDA_DIR / name), "-o", str(tmp_path / "out.o")],
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-4000:]


HARNESS = r"""
#include <cstdio>
#include <cstdlib>
#include <vector>
#include "cuda/program_interp.cuh"
using namespace autobert::cuda;
// stdin: n_ints ints..., n_imms imms..., n_elems, inputs (n_in * n_elems, element-major), hex floats.
int main() {
  long long n; std::vector<int64_t> ints; std::vector<double> imms;
  if (scanf("%lld", &n) != 1) return 2;
  ints.resize(n); for (auto& v : ints) { long long x; scanf("%lld", &x); v = x; }
  if (scanf("%lld", &n) != 1) return 2;
  imms.resize(n); for (auto& v : imms) { char buf[64]; scanf("%63s", buf); v = strtod(buf, nullptr); }
  DeviceProgram p{};
  std::string err = pack_program(ProgramRef{ints.data(), (int64_t)ints.size(), imms.data(), (int64_t)imms.size()}, &p);
  if (!err.empty()) { printf("ERR %s\n", err.c_str()); return 0; }
  long long elems; scanf("%lld", &elems);
  for (long long i = 0; i < elems; ++i) {
    float r[kMaxSlots][1];
    for (int k = 0; k < p.n_inputs; ++k) { char buf[64]; scanf("%63s", buf); r[k][0] = strtof(buf, nullptr); }
    run_program<1>(p, r);
    for (int j = 0; j < p.n_outputs; ++j) printf("%a ", r[p.out_slot[j]][0]);
    printf("\n");
  }
  return 0;
}
"""


@pytest.fixture(scope="module")
def harness(tmp_path_factory):
    if NVCC is None:
        pytest.skip("nvcc not found")
    d = tmp_path_factory.mktemp("interp")
    (d / "harness.cu").write_text(HARNESS)
    res = subprocess.run([NVCC, "-std=c++17", "-O2", "-arch=sm_90", f"-I{ROOT / 'csrc'}", str(d / "harness.cu"),
                          "-o", str(d / "harness")], capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-4000:]

    def run(program: Program, inputs: list[torch.Tensor]):
        ints, imms = encode(program)
        xs = torch.stack([x.float() for x in inputs], 1) if inputs else torch.zeros(1, 0)
        lines = [str(len(ints)), " ".join(map(str, ints)), str(len(imms)), " ".join(float(v).hex() for v in imms),
                 str(xs.shape[0])] + [" ".join(float(v).hex() for v in row) for row in xs.tolist()]
        out = subprocess.run([str(d / "harness")], input="\n".join(lines) + "\n", capture_output=True,
                             text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        if out.stdout.startswith("ERR"):
            return out.stdout[4:].strip()
        rows = [line.split() for line in out.stdout.splitlines()]
        return [torch.tensor([float.fromhex(r[j]) for r in rows], dtype=torch.float32)
                for j in range(len(program.outputs))]

    return run


def _relerr(x, ref):
    ref = torch.where(ref.abs() > torch.finfo(torch.float32).max, ref * math.inf, ref)
    x = x.double()
    fin = torch.isfinite(ref)
    same = (x[~fin].isnan() & ref[~fin].isnan()) | (x[~fin] == ref[~fin])
    assert bool(same.all()), f"non-finite mismatch: {x[~fin][~same][:5]} vs {ref[~fin][~same][:5]}"
    return float(((x[fin] - ref[fin]).abs() / ref[fin].abs().clamp(min=1.0)).max()) if bool(fin.any()) else 0.0


def _operands(n):
    g = torch.Generator().manual_seed(1)
    special = [0.0, -0.0, 1e-7, -1e-7, 0.6, -0.6, 19.99, 20.0, 20.01, -20.01, 30.0, -30.0, 100.0, 1e-6, -1e-6]
    base = torch.cat([torch.randn(200, generator=g, dtype=torch.float64) * 3, torch.tensor(special, dtype=torch.float64)])
    xs = [base.roll(7 * i) for i in range(n)]
    if n == 2:
        xs[1][::5] = xs[0][::5]  # ties for eq / gt / max / min
        xs[1][::9] = 0.0  # the safe division's sign(0) = +1 branch
    return [x.float().double() for x in xs]


def _check(harness, prog, inputs64, floor=1e-6):
    got = harness(prog, inputs64)
    assert not isinstance(got, str), got
    ref = run_program(prog, inputs64)
    eager = run_program(prog, [x.float() for x in inputs64])
    for k, e, r in zip(got, eager, ref):
        assert _relerr(k, r) <= 2 * _relerr(e, r) + floor, str(prog)


@pytest.mark.slow
def test_interpreter_every_opcode(harness):
    imms = {"const": 2.5, "mulc": 0.37, "addc": -1.3, "gtc": 0.5, "ltc": -0.25, "fma": 0.75}
    for o in OPCODES:
        n = max(o.arity, 1)
        srcs = (0, 1 if o.arity == 2 else -1) if o.arity else (-1, -1)
        prog = Program(n, ((o.code, n, srcs[0], srcs[1], imms.get(o.name, 0.0)),), (n,))
        _check(harness, prog, _operands(n))


@pytest.mark.slow
def test_interpreter_random_programs_reuse_slots(harness):
    # Long random DAGs over bounded ops: exercises dead-code removal and slot reuse (values die
    # and their slots are recycled), outputs that are inputs, repeated outputs, a == b operands.
    rnd = random.Random(0)
    bounded = ["tanh", "sigmoid", "softsign", "gelu", "sqrt", "log", "relu", "neg", "abs", "mulc", "addc",
               "add", "sub", "mul", "max", "min", "div", "fma", "logsigmoid", "softplus", "exp"]
    for trial in range(6):
        n_in = rnd.randint(1, 3)
        instrs = []
        for i in range(rnd.randint(20, 120)):
            o = BY_NAME[rnd.choice(bounded)]
            dst = n_in + i
            lo = max(0, dst - rnd.choice([3, 10, dst]))  # mostly recent values: short live ranges
            a, b = rnd.randrange(lo, dst), rnd.randrange(lo, dst)
            instrs.append((o.code, dst, a, b if o.arity == 2 else -1, rnd.uniform(-1, 1) if o.uses_imm else 0.0))
        n_regs = n_in + len(instrs)
        outs = (n_regs - 1, rnd.randrange(n_regs), 0, n_regs - 1)
        prog = Program(n_in, tuple(instrs), outs)
        _check(harness, prog, _operands(n_in), floor=1e-5)


@pytest.mark.slow
def test_interpreter_limits_are_reported(harness):
    # 60 values live at once (all summed at the end) exceed the 48 slots: a clear error, no crash.
    instrs = [(6, 1 + i, 0, -1, float(i)) for i in range(60)]
    acc = 1
    for i in range(1, 60):
        instrs.append((17, len(instrs) + 1, acc, 1 + i, 0.0))
        acc = len(instrs)
    msg = harness(Program(1, tuple(instrs), (acc,)), [torch.ones(3, dtype=torch.float64)])
    assert isinstance(msg, str) and "live at once" in msg
    # 40 live values fit.
    instrs = [(6, 1 + i, 0, -1, float(i)) for i in range(40)]
    acc = 1
    for i in range(1, 40):
        instrs.append((17, len(instrs) + 1, acc, 1 + i, 0.0))
        acc = len(instrs)
    _check(harness, Program(1, tuple(instrs), (acc,)), [torch.randn(5, dtype=torch.float64).float().double()])
    long_chain = tuple((13, 1 + i, i, -1, 0.0) for i in range(130))
    msg = harness(Program(1, long_chain, (130,)), [torch.ones(2, dtype=torch.float64)])
    assert isinstance(msg, str) and "live instructions" in msg


ADAMW_HARNESS = r"""
#include <cstdio>
#include <cstdlib>
#include <vector>
#include "cuda/masked_adamw.cu"
using namespace autobert::cuda;
static float rd() { char b[64]; scanf("%63s", b); return strtof(b, nullptr); }
static double rdd() { char b[64]; scanf("%63s", b); return strtod(b, nullptr); }
// stdin: lr beta1 beta2 eps wd, n_slots, per slot: numel step has_mask, p g m v (hex), mask (0/1).
// Emulates every planned block on the host with the kernel's update; prints launches, p, m, v.
int main() {
  AdamWHyper h{rdd(), rdd(), rdd(), rdd(), rdd()};
  int n; scanf("%d", &n);
  std::vector<std::vector<float>> P(n), G(n), M(n), V(n);
  std::vector<std::vector<char>> K(n);
  std::vector<AdamWSlot> slots(n);
  for (int s = 0; s < n; ++s) {
    long long numel, step; int has_mask; scanf("%lld %lld %d", &numel, &step, &has_mask);
    for (auto* vec : {&P[s], &G[s], &M[s], &V[s]}) { vec->resize(numel); for (auto& x : *vec) x = rd(); }
    K[s].resize(numel); for (auto& x : K[s]) { int b; scanf("%d", &b); x = (char)b; }
    slots[s] = AdamWSlot{P[s].data(), G[s].data(), M[s].data(), V[s].data(),
                         has_mask ? reinterpret_cast<const bool*>(K[s].data()) : nullptr, numel, step, DType::kFloat32};
  }
  if (!check(slots.data(), n, h).empty()) { printf("ERR\n"); return 0; }
  std::vector<const AdamWSlot*> group; for (auto& s : slots) group.push_back(&s);
  auto plan = plan_launches(group, h);
  printf("LAUNCHES %zu", plan.size());
  for (auto& pl : plan) printf(" %d", pl.n_chunks);
  printf("\n");
  for (auto& pl : plan) for (int b = 0; b < pl.n_chunks; ++b) {
    const AdamWLaunch& L = pl.params;
    const TensorMeta& t = L.t[L.chunk_tensor[b]];
    const long long start = (long long)L.chunk_index[b] * kChunk;
    const long long end = start + kChunk < t.numel ? start + kChunk : t.numel;
    float* p = (float*)t.p; const float* g = (const float*)t.g; float* m = (float*)t.m; float* v = (float*)t.v;
    for (long long i = start; i < end; ++i) {
      if (t.mask && !t.mask[i]) continue;
      adamw_update<float>(p[i], g[i], m[i], v[i], L, (float)t.neg_step_size, (float)t.bc2_sqrt);
    }
  }
  for (int s = 0; s < n; ++s) for (auto* vec : {&P[s], &M[s], &V[s]}) {
    for (float x : *vec) printf("%a ", x);
    printf("\n");
  }
  return 0;
}
"""


@pytest.mark.slow
@needs_nvcc
def test_masked_adamw_plan_and_math_on_host(tmp_path):
    # Tiny packing limits (chunk 16, 3 tensors, 5 chunks per launch) reach every split path:
    # full chunk table mid-tensor, full tensor table, empty tensors, a tensor over many launches.
    (tmp_path / "h.cu").write_text(ADAMW_HARNESS)
    limits = ["-DAUTOBERT_ADAMW_CHUNK=16", "-DAUTOBERT_ADAMW_MAX_TENSORS=3", "-DAUTOBERT_ADAMW_MAX_CHUNKS=5"]
    res = subprocess.run([NVCC, "-std=c++17", "-O2", "-arch=sm_90", f"-I{ROOT / 'csrc'}", *limits,
                          str(tmp_path / "h.cu"), "-o", str(tmp_path / "h")], capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-4000:]
    g = torch.Generator().manual_seed(0)
    sizes, steps = [5, 0, 40, 16, 33, 1, 130, 3, 17], [1, 2, 3, 10, 1, 7, 2, 1, 4]
    hyper = dict(lr=1e-2, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.1)
    tensors = []
    for i, (n, step) in enumerate(zip(sizes, steps)):
        p, grad = torch.randn(n, generator=g), torch.randn(n, generator=g)
        m, v = torch.randn(n, generator=g) * 0.1, torch.rand(n, generator=g) * 0.01
        mask = torch.rand(n, generator=g) > 0.3 if i % 3 != 1 else None
        tensors.append((p, grad, m, v, mask, step))
    hx = lambda t: " ".join(float(x).hex() for x in t.tolist())  # noqa: E731
    lines = [" ".join(float(x).hex() for x in (hyper["lr"], *hyper["betas"], hyper["eps"], hyper["weight_decay"])),
             str(len(tensors))]
    for p, grad, m, v, mask, step in tensors:
        lines += [f"{p.numel()} {step} {int(mask is not None)}", hx(p), hx(grad), hx(m), hx(v),
                  " ".join("1" if b else "0" for b in (mask.tolist() if mask is not None else [True] * p.numel()))]
    out = subprocess.run([str(tmp_path / "h")], input="\n".join(lines) + "\n", capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    rows = out.stdout.splitlines()
    launches = [int(x) for x in rows[0].split()[2:]]
    assert sum(launches) == sum((n + 15) // 16 for n in sizes) and max(launches) <= 5 and len(launches) > 3
    for i, (p, grad, m, v, mask, step) in enumerate(tensors):
        got = [torch.tensor([float.fromhex(x) for x in rows[1 + 3 * i + j].split()]) for j in range(3)]
        # torch.optim.AdamW from the same state, one step; inactive entries must keep their bits.
        param = torch.nn.Parameter(p.clone())
        opt = torch.optim.AdamW([param], **hyper)
        opt.state[param] = {"step": torch.tensor(float(step - 1)), "exp_avg": m.clone(), "exp_avg_sq": v.clone()}
        param.grad = grad.clone()
        opt.step()
        want = [param.detach(), opt.state[param]["exp_avg"], opt.state[param]["exp_avg_sq"]]
        active = mask if mask is not None else torch.ones(p.numel(), dtype=torch.bool)
        for name, gt, w, before in zip(("param", "exp_avg", "exp_avg_sq"), got, want, (p, m, v)):
            assert torch.equal(gt[~active], before[~active]), f"tensor {i}: inactive {name} changed"
            torch.testing.assert_close(gt[active], w[active], rtol=2e-6, atol=1e-8, msg=f"tensor {i} {name}")


def _cuda_include():
    """A CUDA toolkit include folder holding cuda_runtime.h (next to nvcc, CUDA_HOME or /usr/local/cuda)."""
    homes = [Path(NVCC).resolve().parents[1]] if NVCC else []
    homes += [Path(h) for h in (os.environ.get("CUDA_HOME"), "/usr/local/cuda") if h]
    for home in homes:
        if (home / "include" / "cuda_runtime.h").exists():
            return home / "include"
    return None


@pytest.mark.slow
@needs_nvcc
def test_cuda_bindings_compile_with_host_compiler(tmp_path):
    """csrc/bindings/cuda.cpp as setup.py compiles it in a CUDA build (host c++, AUTOBERT_WITH_CUDA=1):
    compiles against torch's c10/cuda headers and the launcher headers, registers the CUDA
    implementations of the kernel ops and calls the four launchers. Checks the binding compiles on a CPU-only machine; the kernels
    themselves are checked by test_nvcc_compiles and, on a GPU, tests/ext/test_cuda_kernels.py."""
    import sysconfig

    from torch.utils import cpp_extension

    cxx = shutil.which(os.environ.get("CXX", "c++")) or shutil.which("g++")
    cuda_inc = _cuda_include()
    torch_inc = [Path(p) for p in cpp_extension.include_paths()]
    if cxx is None or cuda_inc is None:
        pytest.skip("needs a host C++ compiler and the CUDA headers")
    if not (torch_inc[0] / "c10" / "cuda" / "CUDAGuard.h").exists():
        pytest.skip("this torch ships no c10/cuda headers")
    defines = ["-DAUTOBERT_WITH_CUDA=1", "-DTORCH_EXTENSION_NAME=_C", "-DTORCH_API_INCLUDE_EXTENSION_H"]
    if not (torch_inc[0] / "c10" / "cuda" / "impl" / "cuda_cmake_macros.h").exists():
        # CPU wheels lack this generated header; it only sets a Windows export macro.
        defines.append("-DC10_CUDA_NO_CMAKE_CONFIGURE_FILE")
    std = re.search(r'"(-std=c\+\+\d+)"', (ROOT / "setup.py").read_text())  # the build's C++ standard
    obj = tmp_path / "cuda_bindings.o"
    cmd = [cxx, std.group(1) if std else "-std=c++17", "-O0", "-fPIC", "-c", *defines, *(f"-I{p}" for p in torch_inc),
           f"-I{sysconfig.get_paths()['include']}", f"-I{cuda_inc}", f"-I{ROOT / 'csrc'}",
           str(ROOT / "csrc" / "bindings" / "cuda.cpp"), "-o", str(obj)]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-6000:]
    nm = shutil.which("nm")
    if nm is None:
        return
    syms = subprocess.run([nm, "-C", str(obj)], capture_output=True, text=True, timeout=120).stdout
    assert re.search(r"TORCH_LIBRARY_IMPL_init_autobert_kernels_CUDA", syms), "no CUDA registration of the ops"
    for launcher in ("elementwise_program_cuda", "row_softmax_fwd_cuda", "row_softmax_bwd_cuda", "masked_adamw_cuda"):
        # std::string returns carry an ABI tag: name[abi:cxx11](...)
        assert re.search(rf"U autobert::cuda::{launcher}[\[(]", syms), f"the binding does not call {launcher}"
