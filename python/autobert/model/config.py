"""``ArchConfig``: a hybrid backbone as a small immutable, validated, serialisable value.

A backbone is embeddings followed by ``layers``; each layer is either an ``AttentionLayer``
(an attention graph over the per-head Q, K, V) or a ``ConvLayer`` (LightConv-style convolution
with an odd kernel), and each is followed by residual + LayerNorm and a GELU FFN + residual +
LayerNorm (post-LN, like BERT). A ``FlexiLayer`` (FlexiBERT) carries its own width, heads, operation
and FFN stack; ``embedding_size`` sets an embedding width other than ``hidden`` (ELECTRA-small style),
with projections where widths change. Every invalid value raises ``ValueError`` naming the field.

JSON format versions: 1 holds attention-graph and conv layers at one width; 2 adds flexi layers and
``embedding_size``. A document is written with the lowest version that can hold it, so today's
version-1 architectures keep their JSON and fingerprints.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
from typing import Any, Optional, Union

from autobert.graph import Graph, GraphError, library, parse
from autobert.model.flexi_layer import FlexiLayer, canonical_layer

ARCH_FORMAT = "autobert.arch"
ARCH_VERSION = 2           # the newest version written and read
_UNIFORM_VERSION = 1       # architectures without flexi layers or embedding_size


def as_graph(value: Any, where: str) -> Graph:
    """A Graph from a Graph, a library name or an expression; ValueError naming ``where``."""
    if isinstance(value, Graph):
        return value
    if isinstance(value, str):
        if value in library:
            return library[value]
        try:
            return parse(value)
        except GraphError as e:
            raise ValueError(f"{where}: {value!r} is neither a library graph nor a valid expression: {e}") from None
    raise ValueError(f"{where}: expected a Graph, a library name or an expression, got {type(value).__name__}")


@dataclasses.dataclass(frozen=True)
class AttentionLayer:
    """An attention layer computing ``graph`` per head; ``graph`` may be given as a library name or expression."""

    graph: Graph

    def __post_init__(self):
        object.__setattr__(self, "graph", as_graph(self.graph, "AttentionLayer.graph"))

    def to_dict(self) -> dict:
        # The expression is for people reading the file; the graph JSON is what is read back.
        return {"type": "attention", "graph": self.graph.to_dict(), "expr": self.graph.to_expr()}

    def __repr__(self) -> str:
        return f"AttentionLayer({self.graph.to_expr()!r})"


@dataclasses.dataclass(frozen=True)
class ConvLayer:
    """A LightConv-style layer with an odd depthwise ``kernel`` size (>= 1)."""

    kernel: int

    def __post_init__(self):
        k = self.kernel
        if not isinstance(k, int) or isinstance(k, bool) or k < 1 or k % 2 == 0:
            raise ValueError(f"ConvLayer.kernel must be an odd int >= 1 (centred, same-length output), got {k!r}")

    def to_dict(self) -> dict:
        return {"type": "conv", "kernel": self.kernel}


LayerChoice = Union[AttentionLayer, ConvLayer, FlexiLayer]
LAYER_TYPES = (AttentionLayer, ConvLayer, FlexiLayer)


def layer_from_dict(doc: Any, where: str = "layer") -> LayerChoice:
    """Inverse of ``AttentionLayer.to_dict`` / ``ConvLayer.to_dict`` / ``FlexiLayer.to_dict``; ValueError naming
    ``where``."""
    if not isinstance(doc, dict):
        raise ValueError(f"{where}: expected an object with a 'type', got {type(doc).__name__}")
    kind = doc.get("type")
    if kind == "conv":
        _no_extra_keys(doc, {"type", "kernel"}, where)
        return ConvLayer(doc.get("kernel"))
    if kind == "flexi":
        return FlexiLayer.from_dict(doc, where)
    if kind != "attention":
        raise ValueError(f"{where}: 'type' must be 'attention', 'conv' or 'flexi', got {kind!r}")
    _no_extra_keys(doc, {"type", "graph", "expr"}, where)
    if "graph" in doc:
        try:
            graph = Graph.from_json(doc["graph"])
        except GraphError as e:
            raise ValueError(f"{where}.graph: {e}") from None
        if "expr" in doc and as_graph(doc["expr"], f"{where}.expr") != graph:
            raise ValueError(f"{where}: 'expr' {doc['expr']!r} does not match 'graph' ({graph.to_expr()})")
        return AttentionLayer(graph)
    if "expr" in doc:
        return AttentionLayer(as_graph(doc["expr"], f"{where}.expr"))
    raise ValueError(f"{where}: an attention layer needs 'graph' (graph JSON) or 'expr'")


def _no_extra_keys(doc: dict, allowed: set, where: str) -> None:
    extra = set(doc) - allowed
    if extra:
        raise ValueError(f"{where}: unknown keys {sorted(extra)}; expected {sorted(allowed)}")


def _check_int(name: str, value: Any, minimum: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ValueError(f"ArchConfig.{name} must be an int >= {minimum}, got {value!r}")


def _check_float(name: str, value: Any, lo: float, hi: float, hi_open: bool) -> None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and lo <= value
    ok = ok and (value < hi if hi_open else value <= hi)
    if not ok:
        raise ValueError(f"ArchConfig.{name} must be a number in [{lo}, {hi}{')' if hi_open else ']'}, got {value!r}")


_FIELDS = ("vocab_size", "hidden", "heads", "ffn", "max_positions", "type_vocab_size", "dropout",
           "layer_norm_eps", "layers")
_OPTIONAL = ("embedding_size",)  # written only when set (version 2)


@dataclasses.dataclass(frozen=True)
class ArchConfig:
    """A hybrid BERT backbone. ``layers`` may be given as any sequence; it is stored as a tuple."""

    layers: tuple[LayerChoice, ...]  # one choice per layer, bottom to top
    vocab_size: int = 30522          # word-piece vocabulary (bert-base-uncased)
    hidden: int = 768                # model width; heads * head_dim
    heads: int = 12                  # attention heads; also LightConv weight-sharing groups
    ffn: int = 3072                  # FFN inner width
    max_positions: int = 512         # learned absolute positions: the longest input
    type_vocab_size: int = 2         # segment (token type) embeddings
    dropout: float = 0.1             # hidden dropout after embeddings, mixers and FFNs
    layer_norm_eps: float = 1e-12    # BERT's LayerNorm epsilon
    embedding_size: Optional[int] = None  # embedding width; None = hidden (stored as None when equal)

    def __post_init__(self):
        for name, minimum in (("vocab_size", 1), ("hidden", 1), ("heads", 1), ("ffn", 1), ("max_positions", 1),
                              ("type_vocab_size", 1)):
            _check_int(name, getattr(self, name), minimum)
        if self.hidden % self.heads:
            raise ValueError(f"ArchConfig.hidden ({self.hidden}) must be divisible by ArchConfig.heads ({self.heads})")
        _check_float("dropout", self.dropout, 0.0, 1.0, hi_open=True)
        _check_float("layer_norm_eps", self.layer_norm_eps, 0.0, 1.0, hi_open=False)
        if self.layer_norm_eps <= 0:
            raise ValueError(f"ArchConfig.layer_norm_eps must be > 0, got {self.layer_norm_eps!r}")
        if isinstance(self.layers, (str, bytes)) or not hasattr(self.layers, "__iter__"):
            raise ValueError(f"ArchConfig.layers must be a sequence of AttentionLayer/ConvLayer, got {self.layers!r}")
        layers = tuple(self.layers)
        if not layers:
            raise ValueError("ArchConfig.layers must hold at least one layer")
        for i, layer in enumerate(layers):
            if not isinstance(layer, LAYER_TYPES):
                raise ValueError(f"ArchConfig.layers[{i}] must be an AttentionLayer, ConvLayer or FlexiLayer, "
                                 f"got {type(layer).__name__}")
        layers = tuple(canonical_layer(self, layer, f"ArchConfig.layers[{i}]") if isinstance(layer, FlexiLayer)
                       else layer for i, layer in enumerate(layers))
        object.__setattr__(self, "layers", layers)
        if self.embedding_size is not None:
            _check_int("embedding_size", self.embedding_size, 1)
            if self.embedding_size == self.hidden:
                object.__setattr__(self, "embedding_size", None)

    @property
    def head_dim(self) -> int:
        return self.hidden // self.heads

    @property
    def n_layers(self) -> int:
        return len(self.layers)

    @property
    def embedding_width(self) -> int:
        """Width of the word/position/type embeddings (and of the tied MLM decoder)."""
        return self.hidden if self.embedding_size is None else self.embedding_size

    @property
    def version(self) -> int:
        """The lowest JSON format version that holds this architecture."""
        uniform = self.embedding_size is None and not any(isinstance(la, FlexiLayer) for la in self.layers)
        return _UNIFORM_VERSION if uniform else ARCH_VERSION

    def replace(self, **changes) -> "ArchConfig":
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)

    # ---- serialisation ----
    def to_dict(self) -> dict:
        doc: dict = {"format": ARCH_FORMAT, "version": self.version}
        for name in _FIELDS[:-1]:
            doc[name] = getattr(self, name)
        for name in _OPTIONAL:
            if getattr(self, name) is not None:
                doc[name] = getattr(self, name)
        doc["layers"] = [layer.to_dict() for layer in self.layers]
        return doc

    @classmethod
    def from_dict(cls, doc: Any) -> "ArchConfig":
        """Inverse of ``to_dict``; ValueError naming the field on anything invalid."""
        if not isinstance(doc, dict):
            raise ValueError(f"architecture must be a JSON object, got {type(doc).__name__}")
        if doc.get("format", ARCH_FORMAT) != ARCH_FORMAT:
            raise ValueError(f"architecture 'format' is {doc.get('format')!r}; expected {ARCH_FORMAT!r}")
        if doc.get("version", ARCH_VERSION) not in (_UNIFORM_VERSION, ARCH_VERSION):
            raise ValueError(f"architecture 'version' is {doc.get('version')!r}; this autobert reads "
                             f"{_UNIFORM_VERSION} and {ARCH_VERSION}")
        _no_extra_keys(doc, set(_FIELDS) | set(_OPTIONAL) | {"format", "version"}, "architecture")
        layers = doc.get("layers")
        if not isinstance(layers, list):
            raise ValueError(f"ArchConfig.layers must be a JSON list, got {type(layers).__name__}")
        kwargs = {k: doc[k] for k in _FIELDS[:-1] + _OPTIONAL if k in doc}
        return cls(layers=tuple(layer_from_dict(d, f"layers[{i}]") for i, d in enumerate(layers)), **kwargs)

    def to_json(self, indent: "int | None" = None) -> str:
        """Canonical JSON (sorted keys; compact unless ``indent``)."""
        seps = (",", ":") if indent is None else (",", ": ")
        return json.dumps(self.to_dict(), sort_keys=True, separators=seps, indent=indent)

    @classmethod
    def from_json(cls, text: "str | bytes") -> "ArchConfig":
        try:
            doc = json.loads(text)
        except (ValueError, RecursionError) as e:
            raise ValueError(f"architecture JSON does not parse: {e}") from None
        return cls.from_dict(doc)

    def fingerprint(self) -> str:
        """16 hex digits of sha256 over the canonical JSON (equal architectures, equal fingerprints)."""
        return hashlib.sha256(self.to_json().encode()).hexdigest()[:16]

    def functional_fingerprint(self) -> str:
        """16 hex digits, equal for architectures that compute the same function: the canonical JSON
        with each attention graph replaced by its functional fingerprint (``Graph.functional_fingerprint``)."""
        doc = self.to_dict()
        doc["layers"] = [{"type": "attention", "function": lay.graph.functional_fingerprint()}
                         if isinstance(lay, AttentionLayer) else d for lay, d in zip(self.layers, doc["layers"])]
        return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:16]

    # ---- cost ----
    def num_parameters(self, head: "str | None" = None, num_labels: int = 2) -> int:
        """Parameter count of the backbone (head None), or with head "mlm" / "classification"."""
        from autobert.model.cost import count_parameters
        return count_parameters(self, head=head, num_labels=num_labels)

    def flops(self, n: int) -> int:
        """Forward FLOPs of the backbone for one sequence of ``n`` tokens."""
        from autobert.model.cost import count_flops
        return count_flops(self, n)

    def describe(self) -> str:
        """One line per layer, e.g. ``3: conv k=7`` or ``1: dsc(9) hidden=256 ffn=512x512``."""
        rows = [f"{i}: " + (f"conv k={lay.kernel}" if isinstance(lay, ConvLayer)
                            else lay.describe() if isinstance(lay, FlexiLayer) else lay.graph.to_expr())
                for i, lay in enumerate(self.layers)]
        return "\n".join(rows)
