"""The op registry: every primitive op of the attention-graph IR (DESIGN.md §2).

Each ``OpSpec`` carries its formula, arity, shape rule, eager torch implementation and
derivative rule. Elementwise ops also carry the hook for code emission (``lower``: how the
op is written in op-program bytecode, see ``autobert_ext.program``) and the bytecode form of
their derivative (``derive``), from which the fusion planner builds backward programs.

Masking (``key_padding_mask`` (B, N) bool, True = real token): padded positions never
contribute to a reduction over a sequence axis — softmax over an N axis sees them as -inf
(a row with no real position gives 0), a matmul/cosine contracting N sees them as 0.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Callable, Optional, Protocol, Sequence

import torch
import torch.nn.functional as F

from autobert.graph import shapes as S

COSINE_EPS = 1e-12  # added to the squared L2 norm: smooth, finite gradient at the zero vector


class Builder(Protocol):
    """What a lowering or derivative rule needs from a program builder (autobert.fusion)."""

    def emit(self, op: str, a: int = -1, b: int = -1, imm: float = 0.0) -> int: ...

    def const(self, value: float) -> int: ...


@dataclasses.dataclass(frozen=True)
class EvalContext:
    """What the eager implementations need beyond their operands."""

    d: int  # head dimension
    mask: Optional[torch.Tensor] = None  # (B, N) bool, True = real token


@dataclasses.dataclass(frozen=True)
class OpSpec:
    name: str
    arity: int
    kind: str  # "elementwise" | "transpose" | "softmax" | "matmul" | "cosine"
    formula: str
    shape_rule: Callable[..., S.Shape]
    eager: Callable[[Sequence[torch.Tensor], Sequence[S.Shape], EvalContext], torch.Tensor]
    commutative: bool = False
    # bytecode hooks (elementwise ops only): lower(b, [x regs], d) -> y reg;
    # derive(b, [x regs], y reg, g reg, d) -> [dx regs]
    lower: Optional[Callable] = None
    derive: Optional[Callable] = None

    @property
    def elementwise(self) -> bool:
        return self.kind == "elementwise"


# ---- masking helpers (shapes tell which axes are sequence axes) ----

def _key_mask(x: torch.Tensor, mask: Optional[torch.Tensor]) -> Optional[torch.Tensor]:
    """Mask broadcast over the LAST axis of x (B, H, R, N) -> (B, 1, 1, N)."""
    return None if mask is None else mask[:, None, None, :]


def _row_mask(mask: Optional[torch.Tensor]) -> Optional[torch.Tensor]:
    """Mask broadcast over the second-to-last axis of x (B, H, N, C) -> (B, 1, N, 1)."""
    return None if mask is None else mask[:, None, :, None]


def _softmax(args, shapes, ctx):
    x = args[0]
    if shapes[0][1] == "N" and ctx.mask is not None:
        m = _key_mask(x, ctx.mask)
        # finfo.min instead of -inf keeps a fully padded row finite; the product zeroes it.
        x = x.masked_fill(~m, torch.finfo(x.dtype).min)
        return torch.softmax(x, dim=-1) * m
    return torch.softmax(x, dim=-1)


def _mask_contraction(a, b, sa, sb, ctx):
    if sa[1] == "N" and ctx.mask is not None:
        a = a * _key_mask(a, ctx.mask)
        b = b * _row_mask(ctx.mask)
    return a, b


def _matmul(args, shapes, ctx):
    a, b = _mask_contraction(args[0], args[1], shapes[0], shapes[1], ctx)
    return torch.matmul(a, b)


def _cosine(args, shapes, ctx):
    a, b = _mask_contraction(args[0], args[1], shapes[0], shapes[1], ctx)
    a = a * torch.rsqrt((a * a).sum(-1, keepdim=True) + COSINE_EPS)  # rows of the left
    b = b * torch.rsqrt((b * b).sum(-2, keepdim=True) + COSINE_EPS)  # columns of the right
    return torch.matmul(a, b)


def _signp(x):
    return torch.where(x >= 0, torch.ones_like(x), -torch.ones_like(x))


def _ew(f):
    return lambda args, shapes, ctx: f(*args)


# ---- bytecode lowering and derivative rules (elementwise ops) ----

def _l1(opname):
    return lambda b, xs, d: b.emit(opname, xs[0])


def _l2(opname):
    return lambda b, xs, d: b.emit(opname, xs[0], xs[1])


def _times(b, g, factor):
    return b.emit("mul", g, factor)


def _d_max(b, xs, y, g, d):
    x0, x1 = xs
    half = b.emit("mulc", b.emit("eq", x0, x1), imm=0.5)
    ga = b.emit("mul", g, b.emit("add", b.emit("gt", x0, x1), half))
    gb = b.emit("mul", g, b.emit("add", b.emit("gt", x1, x0), half))
    return [ga, gb]


def _d_min(b, xs, y, g, d):
    x0, x1 = xs
    half = b.emit("mulc", b.emit("eq", x0, x1), imm=0.5)
    ga = b.emit("mul", g, b.emit("add", b.emit("gt", x1, x0), half))
    gb = b.emit("mul", g, b.emit("add", b.emit("gt", x0, x1), half))
    return [ga, gb]


def _div_den(b, y_reg):
    """signp(y) * max(|y|, 1e-6) — the safe divisor."""
    return b.emit("mul", b.emit("signp", y_reg), b.emit("max", b.emit("abs", y_reg), b.const(1e-6)))


def _l_div(b, xs, d):
    return b.emit("div", xs[0], xs[1])


def _d_div(b, xs, y, g, d):
    """As torch's autograd of the safe division: g / den and -g * ((x / den) / den) where |y| >= 1e-6."""
    x0, x1 = xs
    den = _div_den(b, x1)
    ga = b.emit("div", g, den)  # den is already safe, so the safe division is a plain one here
    live = b.emit("addc", b.emit("neg", b.emit("ltc", b.emit("abs", x1), imm=1e-6)), imm=1.0)
    gb = b.emit("mul", b.emit("neg", b.emit("mul", g, b.emit("div", y, den))), live)
    return [ga, gb]


