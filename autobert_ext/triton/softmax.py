"""``triton_fused_softmax``: out = POST(softmax(PRE(inputs)) over the last axis), one kernel.

The eager oracle ``reference_fused_softmax`` sits beside it (torch + ``run_program``).
"""
from __future__ import annotations

import dataclasses
from typing import Optional, Sequence

import torch
from torch.autograd.function import once_differentiable

from autobert_ext.program import Program, encode, run_program
from autobert_ext.triton import _runtime as rt
from autobert_ext.triton.cache import get_module
from autobert_ext.triton.config import RowConfig, default_row_config
from autobert_ext.triton.softmax_source import softmax_source

_WHERE = "triton_fused_softmax"


def reference_fused_softmax(pre: Optional[Program], post: Optional[Program], inputs: Sequence[torch.Tensor],
                            key_padding_mask: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Eager oracle: inputs broadcast to (B, ..., N); key_padding_mask (B, N) bool -> (B, ..., N)."""
    x = run_program(pre, list(inputs))[0] if pre is not None else inputs[0]
    if key_padding_mask is not None:
        m = key_padding_mask.bool().reshape(x.shape[0], *([1] * (x.dim() - 2)), x.shape[-1])
        # finfo.min keeps a fully padded row finite; multiplying by the mask zeroes it.
        y = torch.softmax(x.masked_fill(~m, torch.finfo(x.dtype).min), dim=-1) * m
    else:
        y = torch.softmax(x, dim=-1)
    return run_program(post, [y])[0] if post is not None else y


def module_for(pre, pre_bwd, post, post_bwd, n_inputs, dtype, config: RowConfig, backward: bool):
    """The generated module (``softmax_fwd``, and ``softmax_bwd`` when ``backward``) for these programs."""
    enc = lambda p: encode(p) if p is not None else None  # noqa: E731
    meta = dict(MAX_BLOCK=config.max_row_block, num_warps=config.num_warps)
    spec = {"pre": enc(pre), "pre_bwd": enc(pre_bwd), "post": enc(post), "post_bwd": enc(post_bwd),
            "n_inputs": n_inputs, "dtype": dtype, "backward": backward, "config": dataclasses.asdict(config)}
    return get_module("softmax", spec, lambda: softmax_source(pre, pre_bwd, post, post_bwd, n_inputs,
                                                              backward, meta))


def _launch_args(mod, x_like: torch.Tensor, km: Optional[torch.Tensor]):
    """Row count, N, rows per batch, tile and mask arguments for rows of x_like (B, ..., N)."""
    n = x_like.shape[-1]
    rows = x_like.numel() // n if n else 0
    rows_per_b = max(1, rows // x_like.shape[0]) if x_like.shape[0] else 1
    block = min(rt.next_pow2(n, 16), mod.META["MAX_BLOCK"])
    mask_args = (x_like, 0, 0) if km is None else (km, km.stride(0), km.stride(1))
    return rows, n, rows_per_b, block, mask_args


def launch_forward(mod, flat: Sequence[torch.Tensor], km: Optional[torch.Tensor], store_y: bool):
    """Forward kernel on same-shape contiguous inputs (B, ..., N) -> (out, y); y is out unless store_y."""
    like = flat[0]
    out = torch.empty_like(like)
    y = torch.empty_like(like) if store_y else out
    rows, n, rows_per_b, block, (km_ptr, smb, smn) = _launch_args(mod, like, km)
    if rows > 0:
        mod.softmax_fwd[(rows,)](*flat, y, out, km_ptr, n, rows_per_b, smb, smn, HAS_MASK=km is not None,
                                 STORE_Y=store_y, SINGLE=n <= block, BLOCK_N=block,
                                 num_warps=mod.META["num_warps"])
    return out, y


def launch_backward(mod, flat: Sequence[torch.Tensor], y: torch.Tensor, g: torch.Tensor,
                    km: Optional[torch.Tensor]) -> list[torch.Tensor]:
    """Backward kernel: input gradients (same shape as ``flat``) from the saved softmax y and dOut."""
    dxs = [torch.empty_like(flat[0]) for _ in flat]
    rows, n, rows_per_b, block, (km_ptr, smb, smn) = _launch_args(mod, flat[0], km)
    if rows > 0:
        mod.softmax_bwd[(rows,)](*flat, y.contiguous(), g.contiguous(), km_ptr, *dxs, n, rows_per_b, smb, smn,
                                 HAS_MASK=km is not None, BLOCK_N=block, num_warps=mod.META["num_warps"])
    return dxs


class _FusedSoftmax(torch.autograd.Function):
    @staticmethod
    def forward(ctx, pre, pre_bwd, post, post_bwd, km, config, *inputs):
        flat = [x.contiguous() for x in torch.broadcast_tensors(*inputs)]
        kernel_bwd = (pre is None or pre_bwd is not None) and (post is None or post_bwd is not None)
        mod = module_for(pre, pre_bwd, post, post_bwd, len(flat), rt.DTYPES[flat[0].dtype], config, kernel_bwd)
        out, y = launch_forward(mod, flat, km, store_y=post is not None and any(ctx.needs_input_grad[6:]))
        ctx.save_for_backward(*inputs, y, km)
        ctx.mod, ctx.kernel_bwd, ctx.progs = mod, kernel_bwd, (pre, post)
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, g):
        *inputs, y, km = ctx.saved_tensors
        shapes = [x.shape for x in inputs]
        flat = [x.contiguous() for x in torch.broadcast_tensors(*inputs)]
        if ctx.kernel_bwd:
            dxs = launch_backward(ctx.mod, flat, y, g, km)
        else:
            # A derivative program is missing: differentiate the eager oracle instead.
            with torch.enable_grad():
                xs = [x.detach().requires_grad_() for x in flat]
                out = reference_fused_softmax(*ctx.progs, xs, km)
                dxs = torch.autograd.grad(out, xs, g, allow_unused=True)
            dxs = [torch.zeros_like(flat[0]) if d is None else d for d in dxs]
        grads = [d if d.shape == s else d.sum_to_size(s) for d, s in zip(dxs, shapes)]
        return (None,) * 6 + tuple(grads)


def triton_fused_softmax(pre: Optional[Program], pre_bwd: Optional[Program], post: Optional[Program],
                         post_bwd: Optional[Program], inputs: Sequence[torch.Tensor],
                         key_padding_mask: Optional[torch.Tensor] = None, *,
                         config: Optional[RowConfig] = None) -> torch.Tensor:
    """Row softmax over the last axis with fused elementwise programs before and after.

    Args:
        pre: n inputs -> 1 (x), or None for identity (one input).
        pre_bwd: inputs (x_1..x_n, g) -> (dx_1..dx_n); None with ``pre`` given: backward
            differentiates the eager oracle instead of running a kernel.
        post: 1 (y) -> 1 (out), or None for identity.
        post_bwd: inputs (y, g) -> dy; same fallback rule as ``pre_bwd``.
        inputs: n tensors broadcastable to (B, ..., N), one dtype (float32/float16/bfloat16).
        key_padding_mask: (B, N) bool, True = real token, applied along the last axis: padded
            keys get -inf before the softmax (y = 0 there); a row without real keys gives y = 0.

    Returns:
        (B, ..., N) tensor ``POST(y)`` in the inputs' dtype (computed in float32).
    """
    inputs = list(inputs)
    if not inputs:
        raise ValueError(f"{_WHERE}: needs at least one input")
    n = len(inputs)
    if pre is None:
        if n != 1:
            raise ValueError(f"{_WHERE}: pre=None (identity) takes exactly one input, got {n}")
    else:
        rt.check_program(_WHERE, pre, n, 1, "pre")
        if pre_bwd is not None:
            rt.check_program(_WHERE, pre_bwd, n + 1, n, "pre_bwd")
    if post is not None:
        rt.check_program(_WHERE, post, 1, 1, "post")
        if post_bwd is not None:
            rt.check_program(_WHERE, post_bwd, 2, 1, "post_bwd")
    rt.check_tensors(_WHERE, inputs)
    shape = torch.broadcast_shapes(*(x.shape for x in inputs))
    if len(shape) < 1:
        raise ValueError(f"{_WHERE}: inputs must have at least one axis (the softmax axis)")
    km = None
    if key_padding_mask is not None:
        if len(shape) < 2:
            raise ValueError(f"{_WHERE}: a key_padding_mask needs inputs of shape (B, ..., N), got {tuple(shape)}")
        km = rt.key_mask_u8(_WHERE, key_padding_mask, shape[0], shape[-1], inputs[0].device)
    rt.require_triton()
    config = config or default_row_config()
    return _FusedSoftmax.apply(pre, pre_bwd, post, post_bwd, km, config, *inputs)
