"""Argument plumbing shared by the fused-kernel custom ops: program encoding caches, checks of
tensors and masks, and the custom-op rules for fresh results and list arguments. Which backend
runs an op is ``autobert_ext.backends``' decision.
"""
from __future__ import annotations

import struct
from typing import Optional, Sequence

import torch

from autobert_ext.program import Program, decode, encode


# Programs are re-encoded / re-decoded on every call otherwise (tens of microseconds, as much as
# a small kernel). Keys compare floats bit for bit: -0.0 and 0.0 are different immediates.
_ENCODED: dict[int, tuple[Program, list[int], list[float]]] = {}
_DECODED: dict[tuple, Program] = {}
_CACHE_SIZE = 4096


def encoded(program: Optional[Program]) -> tuple[list[int], list[float]]:
    """Program -> (ints, floats) for an op schema; None -> ([], []) (meaning: not given)."""
    if program is None:
        return [], []
    if not isinstance(program, Program):
        raise TypeError(f"expected an autobert_ext.Program or None, got {type(program).__name__}")
    hit = _ENCODED.get(id(program))
    if hit is None or hit[0] is not program:  # the entry holds the program, so its id stays unique
        if len(_ENCODED) >= _CACHE_SIZE:
            _ENCODED.clear()
        hit = (program, *encode(program))
        _ENCODED[id(program)] = hit
    return list(hit[1]), list(hit[2])


def decoded(op: str, what: str, ints: Sequence[int], floats: Sequence[float], n_inputs: int,
            n_outputs: Optional[int]) -> Program:
    """Decodes and checks the arity of a program argument (n_outputs None: any number of outputs);
    ValueError naming the op and slot."""
    key = (tuple(ints), struct.pack(f"{len(floats)}d", *floats))
    p = _DECODED.get(key)
    if p is None:
        try:
            p = decode(list(ints), list(floats))
        except ValueError as e:
            raise ValueError(f"{op}: malformed {what} program: {e}") from None
        if len(_DECODED) >= _CACHE_SIZE:
            _DECODED.clear()
        _DECODED[key] = p
    if p.n_inputs != n_inputs or (n_outputs is not None and len(p.outputs) != n_outputs):
        want = "any number of" if n_outputs is None else str(n_outputs)
        raise ValueError(f"{op}: the {what} program must take {n_inputs} inputs and give {want} outputs, "
                         f"got {p.n_inputs} inputs and {len(p.outputs)} outputs")
    return p


class InputError(ValueError, RuntimeError):
    """A bad tensor argument: a ValueError to Python callers, the RuntimeError of a C++ TORCH_CHECK
    to callers of the dispatcher ops (the same check fails the same way on every path)."""


def check_floating(op: str, tensors: Sequence[tuple[str, torch.Tensor]], same_shape: bool = False) -> None:
    """All tensors floating, of one dtype and on one device, and with ``same_shape`` of one shape
    (InputError naming the first offender)."""
    name0, t0 = tensors[0]
    for name, t in tensors:
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{op}: {name} must be a Tensor, got {type(t).__name__}")
        if same_shape and t.shape != t0.shape:
            raise InputError(f"{op}: {name} has shape {tuple(t.shape)}, expected the same shape as {name0} "
                               f"{tuple(t0.shape)}")
        if not t.is_floating_point():
            raise InputError(f"{op}: {name} must be a floating tensor, got {t.dtype}")
        if t.dtype != t0.dtype:
            raise InputError(f"{op}: {name} has dtype {t.dtype}, expected the dtype of {name0} ({t0.dtype})")
        if t.device != t0.device:
            raise InputError(f"{op}: {name} is on {t.device}, expected the device of {name0} ({t0.device})")


def check_mask(op: str, mask: Optional[torch.Tensor], shape: tuple[int, int], like: torch.Tensor) -> None:
    """key_padding_mask must be a (B, N) bool tensor on the data's device."""
    if mask is None:
        return
    if not isinstance(mask, torch.Tensor) or mask.dtype != torch.bool:
        got = mask.dtype if isinstance(mask, torch.Tensor) else type(mask).__name__
        raise InputError(f"{op}: key_padding_mask must be a bool tensor (True = real token), got {got}")
    if tuple(mask.shape) != tuple(shape):
        raise InputError(f"{op}: key_padding_mask must have shape (B, N) = {tuple(shape)}, got {tuple(mask.shape)}")
    if mask.device != like.device:
        raise InputError(f"{op}: key_padding_mask is on {mask.device}, expected {like.device}")


def fresh(results: Sequence[torch.Tensor], inputs: Sequence[Optional[torch.Tensor]]) -> list[torch.Tensor]:
    """Contiguous results, copied where one aliases an input or another result (custom ops may not
    return aliases)."""
    seen = {x.untyped_storage().data_ptr() for x in inputs if x is not None and x.numel()}
    out = []
    for t in results:
        t = t.contiguous()
        if t.numel() and t.untyped_storage().data_ptr() in seen:
            t = t.clone()
        if t.numel():
            seen.add(t.untyped_storage().data_ptr())
        out.append(t)
    return out


def empty_list_slots(inputs: Sequence) -> tuple[bool, ...]:
    """For setup_context of an op with a Tensor[] argument: which arguments are empty lists."""
    return tuple(isinstance(a, (list, tuple)) and len(a) == 0 for a in inputs)


def grads_for(empty: tuple[bool, ...], grads: dict[int, object]) -> tuple:
    """The backward's return value for an op with a Tensor[] argument: grads[i] for argument i, None
    for the others, except [] for an empty-list argument (torch.library then flattens lists that
    could hold tensors, and compares pytree structures: there [] is not a leaf)."""
    return tuple(grads.get(i, [] if e else None) for i, e in enumerate(empty))