def _nonzero(b, x):
    """1 where x != 0, else 0 (sign(x)^2): matches autograd of sign(x)*h(|x|) at exactly 0."""
    return b.emit("abs", b.emit("sign", x))


_DERIVS: dict[str, Callable] = {
    "neg": lambda b, xs, y, g, d: [b.emit("neg", g)],
    "abs": lambda b, xs, y, g, d: [_times(b, g, b.emit("sign", xs[0]))],
    "square": lambda b, xs, y, g, d: [_times(b, g, b.emit("mulc", xs[0], imm=2.0))],
    "scale": lambda b, xs, y, g, d: [b.emit("mulc", g, imm=1.0 / math.sqrt(d))],
    "logsigmoid": lambda b, xs, y, g, d: [_times(b, g, b.emit("sigmoid", b.emit("neg", xs[0])))],
    "softsign": lambda b, xs, y, g, d: [
        _times(b, g, b.emit("recip", b.emit("square", b.emit("addc", b.emit("abs", xs[0]), imm=1.0))))],
    "sqrt": lambda b, xs, y, g, d: [_times(b, g, b.emit("mul", _nonzero(b, xs[0]), b.emit(
        "mulc", b.emit("rsqrt", b.emit("addc", b.emit("abs", xs[0]), imm=1e-6)), imm=0.5)))],
    "log": lambda b, xs, y, g, d: [_times(b, g, b.emit("mul", _nonzero(b, xs[0]), b.emit(
        "recip", b.emit("addc", b.emit("abs", xs[0]), imm=1.0))))],
    "exp": lambda b, xs, y, g, d: [_times(b, g, b.emit("mul", y, b.emit(
        "addc", b.emit("neg", b.emit("gtc", xs[0], imm=20.0)), imm=1.0)))],
    "sigmoid": lambda b, xs, y, g, d: [_times(b, g, b.emit("mul", y, b.emit("addc", b.emit("neg", y), imm=1.0)))],
    "tanh": lambda b, xs, y, g, d: [_times(b, g, b.emit("addc", b.emit("neg", b.emit("square", y)), imm=1.0))],
    "relu": lambda b, xs, y, g, d: [_times(b, g, b.emit("gtc", xs[0], imm=0.0))],
    "gelu": lambda b, xs, y, g, d: [_times(b, g, b.emit("dgelu", xs[0]))],
    "softplus": lambda b, xs, y, g, d: [_times(b, g, b.emit("sigmoid", xs[0]))],
    "add": lambda b, xs, y, g, d: [g, g],
    "sub": lambda b, xs, y, g, d: [g, b.emit("neg", g)],
    "mul": lambda b, xs, y, g, d: [b.emit("mul", g, xs[1]), b.emit("mul", g, xs[0])],
    "max": _d_max,
    "min": _d_min,
    "div": _d_div,
}

