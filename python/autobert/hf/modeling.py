"""AutoBERT architectures as transformers models: ``AutoBertModel`` (hidden states),
``AutoBertForMaskedLM`` and ``AutoBertForSequenceClassification``.

They are built from the project's own modules (``autobert.model``: embeddings, blocks, the head
arithmetic of ``mlm_logits`` / ``classifier_logits``) under the project's parameter names, so a
model folder written by ``autobert.model.save_pretrained`` (``autobert pretrain``) loads with
``AutoModel*.from_pretrained`` and computes bit for bit what ``autobert.model.from_pretrained``
gives, and a folder these classes save loads with the project's loader. Weights are safetensors
only (``use_safetensors`` is forced, nothing is unpickled), and the project's tamper check runs
on loading (the sha256 of the tensors in the safetensors header) and is written on saving.

Attention: ``attn_implementation="autobert"`` (the default) runs every layer's graph through the
fused kernels; ``"eager"`` runs the same graphs through their readable PyTorch reference
(``autobert.graph.eager``). Other implementations cannot compute arbitrary graphs and are refused.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

import torch
from torch import nn
from transformers import PreTrainedModel
from transformers.modeling_outputs import BaseModelOutput, MaskedLMOutput, SequenceClassifierOutput

from autobert.fusion import fused_attention
from autobert.graph import eager
from autobert.hf.config import AutoBertConfig
from autobert.hf.registration import ATTN_IMPLEMENTATION
from autobert.model import Backbone, GraphAttention
from autobert.model.backbone import check_inputs, init_bert_weights, key_padding_mask
from autobert.model.heads import classification_loss, classifier_logits, mlm_logits, mlm_loss
from autobert.model.pretrained import WEIGHTS_NAME, verify_weights, write_weights

ATTENTION_FUNCTIONS = {ATTN_IMPLEMENTATION: fused_attention, "eager": eager}


class AutoBertPreTrainedModel(PreTrainedModel):
    """Weight initialisation, attention switching and checked safetensors I/O of the AutoBERT models."""

    config_class = AutoBertConfig
    config: AutoBertConfig
    base_model_prefix = "backbone"
    main_input_name = "input_ids"
    _no_split_modules = ["Block"]

    def _init_weights(self, module: nn.Module) -> None:
        init_bert_weights(module)  # transformers guards torch.nn.init: loaded weights are left alone
        if isinstance(module, AutoBertForMaskedLM):
            nn.init.zeros_(module.decoder_bias)

    def get_correct_attn_implementation(self, requested: Optional[str], is_init_check: bool = False) -> str:
        implementation = ATTN_IMPLEMENTATION if requested is None else requested
        if implementation not in ATTENTION_FUNCTIONS:
            raise ValueError(f"{type(self).__name__} computes attention graphs: attn_implementation must be "
                             f"{ATTN_IMPLEMENTATION!r} (fused kernels) or 'eager' (the graphs' PyTorch "
                             f"reference), got {requested!r}")
        return implementation

    def post_init(self) -> None:
        super().post_init()
        self._route_attention()

    def set_attn_implementation(self, attn_implementation, allow_all_kernels: bool = False) -> None:
        super().set_attn_implementation(attn_implementation, allow_all_kernels)
        self._route_attention()

    def _route_attention(self) -> None:
        """Point every GraphAttention at the function of the configured implementation."""
        attend = ATTENTION_FUNCTIONS[self.get_correct_attn_implementation(self.config._attn_implementation)]
        for module in self.modules():
            if isinstance(module, GraphAttention):
                module.attend = attend

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *args, **kwargs):
        """transformers' ``from_pretrained`` with safetensors forced and the project's tamper check."""
        if kwargs.setdefault("use_safetensors", True) is not True:
            raise ValueError(f"{cls.__name__}: weights load from safetensors only (use_safetensors=True)")
        weights = Path(pretrained_model_name_or_path) / WEIGHTS_NAME
        if weights.is_file():
            verify_weights(weights)  # CheckpointError when the tensors do not match the recorded sha256
        return super().from_pretrained(pretrained_model_name_or_path, *args, **kwargs)

    def save_pretrained(self, save_directory: "str | os.PathLike", *args, **kwargs) -> None:
        """transformers' ``save_pretrained``, then the tensors' sha256 into the safetensors header."""
        super().save_pretrained(save_directory, *args, **kwargs)
        weights = Path(save_directory) / WEIGHTS_NAME
        if weights.is_file():  # one file (a sharded save keeps transformers' index and no checksum)
            from safetensors.torch import load_file
            write_weights(load_file(str(weights)), weights)


class AutoBertModel(AutoBertPreTrainedModel):
    """input_ids (B, N) long, attention_mask (B, N) (1 = real) or None, token_type_ids (B, N) or None
    -> BaseModelOutput(last_hidden_state (B, N, hidden), hidden_states: embeddings + one per layer)."""

    def __init__(self, config: AutoBertConfig):
        super().__init__(config)
        self.arch = config.arch  # the architecture it is built from (an immutable value)
        backbone = Backbone(self.arch)  # the project's modules, under its parameter names
        self.embeddings, self.layers = backbone.embeddings, backbone.layers
        self.post_init()

    def get_input_embeddings(self) -> nn.Embedding:
        return self.embeddings.word

    def set_input_embeddings(self, value: nn.Embedding) -> None:
        self.embeddings.word = value

    def forward(self, input_ids: torch.Tensor, attention_mask: Optional[torch.Tensor] = None,
                token_type_ids: Optional[torch.Tensor] = None, output_hidden_states: Optional[bool] = None,
                return_dict: Optional[bool] = None):
        check_inputs(self.arch, input_ids, token_type_ids)
        mask = key_padding_mask(input_ids, attention_mask)
        keep = self.config.output_hidden_states if output_hidden_states is None else output_hidden_states
        x = self.embeddings(input_ids, token_type_ids)  # (B, N, hidden)
        states = [x]
        for layer in self.layers:  # the loop of Backbone.forward, keeping every layer's output
            x = layer(x, mask)
            states.append(x)
        out = BaseModelOutput(last_hidden_state=x, hidden_states=tuple(states) if keep else None)
        return out if _return_dict(self.config, return_dict) else out.to_tuple()


class _AutoBertWithHead(AutoBertPreTrainedModel):
    """An ``AutoBertModel`` under ``backbone`` and a task head; subclasses give ``head_output``."""

    def get_input_embeddings(self) -> nn.Embedding:
        return self.backbone.embeddings.word

    def forward(self, input_ids: torch.Tensor, attention_mask: Optional[torch.Tensor] = None,
                token_type_ids: Optional[torch.Tensor] = None, labels: Optional[torch.Tensor] = None,
                output_hidden_states: Optional[bool] = None, return_dict: Optional[bool] = None):
        base = self.backbone(input_ids, attention_mask, token_type_ids, output_hidden_states, return_dict=True)
        out = self.head_output(base, labels)
        return out if _return_dict(self.config, return_dict) else out.to_tuple()

    def head_output(self, base: BaseModelOutput, labels: Optional[torch.Tensor]):
        raise NotImplementedError


class AutoBertForMaskedLM(_AutoBertWithHead):
    """As ``autobert.model.ForMaskedLM`` (decoder tied to the word embeddings): labels (B, N) long,
    -100 = ignored -> MaskedLMOutput(loss, logits (B, N, vocab), hidden_states)."""

    def __init__(self, config: AutoBertConfig):
        super().__init__(config)
        config.head = {"type": "masked_lm"}
        arch = config.arch
        self.backbone = AutoBertModel(config)
        self.transform = nn.Linear(arch.hidden, arch.hidden)
        self.transform_norm = nn.LayerNorm(arch.hidden, eps=arch.layer_norm_eps)
        self.decoder_bias = nn.Parameter(torch.zeros(arch.vocab_size))
        self.post_init()

    def head_output(self, base: BaseModelOutput, labels: Optional[torch.Tensor]) -> MaskedLMOutput:
        logits = mlm_logits(self, base.last_hidden_state, self.backbone.embeddings.word.weight)
        loss = None if labels is None else mlm_loss(logits, labels)
        return MaskedLMOutput(loss=loss, logits=logits, hidden_states=base.hidden_states)


class AutoBertForSequenceClassification(_AutoBertWithHead):
    """As ``autobert.model.ForSequenceClassification`` (first token, tanh pooler): labels (B,) ->
    SequenceClassifierOutput(loss, logits (B, num_labels), hidden_states).

    ``config.num_labels == 1`` is regression (MSE), otherwise single-label cross-entropy.
    """

    def __init__(self, config: AutoBertConfig):
        super().__init__(config)
        if config.problem_type == "multi_label_classification":
            raise ValueError("AutoBertForSequenceClassification: problem_type 'multi_label_classification' is "
                             "not supported (regression with num_labels=1, or single-label classification)")
        config.head = {"type": "sequence_classification", "num_labels": config.num_labels}
        hidden = config.arch.hidden
        self.backbone = AutoBertModel(config)
        self.pooler = nn.Linear(hidden, hidden)
        self.dropout = nn.Dropout(config.arch.dropout)
        self.classifier = nn.Linear(hidden, config.num_labels)
        self.post_init()

    def head_output(self, base: BaseModelOutput, labels: Optional[torch.Tensor]) -> SequenceClassifierOutput:
        logits = classifier_logits(self, base.last_hidden_state)
        loss = None if labels is None else classification_loss(logits, labels)
        return SequenceClassifierOutput(loss=loss, logits=logits, hidden_states=base.hidden_states)


def _return_dict(config: AutoBertConfig, requested: Optional[bool]) -> bool:
    return config.return_dict if requested is None else requested


__all__ = ["AutoBertPreTrainedModel", "AutoBertModel", "AutoBertForMaskedLM", "AutoBertForSequenceClassification"]
