"""``elementwise``: one fused pass of an op program over same-shaped tensors, as a custom op.

``autobert::elementwise(inputs, fwd, bwd)`` computes the m outputs of the forward program from
the n inputs in one pass, on the backend ``autobert_ext.backends`` chooses (C++ on CPU, CUDA or
Triton on GPU, eager ``run_program`` otherwise). Its
autograd runs the same op with the backward program, whose inputs are (x_1..x_n, g_1..g_m) and
whose n outputs are dx_1..dx_n. Programs travel as ``int[]`` + ``float[]`` (``program.encode``).
"""
from __future__ import annotations

from typing import Optional, Sequence

import torch

from autobert_ext import _dispatch as D
from autobert_ext import backends
from autobert_ext import kernels as K
from autobert_ext.program import Program, run_program
from autobert_ext.reference import compute_dtype

_OP = "autobert.elementwise"


def _check(inputs: Sequence[torch.Tensor], fwd_ints, fwd_floats, bwd_ints, bwd_floats) -> Program:
    """Validates the call; returns the forward program."""
    if len(inputs) == 0:
        raise ValueError(f"{_OP}: expected at least one input tensor, got none")
    fwd = D.decoded(_OP, "forward", fwd_ints, fwd_floats, len(inputs), None)
    if not fwd.outputs:
        raise ValueError(f"{_OP}: the forward program has no outputs")
    if bwd_ints:
        D.decoded(_OP, "backward", bwd_ints, bwd_floats, len(inputs) + len(fwd.outputs), len(inputs))
    D.check_floating(_OP, [(f"inputs[{i}]", t) for i, t in enumerate(inputs)])
    for i, t in enumerate(inputs):
        if t.shape != inputs[0].shape:
            raise RuntimeError(f"{_OP}: inputs[{i}] has shape {tuple(t.shape)}, expected the shape of inputs[0] "
                               f"{tuple(inputs[0].shape)}")
    return fwd


def eager_elementwise(program: Program, inputs: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """Reference: run_program in the kernels' compute dtype, cast back to the input dtype."""
    dtype = inputs[0].dtype
    ct = compute_dtype(dtype)
    outs = run_program(program, [x.to(ct) for x in inputs])
    return [o.to(dtype).contiguous() for o in outs]


@torch.library.custom_op("autobert::elementwise", mutates_args=())
def _elementwise_op(inputs: list[torch.Tensor], fwd_ints: list[int], fwd_floats: list[float], bwd_ints: list[int],
                    bwd_floats: list[float]) -> list[torch.Tensor]:
    fwd = _check(inputs, fwd_ints, fwd_floats, bwd_ints, bwd_floats)
    backend = backends.choose("elementwise", inputs[0].device, inputs[0].dtype)
    outs = eager_elementwise(fwd, inputs) if backend == "eager" else K.elementwise(backend, fwd, inputs)
    return D.fresh(outs, inputs)


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
    fi, ff = D.encoded(fwd)
    bi, bf = D.encoded(bwd)
    return _elementwise_op(list(inputs), fi, ff, bi, bf)
