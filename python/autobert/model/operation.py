"""``Operation``: the token mixer of a FlexiBERT layer, as a small immutable value.

FlexiBERT (Tuli et al. 2022) gives each layer one of three operation families:

- self-attention ``sdp`` (scaled dot product) or ``wma`` (weighted multiplicative: a learned
  per-head d x d matrix between queries and keys);
- linear transform ``dft`` or ``dct`` (parameter-free 2-D Fourier / cosine transform of each
  head's (N, d) block);
- ``dsc`` dynamic span-based convolution with an odd span ``kernel`` (ConvBERT's span-based
  dynamic convolution).

Written form (JSON and ``str``): ``"sdp"``, ``"wma"``, ``"dft"``, ``"dct"``, ``"dsc(9)"``.
"""
from __future__ import annotations

import dataclasses
import re
from typing import Any, Optional

OPERATION_KINDS = ("sdp", "wma", "dft", "dct", "dsc")
FAMILIES = {"sdp": "SA", "wma": "SA", "dft": "LT", "dct": "LT", "dsc": "DSC"}
_WRITTEN = re.compile(r"^\s*([a-z]+)\s*(?:\(\s*(\d+)\s*\))?\s*$")


@dataclasses.dataclass(frozen=True)
class Operation:
    """One FlexiBERT operation; ``kernel`` (odd, >= 1) is given for ``dsc`` and only for it."""

    kind: str
    kernel: Optional[int] = None

    def __post_init__(self):
        if self.kind not in OPERATION_KINDS:
            raise ValueError(f"Operation.kind must be one of {OPERATION_KINDS}, got {self.kind!r}")
        k = self.kernel
        if self.kind == "dsc":
            if not isinstance(k, int) or isinstance(k, bool) or k < 1 or k % 2 == 0:
                raise ValueError(f"Operation 'dsc' needs an odd int kernel >= 1 (centred span), got {k!r}")
        elif k is not None:
            raise ValueError(f"Operation {self.kind!r} takes no kernel, got {k!r}")

    @property
    def family(self) -> str:
        """FlexiBERT's operation type: "SA", "LT" or "DSC"."""
        return FAMILIES[self.kind]

    def __str__(self) -> str:
        return f"dsc({self.kernel})" if self.kind == "dsc" else self.kind

    @classmethod
    def parse(cls, value: Any, where: str = "operation") -> "Operation":
        """An Operation from an Operation or its written form; ValueError naming ``where``."""
        if isinstance(value, Operation):
            return value
        match = _WRITTEN.match(value) if isinstance(value, str) else None
        if match is None:
            raise ValueError(f"{where}: expected an operation such as 'sdp', 'wma', 'dft', 'dct' or 'dsc(9)', "
                             f"got {value!r}")
        kind, kernel = match.group(1), match.group(2)
        try:
            return cls(kind, None if kernel is None else int(kernel))
        except ValueError as e:
            raise ValueError(f"{where}: {e}") from None
