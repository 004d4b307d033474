"""The models and inputs of the hf_e2e suite (test_hf_e2e.py) and its paired check (paired_hf_e2e.py).

Built from configs with random weights (nothing downloaded), eval mode:
  bert-base  transformers BertModel, 12 layers x 768, 12 heads, FFN 3072
  minilm     transformers BertModel at all-MiniLM-L6 sizes: 6 layers x 384, 12 heads, FFN 1536
  abz-base   autobert.hf.AutoBertModel of autobert_zero_base(): BERT-base sizes, 4 LightConv layers and
             8 AutoBERT-Zero attention graphs (a searched-style hybrid)
Implementations: the BERT models take transformers' "eager" and "sdpa" and autobert's "autobert"
(standard graph, fused); abz-base takes "autobert" (fused kernels) and "eager" (the same graphs
through autobert.graph.eager, op by op), and for the paired check "no-attention": every graph
replaced by a free function (out = V), the time of everything but attention. One model per
(name, dtype): switching implementations keeps the weights.
"""
from __future__ import annotations

import functools

import torch
from transformers import BertConfig, BertModel

from autobert.hf import AutoBertConfig, AutoBertModel
from autobert.model import GraphAttention, autobert_zero_base

BERT_SIZES = {
    "bert-base": dict(),
    "minilm": dict(hidden_size=384, num_hidden_layers=6, num_attention_heads=12, intermediate_size=1536),
}
MODELS = (*BERT_SIZES, "abz-base")
IMPLEMENTATIONS = {"bert-base": ("eager", "sdpa", "autobert"), "minilm": ("eager", "sdpa", "autobert"),
                   "abz-base": ("eager", "autobert")}
BASELINE = {"bert-base": "sdpa", "minilm": "sdpa", "abz-base": "eager"}


@functools.lru_cache(maxsize=None)
def model(name: str, dtype: torch.dtype) -> torch.nn.Module:
    torch.manual_seed(0)
    if name == "abz-base":
        m = AutoBertModel(AutoBertConfig(architecture=autobert_zero_base()))
    else:
        m = BertModel(BertConfig(**BERT_SIZES[name]), add_pooling_layer=False)
    return m.to(dtype).eval()


def use(name: str, dtype: torch.dtype, implementation: str) -> torch.nn.Module:
    m = model(name, dtype)
    m.set_attn_implementation("eager" if implementation == "no-attention" else implementation)
    if implementation == "no-attention":  # an AutoBERT model's floor: attention costs nothing
        for module in m.modules():
            if isinstance(module, GraphAttention):
                module.attend = _no_attention
    return m


def _no_attention(graph, q, k, v, key_padding_mask):
    return v


def inputs(batch: int, n: int):
    """input_ids (B, N) and attention_mask (B, N) with a quarter of the batch padded by N/8 tokens."""
    g = torch.Generator().manual_seed(n)
    ids = torch.randint(1000, 30000, (batch, n), generator=g)
    mask = torch.ones(batch, n, dtype=torch.long)
    mask[: batch // 4, n - n // 8:] = 0
    return ids, mask


def forward(m: torch.nn.Module, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return m(input_ids=ids, attention_mask=mask).last_hidden_state
