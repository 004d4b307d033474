"""Op program -> Triton expression lines (the body every generated kernel inlines).

Each opcode of ``autobert_ext.program.OPCODES`` becomes one assignment with the exact meaning
of ``run_program``, evaluated in float32 whatever the storage dtype. Only ``tl.*`` builtins are
used (no libdevice): the Triton CPU interpreter cannot run libdevice calls, and one code path
for GPU and interpreter means the CPU tests check the source the GPU runs. ``tanh`` and
``log1p`` are therefore written out (Cephes' tanhf, Goldberg's log1p), both within a few ulp.

Nothing here imports triton: it only writes text.
"""
from __future__ import annotations

import math
from typing import Sequence

from autobert_ext.program import OPCODES, Program

_SQRT1_2 = repr(1.0 / math.sqrt(2.0))
_INV_SQRT_2PI = repr(1.0 / math.sqrt(2.0 * math.pi))


def fp(value: float) -> str:
    """A float literal Triton accepts; inf/nan spelt as float(...) (the JIT folds those)."""
    value = float(value)
    if math.isnan(value):
        return 'float("nan")'
    if math.isinf(value):
        return 'float("inf")' if value > 0 else 'float("-inf")'
    return repr(value)


def _sign(x: str) -> str:
    # torch.sign: -1/0/+1, NaN stays NaN (x * 0.0 keeps it, and keeps the sign of -0.0).
    return f"tl.where({x} > 0.0, 1.0, tl.where({x} < 0.0, -1.0, {x} * 0.0))"


def _signp(x: str) -> str:
    # sign with sign(0) = +1; NaN compares false, so it maps to -1 as in the eager reference.
    return f"tl.where({x} >= 0.0, 1.0, -1.0)"


def _log1p(x: str) -> str:
    """log1p for x > -1 (callers pass x >= 0): Goldberg's log(u) * x / (u - 1), u = 1 + x.

    u - 1 is exact, so the ratio corrects log's argument rounding; u == 1 means x is below
    half an ulp of 1, where log1p(x) == x. Above 1e30 the ratio is 1 (and inf/inf is avoided).
    """
    u = f"(1.0 + {x})"
    return (f"tl.where({u} == 1.0, {x}, tl.where({x} > 1e30, tl.log({u}), "
            f"tl.log({u}) * ({x} / ({u} - 1.0))))")


def _tanh_lines(dst: str, x: str) -> list[str]:
    """Cephes tanhf: odd polynomial below |x| = 0.625 (no cancellation), exp form above."""
    ax, z = f"{dst}_ax", f"{dst}_z"
    big = f"1.0 - 2.0 / (tl.exp(2.0 * tl.minimum({ax}, 44.0)) + 1.0)"
    poly = (f"(((((-5.70498872745e-3 * {z} + 2.06390887954e-2) * {z} - 5.37397155531e-2) * {z}"
            f" + 1.33314422036e-1) * {z} - 3.33332819422e-1) * {z} * {ax} + {ax})")
    return [f"{ax} = tl.abs({x})",
            f"{z} = {ax} * {ax}",
            # |x| > 44: exp(88) is near float32's top, tanh is 1.0 there anyway; x * 0 keeps NaN.
            f"{dst} = tl.where({x} < 0.0, -1.0, 1.0) * tl.where({ax} < 0.625, {poly}, {big}) + {x} * 0.0"]


