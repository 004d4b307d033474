"""Supernet: extracted children equal supernet children; shared storage; active masks; masked step."""
import random

import pytest
import torch

from autobert.graph import library, random_graph
from autobert.model import AttentionLayer, ConvLayer, ForMaskedLM, SearchSpace, tiny
from autobert.supernet import Supernet, make_optimizer, masked_step

KERNELS = (1, 3, 5, 9)
IDS = torch.randint(0, 97, (3, 15), generator=torch.Generator().manual_seed(0))
MASK = torch.tensor([[1] * 15, [1] * 10 + [0] * 5, [1] * 4 + [0] * 11])


def _supernet(space=None):
    torch.manual_seed(0)
    return Supernet(tiny(["standard", 3, "standard", 5]), kernel_sizes=KERNELS, space=space).eval()


def _storage_range(t):
    start = t.untyped_storage().data_ptr()
    return start, start + t.untyped_storage().nbytes()


def _inside(view, parent):
    lo, hi = _storage_range(parent)
    return lo <= view.data_ptr() < hi


def test_extracted_children_equal_supernet_children():
    space = SearchSpace(n_layers=4, kernel_sizes=KERNELS, random_graph_prob=0.4, max_nodes=8)
    sn, rng = _supernet(space), random.Random(0)
    archs = [space.sample(rng) for _ in range(6)]
    archs.append((AttentionLayer(random_graph(rng, 6)), ConvLayer(9), AttentionLayer("abz_softsign_key_qv"),
                  ConvLayer(1)))
    for arch in archs:
        sn.activate(arch)
        expected = sn(IDS, MASK).logits
        child = sn.extract()
        assert isinstance(child, ForMaskedLM) and child.config.layers == tuple(arch)
        got = child.eval()(IDS, MASK).logits
        torch.testing.assert_close(got, expected, atol=1e-6, rtol=0, equal_nan=True)
        assert sn.active_arch.layers == tuple(arch)  # extract leaves the active child active


def test_extract_of_another_arch_keeps_the_active_child():
    sn = _supernet()
    before = sn.active_arch
    child = sn.extract((ConvLayer(5),) * 4)
    assert sn.active_arch == before
    assert all(block.mixer.kernel == 5 for block in child.backbone.layers)


def test_conv_slices_share_storage_with_the_supernet():
    sn = _supernet()
    sn.activate((ConvLayer(3), ConvLayer(1), ConvLayer(9), AttentionLayer("linear")))
    conv = sn.blocks[0].conv
    taps = conv.kernel_weight()
    assert taps.shape == (4, 3) and _inside(taps, conv.weight)
    assert torch.equal(taps, conv.weight[:, 3:6])
    shared = sn.extract(share=True)
    for i in range(3):
        w = shared.backbone.layers[i].mixer.weight
        assert _inside(w, sn.blocks[i].conv.weight)
        assert torch.equal(w, sn.blocks[i].conv.kernel_weight())
    assert shared.backbone.embeddings.word.weight.data_ptr() == sn.net.backbone.embeddings.word.weight.data_ptr()
    copied = sn.extract()
    assert not _inside(copied.backbone.layers[0].mixer.weight, sn.blocks[0].conv.weight)


def test_training_a_shared_child_trains_the_supernet():
    sn = _supernet()
    arch = (ConvLayer(3), AttentionLayer("standard"), ConvLayer(5), ConvLayer(1))
    child = sn.extract(arch, share=True)
    with torch.no_grad():
        child.backbone.layers[0].mixer.weight.add_(1.0)
    sn.activate(arch)
    torch.testing.assert_close(child.eval()(IDS, MASK).logits, sn(IDS, MASK).logits, atol=1e-6, rtol=0)


def test_active_masks():
    sn = _supernet()
    sn.activate((AttentionLayer("abz_softsign_key_qv"), ConvLayer(3), ConvLayer(9), AttentionLayer("standard")))
    masks = sn.active_masks()
    assert set(masks) == set(sn.parameters())
    b0, b1, b2 = sn.blocks[0], sn.blocks[1], sn.blocks[2]
    assert not masks[b0.attention.v_proj.weight].any()  # the graph never reads V
    assert masks[b0.attention.q_proj.weight].all() and masks[b0.attention.out_proj.bias].all()
    assert not masks[b0.conv.in_proj.weight].any()
    assert not masks[b1.attention.q_proj.weight].any()
    expected = torch.zeros(4, 9, dtype=torch.bool)
    expected[:, 3:6] = True
    assert torch.equal(masks[b1.conv.weight], expected) and masks[b2.conv.weight].all()
    assert masks[sn.net.backbone.embeddings.word.weight].all() and masks[b0.ffn.up.weight].all()
    compact = sn.active_masks(full_as_none=True)
    assert compact[b0.ffn.up.weight] is None and compact[b1.conv.weight] is not None
    sn.activate((AttentionLayer("standard"), ConvLayer(5), ConvLayer(9), AttentionLayer("standard")))
    masks = sn.active_masks()  # masks follow the newly active child
    assert masks[b0.attention.v_proj.weight].all() and masks[b1.conv.weight][:, 2:7].all()


def test_masked_step_leaves_unused_entries_bit_identical():
    sn = _supernet().train()
    sn.activate((AttentionLayer("abz_softsign_key_qv"), ConvLayer(3), ConvLayer(5), AttentionLayer("standard")))
    opt = make_optimizer(sn, lr=1e-2)
    before = {n: p.detach().clone() for n, p in sn.named_parameters()}
    for _ in range(2):
        opt.zero_grad(set_to_none=False)  # unused entries even get (zero) grads: the masks must hold
        sn(IDS, MASK, labels=IDS).loss.backward()
        masked_step(sn, opt)
    after = dict(sn.named_parameters())
    pre = "net.backbone.layers."
    assert torch.equal(after[pre + "0.attention.v_proj.weight"], before[pre + "0.attention.v_proj.weight"])
    assert torch.equal(after[pre + "1.conv.weight"][:, [0, 1, 2, 6, 7, 8]], before[pre + "1.conv.weight"][:, [0, 1, 2, 6, 7, 8]])
    assert not torch.equal(after[pre + "1.conv.weight"][:, 3:6], before[pre + "1.conv.weight"][:, 3:6])
    assert torch.equal(after[pre + "1.attention.q_proj.weight"], before[pre + "1.attention.q_proj.weight"])
    assert not torch.equal(after[pre + "0.attention.q_proj.weight"], before[pre + "0.attention.q_proj.weight"])


def test_activate_validation():
    sn = _supernet()
    with pytest.raises(ValueError, match="layers"):
        sn.activate((ConvLayer(3),))
    with pytest.raises(ValueError, match="largest kernel"):
        sn.activate((ConvLayer(11),) * 4)
    with pytest.raises(ValueError, match="outside 'layers'"):
        sn.activate(tiny(["standard"] * 4, hidden=64))
    sn.activate(tiny(["linear", 1, "linear", 1]))
    assert sn.active_arch.layers[0].graph == library["linear"]
