"""attn_implementation="autobert" on every supported encoder family (tiny configs, random weights):
the standard graph against transformers' own eager and sdpa on the same weights, padded batches."""
import pytest
import torch

transformers = pytest.importorskip("transformers", minversion="5")

from families import FAMILIES, build, hidden, padded_batch  # noqa: E402

from autobert.graph import eager, library  # noqa: E402
from autobert.hf import ATTN_IMPLEMENTATION, use_graph_attention  # noqa: E402

TARGET = 1e-5  # issue 14: standard graph vs transformers' attention, fp32


@pytest.mark.parametrize("family", list(FAMILIES))
def test_standard_graph_matches_eager_and_sdpa(family):
    ids, mask = padded_batch()
    real = mask.bool()
    ours = hidden(build(family, ATTN_IMPLEMENTATION), ids, mask)
    for reference in ("eager", "sdpa"):
        ref = hidden(build(family, reference), ids, mask)
        err = (ours - ref)[real].abs().max().item()
        assert err <= TARGET, f"{family}: autobert vs {reference}: max abs difference {err:.3g} on real tokens"
    assert torch.isfinite(ours).all()  # padded query rows: unspecified but finite


@pytest.mark.parametrize("family", ["bert", "distilbert", "modernbert"])
def test_switching_back_restores_bit_identical_outputs(family):
    model = build(family, "sdpa")
    ids, mask = padded_batch()
    before = hidden(model, ids, mask)
    with use_graph_attention(model, "abz_sqrt_softplus_key") as handle:
        assert model.config._attn_implementation == ATTN_IMPLEMENTATION and handle.active
        changed = hidden(model, ids, mask)
    assert model.config._attn_implementation == "sdpa" and not handle.active
    assert torch.equal(hidden(model, ids, mask), before)
    assert (changed - before)[mask.bool()].abs().max() > 1e-5  # another graph is another function
    handle.restore()  # a second restore does nothing


def test_graph_per_layer_equals_the_graph_eager_reference():
    """Two layers, two graphs: the model equals a float64 re-computation that runs each layer's graph
    through autobert.graph.eager inside transformers' eager attention."""
    graphs = ["abz_softsign_key_qv", "matmul(softmax(scale(matmul(Q, transpose(K)))), V)"]
    ids, mask = padded_batch()
    model = build("bert", "sdpa")
    with use_graph_attention(model, graphs):
        got = hidden(model, ids, mask)
    ref_model = build("bert", ATTN_IMPLEMENTATION, dtype=torch.float64)
    layers = [layer.attention.self for layer in ref_model.encoder.layer]
    calls = []

    def eager_graph(module, q, k, v, attention_mask, **kwargs):  # (B, H, N, d) -> (B, N, H, d)
        calls.append(module)
        g = library.get(graphs[layers.index(module)]) or graphs[layers.index(module)]
        from autobert.model.config import as_graph
        return eager(as_graph(g, "g"), q, k, v, mask.bool()).transpose(1, 2), None

    transformers.AttentionInterface.register("autobert_test_eager", eager_graph)
    transformers.AttentionMaskInterface.register("autobert_test_eager", lambda *a, **k: None)
    ref_model.set_attn_implementation("autobert_test_eager")
    ref = hidden(ref_model, ids, mask)
    assert calls == layers
    real = mask.bool()
    assert (got.double() - ref)[real].abs().max() < 1e-5


@pytest.mark.parametrize("graph", ["standard", "abz_softsign_key_qv", "linear", "cosine"])
def test_padding_never_leaks_into_real_tokens(graph):
    model = build("roberta", "sdpa")
    ids, mask = padded_batch()
    use_graph_attention(model, graph)
    out = hidden(model, ids, mask)
    other = ids.clone()
    other[mask == 0] = 7  # different tokens in the padded positions only
    real = mask.bool()
    torch.testing.assert_close(hidden(model, other, mask)[real], out[real], atol=1e-5, rtol=1e-5)


def test_unpadded_batches():
    ids, _ = padded_batch()
    full = torch.ones_like(ids)
    ours, ref = build("bert", ATTN_IMPLEMENTATION), build("bert", "eager")
    for m in (full, None):
        assert (hidden(ours, ids, m) - hidden(ref, ids, m)).abs().max() <= TARGET
    assert torch.equal(hidden(ours, ids, None), hidden(ours, ids, full))  # no mask and all-real agree
