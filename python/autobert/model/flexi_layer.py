"""``FlexiLayer``: a heterogeneous (FlexiBERT) layer with its own width, heads, operation and FFN stack.

A FlexiLayer sits in ``ArchConfig.layers`` beside attention-graph and conv layers. Its sizes
default to the architecture's: ``hidden``/``heads`` None mean ``ArchConfig.hidden``/``heads``, an
empty ``ffn`` means one inner layer of ``ArchConfig.ffn``. ``ArchConfig`` stores a size equal to
its own default as the default, so one architecture has one canonical value (and fingerprint).

The FFN stack is ``hidden -> ffn[0] -> ... -> ffn[-1] -> hidden`` with GELU after every inner
layer (1 to ``MAX_FFN_LAYERS`` inner layers). Where consecutive layers differ in width the
backbone inserts a linear projection (``autobert.model.width``).
"""
from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple, Optional

from autobert.model.operation import Operation

MAX_FFN_LAYERS = 3
_KEYS = {"type", "operation", "hidden", "heads", "ffn"}


def _size(value: Any, where: str) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{where} must be an int >= 1, got {value!r}")


@dataclasses.dataclass(frozen=True)
class FlexiLayer:
    """One FlexiBERT layer. ``operation`` may be given in its written form (``"dsc(9)"``)."""

    operation: Operation
    hidden: Optional[int] = None     # layer width; None = ArchConfig.hidden
    heads: Optional[int] = None      # heads of the operation; None = ArchConfig.heads
    ffn: tuple[int, ...] = ()        # inner widths of the FFN stack, bottom to top; () = (ArchConfig.ffn,)

    def __post_init__(self):
        object.__setattr__(self, "operation", Operation.parse(self.operation, "FlexiLayer.operation"))
        for name in ("hidden", "heads"):
            if getattr(self, name) is not None:
                _size(getattr(self, name), f"FlexiLayer.{name}")
        if isinstance(self.ffn, (str, bytes)) or not hasattr(self.ffn, "__iter__"):
            raise ValueError(f"FlexiLayer.ffn must be a sequence of widths, got {self.ffn!r}")
        ffn = tuple(self.ffn)
        if len(ffn) > MAX_FFN_LAYERS:
            raise ValueError(f"FlexiLayer.ffn holds at most {MAX_FFN_LAYERS} inner layers, got {len(ffn)}")
        for i, width in enumerate(ffn):
            _size(width, f"FlexiLayer.ffn[{i}]")
        object.__setattr__(self, "ffn", ffn)
        if self.hidden is not None and self.heads is not None and self.hidden % self.heads:
            raise ValueError(f"FlexiLayer.hidden ({self.hidden}) must be divisible by FlexiLayer.heads ({self.heads})")

    def replace(self, **changes) -> "FlexiLayer":
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        doc: dict = {"type": "flexi", "operation": str(self.operation)}
        for name in ("hidden", "heads"):
            if getattr(self, name) is not None:
                doc[name] = getattr(self, name)
        if self.ffn:
            doc["ffn"] = list(self.ffn)
        return doc

    @classmethod
    def from_dict(cls, doc: dict, where: str = "layer") -> "FlexiLayer":
        """Inverse of ``to_dict``; ValueError naming ``where`` and the field."""
        extra = set(doc) - _KEYS
        if extra:
            raise ValueError(f"{where}: unknown keys {sorted(extra)}; expected {sorted(_KEYS)}")
        if "operation" not in doc:
            raise ValueError(f"{where}: a flexi layer needs 'operation'")
        ffn = doc.get("ffn", [])
        if not isinstance(ffn, list):
            raise ValueError(f"{where}.ffn must be a JSON list of widths, got {type(ffn).__name__}")
        try:
            return cls(doc["operation"], doc.get("hidden"), doc.get("heads"), tuple(ffn))
        except ValueError as e:
            raise ValueError(f"{where}: {e}") from None

    def describe(self) -> str:
        sizes = [f"{k}={getattr(self, k)}" for k in ("hidden", "heads") if getattr(self, k) is not None]
        if self.ffn:
            sizes.append("ffn=" + "x".join(map(str, self.ffn)))
        return " ".join([str(self.operation), *sizes])


class LayerSizes(NamedTuple):
    """The sizes one layer is built with (its own or the architecture's defaults)."""

    hidden: int
    heads: int
    ffn: tuple[int, ...]

    @property
    def head_dim(self) -> int:
        return self.hidden // self.heads


def layer_sizes(config, layer) -> LayerSizes:
    """Width, heads and FFN stack of ``layer`` inside ``config`` (an ArchConfig)."""
    if not isinstance(layer, FlexiLayer):
        return LayerSizes(config.hidden, config.heads, (config.ffn,))
    return LayerSizes(config.hidden if layer.hidden is None else layer.hidden,
                      config.heads if layer.heads is None else layer.heads,
                      layer.ffn or (config.ffn,))


def canonical_layer(config, layer: FlexiLayer, where: str) -> FlexiLayer:
    """``layer`` with sizes equal to ``config``'s defaults stored as defaults; checks hidden % heads."""
    sizes = layer_sizes(config, layer)
    if sizes.hidden % sizes.heads:
        raise ValueError(f"{where}: width {sizes.hidden} must be divisible by its heads ({sizes.heads})")
    return layer.replace(hidden=None if layer.hidden == config.hidden else layer.hidden,
                         heads=None if layer.heads == config.heads else layer.heads,
                         ffn=() if layer.ffn == (config.ffn,) else layer.ffn)
