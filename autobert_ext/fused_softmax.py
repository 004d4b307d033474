"""The row softmax family: POST(masked softmax over the last axis of PRE(inputs)).

Launchers (``forward``, ``backward``): ``cpp`` / ``cuda`` (the ``_C`` kernels), ``triton`` (a
generated module per program set, ``triton.softmax_source``) and ``eager`` (``reference``); which
one runs is ``autobert_ext.backends``' decision. The plan executor calls them directly.

``autobert::fused_softmax`` runs the PRE program (n inputs -> x), the row softmax (key mask:
padded columns are -inf; a row without a valid column is 0) and the POST program (y -> out) in
one pass per row. ``autobert::fused_softmax_backward`` recomputes y from the inputs (nothing of
size (..., R, C) is saved besides the inputs), then gy = POST_BWD(y, g),
gx = y * (gy - sum(gy * y)) and the input gradients PRE_BWD(x_1..x_n, gx).
"""
from __future__ import annotations

from typing import Optional, Sequence

import torch

from autobert_ext import _dispatch as D
from autobert_ext import _loader, backends
from autobert_ext import reference as R
from autobert_ext.program import Program

_OP = "autobert.fused_softmax"
_IDENTITY = Program(1, (), (0,))        # x -> x
_IDENTITY_BWD = Program(2, (), (1,))    # (x, g) -> g


def forward(backend: str, pre: Program, post: Program, inputs: Sequence[torch.Tensor],
            mask: Optional[torch.Tensor]) -> torch.Tensor:
    """post(softmax(pre(inputs))) over the last axis of same-shape inputs (B, ..., C); mask (B, C)
    bool excludes padded columns (no autograd)."""
    if backend == "eager":
        return R.fused_softmax(pre, post, inputs, mask)
    if backend == "triton":
        return _triton_forward(pre, post, inputs, mask)
    return _loader.kernel("fused_softmax")(list(inputs), mask, *D.encoded(pre), *D.encoded(post))


def backward(backend: str, pre: Program, pre_bwd: Program, post_bwd: Program, inputs: Sequence[torch.Tensor],
             y: Optional[torch.Tensor], g: torch.Tensor, mask: Optional[torch.Tensor]) -> list[torch.Tensor]:
    """Input gradients from the output gradient ``g``; ``y`` is the softmax rows (before POST) when
    known, else None (the C++ and CUDA kernels always recompute them from the inputs)."""
    if backend == "eager":
        return R.fused_softmax_backward(pre, pre_bwd, post_bwd, inputs, y, g, mask)
    if backend == "triton":
        if y is None:
            y = _triton_forward(pre, _IDENTITY, inputs, mask)
        return _triton_backward(pre, pre_bwd, post_bwd, inputs, y, g, mask)
    kernel = _loader.kernel("fused_softmax_backward")
    return list(kernel(list(inputs), mask, g, *D.encoded(pre), *D.encoded(post_bwd), *D.encoded(pre_bwd)))


