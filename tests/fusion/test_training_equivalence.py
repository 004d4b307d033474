"""End to end: a tiny attention model with a searched (AutoBERT-Zero) graph trained 50 steps with
fused attention and with the eager reference: the per-step losses agree."""
import torch
import torch.nn as nn

from autobert.fusion import fused_attention
from autobert.graph import eager, library


class TinyModel(nn.Module):
    def __init__(self, graph, attend, vocab=50, hidden=32, heads=4):
        super().__init__()
        self.graph, self.attend, self.heads = graph, attend, heads
        self.emb = nn.Embedding(vocab, hidden)
        self.qkv = nn.Linear(hidden, 3 * hidden)
        self.out = nn.Linear(hidden, hidden)
        self.norm = nn.LayerNorm(hidden)
        self.head = nn.Linear(hidden, vocab)

    def forward(self, ids, mask):
        x = self.emb(ids)  # (B, N, C)
        B, N, C = x.shape
        q, k, v = self.qkv(x).view(B, N, 3, self.heads, C // self.heads).permute(2, 0, 3, 1, 4)  # 3 x (B, H, N, d)
        a = self.attend(self.graph, q, k, v, mask).transpose(1, 2).reshape(B, N, C)
        return self.head(self.norm(x + self.out(a)))


def _train(attend, steps=50):
    torch.manual_seed(0)
    model = TinyModel(library["abz_sqrt_key_qkv"], attend)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    gen = torch.Generator().manual_seed(1)
    losses = []
    for _ in range(steps):
        ids = torch.randint(0, 50, (4, 19), generator=gen)
        mask = torch.ones(4, 19, dtype=torch.bool)
        mask[1, 12:] = False
        mask[3, 5:] = False
        logits = model(ids, mask)
        target = (ids * 7 + 3) % 50  # a learnable toy task (a fixed permutation of the vocabulary)
        loss = nn.functional.cross_entropy(logits[mask], target[mask])
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses


def test_fused_and_eager_training_agree():
    fused = _train(fused_attention)
    ref = _train(eager)
    assert ref[-1] < 0.8 * ref[0], "the toy task should be learnable"
    for step, (a, b) in enumerate(zip(fused, ref)):
        assert abs(a - b) <= 1e-4 * max(1.0, abs(b)), f"step {step}: fused loss {a} vs eager {b}"
