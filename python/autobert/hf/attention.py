"""``graph_attention_forward``: the ``"autobert"`` attention implementation of transformers >= 5.

transformers' encoders (BERT, RoBERTa, XLM-RoBERTa, CamemBERT, ELECTRA, DistilBERT, ALBERT,
ModernBERT) call ``ALL_ATTENTION_FUNCTIONS[config._attn_implementation](module, q, k, v, mask,
...)`` from every self-attention module; registered under ``"autobert"``, this function computes
the per-head attention with ``autobert.fusion.fused_attention`` and the module's attention graph
(``use_graph_attention`` sets it; the standard graph otherwise). What a graph cannot express is
refused with ``AttentionNotSupported`` naming the model: causal/decoder and cross-attention,
packed (varlen) inputs, sliding windows, position biases, soft-capping and attention sinks, and
returning attention probabilities (a fused graph never forms them). Attention-probability dropout
has no place in a graph either: in training it is left out, with one warning.
"""
from __future__ import annotations

import logging
import math
from typing import Optional

import torch
from torch import nn

from autobert.fusion import fused_attention
from autobert.graph import Graph, library
from autobert.hf.errors import AttentionNotSupported, describe_module
from autobert.hf.masks import to_key_padding

log = logging.getLogger(__name__)

GRAPH_ATTRIBUTE = "autobert_graph"  # set on an attention module by use_graph_attention
STANDARD = library["standard"]

# keyword -> why a graph cannot honour it when it is set (not None / not False)
_REFUSED_KWARGS = {
    "cu_seq_lens_q": "packed (varlen) inputs (cu_seq_lens_q)",
    "cu_seq_lens_k": "packed (varlen) inputs (cu_seq_lens_k)",
    "sliding_window": "sliding-window attention",
    "position_bias": "an additive position bias",
    "softcap": "soft-capped attention scores",
    "s_aux": "attention sinks",
    "output_attentions": "returning attention probabilities (output_attentions)",
}
_warned_dropout = False


def graph_of(module: nn.Module) -> Graph:
    """The graph ``module`` computes under the "autobert" implementation."""
    return getattr(module, GRAPH_ATTRIBUTE, None) or STANDARD


def graph_attention_forward(module: nn.Module, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                            attention_mask: Optional[torch.Tensor], dropout: float = 0.0,
                            scaling: Optional[float] = None, is_causal: Optional[bool] = None,
                            **kwargs) -> tuple[torch.Tensor, None]:
    """query (B, H, N, d), key/value (B, H_kv, N, d) with H % H_kv == 0, attention_mask as made by
    ``key_padding_mask_interface`` (or any key-padding-only HF mask) -> ((B, N, H, d), None)."""
    _check_call(module, query, key, value, scaling, is_causal, kwargs)
    if key.shape[1] != query.shape[1]:  # grouped-query attention: each K/V head serves H / H_kv query heads
        repeats = query.shape[1] // key.shape[1]
        key, value = key.repeat_interleave(repeats, dim=1), value.repeat_interleave(repeats, dim=1)
    if dropout and module.training:
        _warn_dropout(module, dropout)
    b, _, n, _ = query.shape
    mask = to_key_padding(attention_mask, b, n, module)
    out = fused_attention(graph_of(module), query, key, value, mask)  # (B, H, N, d)
    return out.transpose(1, 2).contiguous(), None  # (B, N, H, d), as transformers' implementations return


def _check_call(module, query, key, value, scaling, is_causal, kwargs) -> None:
    if key.shape[-2] != query.shape[-2] or "CrossAttention" in type(module).__name__ \
            or getattr(module, "is_cross_attention", False):
        raise AttentionNotSupported(describe_module(module), "cross-attention (keys and values from another sequence)")
    causal = getattr(module, "is_causal", False) if is_causal is None else is_causal
    if causal or getattr(getattr(module, "config", None), "is_decoder", False):
        raise AttentionNotSupported(describe_module(module), "causal (decoder) attention")
    for name, reason in _REFUSED_KWARGS.items():
        given = kwargs.get(name)
        if given is not None and given is not False:
            raise AttentionNotSupported(describe_module(module), reason)
    if getattr(getattr(module, "config", None), "output_attentions", False):
        raise AttentionNotSupported(describe_module(module), _REFUSED_KWARGS["output_attentions"])
    d = query.shape[-1]
    if value.shape[-1] != d or query.shape[1] % key.shape[1]:
        shapes = ", ".join(str(tuple(t.shape)) for t in (query, key, value))
        raise AttentionNotSupported(describe_module(module), f"query/key/value of shapes {shapes} "
                                                             "(a graph needs one (N, d) for all three)")
    if scaling is not None and not math.isclose(scaling * math.sqrt(d), 1.0, rel_tol=1e-6):
        raise AttentionNotSupported(describe_module(module), f"scores scaled by {scaling:g}; the graphs' scale "
                                                             f"op divides by sqrt(d) = {math.sqrt(d):g}")


def _warn_dropout(module: nn.Module, p: float) -> None:
    global _warned_dropout
    if not _warned_dropout:
        _warned_dropout = True
        log.warning("%s: attention-probability dropout (p=%g) is not applied by attn_implementation='autobert' "
                    "(a fused graph forms no probability tensor); hidden-state dropout is unchanged",
                    describe_module(module), p)
