"""The step kinds of a fused attention plan: one class each, owning its forward, its backward and
the shapes and dtypes of what it saves for the backward.

A step reads the values ``inputs`` and writes ``outputs`` (ids into the plan's value list).
``forward(ins, mask, backend)`` returns (outputs, saved); ``backward(ins, outs, gouts, saved,
mask, backend)`` returns one gradient per input (None: no gradient). ``saves(shapes, dtype)``
gives (shape, dtype) of each saved tensor for input shapes ``shapes`` and input dtype ``dtype``;
the executor's fake implementation and its split of the saved tensors both read it. ``backend``
is the one ``autobert_ext.backends`` chose for the step's kernel ``family`` (None: no kernel).
Nothing records autograd: the executor applies the chain rule itself.
"""
from __future__ import annotations

import dataclasses
from typing import ClassVar, Optional

import torch

from autobert_ext.elementwise import run as elementwise
from autobert_ext.fused_softmax import backward as softmax_backward, forward as softmax
from autobert_ext.program import Program
from autobert_ext.reference import NORM_EPS, compute_dtype
from autobert_ext.streaming_attention import backward as streaming_backward, forward as streaming

Shape = tuple[int, ...]


def worth_fusing(program: Program) -> bool:
    """A program of one instruction gains nothing from a fused kernel: torch's own kernel for that op
    (the eager reference) is as fast and cheaper to call."""
    return len(program.instrs) > 1


@dataclasses.dataclass(frozen=True)
class Step:
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]

    kind: ClassVar[str]
    family: ClassVar[Optional[str]] = None  # the kernel family whose backend the step runs
    saves_outputs: ClassVar[bool] = True  # False: the outputs are views, rebuilt for the backward
    fuses: ClassVar[bool] = False  # does more than one torch op would

    def saves(self, shapes: list[Shape], dtype: torch.dtype) -> list[tuple[Shape, torch.dtype]]:
        return []

    def describe(self) -> str:
        return ""


@dataclasses.dataclass(frozen=True)
class Elementwise(Step):
    """A program (n in -> m out) and its derivative program (x.., g.. -> dx..), one pass."""
    program: Program = None
    program_bwd: Program = None
    kind: ClassVar[str] = "elementwise"
    family: ClassVar[str] = "elementwise"

    @property
    def fuses(self) -> bool:
        return worth_fusing(self.program)

    def forward(self, ins, mask, backend):
        return elementwise(backend if worth_fusing(self.program) else "eager", self.program, ins), []

    def backward(self, ins, outs, gouts, saved, mask, backend):
        gouts = [g if g is not None else torch.zeros_like(o) for g, o in zip(gouts, outs)]
        return elementwise(backend if worth_fusing(self.program_bwd) else "eager", self.program_bwd, ins + gouts)

    def describe(self) -> str:
        return f"{len(self.program.instrs)} ops"


@dataclasses.dataclass(frozen=True)
class Softmax(Step):
    """Row softmax over the last axis with a pre program (n in -> 1) and a post program (1 -> 1),
    their derivatives, and ``masked`` (the last axis is the sequence axis)."""
    program: Program = None
    program_bwd: Program = None
    post: Program = None
    post_bwd: Program = None
    masked: bool = False
    kind: ClassVar[str] = "softmax"
    family: ClassVar[str] = "softmax"
    fuses: ClassVar[bool] = True

    def forward(self, ins, mask, backend):
        return [softmax(backend, self.program, self.post, ins, mask if self.masked else None)], []

    def backward(self, ins, outs, gouts, saved, mask, backend):
        # outs[0] is the softmax rows: the planner's post program is the identity
        return softmax_backward(backend, self.program, self.program_bwd, self.post_bwd, ins, outs[0], gouts[0],
                                mask if self.masked else None)

    def describe(self) -> str:
        return " ".join(["masked"] * self.masked + [f"{len(self.program.instrs)} ops"])


@dataclasses.dataclass(frozen=True)
class Transpose(Step):
    """A view with the last two axes swapped."""
    kind: ClassVar[str] = "transpose"
    saves_outputs: ClassVar[bool] = False

    def forward(self, ins, mask, backend):
        return [ins[0].transpose(-1, -2)], []

    def backward(self, ins, outs, gouts, saved, mask, backend):
        return [gouts[0].transpose(-1, -2)]


def _normalise(x: torch.Tensor, dim: int) -> tuple[torch.Tensor, torch.Tensor]:
    """x / sqrt(sum(x^2, dim) + NORM_EPS) and the factor r."""
    r = torch.rsqrt((x * x).sum(dim, keepdim=True) + NORM_EPS)
    return x * r, r


def _normalise_bwd(g: torch.Tensor, y: torch.Tensor, r: torch.Tensor, dim: int) -> torch.Tensor:
    """Gradient of y = x * r(x): r * (g - y * sum(g * y))."""
    return r * (g - y * (g * y).sum(dim, keepdim=True))


