"""Source of the streaming (flash-style) attention kernels for one score program.

out_i = sum_j P_ij v_j with P = softmax_j(f(s_ij)) (norm="softmax") or P_ij = f(s_ij)
(norm="none"), s_ij = q_i . k_j (no implicit scaling). Three kernels per module:

- ``attn_fwd``: grid (query blocks, B*H). Online softmax over key blocks; never materialises
  (N, N). Stores out and, for softmax, the row logsumexp of f(s) (0 for a row without keys).
- ``attn_bwd_dkdv``: grid (key blocks, B*H). Loops over query blocks, recomputes s, f(s), P;
  dV += P^T dO, dT = P * (dO V^T - D) (softmax; D_i = rowsum(dO_i * O_i)) or dO V^T (none),
  dS = f_bwd(s, dT), dK += dS^T Q.
- ``attn_bwd_dq``: grid (query blocks, B*H). Loops over key blocks; dQ += dS K.

Splitting dQ from dK/dV costs a second recomputation but needs no atomics, so results are
deterministic. Padded keys (mask False) and the tails
beyond N / M / d are masked: -inf before the softmax, 0 in P, 0 in dS. Head dims are padded to
a power of two >= 16 (tl.dot's minimum tile side) and masked on load/store.
"""
from __future__ import annotations

import dataclasses
from typing import Optional

from autobert_ext.program import Program, encode
from autobert_ext.reference import EMPTY_ROW_LSE
from autobert_ext.triton.cache import get_module
from autobert_ext.triton.codegen import indent, program_lines
from autobert_ext.triton.config import AttentionConfig

_TILE = "[BLOCK_M, BLOCK_N]"

_HEAD = '''\
import triton
import triton.language as tl

FWD_META = {fwd_meta}
BWD_META = {bwd_meta}
'''

# Shared prologue: program ids -> batch/head bases (int64: B*H*N*d may pass 2**31).
_IDS = '''\
    pid = tl.program_id(0)
    bh = tl.program_id(1)
    b = (bh // H).to(tl.int64)
    h = (bh % H).to(tl.int64)
    offs_dk = tl.arange(0, DQK_P)
    offs_dv = tl.arange(0, DV_P)
    dk_ok = offs_dk < DQK
    dv_ok = offs_dv < DV
    q_base = Q + b * sqb + h * sqh
    k_base = K + b * skb + h * skh
    v_base = V + b * svb + h * svh
    stats = bh.to(tl.int64) * M'''

_ARGS = '''Q, K, V, {extra}
    sqb, sqh, sqm, sqd, skb, skh, skn, skd, svb, svh, svn, svd, {extra_strides}smb, smn,
    H, M, N, DQK, DV,
    HAS_MASK: tl.constexpr, DQK_P: tl.constexpr, DV_P: tl.constexpr,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr'''

# Loads one key block (k, v) and its validity: inside N and, with a mask, a real token.
_KEYS = '''\
{ind}n_in = offs_n < N
{ind}col_ok = n_in
{ind}if HAS_MASK:
{ind}    col_ok = col_ok & (tl.load(KM + b * smb + offs_n * smn, mask=n_in, other=0) != 0)
{ind}k = tl.load(k_base + offs_n[:, None] * skn + offs_dk[None, :] * skd,
{ind}            mask=n_in[:, None] & dk_ok[None, :], other=0.0)
{ind}v = tl.load(v_base + offs_n[:, None] * svn + offs_dv[None, :] * svd,
{ind}            mask=n_in[:, None] & dv_ok[None, :], other=0.0)'''

# Loads one query block (q and, in backward, dO and the row statistics).
_QUERIES = '''\
{ind}row_ok = offs_m < M
{ind}q = tl.load(q_base + offs_m[:, None] * sqm + offs_dk[None, :] * sqd,
{ind}            mask=row_ok[:, None] & dk_ok[None, :], other=0.0)'''

_QUERIES_BWD = _QUERIES + '''
{ind}do = tl.load(do_base + offs_m[:, None] * sdom + offs_dv[None, :] * sdod,
{ind}             mask=row_ok[:, None] & dv_ok[None, :], other=0.0)'''

_STATS_SOFTMAX = '''
{ind}lse = tl.load(LSE + stats + offs_m, mask=row_ok, other=0.0)
{ind}delta = tl.load(DELTA + stats + offs_m, mask=row_ok, other=0.0)'''

_FWD = '''
@triton.jit
def attn_fwd({args}):
{ids}
    o_base = O + b * sob + h * soh
    offs_m = pid * BLOCK_M + tl.arange(0, BLOCK_M)
{queries}
    m_i = tl.full([BLOCK_M], float("-inf"), tl.float32)
    l_i = tl.zeros([BLOCK_M], tl.float32)
    acc = tl.zeros([BLOCK_M, DV_P], tl.float32)
    for start_n in range(0, N, BLOCK_N):
        offs_n = start_n + tl.arange(0, BLOCK_N)
{keys}
        s = tl.dot(q, tl.trans(k){prec})
{score}
        t = {t}
{update}
{epilogue}
    tl.store(o_base + offs_m[:, None] * som + offs_dv[None, :] * sod, out.to(O.dtype.element_ty),
             mask=row_ok[:, None] & dv_ok[None, :])
'''

