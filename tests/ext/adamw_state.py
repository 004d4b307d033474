"""Shared by the masked-AdamW tests (C++ kernel and CUDA kernel): random optimizer state and a
bit view for 'unchanged' checks."""
import torch


def make_state(shapes, dtype, seed=0):
    """Random params, grads and *non-zero* moments (so 'unchanged' is meaningful)."""
    g = torch.Generator().manual_seed(seed)
    ps = [torch.randn(s, generator=g, dtype=torch.float64).to(dtype) for s in shapes]
    ms = [0.1 * torch.randn(s, generator=g, dtype=torch.float64).to(dtype) for s in shapes]
    vs = [0.01 * torch.rand(s, generator=g, dtype=torch.float64).to(dtype) for s in shapes]
    return ps, ms, vs


def bits(t):
    """The raw bits of t as an integer tensor (compares NaN payloads and signed zeros exactly)."""
    return t.view({2: torch.int16, 4: torch.int32, 8: torch.int64}[t.element_size()])
