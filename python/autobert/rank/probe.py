"""``Probe``: one architecture at random initialisation, run once forward and backward on a text batch.

Every proxy is a function of a probe. Structural proxies read only ``probe.arch``; the others
read ``probe.record``, which runs the model once (MLM loss of the masked batch, then backward)
and keeps what the proxy families need: per-layer FFN activations, each mixer's input, each
head's output and its gradient, the gradient at the embedding output, and the weights' gradients
(on ``probe.model``). So all proxies of one architecture share one forward/backward.
The model is in eval mode (no dropout) and initialised from ``seed``: the same seed, batch and
architecture give the same numbers.
"""
from __future__ import annotations

import dataclasses
import functools
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from autobert.graph import library
from autobert.model.attention import GraphAttention
from autobert.model.config import ArchConfig
from autobert.model.heads import ForMaskedLM
from autobert.model.linear_transform import LinearTransform, dct_matrix
from autobert.model.span_conv import DynamicSpanConv
from autobert.model.weighted_attention import WeightedMultiplicativeAttention, split_heads
from autobert.rank.text_batch import TextBatch
from autobert.train.mlm import masked_lm_loss


@dataclasses.dataclass
class LayerRecord:
    """What one block showed during the probe's forward and backward pass."""

    mixer: nn.Module
    mixer_input: torch.Tensor                       # (B, N, width), detached
    output: Optional[torch.Tensor] = None           # (B, N, width): the block's output, detached
    ffn_activations: list = dataclasses.field(default_factory=list)  # [(B*N, F_i)] GELU outputs, detached
    head_output: Optional[torch.Tensor] = None      # (B, N, width): per-head concatenation before W_O
    head_grad: Optional[torch.Tensor] = None        # (B, N, width): dLoss / d head_output


@dataclasses.dataclass
class Record:
    loss: float
    layers: list                       # [LayerRecord], bottom to top
    embedding_grad: torch.Tensor       # (B, N, embedding_width): dLoss / d embedding output


def build_model(arch: ArchConfig, seed: int) -> ForMaskedLM:
    """``ForMaskedLM(arch)`` initialised from ``seed`` (the global RNG is left as it was), in eval mode."""
    with torch.random.fork_rng():
        torch.manual_seed(int(seed))
        return ForMaskedLM(arch).eval()


def _head_module(mixer: nn.Module) -> nn.Module:
    """The module whose input (or, for a linear transform, output) is the heads' concatenated output."""
    return mixer if isinstance(mixer, LinearTransform) else mixer.out_proj


class Probe:
    """One architecture, its randomly initialised model and one forward/backward on ``batch``.

    ``model`` may be given (a ForMaskedLM at initialisation); otherwise it is built from ``seed``.
    ``sample_tokens``: token rows the activation and Jacobian proxies compare (evenly spaced over the
    batch); ``pca_eta``: the variance fraction W-PCA counts components up to.
    """

    def __init__(self, arch: ArchConfig, batch: TextBatch, seed: int = 0, model: Optional[ForMaskedLM] = None,
                 sample_tokens: int = 256, pca_eta: float = 0.99):
        self.arch, self.batch, self.seed = arch, batch, seed
        self.sample_tokens, self.pca_eta = sample_tokens, pca_eta
        self._model = model

    def token_rows(self, total: int) -> torch.Tensor:
        """Indices of at most ``sample_tokens`` rows out of ``total``, evenly spaced (deterministic)."""
        if total <= self.sample_tokens:
            return torch.arange(total)
        return torch.linspace(0, total - 1, self.sample_tokens).round().long()

    @property
    def model(self) -> ForMaskedLM:
        if self._model is None:
            self._model = build_model(self.arch, self.seed)
        return self._model

    @functools.cached_property
    def record(self) -> Record:
        model = self.model
        layers: list[LayerRecord] = []
        store: dict = {}
        handles = []
        for block in model.backbone.layers:
            rec = LayerRecord(mixer=block.mixer, mixer_input=torch.empty(0))
            layers.append(rec)
            handles.append(block.mixer.register_forward_hook(_keep_input(rec)))
            handles.append(block.register_forward_hook(_keep_output(rec)))
            for linear in (block.ffn.up, *block.ffn.inner):
                handles.append(linear.register_forward_hook(_keep_activation(rec)))
            handles.append(_head_hook(block.mixer, rec))
        handles.append(model.backbone.embeddings.register_forward_hook(_keep_grad(store, "embedding")))
        try:
            model.zero_grad(set_to_none=True)
            loss = masked_lm_loss(model, self.batch.input_ids, self.batch.labels)
            loss.backward()
        finally:
            for h in handles:
                h.remove()
        return Record(loss=float(loss.detach()), layers=layers, embedding_grad=store["embedding"])


def _keep_input(rec: LayerRecord):
    def hook(module, args, output):
        rec.mixer_input = args[0].detach()
    return hook


def _keep_output(rec: LayerRecord):
    def hook(module, args, output):
        rec.output = output.detach()
    return hook


def _keep_activation(rec: LayerRecord):
    def hook(module, args, output):
        rec.ffn_activations.append(F.gelu(output.detach()).reshape(-1, output.shape[-1]))
    return hook


def _keep_grad(store: dict, key: str):
    def hook(module, args, output):
        if output.requires_grad:
            output.register_hook(lambda g: store.__setitem__(key, g.detach()))
    return hook


def _head_hook(mixer: nn.Module, rec: LayerRecord):
    module = _head_module(mixer)

    def keep(tensor: torch.Tensor) -> None:
        rec.head_output = tensor.detach()
        if tensor.requires_grad:
            tensor.register_hook(lambda g: setattr(rec, "head_grad", g.detach()))

    if module is mixer:  # linear transform: its output is the heads' concatenation
        return module.register_forward_hook(lambda m, args, out: keep(out))
    return module.register_forward_hook(lambda m, args, out: keep(args[0]))


def attention_like(mixer: nn.Module, x: torch.Tensor) -> Optional[torch.Tensor]:
    """Each head's mixing weights over positions for input x (B, N, width), under no_grad:
    (B, H, N, N) attention probabilities for SDP / WMA; (B, N, H, k) dynamic taps for DSC; the
    (N, N) sequence-axis matrix of a DFT / DCT, broadcast as (1, 1, N, N); None for other mixers."""
    with torch.no_grad():
        if isinstance(mixer, WeightedMultiplicativeAttention):
            q, k, _ = mixer.queries_keys_values(x)
        elif isinstance(mixer, GraphAttention) and mixer.graph == library["standard"]:
            q, k = split_heads(mixer.q_proj(x), mixer.heads), split_heads(mixer.k_proj(x), mixer.heads)
        elif isinstance(mixer, DynamicSpanConv):
            return mixer.taps(x)
        elif isinstance(mixer, LinearTransform):
            n = x.shape[1]
            if mixer.kind == "dct":
                return dct_matrix(n, x.dtype)[None, None]
            return torch.fft.fft(torch.eye(n, dtype=x.dtype), norm="ortho").real[None, None]
        else:
            return None
        return torch.softmax(q @ k.transpose(-1, -2) / q.shape[-1] ** 0.5, dim=-1)  # (B, H, N, N)
