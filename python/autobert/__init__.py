"""autobert: evolve BERT backbones from primitive math operations and run them fast."""
__version__ = "0.1.0"
__all__ = ["__version__"]

# With transformers >= 5 installed, the "autobert" attention implementation and the AutoBERT
# Auto* classes are registered as transformers' modules load (cheap here: nothing is imported).
from autobert.hf.registration import install as _install_hf  # noqa: E402

_install_hf()
