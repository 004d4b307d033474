"""Triton kernels and the code generator for op programs (GPU; CPU under TRITON_INTERPRET=1)."""
__all__: list[str] = []
