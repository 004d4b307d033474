"""``triton_elementwise``: one kernel per op program, n inputs -> m outputs, over flattened tensors.

Inputs are broadcast to one shape and flattened; each program instance evaluates the program
on BLOCK elements in float32 and stores every output in the inputs' dtype. Backward runs the
derivative program (inputs (x_1..x_n, g_1..g_m) -> (dx_1..dx_n)) through the same kernel
generator, then sums each gradient back to its input's shape.
"""
from __future__ import annotations

import dataclasses
from typing import Optional, Sequence

import torch
from torch.autograd.function import once_differentiable

from autobert_ext.program import Program, encode, run_program
from autobert_ext.triton import _runtime as rt
from autobert_ext.triton.cache import get_module
from autobert_ext.triton.codegen import indent, program_lines, used_inputs
from autobert_ext.triton.config import RowConfig, default_row_config

_WHERE = "triton_elementwise"

_TEMPLATE = '''\
import triton
import triton.language as tl

META = {meta}


@triton.jit
def elementwise({args}, numel, BLOCK: tl.constexpr):
    offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    inb = offs < numel
{loads}
{body}
{stores}
'''


def elementwise_source(program: Program, config: RowConfig) -> str:
    """Module text with ``elementwise(X0.., Y0.., numel, BLOCK)`` for ``program``."""
    n, m = program.n_inputs, len(program.outputs)
    xs = [f"x{i}" for i in range(n)]
    loads = [f"    x{i} = tl.load(X{i} + offs, mask=inb, other=0.0).to(tl.float32)" for i in used_inputs(program)]
    body, outs = program_lines(program, xs, "r", "[BLOCK]")
    stores = [f"    tl.store(Y{j} + offs, ({o}).to(Y{j}.dtype.element_ty), mask=inb)" for j, o in enumerate(outs)]
    args = ", ".join([f"X{i}" for i in range(n)] + [f"Y{j}" for j in range(m)])
    meta = dict(BLOCK=config.block, num_warps=config.num_warps)
    return _TEMPLATE.format(meta=meta, args=args, loads="\n".join(loads), body=indent(body, 4),
                            stores="\n".join(stores))


def module_for(program: Program, dtype_name: str, config: RowConfig):
    """The generated module (``elementwise``) of ``program`` for inputs of ``dtype_name``."""
    spec = {"program": encode(program), "dtype": dtype_name, "config": dataclasses.asdict(config)}
    return get_module("elementwise", spec, lambda: elementwise_source(program, config))


def run_elementwise(program: Program, inputs: Sequence[torch.Tensor], config: Optional[RowConfig] = None,
                    dtype_name: Optional[str] = None) -> list[torch.Tensor]:
    """Evaluate ``program`` on same-shape contiguous ``inputs`` (no autograd); m new tensors."""
    triton = rt.require_triton()
    mod = module_for(program, dtype_name or rt.DTYPES[inputs[0].dtype], config or default_row_config())
    like = inputs[0]
    outs = [torch.empty(like.shape, dtype=like.dtype, device=like.device) for _ in program.outputs]
    numel = like.numel()
    if numel == 0 or not outs:
        return outs
    meta = mod.META
    mod.elementwise[(triton.cdiv(numel, meta["BLOCK"]),)](*inputs, *outs, numel, BLOCK=meta["BLOCK"],
                                                          num_warps=meta["num_warps"])
    return outs


def _reduce_to(grad: torch.Tensor, shape: torch.Size) -> torch.Tensor:
    """Sum a broadcast gradient back to an input's shape."""
    return grad if grad.shape == shape else grad.sum_to_size(shape)


class _Elementwise(torch.autograd.Function):
    @staticmethod
    def forward(ctx, fwd, bwd, config, *inputs):
        shapes = [x.shape for x in inputs]
        flat = [x.contiguous() for x in torch.broadcast_tensors(*inputs)]
        outs = run_elementwise(fwd, flat, config)
        ctx.save_for_backward(*inputs)
        ctx.fwd, ctx.bwd, ctx.config, ctx.shapes = fwd, bwd, config, shapes
        return tuple(outs)

    @staticmethod
    @once_differentiable
    def backward(ctx, *grads):
        inputs = ctx.saved_tensors
        flat = [x.contiguous() for x in torch.broadcast_tensors(*inputs)]
        like = flat[0]
        gs = [g.contiguous() if g is not None else torch.zeros_like(like) for g in grads]
        if ctx.bwd is not None:
            dxs = run_elementwise(ctx.bwd, flat + gs, ctx.config)
        else:
            # No derivative program: differentiate the eager reference (slower, same values).
            with torch.enable_grad():
                xs = [x.detach().requires_grad_() for x in flat]
                ys = run_program(ctx.fwd, xs)
                dxs = torch.autograd.grad(ys, xs, gs, allow_unused=True)
            dxs = [torch.zeros_like(like) if d is None else d for d in dxs]
        return (None, None, None) + tuple(_reduce_to(d, s) for d, s in zip(dxs, ctx.shapes))


def triton_elementwise(fwd: Program, bwd: Optional[Program], inputs: Sequence[torch.Tensor], *,
                       config: Optional[RowConfig] = None) -> list[torch.Tensor]:
    """Apply op program ``fwd`` elementwise (differentiable).

    Args:
        fwd: n inputs -> m outputs.
        bwd: derivative program, inputs (x_1..x_n, g_1..g_m) -> (dx_1..dx_n) where g_j is the
            gradient of output j; None differentiates ``run_program(fwd)`` eagerly instead.
        inputs: n tensors of one dtype (float32/float16/bfloat16) and device, broadcastable.
        config: tile (default by device).

    Returns:
        m tensors of the broadcast shape, in the inputs' dtype (computed in float32).
    """
    inputs = list(inputs)
    rt.check_program(_WHERE, fwd, len(inputs), len(fwd.outputs), "fwd")
    if not inputs:
        raise ValueError(f"{_WHERE}: needs at least one input (the output shape comes from the inputs)")
    if bwd is not None:
        rt.check_program(_WHERE, bwd, len(inputs) + len(fwd.outputs), len(inputs), "bwd")
    rt.check_tensors(_WHERE, inputs)
    rt.require_triton()
    return list(_Elementwise.apply(fwd, bwd, config, *inputs))
