"""Where a search builds and trains its supernet and candidates: ``SearchConfig.device``.

"auto" is CUDA when this process sees a GPU, else the CPU (as ``autobert pretrain`` chooses);
"cpu", "cuda" and "cuda:N" are explicit. An explicit CUDA request on a machine without CUDA is
an error raised before the run folder is touched, never a silent fall-back to the CPU. A Ray
evaluator that reserved GPUs sees only those (Ray sets CUDA_VISIBLE_DEVICES), so it is pinned to
the first one it was given.
"""
from __future__ import annotations

import os
import re

import torch

DEVICE_PATTERN = re.compile(r"^(auto|cpu|cuda(:\d+)?)$")


def check_device_name(device, where: str = "SearchConfig.device") -> None:
    """Raise ValueError unless ``device`` is "auto", "cpu", "cuda" or "cuda:N" (syntax only)."""
    if not isinstance(device, str) or not DEVICE_PATTERN.match(device):
        raise ValueError(f"{where} must be 'auto', 'cpu', 'cuda' or 'cuda:N', got {device!r}")


def resolve_device(device: str, where: str = "SearchConfig.device") -> torch.device:
    """The torch.device a search runs on; ValueError naming ``where`` when CUDA is asked for but absent."""
    check_device_name(device, where)
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            visible = os.environ.get("CUDA_VISIBLE_DEVICES")
            hint = f" (CUDA_VISIBLE_DEVICES={visible!r})" if visible is not None else ""
            raise ValueError(f"{where} is {device!r} but this machine has no usable CUDA device{hint}; "
                             f"torch {torch.__version__} reports torch.cuda.is_available() = False. "
                             f"Use device 'cpu' or 'auto'.")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(f"{where} is {device!r} but only {torch.cuda.device_count()} CUDA device(s) are "
                             f"visible")
    return dev


def worker_device(gpus: float) -> torch.device:
    """The device of an evaluator on a Ray worker that reserved ``gpus`` GPUs: its own GPU, or the CPU.

    With GPUs reserved, Ray restricts the worker to them (CUDA_VISIBLE_DEVICES), so ``cuda:0`` is
    the worker's own GPU whatever the driver's device index; a worker without GPUs never touches
    one, even on a GPU node (it would share a device it did not reserve).
    """
    if gpus <= 0:
        return torch.device("cpu")
    dev = resolve_device("cuda:0", f"a Ray evaluator with num_gpus={gpus}")
    torch.cuda.set_device(dev)
    return dev
