"""The elementwise program family: one fused pass of an op program over same-shaped tensors.

Launchers (``run``): ``cpp`` / ``cuda`` (the ``_C`` interpreters), ``triton`` (a generated kernel
per program, ``triton.elementwise_source``) and ``eager`` (``reference.elementwise``); which one
runs is ``autobert_ext.backends``' decision. The plan executor calls ``run`` directly.

The custom op ``autobert::elementwise(inputs, fwd, bwd)`` computes the m outputs of the forward
program from the n inputs; its autograd runs the same op with the backward program, whose inputs
are (x_1..x_n, g_1..g_m) and whose n outputs are dx_1..dx_n. Programs travel as ``int[]`` +
``float[]`` (``program.encode``).
"""
from __future__ import annotations

from typing import Optional, Sequence

import torch

from autobert_ext import _dispatch as D
from autobert_ext import _loader, backends
from autobert_ext import reference as R
from autobert_ext.program import Program

_OP = "autobert.elementwise"


def run(backend: str, program: Program, inputs: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """One pass of ``program`` over same-shape inputs -> its outputs (new tensors; no autograd)."""
    if backend == "eager" or not inputs:
        return R.elementwise(program, inputs)
    if backend == "triton":
        return _triton(program, inputs)
    return list(_loader.kernel("elementwise")(list(inputs), *D.encoded(program)))


def _triton(program: Program, inputs: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    from autobert_ext.triton.config import cdiv, default_row_config, dtype_name
    from autobert_ext.triton.elementwise_source import module_for
    mod = module_for(program, dtype_name(inputs[0].dtype), default_row_config())
    flat = [x.contiguous() for x in inputs]
    outs = [torch.empty(flat[0].shape, dtype=flat[0].dtype, device=flat[0].device) for _ in program.outputs]
    numel, block = flat[0].numel(), mod.META["BLOCK"]
    if numel and outs:
        mod.elementwise[(cdiv(numel, block),)](*flat, *outs, numel, BLOCK=block, num_warps=mod.META["num_warps"])
    return outs


def _check(inputs: Sequence[torch.Tensor], fwd_ints, fwd_floats, bwd_ints, bwd_floats) -> Program:
    """Validates the call; returns the forward program."""
    if len(inputs) == 0:
        raise ValueError(f"{_OP}: expected at least one input tensor, got none")
    fwd = D.decoded(_OP, "forward", fwd_ints, fwd_floats, len(inputs), None)
    if not fwd.outputs:
        raise ValueError(f"{_OP}: the forward program has no outputs")
    if bwd_ints:
        D.decoded(_OP, "backward", bwd_ints, bwd_floats, len(inputs) + len(fwd.outputs), len(inputs))
    D.check_floating(_OP, [(f"inputs[{i}]", t) for i, t in enumerate(inputs)], same_shape=True)
    return fwd


@torch.library.custom_op("autobert::elementwise", mutates_args=())
def _elementwise_op(inputs: list[torch.Tensor], fwd_ints: list[int], fwd_floats: list[float], bwd_ints: list[int],
                    bwd_floats: list[float]) -> list[torch.Tensor]:
    fwd = _check(inputs, fwd_ints, fwd_floats, bwd_ints, bwd_floats)
    backend = backends.choose("elementwise", inputs[0].device, inputs[0].dtype)
    return D.fresh(run(backend, fwd, inputs), inputs)


@_elementwise_op.register_fake
def _elementwise_fake(inputs, fwd_ints, fwd_floats, bwd_ints, bwd_floats):
    fwd = _check(inputs, fwd_ints, fwd_floats, bwd_ints, bwd_floats)
    return [torch.empty_like(inputs[0], memory_format=torch.contiguous_format) for _ in fwd.outputs]


def _setup_context(ctx, inputs, output):
    xs, _fi, _ff, bwd_ints, bwd_floats = inputs
    ctx.save_for_backward(*xs)
    ctx.bwd = (list(bwd_ints), list(bwd_floats))
    ctx.empty = D.empty_list_slots(inputs)


def _backward(ctx, grads):
    bwd_ints, bwd_floats = ctx.bwd
    if not bwd_ints:
        raise RuntimeError(f"{_OP}: this call is not differentiable (it was made with bwd=None); "
                           "pass a backward program to differentiate it")
    xs = list(ctx.saved_tensors)
    gs = [torch.zeros_like(xs[0]) if g is None else g for g in grads]
    dxs = _elementwise_op(xs + gs, bwd_ints, bwd_floats, [], [])
    return D.grads_for(ctx.empty, {0: dxs})


_elementwise_op.register_autograd(_backward, setup_context=_setup_context)


def elementwise(fwd: Program, bwd: Optional[Program], inputs: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """Runs ``fwd`` elementwise over ``inputs`` in one fused pass.

    Args:
        fwd: program with n inputs and m >= 1 outputs.
        bwd: its derivative program, inputs (x_1..x_n, g_1..g_m) -> n outputs (dx_1..dx_n);
            None makes the call non-differentiable (backward raises).
        inputs: n floating tensors of one shape, dtype and device (any strides).
    Returns:
        m new tensors of that shape and dtype.
    """
    return _elementwise_op(list(inputs), *D.encoded(fwd), *D.encoded(bwd))
