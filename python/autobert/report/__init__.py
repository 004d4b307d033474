"""Plots and an HTML report of search runs (``autobert report RUN_DIR``)."""
from autobert.report.html import write_report

__all__ = ["write_report"]
