"""Draw an attention graph as a layered DAG with matplotlib (no graph-layout dependency).

Layout: a node's row is its longest distance from the inputs (Q, K, V at the bottom, the output
on top); nodes of a row are spread evenly. Edges are arrows from operand to user.
"""
from __future__ import annotations

from autobert.graph import Graph


def layout(graph: Graph) -> dict[int, tuple[float, float]]:
    """node index -> (x, y), y = depth from the inputs."""
    depth: list[int] = []
    for op, args in graph.nodes:  # canonical order: arguments precede users
        depth.append(0 if not args else 1 + max(depth[a] for a in args))
    rows: dict[int, list[int]] = {}
    for i, d in enumerate(depth):
        rows.setdefault(d, []).append(i)
    pos = {}
    for d, nodes in rows.items():
        for j, i in enumerate(nodes):
            pos[i] = (j - (len(nodes) - 1) / 2.0, float(d))
    return pos


def draw_graph(graph: Graph, ax, title: str = "") -> None:
    """Draw ``graph`` on the matplotlib axes ``ax``."""
    pos = layout(graph)
    for i, (_, args) in enumerate(graph.nodes):
        for a in args:
            # An edge skipping rows would run straight through the nodes between: bend it.
            bend = 0.35 if pos[i][1] - pos[a][1] > 1 else 0.0
            ax.annotate("", xy=pos[i], xytext=pos[a],
                        arrowprops={"arrowstyle": "->", "color": "0.4", "shrinkA": 9, "shrinkB": 9,
                                    "connectionstyle": f"arc3,rad={bend}"})
    for i, (op, _) in enumerate(graph.nodes):
        colour = "#cfe3ff" if op in ("Q", "K", "V") else ("#ffd9b3" if i == graph.output else "#eeeeee")
        ax.text(*pos[i], op, ha="center", va="center", fontsize=8,
                bbox={"boxstyle": "round,pad=0.3", "fc": colour, "ec": "0.3"})
    xs = [p[0] for p in pos.values()]
    ys = [p[1] for p in pos.values()]
    ax.set_xlim(min(xs) - 1, max(xs) + 1)
    ax.set_ylim(min(ys) - 0.7, max(ys) + 0.7)
    ax.set_axis_off()
    if title:
        ax.set_title(title, fontsize=8)
