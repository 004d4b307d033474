"""autobert_ext: the device layer of autobert — compiled kernels, custom ops and their fallbacks.

Importing never fails (a missing ``_C`` gives one warning and the eager fallback) and never
initialises CUDA. This package never imports ``autobert``: it receives op programs and plans
as plain data.
"""
from autobert_ext._loader import available, load_error, with_cuda
from autobert_ext.fused_attention import fused_attention
from autobert_ext.plan import Plan, Step
from autobert_ext.masked_adamw import MaskedAdamW, fused_masked_adamw_
from autobert_ext.program import OPCODES, Program, decode, encode, run_program
from autobert_ext.elementwise import elementwise
from autobert_ext.fused_softmax import fused_softmax
from autobert_ext.streaming_attention import streaming_attention

__all__ = ["available", "load_error", "with_cuda", "OPCODES", "Program", "encode", "decode", "run_program",
           "MaskedAdamW", "fused_masked_adamw_", "fused_attention", "Plan", "Step",
           "elementwise", "fused_softmax", "streaming_attention"]
