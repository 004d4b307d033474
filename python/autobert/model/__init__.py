"""Hybrid BERT backbones: layers are attention graphs, LightConv convolutions or FlexiBERT layers with
their own width, heads, operation and FFN stack (DESIGN.md §4).

>>> from autobert.model import FlexiLayer, ForMaskedLM, tiny
>>> model = ForMaskedLM(tiny(["standard", 3, "abz_softsign_key_qv"]))
>>> flexi = ForMaskedLM(tiny(["standard", FlexiLayer("dsc(5)", hidden=48, heads=3, ffn=(64, 32))]))
"""
from autobert.model.attention import GraphAttention
from autobert.model.backbone import Backbone
from autobert.model.block import Block, FeedForward, build_block
from autobert.model.config import ArchConfig, AttentionLayer, ConvLayer, LayerChoice, layer_from_dict
from autobert.model.conv import LightConv
from autobert.model.cost import count_flops, count_parameters
from autobert.model.embeddings import Embeddings
from autobert.model.ffn_stack import FeedForwardStack
from autobert.model.flexi_layer import FlexiLayer, LayerSizes, layer_sizes
from autobert.model.flexi_mixer import operation_mixer
from autobert.model.linear_transform import LinearTransform, dct_matrix
from autobert.model.operation import OPERATION_KINDS, Operation
from autobert.model.span_conv import DynamicSpanConv
from autobert.model.weighted_attention import WeightedMultiplicativeAttention
from autobert.model.heads import (ForMaskedLM, ForSequenceClassification, MaskedLMOutput,
                                  SequenceClassifierOutput)
from autobert.model.presets import PRESETS, autobert_zero_base, bert_base, tiny
from autobert.model.pretrained import CheckpointError, CheckpointNotFoundError, from_pretrained, save_pretrained
from autobert.model.space import SearchSpace

__all__ = ["ArchConfig", "AttentionLayer", "ConvLayer", "LayerChoice", "layer_from_dict",
           "FlexiLayer", "Operation", "OPERATION_KINDS", "LayerSizes", "layer_sizes", "build_block",
           "FeedForwardStack", "WeightedMultiplicativeAttention", "LinearTransform", "dct_matrix",
           "DynamicSpanConv", "operation_mixer",
           "bert_base", "autobert_zero_base", "tiny", "PRESETS", "count_parameters", "count_flops",
           "Embeddings", "GraphAttention", "LightConv", "FeedForward", "Block", "Backbone",
           "ForMaskedLM", "ForSequenceClassification", "MaskedLMOutput", "SequenceClassifierOutput",
           "save_pretrained", "from_pretrained", "CheckpointError", "CheckpointNotFoundError",
           "SearchSpace"]