@dataclasses.dataclass(frozen=True)
class Rownorm(Step):
    """x / sqrt(sum(x^2, last axis) + NORM_EPS): the cosine normalisation, for streaming."""
    kind: ClassVar[str] = "rownorm"

    def saves(self, shapes, dtype):
        return [(shapes[0][:-1] + (1,), dtype)]  # r

    def forward(self, ins, mask, backend):
        y, r = _normalise(ins[0], -1)
        return [y], [r]

    def backward(self, ins, outs, gouts, saved, mask, backend):
        return [_normalise_bwd(gouts[0], outs[0], saved[0], -1)]


def _matmul_like(like: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """a @ b, laid out as ``like``: when ``like`` is a transposed view (a transpose step's output),
    the product is computed as (b^T a^T)^T so that its gradient arrives at the transpose's source
    contiguous: the fused elementwise kernels then read it in place instead of copying it."""
    if not like.is_contiguous() and like.mT.is_contiguous():
        return torch.matmul(b.mT, a.mT).mT
    return torch.matmul(a, b)


@dataclasses.dataclass(frozen=True)
class Matmul(Step):
    """values[0] @ values[1]; ``masked``: the contraction axis is the sequence axis (padded
    positions count as 0); ``cosine``: L2-normalise rows of the left and columns of the right first."""
    masked: bool = False
    cosine: bool = False
    kind: ClassVar[str] = "matmul"

    def saves(self, shapes, dtype):
        if not self.cosine:
            return []
        (sa, sb) = shapes  # the normalised operands and their factors
        return [(sa, dtype), (sb, dtype), (sa[:-1] + (1,), dtype), (sb[:-2] + (1, sb[-1]), dtype)]

    def _operands(self, a, b, mask):
        """Apply masking (contraction over the sequence axis) and cosine normalisation."""
        ra = rb = None
        if self.masked and mask is not None:
            a = a * mask[:, None, None, :]  # padded positions count as 0 in the contraction
            if self.cosine:  # the column norms of the right operand also reduce over the sequence
                b = b * mask[:, None, :, None].to(b.dtype)
        if self.cosine:
            (a, ra), (b, rb) = _normalise(a, -1), _normalise(b, -2)
        return a, b, ra, rb

    def forward(self, ins, mask, backend):
        a, b, ra, rb = self._operands(ins[0], ins[1], mask)
        return [torch.matmul(a, b)], [a, b, ra, rb] if self.cosine else []

    def backward(self, ins, outs, gouts, saved, mask, backend):
        g = gouts[0]
        a, b, ra, rb = saved if self.cosine else self._operands(ins[0], ins[1], mask)
        ga, gb = _matmul_like(ins[0], g, b.mT), _matmul_like(ins[1], a.mT, g)
        if self.cosine:
            ga, gb = _normalise_bwd(ga, a, ra, -1), _normalise_bwd(gb, b, rb, -2)
            if self.masked and mask is not None:
                gb = gb * mask[:, None, :, None].to(gb.dtype)
        if self.masked and mask is not None:
            ga = ga * mask[:, None, None, :]
        return [ga, gb]

    def describe(self) -> str:
        return " ".join(["masked"] * self.masked + ["cosine"] * self.cosine)


@dataclasses.dataclass(frozen=True)
class Streaming(Step):
    """Flash-style attention over (q', k', v') with a score program, its derivative and ``norm``
    in {"softmax", "none"}; no (N, N) tensor is formed. Saves the row log-sum-exp in the
    compute dtype (float32 for bfloat16/float16 inputs)."""
    score: Program = None
    score_bwd: Program = None
    norm: str = "softmax"
    masked: bool = True
    kind: ClassVar[str] = "streaming"
    family: ClassVar[str] = "streaming"
    fuses: ClassVar[bool] = True

    def saves(self, shapes, dtype):
        return [(shapes[0][:-1], compute_dtype(dtype))]  # lse

    def forward(self, ins, mask, backend):
        out, lse = streaming(backend, ins[0], ins[1], ins[2], self.score, self.norm, mask if self.masked else None)
        return [out], [lse]

    def backward(self, ins, outs, gouts, saved, mask, backend):
        return streaming_backward(backend, ins[0], ins[1], ins[2], outs[0], saved[0], gouts[0], self.score,
                                  self.score_bwd, self.norm, mask if self.masked else None)

    def describe(self) -> str:
        return " ".join(["masked"] * self.masked + [f"norm={self.norm}, score ops={len(self.score.instrs)}"])


STEPS: dict[str, type[Step]] = {c.kind: c for c in (Elementwise, Softmax, Matmul, Transpose, Rownorm, Streaming)}
