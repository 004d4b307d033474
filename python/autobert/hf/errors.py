"""``AttentionNotSupported``: what a graph cannot express, named with the model and the reason."""
from __future__ import annotations

from torch import nn


class AttentionNotSupported(ValueError):
    """A model (or one call of it) asks for attention that an attention graph cannot compute."""

    def __init__(self, where: str, reason: str):
        self.where, self.reason = where, reason
        super().__init__(f"{where}: {reason}; attn_implementation='autobert' computes bidirectional "
                         "self-attention with key padding only (use 'eager' or 'sdpa' for this model)")


def describe_module(module: nn.Module) -> str:
    """E.g. ``"BertModel (model type 'bert'), BertSelfAttention of layer 3"`` for an attention module."""
    config = getattr(module, "config", None)
    names = getattr(config, "architectures", None) or []
    model = names[0] if names else type(config).__name__.replace("Config", "Model") if config is not None else "model"
    model_type = getattr(config, "model_type", None)
    layer = getattr(module, "layer_idx", None)
    return (f"{model}" + (f" (model type {model_type!r})" if model_type else "") + f", {type(module).__name__}"
            + (f" of layer {layer}" if layer is not None else ""))
