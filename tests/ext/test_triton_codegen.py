"""Triton code generator: every opcode, run through the elementwise kernel, against run_program.

Errors are measured against a float64 run_program; the fp32 kernel may err at most twice as
much as fp32 run_program plus a small floor (relative to max(|ref|, 1)).
"""
import math

import pytest
import torch

pytest.importorskip("triton")

from autobert_ext.program import OPCODES, Program, run_program  # noqa: E402
import autobert_ext.triton.config as triton_config  # noqa: E402
from autobert_ext.elementwise import run  # noqa: E402
from autobert_ext.triton import RowConfig  # noqa: E402
from autobert_ext.triton.codegen import fp, live_registers, program_lines, used_inputs  # noqa: E402

pytestmark = [pytest.mark.filterwarnings("ignore:.*encountered in:RuntimeWarning"),  # interpreter's numpy on inf/nan
              pytest.mark.usefixtures("triton_cache_dir")]
DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
# On NVIDIA GPUs Triton lowers fp32 tl.exp to ex2.approx (relative error ~|x| * 6e-8, ~1.3e-6 at
# x = 20); the interpreter's numpy exp is exact to an ulp.
FLOOR = 1e-6 if DEVICE == "cpu" else 4e-6
IMMS = {"const": 2.5, "mulc": 0.37, "addc": -1.3, "gtc": 0.5, "ltc": -0.25, "fma": 0.75}


def triton_elementwise(program, inputs):
    return run("triton", program, inputs)


def _operands():
    """x, y (float64, 1-D): random values plus the points where the safe ops switch branches."""
    g = torch.Generator().manual_seed(0)
    special = [0.0, -0.0, 1e-7, -1e-7, 1e-3, 0.6, -0.6, 0.625, -0.625, 0.7, 19.99, 20.0, 20.01, -20.01,
               30.0, -30.0, 50.0, -50.0, 1e-6, -1e-6, 5e-7, 100.0, -100.0, 1e30, -1e30]
    # Built in float64, rounded to float32 values: the float64 reference sees the kernel's inputs.
    x = torch.cat([torch.randn(600, generator=g, dtype=torch.float64) * 3,
                   torch.rand(200, generator=g, dtype=torch.float64) * 1e-3,
                   torch.tensor(special, dtype=torch.float64)])
    y = torch.randn(x.numel(), generator=g, dtype=torch.float64) * 3
    y[::7] = x[::7]  # ties for eq / gt / max / min
    y[::11] = 0.0  # the safe division's sign(0) = +1 branch
    y[::13] = 1e-7
    return x.float().double(), y.float().double()


def _relerr(x: torch.Tensor, ref: torch.Tensor) -> float:
    """max |x - ref| / max(|ref|, 1) over entries where ref is finite (non-finite must match).

    A float64 ref beyond float32's range counts as the infinity float32 must produce there.
    """
    x = x.double()
    ref = torch.where(ref.abs() > torch.finfo(torch.float32).max, ref * math.inf, ref)
    fin = torch.isfinite(ref)
    same = (x[~fin].isnan() & ref[~fin].isnan()) | (x[~fin] == ref[~fin])
    assert bool(same.all()), f"non-finite mismatch: kernel {x[~fin][~same][:5]}, ref {ref[~fin][~same][:5]}"
    if not bool(fin.any()):
        return 0.0
    return float(((x[fin] - ref[fin]).abs() / ref[fin].abs().clamp(min=1.0)).max())


def _single_op_program(o) -> Program:
    imm = IMMS.get(o.name, 0.0)
    if o.arity == 0:
        return Program(1, ((o.code, 1, -1, -1, imm),), (1,))
    n = o.arity
    return Program(n, ((o.code, n, 0, 1 if n == 2 else -1, imm),), (n,))


