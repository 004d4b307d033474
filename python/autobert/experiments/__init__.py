"""Experiments that use the library end to end (each module runs with ``python -m``)."""
