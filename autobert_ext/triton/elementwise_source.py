"""Triton source of the elementwise program kernel: one generated module per (program, dtype, tile).

``elementwise(X0.., Y0.., numel, BLOCK)`` evaluates the program on BLOCK elements of flattened
same-shape inputs in float32 and stores every output in the outputs' dtype.
"""
from __future__ import annotations

import dataclasses

from autobert_ext.program import Program, encode
from autobert_ext.triton.cache import get_module
from autobert_ext.triton.codegen import indent, program_lines, used_inputs
from autobert_ext.triton.config import RowConfig

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
