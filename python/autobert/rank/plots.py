"""Figures of a rank run (matplotlib, Agg backend): proxy vs label scatter and rank vs rank, one panel per proxy."""
from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")  # files only: no display needed (servers, CI)
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from autobert.search.rankcorr import average_ranks  # noqa: E402

_COLS = 4


def _grid(n: int):
    rows = max(1, math.ceil(n / _COLS))
    fig, axes = plt.subplots(rows, _COLS, figsize=(3.2 * _COLS, 2.8 * rows), squeeze=False)
    for ax in axes.flat[n:]:
        ax.axis("off")
    return fig, axes.flat


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def proxy_scatter(table: Mapping[str, Sequence[float]], labels: Sequence[float], metrics: Mapping[str, dict],
                  path: "str | os.PathLike", label_name: str = "GLUE") -> Path:
    """One panel per proxy: its value (x, symlog when it spans decades) against the label (y)."""
    fig, axes = _grid(len(table))
    for ax, (name, values) in zip(axes, table.items()):
        x = np.asarray(values, float)
        ok = np.isfinite(x)
        ax.scatter(x[ok], np.asarray(labels, float)[ok], s=5, alpha=0.5)
        if ok.any() and np.nanmin(np.abs(x[ok])) > 0 and np.nanmax(np.abs(x[ok])) / np.nanmin(np.abs(x[ok])) > 100:
            ax.set_xscale("symlog")
        ax.set_title(f"{name}  tau {metrics[name]['kendall_tau']:+.2f}", fontsize=9)
        ax.set_ylabel(label_name, fontsize=8)
        ax.tick_params(labelsize=7)
    return _save(fig, Path(path))


def rank_vs_rank(table: Mapping[str, Sequence[float]], labels: Sequence[float], metrics: Mapping[str, dict],
                 path: "str | os.PathLike", label_name: str = "GLUE") -> Path:
    """One panel per proxy: rank by the proxy (x) against rank by the label (y); 1 = worst."""
    fig, axes = _grid(len(table))
    label_ranks = average_ranks(labels)
    for ax, (name, values) in zip(axes, table.items()):
        x = np.nan_to_num(np.asarray(values, float), nan=-np.inf)
        ax.scatter(average_ranks(x), label_ranks, s=5, alpha=0.5)
        ax.plot([1, len(x)], [1, len(x)], color="gray", lw=0.8)
        ax.set_title(f"{name}  rho {metrics[name]['spearman_rho']:+.2f}", fontsize=9)
        ax.set_xlabel("proxy rank", fontsize=8)
        ax.set_ylabel(f"{label_name} rank", fontsize=8)
        ax.tick_params(labelsize=7)
    return _save(fig, Path(path))


def regret_curves(strategies: Mapping[str, dict], path: "str | os.PathLike") -> Path:
    """Mean regret vs queries per strategy, with its 95% CI band."""
    fig, ax = plt.subplots(figsize=(6.5, 4.0))
    for name, s in strategies.items():
        q = np.arange(1, len(s["mean"]) + 1)
        ax.plot(q, s["mean"], label=f"{name} ({s['final_regret']:.2f})")
        ax.fill_between(q, s["ci_low"], s["ci_high"], alpha=0.2)
    ax.set_xlabel("label queries")
    ax.set_ylabel("regret (best GLUE - best found)")
    ax.set_yscale("symlog", linthresh=0.1)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, Path(path))
