"""The attention-graph IR: primitive ops over per-head Q, K, V (DESIGN.md §2).

>>> from autobert.graph import parse, eager, library
>>> g = parse("matmul(softmax(scale(matmul(Q, transpose(K)))), V)")
>>> g == library["standard"]
True
"""
from autobert.graph.eager import eager
from autobert.graph.errors import GraphError
from autobert.graph.expr import parse
from autobert.graph.flops import flops
from autobert.graph.functional import functional_fingerprint
from autobert.graph.generate import random_graph
from autobert.graph.graph import MAX_NODES, SCHEMA_VERSION, Graph
from autobert.graph.library import AUTOBERT_ZERO, library
from autobert.graph.mutation import KINDS, MUTATION_OPS, Mutation, mutate, mutate_with_info
from autobert.graph.ops import OPS, OpSpec
from autobert.graph.validity import Validity, check_valid, live_inputs, validity

__all__ = ["Graph", "GraphError", "parse", "eager", "random_graph", "mutate", "mutate_with_info", "Mutation",
           "KINDS", "MUTATION_OPS", "library", "AUTOBERT_ZERO", "flops", "OPS", "OpSpec", "MAX_NODES",
           "SCHEMA_VERSION", "Validity", "validity", "check_valid", "live_inputs", "functional_fingerprint"]
