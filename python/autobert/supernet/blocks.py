"""``SuperBlock``: one supernet layer holding both branches of the BIWS supernet.

The attention branch has Q/K/V/O projections shared by every graph; the conv branch holds the
largest kernel, and a smaller kernel is its centred slice (a view of the same storage). The
FFN and LayerNorms are shared by both branches. ``activate`` picks the branch and its graph or
kernel; the forward pass is ``Block``'s, so a child runs exactly the same arithmetic.
"""
from __future__ import annotations

import torch
from torch import nn

from autobert.graph import library, live_inputs
from autobert.model.attention import INPUTS, GraphAttention
from autobert.model.block import Block
from autobert.model.config import ArchConfig, AttentionLayer, ConvLayer, LayerChoice
from autobert.model.conv import LightConv, centred_slice


class SuperBlock(Block):
    """x (B, N, hidden), key_padding_mask (B, N) bool or None -> (B, N, hidden), through the active branch."""

    def __init__(self, config: ArchConfig, max_kernel: int):
        super().__init__(config, mixer=None)
        self.attention = GraphAttention(config.hidden, config.heads, library["standard"], projections=INPUTS)
        self.conv = LightConv(config.hidden, config.heads, kernel=max_kernel, max_kernel=max_kernel)
        self.active: LayerChoice = AttentionLayer(library["standard"])
        # Masks of the last active choice: a single-change sampler leaves most layers unchanged
        # between steps, so most blocks reuse them instead of allocating new bool tensors.
        self._mask_cache: tuple = (None, None)

    def activate(self, layer: LayerChoice) -> None:
        """Select the branch (and its graph or kernel) that ``forward`` runs."""
        if isinstance(layer, AttentionLayer):
            self.attention.set_graph(layer.graph)
        elif isinstance(layer, ConvLayer):
            self.conv.set_kernel(layer.kernel)
        else:
            raise ValueError(f"layer must be an AttentionLayer or ConvLayer, got {type(layer).__name__}")
        self.active = layer

    def active_mixer(self) -> nn.Module:
        return self.attention if isinstance(self.active, AttentionLayer) else self.conv

    def child_name(self, name: str) -> str:
        """Supernet state name of the active child's mixer tensor ``name`` (e.g. "q_proj.weight")."""
        return ("attention." if isinstance(self.active, AttentionLayer) else "conv.") + name

    def mixer_masks(self) -> dict[nn.Parameter, torch.Tensor]:
        """{param: bool mask} for both branches: True on the entries the active child uses (read-only)."""
        key = (self.active, self.conv.weight.device)
        if self._mask_cache[0] != key:
            self._mask_cache = (key, self._build_masks())
        return dict(self._mask_cache[1])

    def _build_masks(self) -> dict[nn.Parameter, torch.Tensor]:
        masks = {p: torch.zeros_like(p, dtype=torch.bool) for p in (*self.attention.parameters(),
                                                                     *self.conv.parameters())}
        if isinstance(self.active, AttentionLayer):
            used = [f"{n.lower()}_proj" for n in live_inputs(self.active.graph)] + ["out_proj"]
            for name in used:
                for p in getattr(self.attention, name).parameters():
                    masks[p].fill_(True)
        else:
            for module in (self.conv.in_proj, self.conv.out_proj):
                for p in module.parameters():
                    masks[p].fill_(True)
            masks[self.conv.weight][:, centred_slice(self.conv.max_kernel, self.active.kernel)] = True
        return masks
