"""Small named architectures for CPU-sized pretraining, and ``resolve_arch`` for the CLI's ``--arch``.

The BERT sizes are Turc et al.'s compact BERTs (2019): tiny = 2 layers x 128, mini = 4 x 256,
small = 4 x 512 (heads = hidden / 64, FFN = 4 x hidden). Each ``abz-*`` model has the same
depth, width and heads with the AutoBERT-Zero layer mix of ``autobert.model.autobert_zero_base``
scaled down: about a third of the layers are LightConv (the lowest ones, kernels 3, 7, 11, 15 in
order) and the rest are the AutoBERT-Zero attention graphs in library order. Conv layers and
graphs that read only Q and K have fewer weights than standard attention, so the abz FFN width is
chosen to match the BERT model's backbone parameter count as closely as an integer allows.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

from autobert.graph import AUTOBERT_ZERO, library
from autobert.model import PRESETS, ArchConfig, AttentionLayer, ConvLayer

__all__ = ["SMALL_SIZES", "small_bert", "small_abz", "match_ffn", "ARCHS", "resolve_arch"]

#: name -> (layers, hidden); heads = hidden // 64, ffn = 4 * hidden.
SMALL_SIZES = {"tiny": (2, 128), "mini": (4, 256), "small": (4, 512)}
_CONV_KERNELS = (3, 7, 11, 15)  # the conv kernels of autobert_zero_base, bottom to top


def _sizes(size: str, vocab_size: int, max_positions: int) -> dict:
    if size not in SMALL_SIZES:
        raise ValueError(f"unknown size {size!r}; expected one of {sorted(SMALL_SIZES)}")
    layers, hidden = SMALL_SIZES[size]
    return dict(layers=layers, hidden=hidden, heads=max(1, hidden // 64), ffn=4 * hidden,
                vocab_size=vocab_size, max_positions=max_positions)


def small_bert(size: str = "mini", vocab_size: int = 30522, max_positions: int = 512, **overrides) -> ArchConfig:
    """A compact BERT: every layer standard attention."""
    s = _sizes(size, vocab_size, max_positions)
    n = s.pop("layers")
    return ArchConfig(layers=tuple(AttentionLayer(library["standard"]) for _ in range(n)), **{**s, **overrides})


def abz_layers(n: int) -> tuple:
    """AutoBERT-Zero layer mix for ``n`` layers: round(n/3) (>= 1) conv layers low, abz graphs above."""
    n_conv = max(1, round(n / 3)) if n > 1 else 0
    convs = [ConvLayer(_CONV_KERNELS[i % len(_CONV_KERNELS)]) for i in range(n_conv)]
    atts = [AttentionLayer(library[AUTOBERT_ZERO[i % len(AUTOBERT_ZERO)]]) for i in range(n - n_conv)]
    return tuple(convs + atts)


def match_ffn(arch: ArchConfig, target_parameters: int) -> ArchConfig:
    """``arch`` with the FFN width whose backbone parameter count is closest to ``target_parameters``."""
    base = arch.replace(ffn=1).num_parameters()
    per_unit = arch.replace(ffn=2).num_parameters() - base  # parameters per FFN unit (all layers)
    ffn = max(1, round((target_parameters - base) / per_unit) + 1)
    return arch.replace(ffn=ffn)


def small_abz(size: str = "mini", vocab_size: int = 30522, max_positions: int = 512, **overrides) -> ArchConfig:
    """The AutoBERT-Zero hybrid at a compact BERT's size, FFN matched to its parameter count."""
    s = _sizes(size, vocab_size, max_positions)
    n = s.pop("layers")
    arch = ArchConfig(layers=abz_layers(n), **{**s, **overrides})
    if "ffn" in overrides:
        return arch
    return match_ffn(arch, small_bert(size, vocab_size, max_positions, **overrides).num_parameters())


def _named(fn: Callable, size: str) -> Callable[..., ArchConfig]:
    return lambda **kw: fn(size, **kw)


#: Every name ``--arch`` accepts: the small models here plus ``autobert.model.PRESETS``.
ARCHS: dict[str, Callable[..., ArchConfig]] = {
    **{f"bert-{s}": _named(small_bert, s) for s in SMALL_SIZES},
    **{f"abz-{s}": _named(small_abz, s) for s in SMALL_SIZES},
    **{name: fn for name, fn in PRESETS.items() if name != "tiny"},
}


def resolve_arch(spec: str, vocab_size: int, max_positions: int = 512) -> ArchConfig:
    """An ArchConfig from a name in ``ARCHS`` (sized to ``vocab_size``) or an architecture JSON file.

    A JSON file's own vocab_size must cover ``vocab_size`` (the tokenizer's); names take it as given.
    ValueError/FileNotFoundError with the accepted names on anything else.
    """
    if spec in ARCHS:
        return ARCHS[spec](vocab_size=vocab_size, max_positions=max_positions)
    path = Path(spec)
    if not path.is_file():
        if spec.endswith(".json"):
            raise FileNotFoundError(f"architecture file not found: {spec}")
        raise ValueError(f"unknown architecture {spec!r}; expected one of {sorted(ARCHS)} or a JSON file")
    try:
        arch = ArchConfig.from_json(path.read_text(encoding="utf-8"))
    except (ValueError, json.JSONDecodeError) as e:
        raise ValueError(f"{path}: {e}") from None
    if arch.vocab_size < vocab_size:
        raise ValueError(f"{path}: vocab_size {arch.vocab_size} is smaller than the tokenizer's {vocab_size}")
    return arch
