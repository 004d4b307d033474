"""The masking rule: padded positions never contribute to a reduction over the sequence axis."""
import pytest
import torch

from autobert.graph import eager, library, parse, random_graph


def _qkv(b=2, h=2, n=7, d=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(b, h, n, d, generator=g, dtype=torch.float64) for _ in range(3)]


@pytest.mark.parametrize("name", sorted(library))
def test_padded_keys_do_not_change_real_rows(name):
    """Changing q/k/v at padded positions leaves outputs at real rows unchanged."""
    graph = library[name]
    q, k, v = _qkv()
    mask = torch.ones(2, 7, dtype=torch.bool)
    mask[0, 5:] = False
    mask[1, 2] = False
    out = eager(graph, q, k, v, mask)
    q2, k2, v2 = (t.clone() for t in (q, k, v))
    for t in (q2, k2, v2):
        t[~mask[:, None, :, None].expand_as(t)] = 1e3
    out2 = eager(graph, q2, k2, v2, mask)
    real = mask[:, None, :, None].expand_as(out)
    torch.testing.assert_close(out[real], out2[real])
    assert torch.isfinite(out2).all()


def test_masked_equals_truncated_sequence():
    """With the last positions padded, real rows equal the result on the truncated sequence."""
    q, k, v = _qkv(b=1)
    mask = torch.tensor([[True] * 4 + [False] * 3])
    for name in ("standard", "linear", "sigmoid", "cosine", "abz_sqrt_score"):
        full = eager(library[name], q, k, v, mask)[..., :4, :]
        short = eager(library[name], q[..., :4, :], k[..., :4, :], v[..., :4, :])
        torch.testing.assert_close(full, short, msg=name)


def test_fully_padded_sequence_is_finite():
    q, k, v = _qkv(b=1)
    mask = torch.zeros(1, 7, dtype=torch.bool)
    for name, g in library.items():
        out = eager(g, q, k, v, mask)
        assert torch.isfinite(out).all(), name
    out = eager(parse("matmul(softmax(matmul(Q, transpose(K))), V)"), q, k, v, mask)
    assert (out == 0).all()  # softmax over no real key gives 0, so the row is 0


def test_random_graphs_honour_mask():
    import random
    rng = random.Random(5)
    q, k, v = _qkv(b=1)
    mask = torch.tensor([[True] * 5 + [False] * 2])
    for _ in range(100):
        g = random_graph(rng, 10)
        if g.shapes[g.output] != ("N", "d"):
            continue
        full = eager(g, q, k, v, mask)[..., :5, :]
        short = eager(g, q[..., :5, :], k[..., :5, :], v[..., :5, :])
        torch.testing.assert_close(full, short, msg=g.to_expr())


def test_bad_tensor_inputs():
    q, k, v = _qkv()
    g = library["standard"]
    with pytest.raises(ValueError, match="shape \\(B, H, N, d\\)"):
        eager(g, q[0], k, v)
    with pytest.raises(ValueError, match="same shape"):
        eager(g, q, k[..., :3, :], v)
    with pytest.raises(ValueError, match="one dtype"):
        eager(g, q, k.float(), v)
    with pytest.raises(ValueError, match="key_padding_mask must have shape"):
        eager(g, q, k, v, torch.ones(2, 6, dtype=torch.bool))
    with pytest.raises(ValueError, match="bool"):
        eager(g, q, k, v, torch.ones(2, 7))
