"""Task heads over the ``Backbone``: ``ForMaskedLM`` (tied decoder) and ``ForSequenceClassification``."""
from __future__ import annotations

import dataclasses
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from autobert.model.backbone import Backbone, init_bert_weights
from autobert.model.config import ArchConfig

IGNORE_INDEX = -100  # label value that the MLM loss skips (Hugging Face convention)


@dataclasses.dataclass
class MaskedLMOutput:
    logits: torch.Tensor                 # (B, N, vocab)
    loss: Optional[torch.Tensor] = None  # scalar, when labels were given


@dataclasses.dataclass
class SequenceClassifierOutput:
    logits: torch.Tensor                 # (B, num_labels)
    loss: Optional[torch.Tensor] = None  # scalar, when labels were given


class _PretrainedMixin:
    """save_pretrained / from_pretrained for the heads (see autobert.model.pretrained)."""

    def save_pretrained(self, directory) -> None:
        from autobert.model.pretrained import save_pretrained
        save_pretrained(self, directory)

    @classmethod
    def from_pretrained(cls, directory, map_location: "str | torch.device" = "cpu"):
        from autobert.model.pretrained import from_pretrained
        return from_pretrained(directory, expected=cls, map_location=map_location)


class ForMaskedLM(_PretrainedMixin, nn.Module):
    """input_ids (B, N) long, attention_mask (B, N) or None, token_type_ids (B, N) or None,
    labels (B, N) long with -100 = ignore, or None -> MaskedLMOutput(logits (B, N, vocab), loss).

    The decoder matrix is the word-embedding matrix (tied by construction: there is no second copy).
    """

    def __init__(self, config: ArchConfig, backbone: Optional[Backbone] = None):
        super().__init__()
        self.config = config
        self.backbone = Backbone(config) if backbone is None else backbone
        # The transform ends at the embedding width, so the tied decoder also fits narrow embeddings.
        self.transform = nn.Linear(config.hidden, config.embedding_width)
        self.transform_norm = nn.LayerNorm(config.embedding_width, eps=config.layer_norm_eps)
        self.decoder_bias = nn.Parameter(torch.zeros(config.vocab_size))
        for module in (self.transform, self.transform_norm):  # never re-initialise a given backbone
            module.apply(init_bert_weights)

    def head_config(self) -> dict:
        return {"type": "masked_lm"}

    def forward(self, input_ids: torch.Tensor, attention_mask: Optional[torch.Tensor] = None,
                token_type_ids: Optional[torch.Tensor] = None,
                labels: Optional[torch.Tensor] = None) -> MaskedLMOutput:
        h = self.backbone(input_ids, attention_mask, token_type_ids)  # (B, N, hidden)
        logits = mlm_logits(self, h, self.backbone.embeddings.word.weight)  # (B, N, vocab)
        loss = None if labels is None else mlm_loss(logits, labels)
        return MaskedLMOutput(logits=logits, loss=loss)


def mlm_logits(head: nn.Module, h: torch.Tensor, word_weight: torch.Tensor) -> torch.Tensor:
    """h (B, N, hidden) -> (B, N, vocab) through ``head.transform``, ``head.transform_norm`` and the
    decoder tied to ``word_weight`` (vocab, hidden) with ``head.decoder_bias``.

    A function of the head's modules, so every model class with these parameter names (the
    Hugging Face ones too) computes the same logits.
    """
    h = head.transform_norm(F.gelu(head.transform(h)))
    return F.linear(h, word_weight, head.decoder_bias)


def mlm_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy over labels != -100; 0 (with a graph) when every label is ignored."""
    if tuple(labels.shape) != tuple(logits.shape[:-1]):
        raise ValueError(f"labels must have shape {tuple(logits.shape[:-1])}, got {tuple(labels.shape)}")
    if not bool((labels != IGNORE_INDEX).any()):
        return logits.sum() * 0.0  # cross_entropy would give NaN (a mean over nothing)
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1), ignore_index=IGNORE_INDEX)


class ForSequenceClassification(_PretrainedMixin, nn.Module):
    """input_ids (B, N), attention_mask, token_type_ids, labels (B,) or None
    -> SequenceClassifierOutput(logits (B, num_labels), loss).

    Pools the first ([CLS]) token through Linear + tanh like BERT. ``num_labels == 1`` is regression
    (MSE against float labels); otherwise cross-entropy against long labels.
    """

    def __init__(self, config: ArchConfig, num_labels: int = 2, backbone: Optional[Backbone] = None):
        super().__init__()
        if not isinstance(num_labels, int) or isinstance(num_labels, bool) or num_labels < 1:
            raise ValueError(f"num_labels must be an int >= 1, got {num_labels!r}")
        self.config, self.num_labels = config, num_labels
        self.backbone = Backbone(config) if backbone is None else backbone
        self.pooler = nn.Linear(config.hidden, config.hidden)
        self.dropout = nn.Dropout(config.dropout)
        self.classifier = nn.Linear(config.hidden, num_labels)
        for module in (self.pooler, self.classifier):  # never re-initialise a given backbone
            module.apply(init_bert_weights)

    def head_config(self) -> dict:
        return {"type": "sequence_classification", "num_labels": self.num_labels}

    def forward(self, input_ids: torch.Tensor, attention_mask: Optional[torch.Tensor] = None,
                token_type_ids: Optional[torch.Tensor] = None,
                labels: Optional[torch.Tensor] = None) -> SequenceClassifierOutput:
        h = self.backbone(input_ids, attention_mask, token_type_ids)  # (B, N, hidden)
        logits = classifier_logits(self, h)  # (B, num_labels)
        loss = None if labels is None else classification_loss(logits, labels)
        return SequenceClassifierOutput(logits=logits, loss=loss)


def classifier_logits(head: nn.Module, h: torch.Tensor) -> torch.Tensor:
    """h (B, N, hidden) -> (B, num_labels): the first token through ``head.pooler`` + tanh,
    ``head.dropout`` and ``head.classifier`` (like ``mlm_logits``, shared by every model class)."""
    pooled = torch.tanh(head.pooler(h[:, 0]))  # (B, hidden)
    return head.classifier(head.dropout(pooled))


def classification_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """logits (B, num_labels), labels (B,) -> scalar: MSE against float labels when num_labels == 1
    (regression), else cross-entropy against long labels."""
    if logits.shape[-1] == 1:
        return F.mse_loss(logits.squeeze(-1), labels.to(logits.dtype).reshape(-1))
    return F.cross_entropy(logits, labels.reshape(-1).long())


HEADS = {"masked_lm": ForMaskedLM, "sequence_classification": ForSequenceClassification}


def build_head(config: ArchConfig, head: dict) -> nn.Module:
    """A model from a head description as written by ``head_config()``; ValueError on a bad one."""
    if not isinstance(head, dict) or head.get("type") not in HEADS:
        raise ValueError(f"head must be an object with 'type' in {sorted(HEADS)}, got {head!r}")
    if head["type"] == "masked_lm":
        if set(head) != {"type"}:
            raise ValueError(f"masked_lm head takes no options, got {sorted(set(head) - {'type'})}")
        return ForMaskedLM(config)
    if set(head) != {"type", "num_labels"}:
        raise ValueError(f"sequence_classification head needs exactly 'num_labels', got keys {sorted(head)}")
    return ForSequenceClassification(config, num_labels=head["num_labels"])
