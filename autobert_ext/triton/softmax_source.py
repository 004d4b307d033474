"""Source of the row-softmax kernels with fused PRE and POST programs.

Per row of length N (one program instance per row): x = PRE(x_1..x_n); y = softmax(x) over
the row with padded keys (mask False) at -inf (a row without real keys gives y = 0);
out = POST(y). Rows that fit one BLOCK_N tile are read once; longer rows take two passes
(per-lane online max/sum, then normalise), recomputing PRE instead of storing x.

Backward (two passes over the row): dy = POST_BWD(y, g); D = sum(y * dy);
dx = y * (dy - D) (0 at padded keys); (dx_1..dx_n) = PRE_BWD(x_1..x_n, dx).
"""
from __future__ import annotations

import dataclasses
from typing import Optional

from autobert_ext.program import Program, encode
from autobert_ext.triton.cache import get_module
from autobert_ext.triton.codegen import indent, program_lines, used_inputs
from autobert_ext.triton.config import RowConfig

_HEAD = '''\
import triton
import triton.language as tl

META = {meta}
'''

_PROLOGUE = '''\
    row = tl.program_id(0).to(tl.int64)
    base = row * N
    b = row // rows_per_b'''

# Row tile validity: inside N and, with a mask, a real token.
_VALID = '''\
{ind}n_in = offs < N
{ind}ok = n_in
{ind}if HAS_MASK:
{ind}    ok = ok & (tl.load(KM + b * smb + offs * smn, mask=n_in, other=0) != 0)'''

_LOAD = '{ind}{name} = tl.load({ptr} + base + offs, mask=n_in, other=0.0).to(tl.float32)'

_FWD = '''
@triton.jit
def softmax_fwd({xs}, Y, OUT, KM, N, rows_per_b, smb, smn,
                HAS_MASK: tl.constexpr, STORE_Y: tl.constexpr, SINGLE: tl.constexpr, BLOCK_N: tl.constexpr):
{prologue}
    if SINGLE:
        offs = tl.arange(0, BLOCK_N)
{pre8}
        x = tl.where(ok, x, float("-inf"))
        mx = tl.max(x, 0)
        e = tl.exp(x - tl.where(mx == float("-inf"), 0.0, mx))
        den = tl.sum(e, 0)
        y = e / tl.where(den > 0.0, den, 1.0)
{post8}
    else:
        # Per-lane running max / sum: no scalar loop-carried state, merged after the loop.
        m_v = tl.full([BLOCK_N], float("-inf"), tl.float32)
        l_v = tl.zeros([BLOCK_N], tl.float32)
        for start in range(0, N, BLOCK_N):
            offs = start + tl.arange(0, BLOCK_N)
{pre12}
            x = tl.where(ok, x, float("-inf"))
            m_new = tl.maximum(m_v, x)
            m_use = tl.where(m_new == float("-inf"), 0.0, m_new)
            l_v = l_v * tl.exp(m_v - m_use) + tl.exp(x - m_use)
            m_v = m_new
        mx = tl.max(m_v, 0)
        mx_use = tl.where(mx == float("-inf"), 0.0, mx)
        den = tl.sum(l_v * tl.exp(m_v - mx_use), 0)
        inv = 1.0 / tl.where(den > 0.0, den, 1.0)
        for start in range(0, N, BLOCK_N):
            offs = start + tl.arange(0, BLOCK_N)
{pre12}
            y = tl.where(ok, tl.exp(x - mx_use) * inv, 0.0)
{post12}
'''

_POST = '''\
{body}
{ind}tl.store(OUT + base + offs, ({out}).to(OUT.dtype.element_ty), mask=n_in)
{ind}if STORE_Y:
{ind}    tl.store(Y + base + offs, y.to(Y.dtype.element_ty), mask=n_in)'''

_BWD = '''
@triton.jit
def softmax_bwd({xs}, Y, G, KM, {dxs}, N, rows_per_b, smb, smn,
                HAS_MASK: tl.constexpr, BLOCK_N: tl.constexpr):
{prologue}
    acc = tl.zeros([BLOCK_N], tl.float32)
    for start in range(0, N, BLOCK_N):
        offs = start + tl.arange(0, BLOCK_N)
{dy}
        acc += tl.where(ok, y * dy, 0.0)
    dsum = tl.sum(acc, 0)
    for start in range(0, N, BLOCK_N):
        offs = start + tl.arange(0, BLOCK_N)
{dy}
        dx = tl.where(ok, y * (dy - dsum), 0.0)
{pre_bwd}
'''


