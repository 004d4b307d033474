"""``use_graph_attention``: switch a transformers model to ``attn_implementation="autobert"`` with
chosen graphs, and get a handle that switches it back.

    model = AutoModel.from_pretrained(path)                     # any supported encoder, sdpa by default
    with use_graph_attention(model, "abz_sqrt_softplus_key"):   # or a Graph, an expression, one per layer
        out = model(**batch)
    # here the model runs its previous implementation again, bit for bit

``AutoModel.from_pretrained(path, attn_implementation="autobert")`` alone runs the standard graph.
"""
from __future__ import annotations

import logging
from typing import Optional, Sequence, Union

from torch import nn
from transformers import PreTrainedModel
from transformers.utils.output_capturing import OutputRecorder

from autobert.graph import Graph
from autobert.hf.attention import GRAPH_ATTRIBUTE
from autobert.hf.errors import AttentionNotSupported
from autobert.hf.registration import ATTN_IMPLEMENTATION, register_attention
from autobert.model.config import as_graph

log = logging.getLogger(__name__)

GraphChoice = Union[str, Graph]
_UNSET = object()


class AttentionHandle:
    """What ``use_graph_attention`` changed; ``restore()`` (or leaving a ``with`` block) undoes it."""

    def __init__(self, model: PreTrainedModel, previous: Optional[str], saved: list[tuple[nn.Module, object]]):
        self.model, self.previous = model, previous
        self._saved = saved  # (attention module, its previous graph attribute or _UNSET)

    @property
    def active(self) -> bool:
        return self._saved is not None

    def restore(self) -> None:
        """The previous attention implementation and graphs; a second call does nothing."""
        if self._saved is None:
            return
        self.model.set_attn_implementation(self.previous)
        for module, graph in self._saved:
            if graph is _UNSET:
                module.__dict__.pop(GRAPH_ATTRIBUTE, None)
            else:
                setattr(module, GRAPH_ATTRIBUTE, graph)
        self._saved = None
        log.info("%s: attention implementation %r restored", type(self.model).__name__, self.previous)

    def __enter__(self) -> "AttentionHandle":
        return self

    def __exit__(self, *exc) -> None:
        self.restore()


def use_graph_attention(model: PreTrainedModel,
                        graph: Union[GraphChoice, Sequence[GraphChoice]] = "standard") -> AttentionHandle:
    """Run every self-attention of ``model`` through the fused kernels with ``graph``.

    Args:
        model: a transformers model whose attention goes through ``ALL_ATTENTION_FUNCTIONS``
            (BERT, RoBERTa, XLM-RoBERTa, CamemBERT, ELECTRA, DistilBERT, ALBERT, ModernBERT, ...).
        graph: a Graph, library name or expression for every layer, or a sequence with one per
            self-attention module (bottom to top).
    Raises AttentionNotSupported (a ValueError) naming the model when its configuration asks for
    what a graph cannot express; ValueError for a bad graph or a wrong number of graphs.
    """
    if not isinstance(model, PreTrainedModel):
        raise TypeError(f"use_graph_attention needs a transformers PreTrainedModel, got {type(model).__name__}")
    _check_config(model)
    modules = self_attention_modules(model)
    graphs = _graphs_per_module(graph, len(modules), type(model).__name__)
    register_attention()  # idempotent; the model may come from a transformers imported before autobert
    previous = model.config._attn_implementation
    model.set_attn_implementation(ATTN_IMPLEMENTATION)
    saved = [(m, m.__dict__.get(GRAPH_ATTRIBUTE, _UNSET)) for m in modules]
    for m, g in zip(modules, graphs):
        setattr(m, GRAPH_ATTRIBUTE, g)
    log.info("%s: %d self-attention modules use graph attention (%s)", type(model).__name__, len(modules),
             ", ".join(sorted({g.to_expr() for g in graphs})))
    return AttentionHandle(model, previous, saved)


def self_attention_modules(model: PreTrainedModel) -> list[nn.Module]:
    """The modules that call the attention function, bottom to top (the model's recorded "attentions")."""
    spec = (getattr(model, "_can_record_outputs", None) or {}).get("attentions")
    specs = spec if isinstance(spec, (list, tuple)) else [spec] if spec is not None else []
    found = [m for m in model.modules() if any(_matches(m, s) for s in specs)]
    if not found:
        raise ValueError(f"{type(model).__name__}: found no self-attention modules (the model declares none in "
                         "_can_record_outputs['attentions']); use_graph_attention supports transformers' encoders")
    return found


def _matches(module: nn.Module, spec) -> bool:
    if isinstance(spec, OutputRecorder):
        return (spec.target_class is not None and isinstance(module, spec.target_class)) or \
            (spec.class_name is not None and type(module).__name__.endswith(spec.class_name))
    if isinstance(spec, str):
        return type(module).__name__ == spec
    return isinstance(spec, type) and isinstance(module, spec)


def _graphs_per_module(graph, n: int, model_name: str) -> list[Graph]:
    if isinstance(graph, (str, Graph)):
        return [as_graph(graph, "graph")] * n
    graphs = [as_graph(g, f"graph[{i}]") for i, g in enumerate(graph)]
    if len(graphs) != n:
        raise ValueError(f"{model_name} has {n} self-attention modules; got {len(graphs)} graphs")
    return graphs


def _check_config(model: PreTrainedModel) -> None:
    """Refuse up front what the configuration already tells (each call checks again)."""
    from autobert.hf.modeling import AutoBertPreTrainedModel

    config, where = model.config, f"{type(model).__name__} (model type {model.config.model_type!r})"
    if isinstance(model, AutoBertPreTrainedModel):
        raise ValueError(f"{where} runs the graphs of its own architecture: use "
                         "model.set_attn_implementation('autobert') (fused) or ('eager') instead")
    if getattr(config, "add_cross_attention", False):
        raise AttentionNotSupported(where, "cross-attention (config.add_cross_attention)")
    if getattr(config, "is_decoder", False):
        raise AttentionNotSupported(where, "causal (decoder) attention (config.is_decoder)")
    position = getattr(config, "position_embedding_type", None)
    if position not in (None, "absolute"):
        raise AttentionNotSupported(where, f"relative position scores (position_embedding_type={position!r})")
    layer_types = getattr(config, "layer_types", None)
    if any(t != "full_attention" for t in layer_types or ()):
        raise AttentionNotSupported(where, "sliding-window or other local layers "
                                           f"(layer_types {sorted(set(layer_types))})")
    if layer_types is None and getattr(config, "sliding_window", None):
        raise AttentionNotSupported(where, f"sliding-window attention (sliding_window={config.sliding_window})")
    if getattr(config, "output_attentions", False):
        raise AttentionNotSupported(where, "returning attention probabilities (config.output_attentions)")