_FWD_SOFTMAX = '''\
        t = tl.where(col_ok[None, :], t, float("-inf"))
        m_new = tl.maximum(m_i, tl.max(t, 1))
        # A row that has seen no key yet keeps m = -inf; subtract 0 instead (exp(-inf) = 0, no NaN).
        m_use = tl.where(m_new == float("-inf"), 0.0, m_new)
        alpha = tl.exp(m_i - m_use)
        # t <= m, so p <= 1; the clamp keeps t's rounding (an FMA may fuse its product into
        # "t - m", unrounded) from overflowing exp where |t| ~ 1e22 (fuzzing, issue 16).
        p = tl.exp(tl.minimum(t - m_use[:, None], 0.0))
        l_i = l_i * alpha + tl.sum(p, 1)
        acc = acc * alpha[:, None] + tl.dot(p.to(v.dtype), v{prec})
        m_i = m_new'''

_FWD_NONE = '''\
        p = tl.where(col_ok[None, :], t, 0.0)
        acc += tl.dot(p.to(v.dtype), v{prec})'''

_EPI_SOFTMAX = '''\
    # A row without any real key has l = 0: output 0, logsumexp EMPTY_ROW_LSE (autobert_ext.reference).
    l_ok = l_i > 0.0
    l_div = tl.where(l_ok, l_i, 1.0)
    out = acc / l_div[:, None]
    tl.store(LSE + stats + offs_m, tl.where(l_ok, m_i + tl.log(l_div), float("{empty_lse}")), mask=row_ok)'''

_EPI_NONE = '''\
    out = acc'''

# Recomputes P and dS for one (query block, key block) tile; shared by both backward kernels.
_TILE_BWD = '''\
{ind}s = tl.dot(q, tl.trans(k){prec})
{score}
{ind}t = {t}
{ind}valid = row_ok[:, None] & col_ok[None, :]
{p}
{ind}dp = tl.dot(do, tl.trans(v){prec})
{g}
{score_bwd}
{ind}ds = tl.where(valid, {ds}, 0.0)'''

# t <= lse, so p <= 1: the clamp keeps a recomputed t that rounds above the forward's from
# overflowing exp (inf * 0 = NaN in the gradients) where |t| is large (fuzzing, issue 16).
_P_SOFTMAX = '{ind}p = tl.where(valid, tl.exp(tl.minimum(t - lse[:, None], 0.0)), 0.0)'
_P_NONE = '{ind}p = tl.where(valid, t, 0.0)'
_G_SOFTMAX = '{ind}g = p * (dp - delta[:, None])'
_G_NONE = '{ind}g = tl.where(valid, dp, 0.0)'

_DKDV = '''
@triton.jit
def attn_bwd_dkdv({args}):
{ids}
    do_base = DO + b * sdob + h * sdoh
    offs_n = pid * BLOCK_N + tl.arange(0, BLOCK_N)
{keys}
    dk = tl.zeros([BLOCK_N, DQK_P], tl.float32)
    dv = tl.zeros([BLOCK_N, DV_P], tl.float32)
    for start_m in range(0, M, BLOCK_M):
        offs_m = start_m + tl.arange(0, BLOCK_M)
{queries}{stats}
{tile}
        dv += tl.dot(tl.trans(p.to(do.dtype)), do{prec})
        dk += tl.dot(tl.trans(ds.to(q.dtype)), q{prec})
    tl.store(DK + b * sdkb + h * sdkh + offs_n[:, None] * sdkn + offs_dk[None, :] * sdkd,
             dk.to(DK.dtype.element_ty), mask=n_in[:, None] & dk_ok[None, :])
    tl.store(DVo + b * sdvb + h * sdvh + offs_n[:, None] * sdvn + offs_dv[None, :] * sdvd,
             dv.to(DVo.dtype.element_ty), mask=n_in[:, None] & dv_ok[None, :])
'''

_DQ = '''
@triton.jit
def attn_bwd_dq({args}):
{ids}
    do_base = DO + b * sdob + h * sdoh
    offs_m = pid * BLOCK_M + tl.arange(0, BLOCK_M)
{queries}{stats}
    dq = tl.zeros([BLOCK_M, DQK_P], tl.float32)
    for start_n in range(0, N, BLOCK_N):
        offs_n = start_n + tl.arange(0, BLOCK_N)
{keys}
{tile}
        dq += tl.dot(ds.to(k.dtype), k{prec})
    tl.store(DQ + b * sdqb + h * sdqh + offs_m[:, None] * sdqm + offs_dk[None, :] * sdqd,
             dq.to(DQ.dtype.element_ty), mask=row_ok[:, None] & dk_ok[None, :])
'''


