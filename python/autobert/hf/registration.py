"""Registering autobert with transformers: the ``"autobert"`` attention implementation and mask
function, ``AutoConfig`` / ``AutoModel*`` / ``AutoTokenizer`` for model type ``"autobert"``.

``import autobert`` calls ``install()``. Importing transformers' model machinery takes seconds,
so autobert does not do it itself: each registration runs as soon as the transformers module it
extends has been imported (at once for those already imported), e.g. the ``AutoModel`` classes
when ``transformers.models.auto.modeling_auto`` is. This module imports nothing from transformers
at import time, and nothing here ever raises into the user's import: a registration that fails
is logged. Without transformers >= 5 nothing is registered (``autobert.hf`` then raises
ImportError with the reason when used).
"""
from __future__ import annotations

import importlib.abc
import importlib.metadata
import logging
import sys
from typing import Callable, Optional

log = logging.getLogger(__name__)

MIN_TRANSFORMERS = 5
ATTN_IMPLEMENTATION = "autobert"  # no "/", ":", "flash", "sdpa", "flex" or "paged": transformers gives those meaning


def transformers_version() -> Optional[str]:
    """The installed transformers version, without importing it; None when it is not installed."""
    try:
        return importlib.metadata.version("transformers")
    except importlib.metadata.PackageNotFoundError:
        return None


def _major(version: str) -> int:
    head = version.split(".", 1)[0]
    return int(head) if head.isdigit() else 0


def require_transformers() -> None:
    """ImportError naming the problem unless transformers >= 5 is installed."""
    found = transformers_version()
    if found is None or _major(found) < MIN_TRANSFORMERS:
        raise ImportError(f"autobert.hf needs transformers >= {MIN_TRANSFORMERS} (found "
                          f"{found or 'none'}); pip install 'transformers>={MIN_TRANSFORMERS}'")


def register_config() -> None:
    from transformers import AutoConfig

    from autobert.hf.config import AutoBertConfig
    AutoConfig.register(AutoBertConfig.model_type, AutoBertConfig, exist_ok=True)


def register_models() -> None:
    from transformers import AutoModel, AutoModelForMaskedLM, AutoModelForSequenceClassification

    from autobert.hf.config import AutoBertConfig
    from autobert.hf.modeling import AutoBertForMaskedLM, AutoBertForSequenceClassification, AutoBertModel
    for auto, cls in ((AutoModel, AutoBertModel), (AutoModelForMaskedLM, AutoBertForMaskedLM),
                      (AutoModelForSequenceClassification, AutoBertForSequenceClassification)):
        auto.register(AutoBertConfig, cls, exist_ok=True)


def register_tokenizer() -> None:
    """A model folder holds BERT's vocab.txt (or tokenizer.json): BERT's WordPiece tokenizer reads it."""
    from transformers import AutoTokenizer, BertTokenizer

    from autobert.hf.config import AutoBertConfig
    AutoTokenizer.register(AutoBertConfig, tokenizer_class=BertTokenizer, exist_ok=True)


def register_attention() -> None:
    from transformers import AttentionInterface, AttentionMaskInterface

    from autobert.hf.attention import graph_attention_forward
    from autobert.hf.masks import key_padding_mask_interface
    AttentionInterface.register(ATTN_IMPLEMENTATION, graph_attention_forward)
    # Without a mask function of the same name, transformers builds no mask at all for a custom
    # implementation: padding would be silently dropped.
    AttentionMaskInterface.register(ATTN_IMPLEMENTATION, key_padding_mask_interface)


#: transformers module -> the registration that needs it (and only modules it imports first).
REGISTRATIONS: dict[str, Callable[[], None]] = {
    "transformers.models.auto.configuration_auto": register_config,
    "transformers.models.auto.modeling_auto": register_models,
    "transformers.models.auto.tokenization_auto": register_tokenizer,
    "transformers.modeling_utils": register_attention,
}


def register() -> None:
    """Every registration now (imports the transformers modules they extend); idempotent."""
    require_transformers()
    for fn in REGISTRATIONS.values():
        fn()


def _run(name: str, fn: Callable[[], None]) -> None:
    try:
        fn()
    except Exception as e:  # never break the user's import of transformers
        log.warning("autobert: registering with %s failed (%s: %s); call autobert.hf.register() to see why",
                    name, type(e).__name__, e)


class _AfterImport(importlib.abc.MetaPathFinder):
    """Runs ``callbacks[name]`` right after module ``name`` has been executed by its own loader."""

    def __init__(self, callbacks: dict[str, Callable[[], None]]):
        self.callbacks = dict(callbacks)

    def find_spec(self, name, path, target=None):
        if name not in self.callbacks:
            return None
        spec = next((s for s in (_find(f, name, path, target) for f in sys.meta_path if f is not self)
                     if s is not None), None)
        if spec is None or not hasattr(spec.loader, "exec_module"):
            return spec
        spec.loader = _CallbackLoader(spec.loader, lambda: self._fire(name))
        return spec

    def _fire(self, name: str) -> None:
        callback = self.callbacks.pop(name, None)
        if not self.callbacks and self in sys.meta_path:
            sys.meta_path.remove(self)
        if callback is not None:
            _run(name, callback)


def _find(finder, name, path, target):
    find = getattr(finder, "find_spec", None)
    return None if find is None else find(name, path, target)


class _CallbackLoader(importlib.abc.Loader):
    """The module's own loader, then ``after()``; everything else is the wrapped loader's."""

    def __init__(self, loader, after: Callable[[], None]):
        self._loader, self._after = loader, after

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module):
        self._loader.exec_module(module)
        self._after()

    def __getattr__(self, name):  # get_source, get_filename, ... (inspect and tracebacks use them)
        return getattr(self._loader, name)


def install() -> None:
    """Register with transformers as its modules load (at once for those already imported).
    Does nothing without transformers >= 5; never raises."""
    try:
        found = transformers_version()
        if found is None or _major(found) < MIN_TRANSFORMERS:
            log.debug("transformers %s: not registering autobert (needs >= %d)", found, MIN_TRANSFORMERS)
            return
        pending = {}
        for name, fn in REGISTRATIONS.items():
            if name in sys.modules:
                _run(name, fn)
            else:
                pending[name] = fn
        if pending and not any(isinstance(f, _AfterImport) for f in sys.meta_path):
            sys.meta_path.insert(0, _AfterImport(pending))
    except Exception as e:  # importing autobert never fails
        log.warning("autobert: could not prepare the transformers registration: %s", e)
