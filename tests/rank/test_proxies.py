"""Every registered proxy on a tiny heterogeneous model against a value computed here by another
route (autograd instead of hooks, a hand-written forward pass, numpy / scipy linear algebra),
plus known-answer checks of the building blocks."""
import math

import numpy as np
import pytest
import scipy.fft
import torch
import torch.nn.functional as F

from autobert.model import FlexiLayer, tiny
from autobert.model.width import OUTPUT
from autobert.rank import PROXIES, Probe, TextBatch, build_model, proxy_score, score_architecture
from autobert.rank.proxies_activation import effective_rank, pca_dims
from autobert.train.mlm import masked_lm_loss

ARCH = tiny([FlexiLayer("sdp", ffn=(48, 24)), FlexiLayer("wma", hidden=24, heads=3), FlexiLayer("dsc(3)"),
             FlexiLayer("dct", heads=2), FlexiLayer("dft", hidden=40, heads=5)], embedding_size=16, dropout=0.0)
SEED, B, N = 3, 4, 9


@pytest.fixture(scope="module")
def batch():
    g = torch.Generator().manual_seed(0)
    text = torch.randint(5, 97, (B, N), generator=g)
    labels = torch.full((B, N), -100)
    inputs = text.clone()
    for b, n in [(0, 1), (1, 4), (2, 7), (3, 2), (3, 5)]:  # masked positions chosen by hand
        labels[b, n], inputs[b, n] = text[b, n], 4
    return TextBatch(inputs, labels, text)


@pytest.fixture(scope="module")
def scores(batch):
    return score_architecture(ARCH, batch, seed=SEED)


@pytest.fixture(scope="module")
def manual(batch):
    """A hand-written forward pass of the same model: activations, mixer inputs, outputs, gradients."""
    model = build_model(ARCH, SEED)
    bb = model.backbone
    x = bb.embeddings(batch.input_ids)
    emb = x
    emb.retain_grad()
    acts, inputs, outputs = [], [], []
    for i, block in enumerate(bb.layers):
        x = bb.projections[str(i)](x) if str(i) in bb.projections else x
        inputs.append(x.detach())
        h = block.mix_norm(x + block.mixer(x))
        a = [F.gelu(block.ffn.up(h))]
        for layer in block.ffn.inner:
            a.append(F.gelu(layer(a[-1])))
        acts.append([t.detach().reshape(-1, t.shape[-1]).double().numpy() for t in a])
        x = block.ffn_norm(h + block.ffn.down(a[-1]))
        outputs.append(x.detach().reshape(-1, x.shape[-1]).double().numpy())
    x = bb.projections[OUTPUT](x) if OUTPUT in bb.projections else x
    sel = batch.labels != -100
    logits = F.linear(model.transform_norm(F.gelu(model.transform(x[sel]))), bb.embeddings.word.weight,
                      model.decoder_bias)
    loss = F.cross_entropy(logits, batch.labels[sel])
    loss.backward()
    torch.testing.assert_close(loss, masked_lm_loss(build_model(ARCH, SEED), batch.input_ids, batch.labels))
    return dict(model=model, acts=acts, inputs=inputs, outputs=outputs, emb_grad=emb.grad.double().numpy())


def _np(t):
    return t.detach().double().numpy()


def test_registry_holds_the_issue_proxies():
    assert {"params", "flops", "depth", "synaptic_diversity", "synaptic_saliency", "head_importance",
            "head_confidence", "naswot", "activation_distance", "jacobian_cov", "wpca"} <= set(PROXIES)
    assert all(p.family in ("structure", "gradient", "activation") and p.description for p in PROXIES.values())


def test_structure_proxies(scores, batch):
    params = sum(p.numel() for p in build_model(ARCH, 0).backbone.parameters())
    assert scores["params"] == params and scores["depth"] == 5
    assert scores["flops"] == ARCH.flops(N)
    assert scores["depth_params"] == pytest.approx(5 + params / 1e9, abs=1e-12)
    assert scores["expressivity"] == pytest.approx(3 ** 5 * math.log2(24) + params / 1e9, abs=1e-9)


