"""autobert: evolve BERT backbones from primitive math operations and run them fast."""
__version__ = "0.1.0"
__all__ = ["__version__"]