def _pre_block(pre: Optional[Program], n_inputs: int, ind: int) -> str:
    """Validity, input loads and PRE -> ``x`` at indentation ``ind``."""
    sp = " " * ind
    lines = [_VALID.format(ind=sp)]
    if pre is None:
        lines.append(_LOAD.format(ind=sp, name="x", ptr="X0"))
        return "\n".join(lines)
    for i in used_inputs(pre):
        lines.append(_LOAD.format(ind=sp, name=f"x{i}", ptr=f"X{i}"))
    body, (out,) = program_lines(pre, [f"x{i}" for i in range(n_inputs)], "pr", "[BLOCK_N]")
    lines += [indent(body, ind), f"{sp}x = {out}"]
    return "\n".join(line for line in lines if line)


def _post_block(post: Optional[Program], ind: int) -> str:
    sp = " " * ind
    if post is None:
        return _POST.format(body="", ind=sp, out="y")
    body, (out,) = program_lines(post, ["y"], "po", "[BLOCK_N]")
    return _POST.format(body=indent(body, ind), ind=sp, out=out)


def _dy_block(post_bwd: Optional[Program]) -> str:
    sp = " " * 8
    lines = [_VALID.format(ind=sp), _LOAD.format(ind=sp, name="y", ptr="Y"), _LOAD.format(ind=sp, name="g", ptr="G")]
    if post_bwd is None:
        lines.append(f"{sp}dy = g")
    else:
        body, (out,) = program_lines(post_bwd, ["y", "g"], "pb", "[BLOCK_N]")
        lines += [indent(body, 8), f"{sp}dy = {out}"]
    return "\n".join(line for line in lines if line)


def _pre_bwd_block(pre_bwd: Optional[Program], n_inputs: int) -> str:
    sp = " " * 8
    if pre_bwd is None:  # PRE is the identity: the input gradient is dx itself
        return f"{sp}tl.store(DX0 + base + offs, dx.to(DX0.dtype.element_ty), mask=n_in)"
    lines = [_LOAD.format(ind=sp, name=f"x{i}", ptr=f"X{i}") for i in used_inputs(pre_bwd) if i < n_inputs]
    body, outs = program_lines(pre_bwd, [f"x{i}" for i in range(n_inputs)] + ["dx"], "qb", "[BLOCK_N]")
    lines.append(indent(body, 8))
    lines += [f"{sp}tl.store(DX{i} + base + offs, tl.where(ok, {o}, 0.0).to(DX{i}.dtype.element_ty), mask=n_in)"
              for i, o in enumerate(outs)]
    return "\n".join(line for line in lines if line)


def softmax_source(pre: Optional[Program], pre_bwd: Optional[Program], post: Optional[Program],
                   post_bwd: Optional[Program], n_inputs: int, backward: bool, meta: dict) -> str:
    """Module text with ``softmax_fwd`` (and ``softmax_bwd`` when ``backward``).

    ``pre``/``post`` None mean identity (then ``n_inputs`` must be 1 for ``pre``). With
    ``backward``, ``pre_bwd`` / ``post_bwd`` must be given wherever ``pre`` / ``post`` are.
    """
    xs = ", ".join(f"X{i}" for i in range(n_inputs))
    parts = [_HEAD.format(meta=meta)]
    parts.append(_FWD.format(xs=xs, prologue=_PROLOGUE, pre8=_pre_block(pre, n_inputs, 8),
                             pre12=_pre_block(pre, n_inputs, 12), post8=_post_block(post, 8),
                             post12=_post_block(post, 12)))
    if backward:
        dxs = ", ".join(f"DX{i}" for i in range(n_inputs))
        parts.append(_BWD.format(xs=xs, dxs=dxs, prologue=_PROLOGUE, dy=_dy_block(post_bwd),
                                 pre_bwd=_pre_bwd_block(pre_bwd, n_inputs)))
    return "\n".join(parts)


def module_for(pre, pre_bwd, post, post_bwd, n_inputs, dtype, config: RowConfig, backward: bool):
    """The generated module (``softmax_fwd``, and ``softmax_bwd`` when ``backward``) for these programs."""
    enc = lambda p: encode(p) if p is not None else None  # noqa: E731
    meta = dict(MAX_BLOCK=config.max_row_block, num_warps=config.num_warps)
    spec = {"pre": enc(pre), "pre_bwd": enc(pre_bwd), "post": enc(post), "post_bwd": enc(post_bwd),
            "n_inputs": n_inputs, "dtype": dtype, "backward": backward, "config": dataclasses.asdict(config)}
    return get_module("softmax", spec, lambda: softmax_source(pre, pre_bwd, post, post_bwd, n_inputs,
                                                              backward, meta))