def _layer_weights(model):
    bb = model.backbone
    return [p for part in (*bb.layers, *bb.projections.values()) for p in part.parameters() if p.dim() >= 2]


def test_gradient_proxies(scores, manual):
    model = manual["model"]
    weights = _layer_weights(model)
    assert scores["snip"] == pytest.approx(sum(np.abs(_np(w) * _np(w.grad)).sum() for w in weights), rel=1e-5)
    assert scores["grad_norm"] == pytest.approx(math.sqrt(sum((_np(w.grad) ** 2).sum() for w in weights)), rel=1e-5)
    diversity = saliency = 0.0
    for block in model.backbone.layers:
        for lin in (m for m in block.mixer.modules() if isinstance(m, torch.nn.Linear)):
            diversity += np.linalg.norm(_np(lin.weight), "nuc") * np.linalg.norm(_np(lin.weight.grad), "nuc")
        for lin in (block.ffn.up, *block.ffn.inner, block.ffn.down):
            saliency += np.abs(_np(lin.weight) * _np(lin.weight.grad)).sum()
    assert scores["synaptic_diversity"] == pytest.approx(diversity, rel=1e-5)
    assert scores["synaptic_saliency"] == pytest.approx(saliency, rel=1e-5)


def test_jacobian_cov(scores, manual):
    rows = manual["emb_grad"].reshape(B, -1)
    v = np.clip(np.linalg.eigvalsh(np.corrcoef(rows)), 0, None)
    assert scores["jacobian_cov"] == pytest.approx(-np.sum(np.log(v + 1e-5) + 1 / (v + 1e-5)), rel=1e-6)


