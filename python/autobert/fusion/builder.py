"""ProgramBuilder: writes op-program bytecode (autobert_ext.program) with value numbering.

The graph ops' ``lower`` and ``derive`` hooks emit through it; identical instructions are
emitted once (CSE), so derivative programs stay short.
"""
from __future__ import annotations

from autobert_ext.program import BY_NAME, Program


class ProgramBuilder:
    """Builds a straight-line program over ``n_inputs`` input registers (0..n_inputs-1)."""

    def __init__(self, n_inputs: int):
        self.n_inputs = n_inputs
        self.instrs: list[tuple[int, int, int, int, float]] = []
        self._memo: dict[tuple, int] = {}

    def emit(self, op: str, a: int = -1, b: int = -1, imm: float = 0.0) -> int:
        """Append ``op`` (an opcode name) reading registers a, b; returns the destination register."""
        code = BY_NAME[op]
        a = a if code.arity >= 1 else -1
        b = b if code.arity >= 2 else -1
        imm = float(imm) if code.uses_imm else 0.0
        key = (code.code, a, b, imm)
        if key not in self._memo:
            dst = self.n_inputs + len(self.instrs)
            self.instrs.append((code.code, dst, a, b, imm))
            self._memo[key] = dst
        return self._memo[key]

    def const(self, value: float) -> int:
        return self.emit("const", imm=value)

    def build(self, outputs) -> Program:
        return Program(self.n_inputs, tuple(self.instrs), tuple(outputs))
