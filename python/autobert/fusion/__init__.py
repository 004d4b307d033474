"""Fusion planner: Graph -> fused plan -> op programs (+ derivative programs for backward)."""
from autobert.fusion.attention import fused_attention
from autobert.fusion.builder import ProgramBuilder
from autobert.fusion.planner import plan

__all__ = ["ProgramBuilder", "fused_attention", "plan"]
