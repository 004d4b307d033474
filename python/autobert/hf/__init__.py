"""autobert inside the Hugging Face ecosystem (transformers >= 5, sentence-transformers >= 6).

- ``attn_implementation="autobert"``: every self-attention of a BERT-family model through the
  fused graph kernels (the standard graph by default; ``use_graph_attention`` picks any graph,
  per model or per layer, and returns a handle that restores the previous implementation).
- ``AutoBertConfig`` and the ``AutoBertModel`` / ``AutoBertForMaskedLM`` /
  ``AutoBertForSequenceClassification`` classes: autobert architectures as transformers models,
  registered with ``AutoConfig`` / ``AutoModel*`` / ``AutoTokenizer`` when ``autobert`` is
  imported, so a model folder written by ``autobert pretrain`` loads with ``AutoModel.from_pretrained``.

The names below are imported on first use: transformers loads only when they are used.
"""
from __future__ import annotations

import importlib

from autobert.hf.registration import ATTN_IMPLEMENTATION, register, require_transformers

_LAZY = {
    "AutoBertConfig": "autobert.hf.config",
    "AutoBertPreTrainedModel": "autobert.hf.modeling",
    "AutoBertModel": "autobert.hf.modeling",
    "AutoBertForMaskedLM": "autobert.hf.modeling",
    "AutoBertForSequenceClassification": "autobert.hf.modeling",
    "graph_attention_forward": "autobert.hf.attention",
    "AttentionNotSupported": "autobert.hf.attention",
    "key_padding_mask_interface": "autobert.hf.masks",
    "use_graph_attention": "autobert.hf.selection",
    "AttentionHandle": "autobert.hf.selection",
}

__all__ = ["ATTN_IMPLEMENTATION", "register", "require_transformers"] + list(_LAZY)


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f"module 'autobert.hf' has no attribute {name!r}")
    require_transformers()
    return getattr(importlib.import_module(_LAZY[name]), name)
