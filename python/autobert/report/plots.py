"""The report's figures (matplotlib, Agg backend); each function returns PNG bytes."""
from __future__ import annotations

import io
from typing import Sequence

import matplotlib

matplotlib.use("Agg")  # files only: no display needed (servers, CI)
import matplotlib.pyplot as plt  # noqa: E402

from autobert.model.config import ArchConfig, AttentionLayer  # noqa: E402
from autobert.report.dag import draw_graph  # noqa: E402
from autobert.search.results import pareto_front  # noqa: E402

_TOP_ARMS = 8  # op-priority plot: the arms that ever reached the highest probability


def to_png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def best_fitness(runs: Sequence) -> bytes:
    """Best fitness so far vs evaluations, one line per run, coloured by strategy."""
    fig, ax = plt.subplots(figsize=(6.5, 3.8))
    colours = {"opnas": "tab:red", "evolution": "tab:blue", "random": "tab:gray"}
    for run in runs:
        xs, ys = run.best_curve()
        if xs:
            ax.step(xs, ys, where="post", color=colours.get(run.strategy), alpha=0.8,
                    label=f"{run.name} ({run.strategy})")
    pop = runs[0].config.evolution.population_size if runs else 1
    ax.set_xlabel(f"candidates evaluated (one generation = {pop} evaluations)")
    ax.set_ylabel("best held-out loss so far")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    return to_png(fig)


def op_priority(run) -> bytes:
    """Sampling probability of the leading arms after each op-priority update."""
    fig, ax = plt.subplots(figsize=(6.5, 3.8))
    hist = run.priority_history
    if hist:
        peak = {arm: max(h["prob"][arm] for h in hist) for arm in hist[0]["prob"]}
        for arm in sorted(peak, key=peak.get, reverse=True)[:_TOP_ARMS]:
            ax.plot([h["n"] for h in hist], [h["prob"][arm] for h in hist], label=arm)
        ax.legend(fontsize=7, ncol=2)
    else:
        ax.text(0.5, 0.5, "no mutation results (random strategy or initial population only)",
                ha="center", transform=ax.transAxes)
    ax.set_xlabel("mutations with a result (N)")
    ax.set_ylabel("sampling probability")
    ax.set_title(f"operation priority: {run.name}", fontsize=9)
    ax.grid(alpha=0.3)
    return to_png(fig)


def op_priority_map(run) -> bytes:
    """Every arm's sampling probability (colour) after each op-priority update (x)."""
    hist = run.priority_history
    arms = list(hist[0]["prob"]) if hist else []
    fig, ax = plt.subplots(figsize=(6.5, 0.5 + 0.16 * max(len(arms), 4)))
    if hist:
        grid = [[h["prob"][arm] for h in hist] for arm in arms]  # (arms, updates)
        im = ax.imshow(grid, aspect="auto", interpolation="nearest", cmap="viridis",
                       extent=(hist[0]["n"] - 0.5, hist[-1]["n"] + 0.5, len(arms) - 0.5, -0.5))
        ax.set_yticks(range(len(arms)), arms, fontsize=6)
        fig.colorbar(im, ax=ax, label="probability")
    ax.set_xlabel("mutations with a result (N)")
    ax.set_title(f"operation priority per arm: {run.name}", fontsize=9)
    return to_png(fig)


def pareto(runs: Sequence) -> bytes:
    """Parameters vs fitness of every done candidate, Pareto front highlighted."""
    fig, ax = plt.subplots(figsize=(6.5, 3.8))
    for run in runs:
        done = [r for r in run.rows if r["status"] == "done"]
        pts = [(r["params"], r["fitness"]) for r in done]
        if not pts:
            continue
        sc = ax.scatter(*zip(*pts), s=10, alpha=0.4, label=run.name)
        front = [pts[i] for i in pareto_front(pts)]
        ax.step(*zip(*front), where="post", color=sc.get_facecolor()[0], alpha=1.0)
    ax.set_xlabel("parameters (with MLM head)")
    ax.set_ylabel("held-out loss")
    ax.set_title("Pareto front (lower-left is better)", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    return to_png(fig)


def architecture(arch: ArchConfig, title: str) -> bytes:
    """One panel per layer: the attention graph's DAG, or the conv kernel."""
    n = arch.n_layers
    fig, axes = plt.subplots(1, n, figsize=(2.6 * n, 3.2), squeeze=False)
    for i, (ax, layer) in enumerate(zip(axes[0], arch.layers)):
        if isinstance(layer, AttentionLayer):
            draw_graph(layer.graph, ax, title=f"layer {i}: attention")
        else:
            ax.text(0.5, 0.5, f"LightConv\nk = {layer.kernel}", ha="center", va="center", fontsize=10,
                    bbox={"boxstyle": "round", "fc": "#d9f2d9"})
            ax.set_axis_off()
            ax.set_title(f"layer {i}: conv", fontsize=8)
    fig.suptitle(title, fontsize=9)
    return to_png(fig)
