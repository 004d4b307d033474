"""Triton kernels and the code generator for op programs (GPU; CPU under TRITON_INTERPRET=1).

Each op program is turned into Triton source (``codegen``), written once per specification to
the on-disk cache and imported (``cache``); Triton compiles it on first launch.

- ``triton_streaming_attention``: flash-style attention with an inlined score program.
- ``triton_elementwise``: n-input / m-output elementwise program.
- ``triton_fused_softmax``: row softmax with fused PRE / POST programs and a key mask.
- ``plan_kernels`` (not re-exported): the same kernels without autograd, for the plan
  executor's "triton" backend (``autobert_ext.kernels``).

Importing this package never imports triton and never initialises CUDA; a missing triton
raises RuntimeError only when a kernel is called.
"""
from autobert_ext.triton.attention import reference_streaming_attention, triton_streaming_attention
from autobert_ext.triton.cache import cache_info, clear_cache
from autobert_ext.triton.config import AttentionConfig, RowConfig
from autobert_ext.triton.elementwise import triton_elementwise
from autobert_ext.triton.softmax import reference_fused_softmax, triton_fused_softmax

__all__ = [
    "triton_streaming_attention",
    "triton_elementwise",
    "triton_fused_softmax",
    "reference_streaming_attention",
    "reference_fused_softmax",
    "cache_info",
    "clear_cache",
    "AttentionConfig",
    "RowConfig",
]
