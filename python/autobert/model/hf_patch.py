"""Drop-in graph attention for Hugging Face BERT / RoBERTa models.

``patch_attention(model, graph)`` swaps every ``BertSelfAttention`` / ``RobertaSelfAttention``
(eager or SDPA flavour) in a module tree — ``BertModel``, ``BertForSequenceClassification``,
a sentence-transformers encoder, ... — for a ``GraphSelfAttention`` that reuses the pretrained
query/key/value ``nn.Linear`` modules and computes the per-head attention with
``autobert.fusion.fused_attention``. State-dict names are unchanged, so a patched model still
saves and loads. ``handle.revert()`` puts the original module objects back.

Written against transformers 4.57 (self-attention returns ``(context, attention_probs | None)``
and receives the mask as keyword ``attention_mask``). Not supported, and refused: relative
position embeddings, decoders (causal masks, caches, cross-attention) and head masks. Attention
dropout is not applied (a graph has no attention-probability tensor); inference is unaffected.
"""
from __future__ import annotations

import logging
from typing import Optional, Union

import torch
from torch import nn

from autobert.fusion import fused_attention
from autobert.graph import Graph
from autobert.model.config import as_graph
from autobert.model.hf_masks import MaskCache

log = logging.getLogger(__name__)


def _target_classes() -> tuple[type, ...]:
    """The Hugging Face self-attention classes that can be patched (their SDPA subclasses included)."""
    try:
        from transformers.models.bert.modeling_bert import BertSelfAttention
        from transformers.models.roberta.modeling_roberta import RobertaSelfAttention
    except ImportError as e:  # transformers is optional for autobert as a whole
        raise ImportError("patch_attention needs the `transformers` package (pip install transformers)") from e
    return (BertSelfAttention, RobertaSelfAttention)


class GraphSelfAttention(nn.Module):
    """Replaces one HF self-attention: hidden_states (B, N, hidden) -> ((B, N, hidden), None).

    ``query``/``key``/``value`` are the original module's ``nn.Linear`` objects (same parameters).
    """

    def __init__(self, original: nn.Module, graph: Graph, masks: MaskCache):
        super().__init__()
        self.query, self.key, self.value = original.query, original.key, original.value
        self.num_attention_heads = original.num_attention_heads
        self.attention_head_size = original.attention_head_size
        self.all_head_size = original.all_head_size
        self.graph = graph
        self.__dict__["_masks"] = masks  # shared with the other layers; not a submodule
        self.train(original.training)

    def _heads(self, proj: nn.Linear, x: torch.Tensor) -> torch.Tensor:
        b, n, _ = x.shape
        return proj(x).view(b, n, self.num_attention_heads, self.attention_head_size).transpose(1, 2)  # (B, H, N, d)

    def forward(self, hidden_states: torch.Tensor, attention_mask: Optional[torch.Tensor] = None,
                head_mask: Optional[torch.Tensor] = None, *args, **kwargs):
        unsupported = [k for k in ("encoder_hidden_states", "past_key_values", "past_key_value")
                       if kwargs.get(k) is not None]
        if head_mask is not None or unsupported or any(a is not None and a is not False for a in args):
            raise NotImplementedError("graph attention patch supports plain self-attention only "
                                      f"(no head_mask, cross-attention or cache); got {unsupported or 'head_mask'}")
        b, n, _ = hidden_states.shape
        used = self.graph.inputs_used
        heads = {name: self._heads(proj, hidden_states)
                 for name, proj in (("Q", self.query), ("K", self.key), ("V", self.value)) if name in used}
        stand_in = next(iter(heads.values()))  # inputs the graph never reads are never looked at
        q, k, v = (heads.get(name, stand_in) for name in ("Q", "K", "V"))
        mask = self._masks(attention_mask, b, n)
        out = fused_attention(self.graph, q, k, v, mask)  # (B, H, N, d)
        return out.transpose(1, 2).reshape(b, n, self.all_head_size), None  # (B, N, hidden)

    def extra_repr(self) -> str:
        return f"heads={self.num_attention_heads}, graph={self.graph.to_expr()!r}"


class AttentionPatch:
    """What ``patch_attention`` changed; ``revert()`` (or leaving a ``with`` block) undoes it."""

    def __init__(self, model: nn.Module, graph: Graph, replaced: list[tuple[nn.Module, str, nn.Module, nn.Module]]):
        self.model, self.graph = model, graph
        self._replaced = replaced  # (parent, attribute, original, patched)

    @property
    def num_patched(self) -> int:
        return len(self._replaced)

    @property
    def active(self) -> bool:
        return bool(self._replaced)

    def revert(self) -> None:
        """Put every original module object back; a second call does nothing."""
        for parent, name, original, patched in self._replaced:
            if getattr(parent, name) is not patched:
                raise RuntimeError(f"{type(parent).__name__}.{name} was replaced after patching; not reverting it")
        for parent, name, original, _ in self._replaced:
            setattr(parent, name, original)
        log.info("reverted graph attention on %d modules", len(self._replaced))
        self._replaced = []

    def __enter__(self) -> "AttentionPatch":
        return self

    def __exit__(self, *exc) -> None:
        self.revert()


def _check_patchable(name: str, module: nn.Module) -> None:
    if getattr(module, "position_embedding_type", "absolute") != "absolute":
        raise ValueError(f"{name}: position_embedding_type {module.position_embedding_type!r} adds relative "
                         "position scores that an attention graph cannot express; only 'absolute' is supported")
    if getattr(module, "is_decoder", False):
        raise ValueError(f"{name}: decoder self-attention (causal masks, caches) is not supported")


def patch_attention(model: nn.Module, graph: Union[str, Graph] = "standard") -> AttentionPatch:
    """Replace the self-attention of every BERT/RoBERTa layer in ``model`` with graph attention.

    Args:
        model: any module tree containing ``BertSelfAttention`` / ``RobertaSelfAttention`` modules.
        graph: a Graph, a library name ("standard", "abz_softplus_key", ...) or an expression.
    Returns:
        an ``AttentionPatch``; ``revert()`` restores the original modules.
    Raises ValueError when nothing can be patched, the model is already patched, or a layer uses
    relative positions or is a decoder.
    """
    graph = as_graph(graph, "graph")
    targets = _target_classes()
    found = [(parent, child_name, child, f"{parent_name}.{child_name}".lstrip("."))
             for parent_name, parent in model.named_modules()
             for child_name, child in parent.named_children() if isinstance(child, targets)]
    if any(isinstance(m, GraphSelfAttention) for m in model.modules()):
        raise ValueError("model is already patched with graph attention; revert the first patch before patching again")
    if not found:
        raise ValueError(f"no BertSelfAttention/RobertaSelfAttention module found in {type(model).__name__}")
    for *_, child, name in found:
        _check_patchable(name, child)
    masks = MaskCache()
    replaced = []
    for parent, attr, original, _ in found:
        patched = GraphSelfAttention(original, graph, masks)
        setattr(parent, attr, patched)
        replaced.append((parent, attr, original, patched))
    log.info("patched %d self-attention modules with graph %s", len(replaced), graph.to_expr())
    if model.training and any(getattr(getattr(o, "dropout", None), "p", 0.0) > 0 for _, _, o, _ in replaced):
        log.warning("model is in training mode: patched graph attention applies no attention-probability dropout")
    return AttentionPatch(model, graph, replaced)