def _triton_launch(pre, pre_bwd, post, post_bwd, inputs, mask, backward: bool):
    """(module, contiguous inputs, row-launch arguments) of the Triton kernels."""
    from autobert_ext.triton.config import default_row_config, dtype_name, next_pow2
    from autobert_ext.triton.softmax_source import module_for
    flat = [x.contiguous() for x in inputs]
    mod = module_for(pre, pre_bwd, post, post_bwd, len(flat), dtype_name(flat[0].dtype), default_row_config(),
                     backward=backward)
    like, n = flat[0], flat[0].shape[-1]
    rows = like.numel() // n if n else 0
    rows_per_b = max(1, rows // like.shape[0]) if like.shape[0] else 1
    km = like if mask is None else mask.to(torch.uint8).contiguous()  # (B, C) bytes; unread without a mask
    strides = (0, 0) if mask is None else km.stride()
    meta = dict(HAS_MASK=mask is not None, BLOCK_N=min(next_pow2(n, 16), mod.META["MAX_BLOCK"]),
                num_warps=mod.META["num_warps"])
    return mod, flat, rows, (n, rows_per_b, *strides), km, meta


def _triton_forward(pre, post, inputs, mask) -> torch.Tensor:
    mod, flat, rows, dims, km, meta = _triton_launch(pre, None, post, None, inputs, mask, backward=False)
    out = torch.empty_like(flat[0])
    if rows > 0:
        mod.softmax_fwd[(rows,)](*flat, out, out, km, *dims, STORE_Y=False, SINGLE=dims[0] <= meta["BLOCK_N"],
                                 **meta)
    return out


def _triton_backward(pre, pre_bwd, post_bwd, inputs, y, g, mask) -> list[torch.Tensor]:
    mod, flat, rows, dims, km, meta = _triton_launch(pre, pre_bwd, None, post_bwd, inputs, mask, backward=True)
    dxs = [torch.empty_like(flat[0]) for _ in flat]
    if rows > 0:
        mod.softmax_bwd[(rows,)](*flat, y.contiguous(), g.contiguous(), km, *dxs, *dims, **meta)
    return dxs


def _check(inputs, mask, pre_i, pre_f, post_i, post_f) -> tuple[Program, Program]:
    n = len(inputs)
    if n == 0:
        raise ValueError(f"{_OP}: expected at least one input tensor, got none")
    pre = D.decoded(_OP, "pre", pre_i, pre_f, n, 1)
    post = D.decoded(_OP, "post", post_i, post_f, 1, 1)
    D.check_floating(_OP, [(f"inputs[{i}]", t) for i, t in enumerate(inputs)], same_shape=True)
    x0 = inputs[0]
    if x0.dim() < 2:
        raise RuntimeError(f"{_OP}: inputs must have shape (..., R, C), got rank {x0.dim()}")
    if mask is not None:
        if x0.dim() < 3:
            raise RuntimeError(f"{_OP}: key_padding_mask needs inputs of rank >= 3 (B, ..., R, C), got rank {x0.dim()}")
        D.check_mask(_OP, mask, (x0.shape[0], x0.shape[-1]), x0)
    return pre, post


@torch.library.custom_op("autobert::fused_softmax", mutates_args=())
def _fused_softmax_op(inputs: list[torch.Tensor], mask: Optional[torch.Tensor], pre_ints: list[int],
                      pre_floats: list[float], pre_bwd_ints: list[int], pre_bwd_floats: list[float],
                      post_ints: list[int], post_floats: list[float], post_bwd_ints: list[int],
                      post_bwd_floats: list[float]) -> torch.Tensor:
    pre, post = _check(inputs, mask, pre_ints, pre_floats, post_ints, post_floats)
    out = forward(backends.choose("softmax", inputs[0].device, inputs[0].dtype), pre, post, inputs, mask)
    return D.fresh([out], list(inputs) + [mask])[0]


@_fused_softmax_op.register_fake
def _fused_softmax_fake(inputs, mask, pre_ints, pre_floats, pre_bwd_ints, pre_bwd_floats, post_ints, post_floats,
                        post_bwd_ints, post_bwd_floats):
    _check(inputs, mask, pre_ints, pre_floats, post_ints, post_floats)
    return torch.empty_like(inputs[0], memory_format=torch.contiguous_format)


@torch.library.custom_op("autobert::fused_softmax_backward", mutates_args=())
def _fused_softmax_backward_op(inputs: list[torch.Tensor], mask: Optional[torch.Tensor], grad: torch.Tensor,
                               pre_ints: list[int], pre_floats: list[float], post_bwd_ints: list[int],
                               post_bwd_floats: list[float], pre_bwd_ints: list[int],
                               pre_bwd_floats: list[float]) -> list[torch.Tensor]:
    n = len(inputs)
    pre, _ = _check(inputs, mask, pre_ints, pre_floats, *D.encoded(_IDENTITY))
    post_bwd = D.decoded(_OP, "post_bwd", post_bwd_ints, post_bwd_floats, 2, 1)
    pre_bwd = D.decoded(_OP, "pre_bwd", pre_bwd_ints, pre_bwd_floats, n + 1, n)
    D.check_floating(_OP, [("inputs[0]", inputs[0]), ("grad", grad)], same_shape=True)
    backend = backends.choose("softmax", inputs[0].device, inputs[0].dtype)
    grads = backward(backend, pre, pre_bwd, post_bwd, inputs, None, grad, mask)
    return D.fresh(grads, list(inputs) + [mask, grad])


@_fused_softmax_backward_op.register_fake
def _fused_softmax_backward_fake(inputs, mask, grad, pre_ints, pre_floats, post_bwd_ints, post_bwd_floats,
                                 pre_bwd_ints, pre_bwd_floats):
    _check(inputs, mask, pre_ints, pre_floats, *D.encoded(_IDENTITY))
    return [torch.empty_like(inputs[0], memory_format=torch.contiguous_format) for _ in inputs]


def _setup_context(ctx, inputs, output):
    xs, mask, pre_i, pre_f, pre_bwd_i, pre_bwd_f, _post_i, _post_f, post_bwd_i, post_bwd_f = inputs
    ctx.save_for_backward(*xs, mask)
    ctx.programs = (list(pre_i), list(pre_f), list(post_bwd_i), list(post_bwd_f), list(pre_bwd_i), list(pre_bwd_f))
    ctx.empty = D.empty_list_slots(inputs)


def _backward(ctx, grad):
    pre_i, pre_f, post_bwd_i, post_bwd_f, pre_bwd_i, pre_bwd_f = ctx.programs
    if not pre_bwd_i or not post_bwd_i:
        missing = "pre_bwd" if not pre_bwd_i else "post_bwd"
        raise RuntimeError(f"{_OP}: this call is not differentiable ({missing}=None); "
                           "pass both derivative programs to differentiate it")
    *xs, mask = ctx.saved_tensors
    grads = _fused_softmax_backward_op(xs, mask, grad, pre_i, pre_f, post_bwd_i, post_bwd_f, pre_bwd_i, pre_bwd_f)
    return D.grads_for(ctx.empty, {0: grads})


_fused_softmax_op.register_autograd(_backward, setup_context=_setup_context)


def fused_softmax(pre: Optional[Program], pre_bwd: Optional[Program], post: Optional[Program],
                  post_bwd: Optional[Program], inputs: Sequence[torch.Tensor],
                  key_padding_mask: Optional[torch.Tensor] = None) -> torch.Tensor:
    """POST(softmax over the last axis of PRE(inputs)) in one fused pass per row.

    Args:
        pre: n inputs -> 1 output x; None = identity (then exactly one input).
        pre_bwd: (x_1..x_n, gx) -> n gradients; None with pre=None = identity, else not differentiable.
        post: y -> 1 output; None = identity.
        post_bwd: (y, g) -> gy; None with post=None = identity, else not differentiable.
        inputs: n floating tensors of one shape (..., R, C), dtype and device.
        key_padding_mask: optional (B, C) bool, True = real column, broadcast over the dims between
            B and C (inputs of rank >= 3); padded columns get probability 0, a row without any
            real column has y = 0 (so out = POST(0) there).
    Returns:
        (..., R, C) tensor in the inputs' dtype.
    """
    if pre is None:
        pre, pre_bwd = _IDENTITY, _IDENTITY_BWD
    if post is None:
        post, post_bwd = _IDENTITY, _IDENTITY_BWD
    return _fused_softmax_op(list(inputs), key_padding_mask, *D.encoded(pre), *D.encoded(pre_bwd),
                             *D.encoded(post), *D.encoded(post_bwd))
