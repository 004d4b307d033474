"""``AutoBertConfig``: an autobert architecture as a transformers ``PreTrainedConfig`` (model type "autobert").

The architecture is stored as ``ArchConfig.to_dict()`` under ``architecture``, so every layer kind
the project's ``ArchConfig`` knows works here unchanged. The JSON it saves is also the project's
own model-folder config (``format``, ``format_version``, ``architecture``, ``head``), and the
config.json that ``autobert.model.save_pretrained`` writes (``autobert pretrain``) loads with
``AutoConfig``: one folder format, read by both loaders. The usual transformers names
(``hidden_size``, ``num_hidden_layers``, ...) are read-only views of the architecture.
"""
from __future__ import annotations

import functools
import json
from typing import Any, Optional

from transformers import PreTrainedConfig

from autobert.model import ArchConfig, bert_base
from autobert.model.pretrained import FORMAT, FORMAT_VERSION


@functools.lru_cache(maxsize=64)
def _arch(canonical_json: str) -> ArchConfig:
    return ArchConfig.from_json(canonical_json)


def _architecture_field(key: str) -> property:
    """A read-only attribute showing ``architecture[key]``."""
    return property(lambda self: self.architecture[key], doc=f"``architecture[{key!r}]`` (read-only)")


class AutoBertConfig(PreTrainedConfig):
    """An autobert backbone (any ``ArchConfig``) plus the task head it was saved with.

    Args:
        architecture: ``ArchConfig`` or its ``to_dict()``; default BERT-base (12 standard attention layers).
        head: the project's head description (``{"type": "masked_lm"}`` or ``{"type":
            "sequence_classification", "num_labels": n}``); the model classes set it.
        format, format_version: the project's model-folder format (checked).
    """

    model_type = "autobert"

    architecture: Optional[dict] = None  # ArchConfig.to_dict()
    head: Optional[dict] = None          # as ForMaskedLM/ForSequenceClassification.head_config()
    format: str = FORMAT
    format_version: int = FORMAT_VERSION

    def __post_init__(self, **kwargs):
        if self.format != FORMAT or self.format_version != FORMAT_VERSION:
            raise ValueError(f"AutoBertConfig: format {self.format!r} version {self.format_version!r}; this "
                             f"autobert reads {FORMAT!r} version {FORMAT_VERSION}")
        arch = self.architecture
        if arch is None:
            arch = bert_base()
        elif not isinstance(arch, ArchConfig):
            try:
                arch = ArchConfig.from_dict(arch)
            except ValueError as e:
                raise ValueError(f"AutoBertConfig.architecture: {e}") from None
        self.architecture = arch.to_dict()
        if self.head is not None and not isinstance(self.head, dict):
            raise ValueError(f"AutoBertConfig.head must be a JSON object or None, got {type(self.head).__name__}")
        if (self.head or {}).get("type") == "sequence_classification" and self.id2label is None:
            kwargs.setdefault("num_labels", self.head.get("num_labels"))
        super().__post_init__(**kwargs)

    @property
    def arch(self) -> ArchConfig:
        """The architecture as the project's immutable ``ArchConfig``."""
        return _arch(json.dumps(self.architecture, sort_keys=True))

    # transformers' usual names, read by pipelines, sentence-transformers and Trainer
    hidden_size = _architecture_field("hidden")
    num_attention_heads = _architecture_field("heads")
    intermediate_size = _architecture_field("ffn")
    max_position_embeddings = _architecture_field("max_positions")
    type_vocab_size = _architecture_field("type_vocab_size")
    layer_norm_eps = _architecture_field("layer_norm_eps")
    hidden_dropout_prob = _architecture_field("dropout")

    @property
    def num_hidden_layers(self) -> int:
        return len(self.architecture["layers"])

    @property
    def vocab_size(self) -> int:
        return self.architecture["vocab_size"]

    @vocab_size.setter
    def vocab_size(self, value: Any) -> None:
        # resize_token_embeddings sets it: the architecture changes with it (validated).
        self.architecture = self.arch.replace(vocab_size=value).to_dict()


__all__ = ["AutoBertConfig"]
