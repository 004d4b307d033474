"""Hybrid BERT backbones: layers are attention graphs or LightConv convolutions (DESIGN.md §4).

>>> from autobert.model import ForMaskedLM, tiny
>>> model = ForMaskedLM(tiny(["standard", 3, "abz_softsign_key_qv"]))
"""
from autobert.model.attention import GraphAttention
from autobert.model.backbone import Backbone
from autobert.model.block import Block, FeedForward
from autobert.model.config import ArchConfig, AttentionLayer, ConvLayer, LayerChoice, layer_from_dict
from autobert.model.conv import LightConv
from autobert.model.cost import count_flops, count_parameters
from autobert.model.embeddings import Embeddings
from autobert.model.heads import (ForMaskedLM, ForSequenceClassification, MaskedLMOutput,
                                  SequenceClassifierOutput)
from autobert.model.presets import PRESETS, autobert_zero_base, bert_base, tiny
from autobert.model.pretrained import CheckpointError, CheckpointNotFoundError, from_pretrained, save_pretrained
from autobert.model.space import SearchSpace

__all__ = ["ArchConfig", "AttentionLayer", "ConvLayer", "LayerChoice", "layer_from_dict",
           "bert_base", "autobert_zero_base", "tiny", "PRESETS", "count_parameters", "count_flops",
           "Embeddings", "GraphAttention", "LightConv", "FeedForward", "Block", "Backbone",
           "ForMaskedLM", "ForSequenceClassification", "MaskedLMOutput", "SequenceClassifierOutput",
           "save_pretrained", "from_pretrained", "CheckpointError", "CheckpointNotFoundError",
           "SearchSpace"]