def attention_source(score: Program, score_bwd: Optional[Program], norm: str, dtype: str,
                     config: AttentionConfig, precision: str = "ieee") -> str:
    """Module text with ``attn_fwd`` (+ ``attn_bwd_dkdv`` / ``attn_bwd_dq`` if ``score_bwd``).

    Args:
        score: f, 1 input (s) -> 1 output.
        score_bwd: f_bwd, inputs (s, g) -> 1 output ds = g * f'(s); None: forward only.
        norm: "softmax" or "none".
        dtype: storage dtype name of q/k/v ("float32", "float16", "bfloat16").
        precision: tl.dot input precision of float32 kernels: "ieee" (exact products, matching an
            fp32 reference) or "tf32" (tensor cores); ignored for 16-bit dtypes.
        config: tiles (benchmarks/triton_compile.py checks them ahead of time).
    """
    if norm not in ("softmax", "none"):
        raise ValueError(f"norm must be 'softmax' or 'none', got {norm!r}")
    softmax = norm == "softmax"
    if precision not in ("ieee", "tf32"):
        raise ValueError(f"precision must be 'ieee' or 'tf32', got {precision!r}")
    prec = f', input_precision="{precision}"' if dtype == "float32" else ""
    fwd_meta = dict(BLOCK_M=config.block_m, BLOCK_N=config.block_n, num_warps=config.num_warps,
                    num_stages=config.num_stages)
    bwd_meta = dict(BLOCK_M=config.bwd_block_m, BLOCK_N=config.bwd_block_n, num_warps=config.bwd_num_warps,
                    num_stages=config.bwd_num_stages)
    parts = [_HEAD.format(fwd_meta=fwd_meta, bwd_meta=bwd_meta)]

    f_lines, (f_out,) = program_lines(score, ["s"], "f_", _TILE)
    ind8, ind4 = " " * 8, " " * 4
    fwd = _FWD.format(
        args=_ARGS.format(extra="O, LSE, KM,", extra_strides="sob, soh, som, sod, "),
        ids=_IDS, queries=_QUERIES.format(ind=ind4), keys=_KEYS.format(ind=ind8), prec=prec,
        score=indent(f_lines, 8), t=f_out,
        update=(_FWD_SOFTMAX if softmax else _FWD_NONE).format(prec=prec),
        epilogue=_EPI_SOFTMAX.format(empty_lse=EMPTY_ROW_LSE) if softmax else _EPI_NONE)
    parts.append(fwd)
    if score_bwd is None:
        return "\n".join(parts)

    fb_lines, (ds_out,) = program_lines(score_bwd, ["s", "g"], "fb_", _TILE)
    grad_strides = {
        "dkdv": "sdob, sdoh, sdom, sdod, sdkb, sdkh, sdkn, sdkd, sdvb, sdvh, sdvn, sdvd, ",
        "dq": "sdob, sdoh, sdom, sdod, sdqb, sdqh, sdqm, sdqd, ",
    }
    extra = {"dkdv": "DO, LSE, DELTA, KM, DK, DVo,", "dq": "DO, LSE, DELTA, KM, DQ,"}
    for name, template, ind_q, ind_k in (("dkdv", _DKDV, ind8, ind4), ("dq", _DQ, ind4, ind8)):
        tile = _TILE_BWD.format(
            ind=ind8, prec=prec, score=indent(f_lines, 8), t=f_out,
            p=(_P_SOFTMAX if softmax else _P_NONE).format(ind=ind8),
            g=(_G_SOFTMAX if softmax else _G_NONE).format(ind=ind8),
            score_bwd=indent(fb_lines, 8), ds=ds_out)
        src = template.format(
            args=_ARGS.format(extra=extra[name], extra_strides=grad_strides[name]), ids=_IDS,
            queries=_QUERIES_BWD.format(ind=ind_q), stats=_STATS_SOFTMAX.format(ind=ind_q) if softmax else "",
            keys=_KEYS.format(ind=ind_k), tile=tile, prec=prec)
        parts.append(src)
    return "\n".join(parts)


def module_for(score: Program, score_bwd: Optional[Program], norm: str, dtype: str,
               config: AttentionConfig, precision: str = "ieee"):
    """The generated module (``attn_fwd``; ``attn_bwd_dkdv`` / ``attn_bwd_dq`` when score_bwd is given)."""
    spec = {"score": encode(score), "score_bwd": encode(score_bwd) if score_bwd is not None else None,
            "norm": norm, "dtype": dtype, "precision": precision, "config": dataclasses.asdict(config)}
    return get_module("attention", spec,
                      lambda: attention_source(score, score_bwd, norm, dtype, config, precision))
