"""Op programs: the register bytecode every fused kernel interprets or compiles.

An op program is plain data (no torch objects) computing m outputs from n inputs,
elementwise (every input has the same shape, or is broadcast by the kernel that
runs the program). Registers ``0 .. n_inputs-1`` hold the inputs on entry; each
instruction writes one register; ``outputs`` names the registers returned.

Instruction: ``(opcode, dst, a, b, imm)`` — ``a``/``b`` are source registers (``-1`` when
unused), ``imm`` a float immediate (``0.0`` when unused). Registers are written once
(SSA), and a source always precedes its use, so a kernel may evaluate in order.

The opcode table below is the contract between the planner (``autobert.fusion``),
the C++/CUDA interpreters (``csrc/``) and the Triton code generator. ``OPCODES`` gives
each opcode's number, arity and eager meaning; ``run_program`` is the reference.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Callable, Sequence

import torch

_SQRT1_2 = 1.0 / math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


def _signp(x: torch.Tensor) -> torch.Tensor:
    """sign(x) with sign(0) = +1 (the safe division's convention)."""
    return torch.where(x >= 0, torch.ones_like(x), -torch.ones_like(x))


def _dgelu(x: torch.Tensor) -> torch.Tensor:
    """d/dx of the erf-form gelu: Phi(x) + x * phi(x)."""
    cdf = 0.5 * (1.0 + torch.erf(x * _SQRT1_2))
    return cdf + x * torch.exp(-0.5 * x * x) * _INV_SQRT_2PI


@dataclasses.dataclass(frozen=True)
class Opcode:
    code: int
    name: str
    arity: int  # number of register sources: 0, 1 or 2
    uses_imm: bool
    fn: Callable  # eager meaning: fn(a, b, imm) -> tensor


def _u(f):
    return lambda a, b, c: f(a)


# Numbers are part of the ABI shared with csrc/ and the Triton generator: append only.
OPCODES: tuple[Opcode, ...] = (
    Opcode(0, "copy", 1, False, _u(lambda x: x.clone())),
    Opcode(1, "const", 0, True, None),  # handled specially: needs a shape
    Opcode(2, "neg", 1, False, _u(torch.neg)),
    Opcode(3, "abs", 1, False, _u(torch.abs)),
    Opcode(4, "square", 1, False, _u(lambda x: x * x)),
    Opcode(5, "mulc", 1, True, lambda a, b, c: a * c),
    Opcode(6, "addc", 1, True, lambda a, b, c: a + c),
    Opcode(7, "logsigmoid", 1, False, _u(torch.nn.functional.logsigmoid)),
    Opcode(8, "softsign", 1, False, _u(lambda x: x / (1 + x.abs()))),
    Opcode(9, "sqrt", 1, False, _u(lambda x: torch.sign(x) * (torch.sqrt(x.abs() + 1e-6) - 1e-3))),
    Opcode(10, "log", 1, False, _u(lambda x: torch.sign(x) * torch.log1p(x.abs()))),
    Opcode(11, "exp", 1, False, _u(lambda x: torch.exp(torch.clamp(x, max=20.0)))),
    Opcode(12, "sigmoid", 1, False, _u(torch.sigmoid)),
    Opcode(13, "tanh", 1, False, _u(torch.tanh)),
    Opcode(14, "relu", 1, False, _u(torch.relu)),
    Opcode(15, "gelu", 1, False, _u(torch.nn.functional.gelu)),
    Opcode(16, "softplus", 1, False, _u(torch.nn.functional.softplus)),
    Opcode(17, "add", 2, False, lambda a, b, c: a + b),
    Opcode(18, "sub", 2, False, lambda a, b, c: a - b),
    Opcode(19, "mul", 2, False, lambda a, b, c: a * b),
    Opcode(20, "max", 2, False, lambda a, b, c: torch.maximum(a, b)),
    Opcode(21, "min", 2, False, lambda a, b, c: torch.minimum(a, b)),
    Opcode(22, "div", 2, False, lambda a, b, c: a / (_signp(b) * torch.clamp(b.abs(), min=1e-6))),
    # Internal opcodes: used by derivative programs, never written in graphs.
    Opcode(23, "recip", 1, False, _u(torch.reciprocal)),
    Opcode(24, "rsqrt", 1, False, _u(torch.rsqrt)),
    Opcode(25, "sign", 1, False, _u(torch.sign)),
    Opcode(26, "signp", 1, False, _u(_signp)),
    Opcode(27, "gt", 2, False, lambda a, b, c: (a > b).to(a.dtype)),
    Opcode(28, "eq", 2, False, lambda a, b, c: (a == b).to(a.dtype)),
    Opcode(29, "gtc", 1, True, lambda a, b, c: (a > c).to(a.dtype)),
    Opcode(30, "ltc", 1, True, lambda a, b, c: (a < c).to(a.dtype)),
    Opcode(31, "dgelu", 1, False, _u(_dgelu)),
    Opcode(32, "exp_raw", 1, False, _u(torch.exp)),
    Opcode(33, "fma", 2, True, lambda a, b, c: a * b + c),  # a*b + imm
)
BY_NAME: dict[str, Opcode] = {o.name: o for o in OPCODES}
assert all(o.code == i for i, o in enumerate(OPCODES))


@dataclasses.dataclass(frozen=True)
class Program:
    """A straight-line elementwise program.

    Attributes:
        n_inputs: registers 0..n_inputs-1 are inputs.
        instrs: tuple of (opcode, dst, a, b, imm); dst == n_inputs + index (SSA).
        outputs: registers returned, in order.
    """

    n_inputs: int
    instrs: tuple[tuple[int, int, int, int, float], ...]
    outputs: tuple[int, ...]

    def __post_init__(self):
        self.validate()

    @property
    def n_regs(self) -> int:
        return self.n_inputs + len(self.instrs)

    def validate(self) -> None:
        if self.n_inputs < 0:
            raise ValueError(f"Program: n_inputs must be >= 0, got {self.n_inputs}")
        for i, ins in enumerate(self.instrs):
            if len(ins) != 5:
                raise ValueError(f"Program: instruction {i} must be (op, dst, a, b, imm), got {ins!r}")
            op, dst, a, b, _ = ins
            if not 0 <= op < len(OPCODES):
                raise ValueError(f"Program: instruction {i} has unknown opcode {op}")
            if dst != self.n_inputs + i:
                raise ValueError(f"Program: instruction {i} writes r{dst}, expected r{self.n_inputs + i} (SSA)")
            arity = OPCODES[op].arity
            for slot, src in (("a", a), ("b", b))[:arity]:
                if not 0 <= src < dst:
                    raise ValueError(f"Program: instruction {i} ({OPCODES[op].name}) reads r{src} in slot {slot}, "
                                     f"which is not defined before r{dst}")
        for r in self.outputs:
            if not 0 <= r < self.n_regs:
                raise ValueError(f"Program: output register r{r} is out of range 0..{self.n_regs - 1}")

    def __str__(self) -> str:
        lines = [f"program(inputs={self.n_inputs}, outputs={list(self.outputs)})"]
        for op, dst, a, b, imm in self.instrs:
            o = OPCODES[op]
            args = [f"r{s}" for s in (a, b)[: o.arity]] + ([repr(imm)] if o.uses_imm else [])
            lines.append(f"  r{dst} = {o.name}({', '.join(args)})")
        return "\n".join(lines)


def run_program(program: Program, inputs: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """Reference interpreter: evaluates ``program`` eagerly with torch (autograd works)."""
    if len(inputs) != program.n_inputs:
        raise ValueError(f"run_program: expected {program.n_inputs} inputs, got {len(inputs)}")
    regs: list[torch.Tensor] = list(torch.broadcast_tensors(*inputs)) if len(inputs) > 1 else list(inputs)
    for op, _dst, a, b, imm in program.instrs:
        o = OPCODES[op]
        if o.name == "const":
            like = regs[0] if regs else torch.zeros(())
            regs.append(torch.full_like(like, imm))
            continue
        x = regs[a] if o.arity >= 1 else None
        y = regs[b] if o.arity >= 2 else None
        regs.append(o.fn(x, y, imm))
    return [regs[r] for r in program.outputs]


def encode(program: Program) -> tuple[list[int], list[float]]:
    """Flatten for a custom-op schema (``int[]``, ``float[]``).

    ints: ``[n_inputs, n_instrs, n_outputs, op0, dst0, a0, b0, op1, ..., out0, out1, ...]``;
    floats: one immediate per instruction.
    """
    ints = [program.n_inputs, len(program.instrs), len(program.outputs)]
    for op, dst, a, b, _ in program.instrs:
        ints += [op, dst, a, b]
    ints += list(program.outputs)
    return ints, [float(ins[4]) for ins in program.instrs]


def decode(ints: Sequence[int], floats: Sequence[float]) -> Program:
    """Inverse of ``encode``; raises ValueError on a malformed encoding."""
    if len(ints) < 3:
        raise ValueError(f"program encoding too short: {len(ints)} ints")
    n_in, n_ins, n_out = (int(x) for x in ints[:3])
    if len(ints) != 3 + 4 * n_ins + n_out or len(floats) != n_ins:
        raise ValueError(f"program encoding has {len(ints)} ints / {len(floats)} floats, "
                         f"expected {3 + 4 * n_ins + n_out} / {n_ins}")
    body = ints[3:3 + 4 * n_ins]
    instrs = tuple((int(body[4 * i]), int(body[4 * i + 1]), int(body[4 * i + 2]), int(body[4 * i + 3]),
                    float(floats[i])) for i in range(n_ins))
    return Program(n_in, instrs, tuple(int(x) for x in ints[3 + 4 * n_ins:]))
