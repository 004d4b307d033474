"""Symbolic per-head shapes: every tensor in a graph is (N,d), (d,N), (N,N) or (d,d).

N is the sequence length, d the head dimension. Shapes are tuples of axis symbols,
e.g. ``("N", "d")``; ``fmt`` prints them as ``(N,d)``.
"""
from __future__ import annotations

Shape = tuple[str, str]

ND: Shape = ("N", "d")
DN: Shape = ("d", "N")
NN: Shape = ("N", "N")
DD: Shape = ("d", "d")
ALL_SHAPES: tuple[Shape, ...] = (ND, DN, NN, DD)
INPUT_SHAPE: Shape = ND
OUTPUT_SHAPE: Shape = ND


def fmt(shape: Shape) -> str:
    return f"({shape[0]},{shape[1]})"


def concrete(shape: Shape, n: int, d: int) -> tuple[int, int]:
    """Concrete sizes of a symbolic shape for sequence length ``n`` and head dim ``d``."""
    return tuple(n if a == "N" else d for a in shape)  # type: ignore[return-value]


def elementwise_rule(*shapes: Shape) -> Shape:
    """Elementwise ops keep the shape; binary ones need identical operand shapes."""
    first = shapes[0]
    for i, s in enumerate(shapes[1:], start=1):
        if s != first:
            raise ValueError(f"operand shapes differ: operand 0 is {fmt(first)}, operand {i} is {fmt(s)} "
                             "(elementwise ops need identical shapes)")
    return first


def transpose_rule(x: Shape) -> Shape:
    return (x[1], x[0])


def matmul_rule(a: Shape, b: Shape) -> Shape:
    """(p,q) @ (q,r) -> (p,r); the contraction axes must agree."""
    if a[1] != b[0]:
        raise ValueError(f"contraction mismatch: left operand is {fmt(a)}, right operand is {fmt(b)} "
                         f"(the left's last axis '{a[1]}' must equal the right's first axis '{b[0]}')")
    return (a[0], b[1])
