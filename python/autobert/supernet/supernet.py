"""``Supernet``: the BIWS (bi-branch weight-sharing) supernet of AutoBERT-Zero.

Per layer a ``SuperBlock`` (attention branch with shared Q/K/V/O + conv branch with the largest
kernel); embeddings, FFNs, LayerNorms and the MLM head are shared by every child. ``activate``
selects a child in place (forward then runs exactly that child), ``extract`` builds a standalone
``ForMaskedLM`` with the inherited weights whose outputs equal the child's, and ``active_masks``
tells a masked optimiser (``autobert_ext.masked_adamw.MaskedAdamW``) which entries the child used.
"""
from __future__ import annotations

import logging
from typing import Iterable, Optional, Sequence, Union

import torch
from torch import nn

from autobert.model.backbone import Backbone
from autobert.model.config import ArchConfig, ConvLayer, LayerChoice
from autobert.model.conv import centred_slice
from autobert.model.heads import ForMaskedLM, MaskedLMOutput
from autobert.model.space import DEFAULT_KERNELS, SearchSpace
from autobert.supernet.blocks import SuperBlock

log = logging.getLogger(__name__)

Arch = Union[ArchConfig, Sequence[LayerChoice]]
_PREFIX = "backbone.layers."


class Supernet(nn.Module):
    """input_ids (B, N), attention_mask (B, N) or None, token_type_ids, labels (B, N) or None
    -> MaskedLMOutput of the active child.

    Args:
        base_config: sizes (hidden, heads, ffn, vocab, ...) and the initially active layers.
        kernel_sizes: conv kernels of the space; the conv branch holds the largest.
        space: the search space the samplers draw from; default: every library graph and
            ``kernel_sizes`` over ``base_config.n_layers`` layers.
    """

    def __init__(self, base_config: ArchConfig, kernel_sizes: Iterable[int] = DEFAULT_KERNELS,
                 space: Optional[SearchSpace] = None):
        super().__init__()
        kernels = tuple(sorted(set(kernel_sizes)))
        for k in kernels:
            ConvLayer(k)  # validates: odd int >= 1
        base_kernels = {lay.kernel for lay in base_config.layers if isinstance(lay, ConvLayer)}
        self.max_kernel = max((*kernels, *base_kernels), default=1)
        self.base = base_config
        self.space = space or SearchSpace(base_config.n_layers, kernel_sizes=kernels or (1,))
        if self.space.n_layers != base_config.n_layers or self.space.max_kernel > self.max_kernel:
            raise ValueError(f"space ({self.space.n_layers} layers, kernels {self.space.kernel_sizes}) does not "
                             f"fit the supernet ({base_config.n_layers} layers, max kernel {self.max_kernel})")
        blocks = nn.ModuleList(SuperBlock(base_config, self.max_kernel) for _ in base_config.layers)
        self.net = ForMaskedLM(base_config, backbone=Backbone(base_config, blocks=blocks))
        self.activate(base_config)

    @property
    def blocks(self) -> nn.ModuleList:
        return self.net.backbone.layers

    # ---- child selection ----
    def _layers(self, arch: Arch) -> tuple[LayerChoice, ...]:
        if isinstance(arch, ArchConfig):
            if arch.replace(layers=self.base.layers) != self.base:
                raise ValueError("arch differs from the supernet's base config outside 'layers' "
                                 "(sizes, vocabulary, dropout, ...); a child can differ only in its layers")
            arch = arch.layers
        layers = tuple(arch)
        if len(layers) != len(self.blocks):
            raise ValueError(f"arch has {len(layers)} layers; the supernet has {len(self.blocks)}")
        for i, layer in enumerate(layers):
            if isinstance(layer, ConvLayer) and layer.kernel > self.max_kernel:
                raise ValueError(f"layers[{i}]: kernel {layer.kernel} exceeds the supernet's largest kernel "
                                 f"{self.max_kernel}")
        return layers

    def activate(self, arch: Arch) -> None:
        """Make ``arch`` (an ArchConfig with the base sizes, or a sequence of layer choices) the active child."""
        layers = self._layers(arch)
        ArchConfig(layers=layers)  # validates every choice before anything changes
        for block, layer in zip(self.blocks, layers):
            block.activate(layer)

    @property
    def active_arch(self) -> ArchConfig:
        return self.base.replace(layers=tuple(block.active for block in self.blocks))

    def forward(self, input_ids: torch.Tensor, attention_mask: Optional[torch.Tensor] = None,
                token_type_ids: Optional[torch.Tensor] = None,
                labels: Optional[torch.Tensor] = None) -> MaskedLMOutput:
        return self.net(input_ids, attention_mask, token_type_ids, labels)

    # ---- inheritance ----
    def _source(self, child_name: str) -> torch.Tensor:
        """The supernet tensor (possibly a view) that the active child's tensor ``child_name`` inherits."""
        if not child_name.startswith(_PREFIX):
            return self.net.get_parameter(child_name)
        index, _, rest = child_name[len(_PREFIX):].partition(".")
        block = self.blocks[int(index)]
        if not rest.startswith("mixer."):
            return block.get_parameter(rest)
        name = rest[len("mixer."):]
        if name == "weight":  # the conv taps: centred slice of the largest kernel
            return block.conv.kernel_weight()
        return block.get_parameter(block.child_name(name))

    def extract(self, arch: Optional[Arch] = None, share: bool = False) -> ForMaskedLM:
        """A standalone ``ForMaskedLM`` of ``arch`` (default: the active child) with the inherited weights.

        The result computes what the supernet computes with ``arch`` active. With ``share`` its
        parameters are views of the supernet's (training one trains the other); otherwise copies.
        Leaves the previously active child active.
        """
        previous = self.active_arch
        if arch is not None:
            self.activate(arch)
        try:
            child = ForMaskedLM(self.active_arch).to(self.net.decoder_bias.device)
            with torch.no_grad():
                for name, param in list(child.named_parameters()):
                    src = self._source(name)
                    if share:
                        module_name, _, attr = name.rpartition(".")
                        setattr(child.get_submodule(module_name), attr, nn.Parameter(src.detach()))
                    else:
                        param.copy_(src)
        finally:
            self.activate(previous)
        return child.train(self.training)

    def active_masks(self, full_as_none: bool = False) -> dict[nn.Parameter, Optional[torch.Tensor]]:
        """{param: bool mask (param's shape), True = entry used by the active child}, every parameter.

        Inactive branches are all False; the conv taps are True on the centred kernel slice; a
        projection the active graph never reads is all False. With ``full_as_none`` an all-True
        mask is given as None (MaskedAdamW's "every entry"), which saves the mask memory.
        """
        masks: dict[nn.Parameter, Optional[torch.Tensor]] = {}
        for block in self.blocks:
            masks.update(block.mixer_masks())
        for p in self.parameters():
            if p not in masks:
                masks[p] = None if full_as_none else torch.ones_like(p, dtype=torch.bool)
        if full_as_none:
            masks = {p: (None if m is not None and bool(m.all()) else m) for p, m in masks.items()}
        return masks

    def conv_slice(self, layer: int) -> slice:
        """The taps of layer ``layer``'s conv weight that the active kernel uses."""
        return centred_slice(self.max_kernel, self.blocks[layer].conv.kernel)