class _Gate(torch.nn.Module):
    """Multiplies each head's slice of its input (or output) by a gate xi_h = 1."""

    def __init__(self, inner, heads, on_output):
        super().__init__()
        self.inner, self.heads, self.on_output = inner, heads, on_output
        self.xi = torch.ones(heads, requires_grad=True)

    def _gate(self, t):
        b, n, c = t.shape
        return (t.view(b, n, self.heads, c // self.heads) * self.xi[:, None]).view(b, n, c)

    def forward(self, x, *rest):
        return self._gate(self.inner(x, *rest)) if self.on_output else self.inner(self._gate(x))


def test_head_importance_equals_gate_gradients(scores, batch):
    model = build_model(ARCH, SEED)
    gates = []
    for block in model.backbone.layers:
        mixer = block.mixer
        if hasattr(mixer, "out_proj"):
            mixer.out_proj = _Gate(mixer.out_proj, mixer.heads, on_output=False)
            gates.append(mixer.out_proj.xi)
        else:  # linear transform: its output is the heads' concatenation
            block.mixer = _Gate(mixer, mixer.heads, on_output=True)
            gates.append(block.mixer.xi)
    loss = masked_lm_loss(model, batch.input_ids, batch.labels)
    grads = torch.autograd.grad(loss, gates)
    assert scores["head_importance"] == pytest.approx(float(sum(g.abs().sum() for g in grads)), rel=1e-5)


def test_activation_proxies(scores, manual):
    acts = [a for layer in manual["acts"] for a in layer]  # B * N = 36 rows <= 256: every token is used
    codes = np.concatenate([(a > 0).astype(float) for a in acts], axis=1)
    k = codes @ codes.T + (1 - codes) @ (1 - codes).T
    assert scores["naswot"] == pytest.approx(np.linalg.slogdet(k + np.eye(len(k)))[1], rel=1e-9)
    distance = sum(((a > 0) @ (a > 0).T.astype(float) + (a <= 0) @ (a <= 0).T.astype(float)).sum() for a in acts)
    assert scores["activation_distance"] == distance
    dims = 0
    for a in acts:
        c = a - a.mean(0)
        ev = np.sort(np.linalg.eigvalsh(c.T @ c))[::-1]
        dims += int(np.argmax(np.cumsum(ev) / ev.sum() >= 0.99 - 1e-12)) + 1
    assert scores["wpca"] == pytest.approx(scores["params"] * dims)
    ranks = []
    for out in manual["outputs"]:
        s = np.linalg.svd(out - out.mean(0), compute_uv=False)
        p = s / s.sum()
        ranks.append(np.exp(-(p[p > 0] * np.log(p[p > 0])).sum()))
    assert scores["effective_rank"] == pytest.approx(sum(ranks), rel=1e-6)


def test_head_confidence(scores, manual):
    model = manual["model"]
    values = []
    for block, x in zip(model.backbone.layers, manual["inputs"]):
        mixer = block.mixer
        kind = type(mixer).__name__
        if kind in ("GraphAttention", "WeightedMultiplicativeAttention"):
            b, n, c = x.shape
            h = mixer.heads
            q = _np(mixer.q_proj(x)).reshape(b, n, h, c // h).transpose(0, 2, 1, 3)
            k = _np(mixer.k_proj(x)).reshape(b, n, h, c // h).transpose(0, 2, 1, 3)
            if kind == "WeightedMultiplicativeAttention":
                q = np.einsum("bhnd,hde->bhne", q, _np(mixer.weight))
            s = q @ k.transpose(0, 1, 3, 2) / math.sqrt(c // h)
            p = np.exp(s - s.max(-1, keepdims=True))
            values.append((p / p.sum(-1, keepdims=True)).max(-1).mean())
        elif kind == "DynamicSpanConv":
            values.append(_np(mixer.taps(x)).max(-1).mean())
        elif mixer.kind == "dct":
            values.append(np.abs(scipy.fft.dct(np.eye(N), norm="ortho", axis=0)).max(-1).mean())
        else:
            values.append(np.abs(np.fft.fft(np.eye(N), norm="ortho").real).max(-1).mean())
    assert scores["head_confidence"] == pytest.approx(np.mean(values), rel=1e-5)


def test_model_and_batch_form_equals_architecture_form(scores, batch):
    for name in ("snip", "naswot", "params"):
        assert proxy_score(name, build_model(ARCH, SEED), batch) == pytest.approx(scores[name], rel=1e-6)
    assert score_architecture(ARCH, batch, seed=SEED) == scores  # deterministic


def test_one_forward_backward_per_architecture(batch, monkeypatch):
    calls = []
    import autobert.rank.probe as probe_module
    real = probe_module.masked_lm_loss
    monkeypatch.setattr(probe_module, "masked_lm_loss", lambda *a, **k: calls.append(1) or real(*a, **k))
    score_architecture(ARCH, batch, seed=SEED)
    assert len(calls) == 1
    calls.clear()
    score_architecture(ARCH, batch, seed=SEED, names=["params", "depth", "expressivity"])
    assert not calls  # structural proxies never build or run the model


def test_known_answers():
    x = torch.tensor([[3.0, 0.0], [-3.0, 0.0], [0.0, 1.0], [0.0, -1.0]], dtype=torch.float64)  # variances 18 : 2
    assert pca_dims(x, 0.85) == 1 and pca_dims(x, 0.95) == 2 and pca_dims(torch.zeros(3, 2), 0.9) == 0
    eye = torch.eye(6, dtype=torch.float64)
    assert effective_rank(torch.cat([eye, -eye])) == pytest.approx(6.0)
    probe = Probe(ARCH, TextBatch(*(torch.zeros(2, 3, dtype=torch.long),) * 3), sample_tokens=4)
    assert probe.token_rows(3).tolist() == [0, 1, 2] and probe.token_rows(10).tolist() == [0, 3, 6, 9]
