"""The "cpp" (and "cuda") backend of the plan executor: raw calls into autobert_ext._C.

Each function mirrors one in ``autobert_ext.kernels``; programs are passed as their
``encode`` form. No autograd is recorded: the plan executor applies the chain rule itself.
"""
from __future__ import annotations

from typing import Optional, Sequence

import torch

from autobert_ext import _loader
from autobert_ext._dispatch import encoded as encode  # cached: a plan's programs are the same every call
from autobert_ext.program import Program


def _fn(name: str, t: torch.Tensor):
    C = _loader.get_C()
    if C is None:
        raise RuntimeError(f"autobert_ext._C is not available ({_loader.load_error()}); "
                           "set AUTOBERT_BACKEND=eager or rebuild the extension")
    suffix = "_cuda" if t.device.type == "cuda" else ""
    fn = getattr(C, name + suffix, None)
    if fn is None:
        raise RuntimeError(f"this build of autobert_ext._C has no kernel {name + suffix!r}")
    return fn


def elementwise(program: Program, inputs: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    ints, floats = encode(program)
    return list(_fn("elementwise", inputs[0])(list(inputs), ints, floats))


def softmax_forward(pre: Program, post: Program, inputs, mask: Optional[torch.Tensor]) -> torch.Tensor:
    pre_i, pre_f = encode(pre)
    post_i, post_f = encode(post)
    return _fn("fused_softmax", inputs[0])(list(inputs), mask, pre_i, pre_f, post_i, post_f)


def softmax_backward(pre: Program, pre_bwd: Program, post_bwd: Program, inputs, y, g, mask) -> list[torch.Tensor]:
    """The kernel recomputes the softmax rows from the inputs (one pass per row), so ``y`` is unused."""
    pre_i, pre_f = encode(pre)
    pb_i, pb_f = encode(post_bwd)
    prb_i, prb_f = encode(pre_bwd)
    return list(_fn("fused_softmax_backward", g)(list(inputs), mask, g, pre_i, pre_f, pb_i, pb_f, prb_i, prb_f))


def streaming_forward(q, k, v, score: Program, norm: str, mask):
    s_i, s_f = encode(score)
    out, lse = _fn("streaming_attention", q)(q, k, v, mask, s_i, s_f, norm)
    return out, lse


def streaming_backward(q, k, v, out, lse, g, score: Program, score_bwd: Program, norm: str, mask):
    s_i, s_f = encode(score)
    b_i, b_f = encode(score_bwd)
    return list(_fn("streaming_attention_backward", q)(q, k, v, mask, out, lse, g, s_i, s_f, b_i, b_f, norm))