@pytest.mark.parametrize("name", [o.name for o in OPCODES])
def test_every_opcode_matches_run_program(name):
    o = next(op for op in OPCODES if op.name == name)
    prog = _single_op_program(o)
    x, y = _operands()
    ins64 = [x, y][:prog.n_inputs]
    ref = run_program(prog, ins64)[0]
    eager = run_program(prog, [t.float() for t in ins64])[0]
    out = triton_elementwise(prog, [t.float().to(DEVICE) for t in ins64])[0].cpu()
    assert out.dtype == torch.float32 and out.shape == x.shape
    err_k, err_e = _relerr(out, ref), _relerr(eager, ref)
    assert err_k <= 2 * err_e + FLOOR, f"{name}: kernel error {err_k:.3g} vs eager fp32 {err_e:.3g}"


def test_chain_with_dead_code_and_reused_registers():
    # r2 = tanh(x0); r3 = dead; r4 = r2 * x1; r5 = softplus(r4); r6 = fma(r5, r2, 0.5); r7 = sqrt(r6)
    prog = Program(2, ((13, 2, 0, -1, 0.0), (11, 3, 1, -1, 0.0), (19, 4, 2, 1, 0.0), (16, 5, 4, -1, 0.0),
                       (33, 6, 5, 2, 0.5), (9, 7, 6, -1, 0.0)), (7, 2, 0))
    assert 3 not in live_registers(prog) and used_inputs(prog) == [0, 1]
    lines, outs = program_lines(prog, ["a", "b"], "r", "[BLOCK]")
    assert not any(line.startswith("r3 ") for line in lines) and outs == ["r7", "r2", "a"]
    x, y = _operands()
    ref = run_program(prog, [x, y])
    eager = run_program(prog, [x.float(), y.float()])
    outs = triton_elementwise(prog, [x.float().to(DEVICE), y.float().to(DEVICE)])
    for k, e, r in zip(outs, eager, ref):
        assert _relerr(k.cpu(), r) <= 2 * _relerr(e, r) + FLOOR


def test_non_finite_immediates():
    prog = Program(1, ((1, 1, -1, -1, math.inf), (5, 2, 0, -1, -math.inf), (6, 3, 0, -1, math.nan),
                       (29, 4, 0, -1, -math.inf)), (1, 2, 3, 4))
    assert fp(math.inf) == 'float("inf")' and fp(-math.inf) == 'float("-inf")' and fp(math.nan) == 'float("nan")'
    x = torch.tensor([-2.0, 0.0, 3.0], device=DEVICE)
    outs = triton_elementwise(prog, [x])
    for k, r in zip(outs, run_program(prog, [x.cpu()])):
        torch.testing.assert_close(k.cpu(), r, equal_nan=True)


def test_multi_block_tail_and_strided_input(monkeypatch):
    # 3000 elements over 1024-element blocks (ragged tail); x1 a broadcast (strided) view.
    monkeypatch.setattr(triton_config, "default_row_config", lambda: RowConfig(block=1024))
    prog = Program(2, ((22, 2, 0, 1, 0.0), (15, 3, 2, -1, 0.0)), (3,))
    x0 = torch.randn(3, 1000, device=DEVICE)
    x1 = torch.randn(1000, device=DEVICE).expand(3, 1000)
    out = triton_elementwise(prog, [x0, x1])[0]
    torch.testing.assert_close(out.cpu(), run_program(prog, [x0.cpu(), x1.cpu()])[0], rtol=1e-5, atol=1e-6)


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_every_opcode_half_precision(dtype):
    x, y = _operands()
    x, y = x.clamp(-60, 60), y.clamp(-60, 60)
    for o in OPCODES:
        prog = _single_op_program(o)
        ins = [x, y][:prog.n_inputs]
        ref = run_program(prog, ins)[0]
        eager = run_program(prog, [t.to(dtype) for t in ins])[0]
        out = triton_elementwise(prog, [t.to(dtype).cuda() for t in ins])[0].cpu()
        # The kernel computes in fp32 and rounds once; eager rounds after every op.
        assert _relerr(out, ref) <= 2 * _relerr(eager, ref) + 1e-3, o.name
