"""Hugging Face style model folders: ``config.json`` + ``model.safetensors``.

config.json holds the architecture JSON, the head description and a format version; the weights
are safetensors only, so loading never unpickles. The safetensors header carries a sha256 of the
tensor data, so a file whose bytes were changed is refused rather than silently loaded. Every
problem raises ``CheckpointError`` (a ValueError) naming the file and what is wrong.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Optional

import torch
from torch import nn

from autobert.model.atomic import atomic_write
from autobert.model.config import ArchConfig
from autobert.model.heads import build_head

log = logging.getLogger(__name__)

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
FORMAT = "autobert"
FORMAT_VERSION = 1
_DIGEST_KEY = "autobert_sha256"


class CheckpointError(ValueError):
    """A model folder that cannot be loaded; ``path`` is the offending file."""

    def __init__(self, path: "str | os.PathLike", problem: str):
        self.path, self.problem = str(path), problem
        super().__init__(f"{path}: {problem}")


class CheckpointNotFoundError(CheckpointError, FileNotFoundError):
    """The folder or one of its files does not exist."""


def tensor_digest(state: dict[str, torch.Tensor]) -> str:
    """sha256 over (name, dtype, shape, bytes) of every tensor, in name order."""
    h = hashlib.sha256()
    for name in sorted(state):
        t = state[name].detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def _atomic_write(path: Path, write) -> None:
    """Write through a synced temporary file then rename, so a crash never leaves half a file under ``path``."""
    atomic_write(path, write)


def write_weights(state: dict[str, torch.Tensor], path: "str | os.PathLike") -> None:
    """Write ``state`` as safetensors to ``path`` (atomically), with the sha256 of its tensors in the header."""
    from safetensors.torch import save_file

    state = {k: v.detach().cpu().contiguous() for k, v in state.items()}
    meta = {"format": "pt", _DIGEST_KEY: tensor_digest(state)}
    _atomic_write(Path(path), lambda p: save_file(state, str(p), metadata=meta))


def save_pretrained(model: nn.Module, directory: "str | os.PathLike") -> None:
    """Write ``model`` (a ForMaskedLM or ForSequenceClassification) to ``directory``."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    state = model.state_dict()
    write_weights(state, directory / WEIGHTS_NAME)
    doc = {"format": FORMAT, "format_version": FORMAT_VERSION, "model_type": "autobert",
           "architecture": model.config.to_dict(), "head": model.head_config()}
    text = json.dumps(doc, indent=2, sort_keys=True) + "\n"
    _atomic_write(directory / CONFIG_NAME, lambda p: p.write_text(text))
    log.info("saved %s (%d tensors) to %s", type(model).__name__, len(state), directory)


def _read_config(path: Path) -> tuple[ArchConfig, dict]:
    if not path.is_file():
        raise CheckpointNotFoundError(path, "no such file (a model folder needs config.json and model.safetensors)")
    try:
        doc = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError, RecursionError) as e:
        raise CheckpointError(path, f"is not valid JSON: {e}") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise CheckpointError(path, f"is not an autobert config ('format' must be {FORMAT!r})")
    if doc.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(path, f"format_version is {doc.get('format_version')!r}; "
                                    f"this autobert reads {FORMAT_VERSION}")
    try:
        arch = ArchConfig.from_dict(doc.get("architecture"))
    except ValueError as e:
        raise CheckpointError(path, f"bad architecture: {e}") from None
    return arch, doc.get("head")


def _read_weights(path: Path) -> tuple[dict[str, torch.Tensor], dict]:
    from safetensors import SafetensorError, safe_open
    from safetensors.torch import load_file

    if not path.is_file():
        raise CheckpointNotFoundError(path, "no such file (a model folder needs config.json and model.safetensors)")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
        state = load_file(str(path))
    except (SafetensorError, OSError, RuntimeError, ValueError) as e:
        raise CheckpointError(path, f"corrupt or truncated safetensors file (header or data unreadable): {e}") from None
    return state, meta


def _check_state(path: Path, state: dict, meta: dict, expected: dict) -> None:
    """Names, shapes and (when recorded) the digest of the tensors against the model's state_dict."""
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        parts = [f"missing tensors {_few(missing)}" if missing else "",
                 f"unexpected tensors {_few(unexpected)}" if unexpected else ""]
        raise CheckpointError(path, "does not match the architecture in config.json: "
                                    + "; ".join(p for p in parts if p))
    for name, t in state.items():
        if tuple(t.shape) != tuple(expected[name].shape):
            raise CheckpointError(path, f"tensor {name!r} has shape {tuple(t.shape)}; the architecture in "
                                        f"config.json needs {tuple(expected[name].shape)}")
        if not t.is_floating_point():
            raise CheckpointError(path, f"tensor {name!r} has dtype {t.dtype}; expected a floating-point tensor")
    _check_digest(path, state, meta)


def _check_digest(path: Path, state: dict, meta: dict) -> None:
    digest = meta.get(_DIGEST_KEY)
    if digest is not None and digest != tensor_digest(state):
        raise CheckpointError(path, "tensor data does not match the sha256 recorded in its header "
                                    "(the file was modified or corrupted)")


def verify_weights(path: "str | os.PathLike") -> dict[str, torch.Tensor]:
    """Read a safetensors file and check it against the sha256 in its header (when recorded);
    returns its tensors. CheckpointError when it is unreadable or was modified."""
    path = Path(path)
    state, meta = _read_weights(path)
    _check_digest(path, state, meta)
    return state


def _few(names: list[str], k: int = 5) -> str:
    return ", ".join(names[:k]) + (f" and {len(names) - k} more" if len(names) > k else "")


def from_pretrained(directory: "str | os.PathLike", expected: Optional[type] = None,
                    map_location: "str | torch.device" = "cpu") -> nn.Module:
    """Load a model folder written by ``save_pretrained``; returns it in eval mode.

    Args:
        expected: a head class; CheckpointError when the folder holds a different head.
        map_location: device to put the model on.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise CheckpointNotFoundError(directory, "no such model folder")
    config_path, weights_path = directory / CONFIG_NAME, directory / WEIGHTS_NAME
    arch, head = _read_config(config_path)
    try:
        model = build_head(arch, head)
    except ValueError as e:
        raise CheckpointError(config_path, f"bad head: {e}") from None
    if expected is not None and not isinstance(model, expected):
        raise CheckpointError(config_path, f"holds a {type(model).__name__}, not a {expected.__name__}")
    state, meta = _read_weights(weights_path)
    _check_state(weights_path, state, meta, model.state_dict())
    model.load_state_dict(state, strict=True)
    log.info("loaded %s from %s", type(model).__name__, directory)
    return model.to(map_location).eval()
