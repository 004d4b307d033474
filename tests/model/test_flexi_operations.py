"""FlexiBERT operations (SDP, WMA, DFT, DCT, DSC(k)), FFN stacks and width changes: forward against
float64 references written out independently, gradients (gradcheck), odd sizes, padding, save/load."""
import math

import numpy as np
import pytest
import scipy.fft
import torch

from autobert.model import (Backbone, DynamicSpanConv, FeedForwardStack, FlexiLayer, ForMaskedLM, LinearTransform,
                            Operation, WeightedMultiplicativeAttention, dct_matrix, from_pretrained, operation_mixer,
                            save_pretrained, tiny)

OPS = ["sdp", "wma", "dft", "dct", "dsc(1)", "dsc(5)", "dsc(9)"]


def _mask(b, n, lengths):
    return torch.arange(n)[None, :] < torch.tensor(lengths)[:, None]  # (B, N) bool


def _split(t, heads):
    b, n, c = t.shape
    return t.view(b, n, heads, c // heads).transpose(1, 2)


def _merge(t):
    b, h, n, d = t.shape
    return t.transpose(1, 2).reshape(b, n, h * d)


@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("n,hidden,heads", [(1, 14, 2), (13, 21, 3), (97, 40, 5)])
def test_shapes_and_backward_at_odd_sizes(op, n, hidden, heads):
    torch.manual_seed(0)
    mixer = operation_mixer(Operation.parse(op), hidden, heads)
    x = torch.randn(2, n, hidden, requires_grad=True)
    y = mixer(x, _mask(2, n, [n, max(1, n // 2)]))
    assert y.shape == (2, n, hidden) and torch.isfinite(y).all()
    y[:, : max(1, n // 2)].square().sum().backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in mixer.parameters())


@pytest.mark.parametrize("op", OPS)
def test_gradients_float64(op):
    torch.manual_seed(1)
    mixer = operation_mixer(Operation.parse(op), 6, 2).double()
    x = torch.randn(2, 5, 6, dtype=torch.float64, requires_grad=True)
    mask = _mask(2, 5, [5, 3])
    assert torch.autograd.gradcheck(lambda t: mixer(t, mask)[:, :3], (x,))


@pytest.mark.parametrize("op", OPS)
def test_padding_never_reaches_real_tokens(op):
    torch.manual_seed(2)
    mixer = operation_mixer(Operation.parse(op), 12, 3).eval()
    x = torch.randn(2, 11, 12)
    mask = _mask(2, 11, [7, 11])
    x2 = x.clone()
    x2[0, 7:] = torch.randn(4, 12) * 1e3
    torch.testing.assert_close(mixer(x, mask)[0, :7], mixer(x2, mask)[0, :7])
    torch.testing.assert_close(mixer(x, mask)[1], mixer(x2, mask)[1])


def test_wma_matches_reference():
    torch.manual_seed(3)
    att = WeightedMultiplicativeAttention(21, 3).double()
    x = torch.randn(2, 13, 21, dtype=torch.float64)
    mask = _mask(2, 13, [13, 8])
    q, k, v = (_split(p(x), 3) for p in (att.q_proj, att.k_proj, att.v_proj))
    scores = torch.einsum("bhnd,hde,bhme->bhnm", q, att.weight, k) / math.sqrt(7)
    scores = scores.masked_fill(~mask[:, None, None, :], float("-inf"))
    ref = att.out_proj(_merge(scores.softmax(-1) @ v))
    torch.testing.assert_close(att(x, mask)[0], ref[0])
    torch.testing.assert_close(att(x, mask)[1, :8], ref[1, :8])


@pytest.mark.parametrize("kind", ["dft", "dct"])
@pytest.mark.parametrize("n,hidden,heads", [(1, 7, 1), (13, 40, 5), (97, 14, 2)])
def test_linear_transforms_match_numpy_and_scipy(kind, n, hidden, heads):
    torch.manual_seed(4)
    lt = LinearTransform(hidden, heads, kind).double()
    x = torch.randn(2, n, hidden, dtype=torch.float64)
    blocks = _split(lt.in_proj(x), heads).detach().numpy()  # (B, H, N, d)
    if kind == "dft":
        ref = np.fft.fft2(blocks, norm="ortho").real
    else:
        ref = scipy.fft.dctn(blocks, type=2, norm="ortho", axes=(-2, -1))
    ref = _merge(torch.from_numpy(np.ascontiguousarray(ref)))
    torch.testing.assert_close(lt(x), ref)


def test_dct_matrix_is_orthonormal_dct2():
    c = dct_matrix(9, torch.float64)
    torch.testing.assert_close(c @ c.T, torch.eye(9, dtype=torch.float64))
    x = np.random.default_rng(0).standard_normal(9)
    torch.testing.assert_close(c @ torch.from_numpy(x), torch.from_numpy(scipy.fft.dct(x, norm="ortho")))


@pytest.mark.parametrize("n,kernel", [(1, 5), (13, 9), (6, 1), (4, 9)])
def test_span_conv_matches_a_loop_reference(n, kernel):
    torch.manual_seed(5)
    heads, hidden = 3, 21
    dsc = DynamicSpanConv(hidden, heads, kernel).double()
    x = torch.randn(2, n, hidden, dtype=torch.float64)
    mask = _mask(2, n, [n, max(1, n - 2)])
    xm = x * mask[:, :, None]
    d, half = hidden // heads, kernel // 2
    out = torch.zeros(2, n, hidden, dtype=torch.float64)
    for b in range(2):
        for t in range(n):
            # span-aware key at t: depthwise taps over the window, then the pointwise layer
            key = sum(dsc.key_depthwise[:, 0, j] * xm[b, t + j - half] for j in range(kernel) if 0 <= t + j - half < n)
            key = dsc.key_pointwise(key if torch.is_tensor(key) else torch.zeros(hidden, dtype=torch.float64))
            logits = dsc.kernel_proj(dsc.q_proj(x[b, t]) * key).view(heads, kernel)
            taps = logits.softmax(-1)
            for j in range(kernel):
                s = t + j - half
                if 0 <= s < n and mask[b, s]:
                    v = dsc.v_proj(x[b, s]).view(heads, d)
                    out[b, t] += (taps[:, j:j + 1] * v).reshape(hidden)
    ref = dsc.out_proj(out)
    got = dsc(x, mask)
    torch.testing.assert_close(got[0], ref[0])
    torch.testing.assert_close(got[1, : max(1, n - 2)], ref[1, : max(1, n - 2)])
    torch.testing.assert_close(dsc.taps(x, mask).sum(-1), torch.ones(2, n, heads, dtype=torch.float64))


def test_ffn_stack_matches_reference_and_names():
    torch.manual_seed(6)
    ffn = FeedForwardStack(13, (17, 5, 9)).double()
    x = torch.randn(2, 7, 13, dtype=torch.float64)
    h = x
    for layer in [ffn.up, *ffn.inner]:
        h = torch.nn.functional.gelu(layer(h))
    torch.testing.assert_close(ffn(x), ffn.down(h))
    assert [a.shape[-1] for a in ffn.activations(x)] == [17, 5, 9]
    assert sorted(FeedForwardStack(8, (16,)).state_dict()) == ["down.bias", "down.weight", "up.bias", "up.weight"]


def test_width_changes_insert_projections_only_where_needed():
    cfg = tiny([FlexiLayer("sdp", hidden=48, heads=3), FlexiLayer("dct", hidden=48), FlexiLayer("dsc(5)", hidden=20),
                "standard"], embedding_size=16)
    backbone = Backbone(cfg)
    shapes = {k: tuple(p.weight.shape) for k, p in backbone.projections.items()}
    assert shapes == {"0": (48, 16), "2": (20, 48), "3": (32, 20)}  # Linear weights are (out, in)
    ids = torch.randint(0, 97, (2, 13))
    assert backbone(ids).shape == (2, 13, 32)
    last_wide = tiny([FlexiLayer("sdp", hidden=48, heads=3)])
    assert set(Backbone(last_wide).projections) == {"0", "out"}
    assert not any(k.startswith("projections") for k in Backbone(tiny()).state_dict())


def test_width_changes_match_manual_composition():
    torch.manual_seed(7)
    cfg = tiny([FlexiLayer("wma", hidden=24, heads=2, ffn=(8, 8)), FlexiLayer("dft", heads=8)], embedding_size=12,
               dropout=0.0)
    backbone = Backbone(cfg).eval()
    ids = torch.randint(0, 97, (2, 9))
    x = backbone.embeddings(ids)
    x = backbone.layers[0](backbone.projections["0"](x))
    x = backbone.layers[1](backbone.projections["1"](x))
    torch.testing.assert_close(backbone(ids), x)


def test_save_load_round_trip(tmp_path):
    torch.manual_seed(8)
    cfg = tiny(["standard", FlexiLayer("dsc(5)", hidden=48, heads=3, ffn=(64, 32)), FlexiLayer("wma", heads=2),
                FlexiLayer("dft", hidden=40, heads=5), FlexiLayer("dct", hidden=40, ffn=(16, 16, 16)), 3],
               embedding_size=24)
    model = ForMaskedLM(cfg).eval()
    save_pretrained(model, tmp_path / "m")
    again = from_pretrained(tmp_path / "m", expected=ForMaskedLM)
    assert again.config == cfg
    ids = torch.randint(0, 97, (2, 11))
    torch.testing.assert_close(again(ids).logits, model(ids).logits, atol=0, rtol=0)
