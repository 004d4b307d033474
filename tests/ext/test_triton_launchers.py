"""The "triton" launchers of the kernel families (what the plan executor calls) against their
"eager" launchers (the references), with the same arguments."""
import math

import pytest
import torch

pytest.importorskip("triton")

from autobert_ext.elementwise import run  # noqa: E402
from autobert_ext.fused_softmax import backward as softmax_backward, forward as softmax  # noqa: E402
from autobert_ext.streaming_attention import backward as streaming_backward, forward as streaming  # noqa: E402
from autobert_ext.program import Program  # noqa: E402

pytestmark = [pytest.mark.filterwarnings("ignore:.*encountered in:RuntimeWarning"),  # interpreter's numpy
              pytest.mark.usefixtures("triton_cache_dir")]
DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
TOL = dict(rtol=2e-5, atol=2e-5)

C = 1 / math.sqrt(8)
SCORE = Program(1, ((5, 1, 0, -1, C), (13, 2, 1, -1, 0.0)), (2,))  # tanh(s / sqrt(d))
# (s, g) -> g * (1 - tanh(c s)^2) * c
SCORE_BWD = Program(2, ((5, 2, 0, -1, C), (13, 3, 2, -1, 0.0), (4, 4, 3, -1, 0.0), (2, 5, 4, -1, 0.0),
                        (6, 6, 5, -1, 1.0), (19, 7, 1, 6, 0.0), (5, 8, 7, -1, C)), (8,))
PRE = Program(2, ((5, 2, 0, -1, 0.5), (17, 3, 2, 1, 0.0)), (3,))  # 0.5 x0 + x1
PRE_BWD = Program(3, ((5, 3, 2, -1, 0.5),), (3, 2))
IDENTITY = Program(1, (), (0,))
IDENTITY_BWD = Program(2, (), (1,))


def _mask(B, N):
    m = torch.rand(B, N, generator=torch.Generator().manual_seed(1)) > 0.3
    m[0, 0], m[-1] = True, False
    return m


def test_elementwise():
    x, y = torch.randn(3, 17), torch.randn(3, 17)
    got = run("triton", PRE, [x.to(DEVICE), y.to(DEVICE)])
    want = run("eager", PRE, [x, y])
    torch.testing.assert_close(got[0].cpu(), want[0], **TOL)


def test_softmax_forward_and_backward():
    B, H, N = 2, 3, 13
    x0, x1, g = torch.randn(B, H, 5, N), torch.randn(B, H, 5, N), torch.randn(B, H, 5, N)
    mask = _mask(B, N)
    dev = [t.to(DEVICE) for t in (x0, x1, g, mask)]
    y = softmax("triton", PRE, IDENTITY, dev[:2], dev[3])
    y_ref = softmax("eager", PRE, IDENTITY, [x0, x1], mask)
    torch.testing.assert_close(y.cpu(), y_ref, **TOL)
    grads = softmax_backward("triton", PRE, PRE_BWD, IDENTITY_BWD, dev[:2], y, dev[2], dev[3])
    grads_ref = softmax_backward("eager", PRE, PRE_BWD, IDENTITY_BWD, [x0, x1], y_ref, g, mask)
    for a, b in zip(grads, grads_ref):
        torch.testing.assert_close(a.cpu(), b * mask[:, None, None, :], **TOL)


@pytest.mark.parametrize("norm", ["softmax", "none"])
def test_streaming_forward_and_backward(norm):
    B, H, N, d = 2, 2, 13, 8
    gen = torch.Generator().manual_seed(0)
    q, k, v, g = (torch.randn(B, H, N, d, generator=gen) for _ in range(4))
    mask = _mask(B, N)
    dev = [t.to(DEVICE) for t in (q, k, v, g, mask)]
    out, lse = streaming("triton", *dev[:3], SCORE, norm, dev[4])
    out_ref, lse_ref = streaming("eager", q, k, v, SCORE, norm, mask)
    torch.testing.assert_close(out.cpu(), out_ref, **TOL)
    if norm == "softmax":  # rows with real keys (the fully padded batch has lse -inf in eager)
        torch.testing.assert_close(lse[0].cpu(), lse_ref[0], **TOL)
    grads = streaming_backward("triton", *dev[:3], out, lse, dev[3], SCORE, SCORE_BWD, norm, dev[4])
    grads_ref = streaming_backward("eager", q, k, v, out_ref, lse_ref, g, SCORE, SCORE_BWD, norm, mask)
    for a, b in zip(grads, grads_ref):
        torch.testing.assert_close(a.cpu(), b, **TOL)
