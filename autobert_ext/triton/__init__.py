"""The Triton backend's internals: the code generator for op programs and the generated modules.

Each op program is turned into Triton source (``codegen``, ``*_source``), written once per
specification to the on-disk cache and imported (``cache``); Triton compiles it on first launch.
The launchers that call these modules live with their kernel families (``autobert_ext.elementwise``,
``autobert_ext.fused_softmax``, ``autobert_ext.streaming_attention``), and run under
``AUTOBERT_BACKEND=triton`` or ``autobert_ext.backends``' default choice on GPU.

Importing this package never imports triton and never initialises CUDA.
"""
from autobert_ext.triton.cache import cache_info, clear_cache
from autobert_ext.triton.config import AttentionConfig, RowConfig

__all__ = ["cache_info", "clear_cache", "AttentionConfig", "RowConfig"]