_UNARY = {
    # name: (formula, eager)
    "neg": ("-x", torch.neg),
    "abs": ("|x|", torch.abs),
    "square": ("x * x", lambda x: x * x),
    "logsigmoid": ("log(sigmoid(x))", F.logsigmoid),
    "softsign": ("x / (1 + |x|)", lambda x: x / (1 + x.abs())),
    "sqrt": ("sign(x) * (sqrt(|x| + 1e-6) - 1e-3)", lambda x: torch.sign(x) * (torch.sqrt(x.abs() + 1e-6) - 1e-3)),
    "log": ("sign(x) * log1p(|x|)", lambda x: torch.sign(x) * torch.log1p(x.abs())),
    "exp": ("exp(min(x, 20))", lambda x: torch.exp(torch.clamp(x, max=20.0))),
    "sigmoid": ("1 / (1 + exp(-x))", torch.sigmoid),
    "tanh": ("tanh(x)", torch.tanh),
    "relu": ("max(x, 0)", torch.relu),
    "gelu": ("x * Phi(x) (erf form)", F.gelu),
    "softplus": ("log(1 + exp(x)) (linear above 20)", F.softplus),
}
_BINARY = {
    "add": ("x + y", lambda x, y: x + y, True),
    "sub": ("x - y", lambda x, y: x - y, False),
    "mul": ("x * y", lambda x, y: x * y, True),
    "max": ("max(x, y)", torch.maximum, True),
    "min": ("min(x, y)", torch.minimum, True),
    "div": ("x / (sign(y) * max(|y|, 1e-6)), sign(0) = +1",
            lambda x, y: x / (_signp(y) * torch.clamp(y.abs(), min=1e-6)), False),
}


def _build_registry() -> dict[str, OpSpec]:
    reg: dict[str, OpSpec] = {}
    for name, (formula, fn) in _UNARY.items():
        reg[name] = OpSpec(name, 1, "elementwise", formula, S.elementwise_rule, _ew(fn),
                           lower=_l1(name), derive=_DERIVS[name])
    reg["scale"] = OpSpec("scale", 1, "elementwise", "x / sqrt(d)", S.elementwise_rule,
                          lambda args, shapes, ctx: args[0] * (1.0 / math.sqrt(ctx.d)),
                          lower=lambda b, xs, d: b.emit("mulc", xs[0], imm=1.0 / math.sqrt(d)),
                          derive=_DERIVS["scale"])
    for name, (formula, fn, comm) in _BINARY.items():
        reg[name] = OpSpec(name, 2, "elementwise", formula, S.elementwise_rule, _ew(fn), commutative=comm,
                           lower=_l_div if name == "div" else _l2(name), derive=_DERIVS[name])
    reg["transpose"] = OpSpec("transpose", 1, "transpose", "swap the last two axes", S.transpose_rule,
                              lambda args, shapes, ctx: args[0].transpose(-1, -2))
    reg["softmax"] = OpSpec("softmax", 1, "softmax", "softmax over the last axis (padded keys = -inf)",
                            S.elementwise_rule, _softmax)
    reg["matmul"] = OpSpec("matmul", 2, "matmul", "x @ y over the last two axes (padded positions = 0)",
                           S.matmul_rule, _matmul)
    reg["cosine"] = OpSpec("cosine", 2, "cosine",
                           "normalize_rows(x) @ normalize_cols(y), x / sqrt(sum(x^2) + 1e-12)",
                           S.matmul_rule, _cosine)
    return reg


OPS: dict[str, OpSpec] = _build_registry()
INPUTS: tuple[str, ...] = ("Q", "K", "V")
UNARY_ELEMENTWISE: tuple[str, ...] = tuple(n for n, o in OPS.items() if o.elementwise and o.arity == 1)
BINARY_ELEMENTWISE: tuple[str, ...] = tuple(n for n, o in OPS.items() if o.elementwise and o.arity == 2)


def get(name: str) -> OpSpec:
    """The spec of op ``name``; KeyError lists the known ops."""
    try:
        return OPS[name]
    except KeyError:
        raise KeyError(f"unknown op {name!r}; known ops: {', '.join(sorted(OPS))}") from None
