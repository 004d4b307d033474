"""``EnsembleSurrogate``: a BOSHNAS-style predictor with uncertainty over architecture encodings.

An ensemble of heteroscedastic networks (each predicts a mean and a log-variance, trained with the
Gaussian negative log-likelihood after a mean-squared-error warm-up) on standardised inputs and
targets. A member is a linear map plus a two-layer MLP, with dropout on its inputs and strong
weight decay: with a few dozen labels the linear part carries most of the signal and the MLP
only bends it (a plain MLP ranked held-out architectures worse, see docs/ranking.md). The prediction's variance is aleatoric (the members' mean variance) plus epistemic (the
spread of their means), as in deep ensembles; ``ucb`` is the acquisition BOSHNAS-style search
maximises. Labels are higher = better.
"""
from __future__ import annotations

import dataclasses

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

_STD_FLOOR = 1e-8  # a feature constant over the training set is centred, not divided by ~0


@dataclasses.dataclass(frozen=True)
class EnsembleConfig:
    members: int = 5            # networks in the ensemble
    width: int = 32             # hidden units per MLP layer (two hidden layers)
    epochs: int = 200           # full-batch Adam steps per member
    warmup: float = 0.5         # fraction of the epochs trained with MSE before the NLL
    lr: float = 1e-2
    weight_decay: float = 0.1
    dropout: float = 0.2        # on the (standardised) input features, while training
    seed: int = 0

    def __post_init__(self):
        for name in ("members", "width", "epochs"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ValueError(f"EnsembleConfig.{name} must be an int >= 1, got {getattr(self, name)!r}")
        for name in ("warmup", "dropout"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"EnsembleConfig.{name} must be in [0, 1], got {getattr(self, name)!r}")


def _uniform(shape: tuple, fan_in: int) -> nn.Parameter:
    bound = 1.0 / fan_in ** 0.5  # nn.Linear's default initialisation range
    return nn.Parameter(torch.empty(shape).uniform_(-bound, bound))


class _Members(nn.Module):
    """All M members at once (batched weights): x (n, F) -> (M, n, 2) [mean, log variance].

    Member m computes linear(x) + mlp(x) on its own dropout of x; batching the members makes a
    fit one Python loop over epochs instead of M of them (BOSHNAS-style search refits per query).
    """

    def __init__(self, members: int, n_in: int, width: int, dropout: float):
        super().__init__()
        self.drop = nn.Dropout(dropout)
        m = members
        self.lin_w, self.lin_b = _uniform((m, n_in, 2), n_in), _uniform((m, 1, 2), n_in)
        self.w1, self.b1 = _uniform((m, n_in, width), n_in), _uniform((m, 1, width), n_in)
        self.w2, self.b2 = _uniform((m, width, width), width), _uniform((m, 1, width), width)
        self.w3, self.b3 = _uniform((m, width, 2), width), _uniform((m, 1, 2), width)
        self.members = m

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.drop(x.expand(self.members, *x.shape))  # (M, n, F): an independent mask per member
        h = F.silu(torch.baddbmm(self.b1, x, self.w1))
        h = F.silu(torch.baddbmm(self.b2, h, self.w2))
        return torch.baddbmm(self.b3, h, self.w3) + torch.baddbmm(self.lin_b, x, self.lin_w)


class EnsembleSurrogate:
    """fit(X (k, F), y (k,)) then predict(X (m, F)) -> (mean (m,), std (m,))."""

    def __init__(self, config: EnsembleConfig = EnsembleConfig()):
        self.config = config
        self.net: "nn.Module | None" = None

    def fit(self, x: np.ndarray, y: np.ndarray) -> "EnsembleSurrogate":
        x, y = np.asarray(x, float), np.asarray(y, float)
        if x.ndim != 2 or y.shape != (x.shape[0],) or x.shape[0] < 2:
            raise ValueError(f"need X (k, F) and y (k,) with k >= 2, got {x.shape} and {y.shape}")
        self.x_mean, self.x_std = x.mean(0), np.maximum(x.std(0), _STD_FLOOR)
        self.y_mean, self.y_std = y.mean(), max(y.std(), _STD_FLOOR)
        xt = torch.tensor((x - self.x_mean) / self.x_std, dtype=torch.float32)
        yt = torch.tensor((y - self.y_mean) / self.y_std, dtype=torch.float32)
        self.net = self._train(xt, yt)
        return self

    def _train(self, x: torch.Tensor, y: torch.Tensor) -> nn.Module:
        cfg = self.config
        warm = int(cfg.warmup * cfg.epochs)
        with torch.random.fork_rng():  # initialisation and dropout masks from the seed only
            torch.manual_seed(cfg.seed)
            net = _Members(cfg.members, x.shape[1], cfg.width, cfg.dropout).train()
            opt = torch.optim.Adam(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
            for epoch in range(cfg.epochs):
                out = net(x)  # (M, k, 2)
                mean, log_var = out[..., 0], out[..., 1].clamp(-10.0, 10.0)
                if epoch < warm:
                    loss = (mean - y).square().mean()
                else:
                    loss = 0.5 * (log_var + (mean - y).square() * torch.exp(-log_var)).mean()
                opt.zero_grad()
                loss.backward()
                opt.step()
        return net.eval()

    def predict(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if self.net is None:
            raise RuntimeError("fit the surrogate before predicting")
        xt = torch.tensor((np.asarray(x, float) - self.x_mean) / self.x_std, dtype=torch.float32)
        with torch.no_grad():
            outs = self.net(xt)  # (M, m, 2)
        means, variances = outs[..., 0].double().numpy(), np.exp(outs[..., 1].clamp(-10, 10).double().numpy())
        mean = means.mean(0)
        var = variances.mean(0) + means.var(0)  # aleatoric + epistemic
        return mean * self.y_std + self.y_mean, np.sqrt(var) * self.y_std


def ucb(mean: np.ndarray, std: np.ndarray, beta: float) -> np.ndarray:
    """Upper confidence bound ``mean + beta * std`` (higher = query first)."""
    return np.asarray(mean) + beta * np.asarray(std)


def make_surrogate(kind: str, seed: int = 0, **options):
    """A surrogate by name: "ensemble" (BOSHNAS-style), "gp" or "rf" (scikit-learn baselines)."""
    if kind == "ensemble":
        return EnsembleSurrogate(EnsembleConfig(seed=seed, **options))
    from autobert.rank.sklearn_surrogate import SklearnSurrogate
    return SklearnSurrogate(kind, seed=seed, **options)
