"""The tolerance rule of DESIGN.md §5: error(kernel) <= 2 * error(eager, same dtype) + floor,
both measured against the float64 eager reference. The floor is 100 ulps of the kernel's dtype
relative to the reference's magnitude: where eager happens to round luckily (cancellation in a
derivative chain), a kernel that evaluates the same math in another order must not fail.

error(eager, same dtype) is what the dtype's rounding costs this graph on these inputs. One eager
run is one sample of it, and it can be a lucky one: an exactly saturated softmax makes eager's
backward cancel to exactly 0 (P = 1 and D = sum(P dP) = dP), so its error is 0 while the result
is a difference of terms ~1e4 times larger; a kernel that takes D from dO . O (flash-style) or sums
in another order cannot share that luck, and the floor, relative to the result, cannot cover terms
far larger than the result. So where the rule is applied to arbitrary (fuzzed) graphs,
error(eager, same dtype) is the larger of that run's error and the errors of a few Monte Carlo
arithmetic samples of eager (``rounding_samples``, made under ``random_rounding``): eager run in
float64 on the dtype-rounded inputs, with the result of every aten op -- forward and backward --
rounded to the dtype and then multiplied by (1 + u * delta), delta uniform in [-1, 1], u the
dtype's unit roundoff. A sample is eager's own computation with each operation rounded at random
within the dtype's precision, so its error measures the graph's conditioning (cancellation,
division by small values, saturated exponentials, the dtype's range) rather than the luck of one
operation order. Nothing else is loosened: the factor 2 and the floor stay.
"""
from __future__ import annotations

import math
from typing import Sequence

import torch

from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_map


def assert_close_to_reference(got: torch.Tensor, eager_same_dtype: torch.Tensor, ref64: torch.Tensor,
                              what: str = "", ulps: float = 100.0,
                              rounding_samples: Sequence[torch.Tensor] = ()) -> None:
    """``rounding_samples``: eager results under ``random_rounding`` for the same output (see the module)."""
    if ref64.numel() == 0:
        return
    ref = ref64.double()
    scale = 1.0 + ref.abs().max().item()
    floor = ulps * torch.finfo(got.dtype).eps * scale
    e_kernel = (got.double() - ref).abs().max().item()
    e_eager = (eager_same_dtype.double() - ref).abs().max().item()
    for x in rounding_samples:  # a sample that left the dtype's range says nothing about rounding
        e = (x.double() - ref).abs().max().item()
        e_eager = max(e_eager, e) if math.isfinite(e) else e_eager
    bound = 2 * e_eager + floor
    assert e_kernel <= bound, f"{what}: error {e_kernel:.3g} > 2 x eager error {e_eager:.3g} + floor {floor:.3g}"


class _RandomRounding(TorchDispatchMode):
    """Every floating result of an aten op -- forward and autograd backward alike -- is rounded to
    ``dtype`` (its range: underflow, overflow) and then moved by a random fraction of an ulp."""

    def __init__(self, dtype: torch.dtype, gen: torch.Generator):
        super().__init__()
        self.dtype, self.gen = dtype, gen
        self.unit = torch.finfo(dtype).eps / 2  # round to nearest: relative error at most half an ulp

    def _round(self, t):
        if not isinstance(t, torch.Tensor) or t.dtype != torch.float64:
            return t
        delta = torch.rand(t.shape, generator=self.gen, dtype=torch.float64) * 2 - 1
        return t.to(self.dtype).double() * (1 + self.unit * delta)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        if any(r.alias_info is not None for r in func._schema.returns):
            return out  # views and in-place ops: their storage is another tensor's, rounded already
        return tree_map(self._round, out)


def random_rounding(dtype: torch.dtype, seed: int) -> TorchDispatchMode:
    """A mode under which float64 eager (forward and backward) is one Monte Carlo arithmetic
    sample of the same computation in ``dtype`` (see the module); give it inputs rounded to
    ``dtype`` already, as the kernels get them."""
    return _RandomRounding(dtype, torch.Generator().manual_seed(seed))
