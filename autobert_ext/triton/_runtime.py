"""Checks shared by the Triton entry points: triton present, device usable, dtypes, masks.

Nothing here imports triton or touches CUDA at import time; ``require_triton`` imports it on
the first kernel call.
"""
from __future__ import annotations

from typing import Optional, Sequence

import torch

from autobert_ext.program import Program
from autobert_ext.triton.config import interpreting

DTYPES = {torch.float32: "float32", torch.float16: "float16", torch.bfloat16: "bfloat16"}


def require_triton():
    """The triton module, or a RuntimeError saying how to get it."""
    try:
        import triton
    except ImportError as e:
        raise RuntimeError("autobert_ext.triton needs the `triton` package (pip install triton); "
                           "use another backend (AUTOBERT_BACKEND=cuda|cpp|eager) without it") from e
    return triton


def check_tensors(where: str, tensors: Sequence[torch.Tensor]) -> str:
    """Validate device and dtype of the kernel operands; returns the dtype name.

    All on one CUDA device, or all on the CPU with the Triton interpreter (TRITON_INTERPRET=1
    set before the first kernel was defined). One floating dtype among float32/float16/bfloat16.
    """
    if not tensors:
        raise ValueError(f"{where}: needs at least one input tensor")
    devices = {t.device for t in tensors}
    if len(devices) != 1:
        raise ValueError(f"{where}: inputs are on several devices: {sorted(map(str, devices))}")
    device = next(iter(devices))
    if device.type == "cpu":
        if not interpreting():
            raise RuntimeError(f"{where}: CPU tensors need the Triton interpreter "
                               "(set TRITON_INTERPRET=1 before importing triton kernels); "
                               "move the tensors to a CUDA device for the compiled kernels")
    elif device.type != "cuda":
        raise RuntimeError(f"{where}: Triton kernels run on CUDA devices, got {device}")
    dtypes = {t.dtype for t in tensors}
    if len(dtypes) != 1:
        raise ValueError(f"{where}: inputs have different dtypes {sorted(map(str, dtypes))}")
    dtype = next(iter(dtypes))
    if dtype not in DTYPES:
        raise ValueError(f"{where}: dtype {dtype} is not supported; use float32, float16 or bfloat16")
    return DTYPES[dtype]


def check_program(where: str, program, n_inputs: int, n_outputs: int, what: str) -> Program:
    if not isinstance(program, Program):
        raise TypeError(f"{where}: {what} must be an autobert_ext.program.Program, got {type(program).__name__}")
    if program.n_inputs != n_inputs or len(program.outputs) != n_outputs:
        raise ValueError(f"{where}: {what} must map {n_inputs} input(s) to {n_outputs} output(s), "
                         f"got {program.n_inputs} -> {len(program.outputs)}")
    return program


def key_mask_u8(where: str, mask: Optional[torch.Tensor], batch: int, n: int,
                device: torch.device) -> Optional[torch.Tensor]:
    """(B, N) key mask (bool, or 0/1 integers as HF attention_mask) -> (B, N) uint8 on device.

    uint8 rather than bool: Triton loads it as a byte, compared != 0 in the kernel.
    """
    if mask is None:
        return None
    if mask.dim() != 2 or tuple(mask.shape) != (batch, n):
        raise ValueError(f"{where}: key_padding_mask must have shape (B, N) = ({batch}, {n}), "
                         f"got {tuple(mask.shape)}")
    if mask.device != device:
        raise ValueError(f"{where}: key_padding_mask is on {mask.device}, inputs on {device}")
    if mask.is_floating_point() or mask.is_complex():
        raise ValueError(f"{where}: key_padding_mask must be bool (True = real token), got {mask.dtype}")
    return (mask != 0).to(torch.uint8).contiguous()


def next_pow2(n: int, low: int = 1) -> int:
    return max(low, 1 << max(0, int(n) - 1).bit_length())