def _unary(name: str, x: str, imm: float) -> str:
    c = fp(imm)
    table = {
        "copy": lambda: x,
        "neg": lambda: f"-{x}",
        "abs": lambda: f"tl.abs({x})",
        "square": lambda: f"{x} * {x}",
        "mulc": lambda: f"{x} * {c}",
        "addc": lambda: f"{x} + {c}",
        # torch: min(x, 0) - log1p(exp(-|x|)); exp(-|x|) is in (0, 1], so no overflow.
        "logsigmoid": lambda: f"tl.minimum({x}, 0.0) - {_log1p(f'tl.exp(-tl.abs({x}))')}",
        "softsign": lambda: f"{x} / (1.0 + tl.abs({x}))",
        "sqrt": lambda: f"{_sign(x)} * (tl.sqrt(tl.abs({x}) + 1e-06) - 0.001)",
        "log": lambda: f"{_sign(x)} * {_log1p(f'tl.abs({x})')}",
        "exp": lambda: f"tl.exp(tl.minimum({x}, 20.0))",
        "sigmoid": lambda: f"1.0 / (1.0 + tl.exp(-{x}))",
        "relu": lambda: f"tl.where({x} > 0.0, {x}, {x} * 0.0)",  # x * 0 keeps NaN as torch.relu
        "gelu": lambda: f"0.5 * {x} * (1.0 + tl.erf({x} * {_SQRT1_2}))",
        # torch softplus (beta 1, threshold 20): linear above 20, else log1p(exp(x)).
        "softplus": lambda: f"tl.where({x} > 20.0, {x}, {_log1p(f'tl.exp(tl.minimum({x}, 20.0))')})",
        "recip": lambda: f"1.0 / {x}",
        "rsqrt": lambda: f"1.0 / tl.sqrt({x})",
        "sign": lambda: _sign(x),
        "signp": lambda: _signp(x),
        "gtc": lambda: f"tl.where({x} > {c}, 1.0, 0.0)",
        "ltc": lambda: f"tl.where({x} < {c}, 1.0, 0.0)",
        "dgelu": lambda: (f"0.5 * (1.0 + tl.erf({x} * {_SQRT1_2})) + "
                          f"{x} * tl.exp(-0.5 * {x} * {x}) * {_INV_SQRT_2PI}"),
        "exp_raw": lambda: f"tl.exp({x})",
    }
    return table[name]()


def _binary(name: str, a: str, b: str, imm: float) -> str:
    table = {
        "add": lambda: f"{a} + {b}",
        "sub": lambda: f"{a} - {b}",
        "mul": lambda: f"{a} * {b}",
        # tl.maximum/minimum would drop a NaN operand; torch.maximum/minimum propagate it.
        "max": lambda: f"tl.where(({a} != {a}) | ({b} != {b}), {a} + {b}, tl.maximum({a}, {b}))",
        "min": lambda: f"tl.where(({a} != {a}) | ({b} != {b}), {a} + {b}, tl.minimum({a}, {b}))",
        "div": lambda: f"{a} / ({_signp(b)} * tl.maximum(tl.abs({b}), 1e-06))",
        "gt": lambda: f"tl.where({a} > {b}, 1.0, 0.0)",
        "eq": lambda: f"tl.where({a} == {b}, 1.0, 0.0)",
        "fma": lambda: f"{a} * {b} + {fp(imm)}",
    }
    return table[name]()


def live_registers(program: Program) -> set[int]:
    """Registers some output depends on (dead instructions are not emitted)."""
    live = set(program.outputs)
    for op, dst, a, b, _ in reversed(program.instrs):
        if dst in live:
            live.update((a, b)[:OPCODES[op].arity])
    return live


def used_inputs(program: Program) -> list[int]:
    """Input registers (0..n_inputs-1) that the outputs depend on, in order."""
    live = live_registers(program)
    return [i for i in range(program.n_inputs) if i in live]


def program_lines(program: Program, inputs: Sequence[str], prefix: str, shape: str) -> tuple[list[str], list[str]]:
    """Emit ``program`` as straight-line Triton code.

    Args:
        program: the op program.
        inputs: one float32 Triton expression (a variable name) per input register.
        prefix: variable-name prefix for this program's registers (unique within a kernel).
        shape: block shape literal, e.g. ``"[BLOCK_M, BLOCK_N]"``, for ``const`` (every input
            and the result have this shape).

    Returns:
        (lines, outputs): assignment lines in evaluation order and one expression per output.
    """
    if len(inputs) != program.n_inputs:
        raise ValueError(f"program_lines: program has {program.n_inputs} inputs, got {len(inputs)} names")
    names = list(inputs)
    lines: list[str] = []
    live = live_registers(program)
    for op, dst, a, b, imm in program.instrs:
        name = f"{prefix}{dst}"
        names.append(name)
        if dst not in live:
            continue
        o = OPCODES[op]
        if o.name == "const":
            lines.append(f"{name} = tl.full({shape}, {fp(imm)}, tl.float32)")
        elif o.name == "tanh":
            lines.extend(_tanh_lines(name, names[a]))
        elif o.arity == 1:
            lines.append(f"{name} = {_unary(o.name, names[a], imm)}")
        else:
            lines.append(f"{name} = {_binary(o.name, names[a], names[b], imm)}")
    return lines, [names[r] for r in program.outputs]


def indent(lines: Sequence[str], spaces: int) -> str:
    """Join lines at one indentation level (for pasting into a kernel template)."""
    pad = " " * spaces
    return "\n".join(pad + line for line in lines)
