"""The comparison's table, differences and learning curves (``comparison.json``, ``.md``, ``.png``).

Statistics are over training seeds. The searched and random-search models of several runs are
pooled per seed (their mean over runs), so every difference is paired by seed: for seed s,
d_s = searched(s) - baseline(s), and the 95% interval is the Student-t interval of the d_s.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

from autobert.model.config import ArchConfig
from autobert.search.mutation import describe_layers
from autobert.search.stats import mean_ci, paired_ci

GROUPS = ("searched", "random")
BASELINES = ("bert", "autobert-zero", "random")


def _per_seed(results: dict, names: list[str], seeds: list) -> list[float]:
    """Mean held-out loss over ``names`` for each seed."""
    return [sum(results[n][s]["loss"] for n in names) / len(names) for s in seeds]


def summarise(setup: dict, models: dict[str, ArchConfig], results: dict) -> dict:
    seeds = list(setup["seeds"])
    rows = {}
    for name, arch in models.items():
        per_seed = [results[name][s] for s in seeds]
        rows[name] = {"layers": describe_layers(arch.layers), "ffn": arch.ffn,
                      "parameters": arch.num_parameters(), "parameters_mlm": arch.num_parameters("mlm"),
                      "loss": mean_ci([r["loss"] for r in per_seed]),
                      "perplexity": sum(r["perplexity"] for r in per_seed) / len(per_seed),
                      "tokens_per_second": sum(r["tokens_per_second"] for r in per_seed) / len(per_seed),
                      "curve": [[c[0], sum(r["curve"][i][1] for r in per_seed) / len(per_seed)]
                                for i, c in enumerate(per_seed[0]["curve"])],
                      "per_seed": {str(s): results[name][s]["loss"] for s in seeds}}
    groups = {g: [n for n in models if n.startswith(g + "/")] for g in GROUPS}
    pooled = {g: _per_seed(results, names, seeds) for g, names in groups.items() if names}
    pooled.update({n: _per_seed(results, [n], seeds) for n in ("bert", "autobert-zero")})
    diffs = {}
    if "searched" in pooled:
        for base in BASELINES:
            if base in pooled:
                diffs[f"searched - {base}"] = paired_ci(pooled["searched"], pooled[base])
        for name in groups["searched"]:
            partner = "random/" + name.split("/", 1)[1]
            if partner in models:
                diffs[f"{name} - {partner}"] = paired_ci(_per_seed(results, [name], seeds),
                                                         _per_seed(results, [partner], seeds))
    return {"setup": setup, "models": rows, "pooled": {k: mean_ci(v) | {"per_seed": v} for k, v in pooled.items()},
            "differences": diffs}


def _ci(stat: dict, digits: int = 3) -> str:
    lo, hi = stat["ci"]
    return f"{stat['mean']:.{digits}f} [{lo:.{digits}f}, {hi:.{digits}f}]"


def markdown(summary: dict) -> str:
    s = summary["setup"]
    cfg = s["standalone"]
    lines = [f"Stand-alone MLM training: {cfg['steps']} steps x {cfg['batch_size']} blocks, lr {cfg['lr']}, "
             f"seeds {', '.join(map(str, s['seeds']))}; held-out loss on {s['heldout_blocks']} blocks of "
             f"{s['eval_corpus'] or 'a held-out split of the corpus'} (mean and 95% t-interval over seeds).", "",
             "| model | FFN | parameters | held-out MLM loss | perplexity | tokens/s | layers |",
             "|---|---:|---:|---|---:|---:|---|"]
    for name, r in summary["models"].items():
        layers = "<br>".join(f"{i}: `{x}`" for i, x in enumerate(r["layers"]))
        lines.append(f"| {name} | {r['ffn']} | {r['parameters']:,} | {_ci(r['loss'])} | {r['perplexity']:.1f} | "
                     f"{r['tokens_per_second']:,.0f} | {layers} |")
    lines += ["", "| difference (lower = the first is better) | mean | 95% CI | CI excludes 0 |", "|---|---:|---|---|"]
    for name, d in summary["differences"].items():
        lo, hi = d["ci"]
        lines.append(f"| {name} | {d['mean']:+.4f} | [{lo:+.4f}, {hi:+.4f}] | {'yes' if d['excludes_zero'] else 'no'} |")
    return "\n".join(lines) + "\n"


def learning_curves(summary: dict) -> bytes:
    from autobert.report.plots import plt, to_png
    fig, ax = plt.subplots(figsize=(6.5, 4.0))
    styles = {"bert": ("tab:blue", "-"), "autobert-zero": ("tab:green", "-")}
    for name, r in summary["models"].items():
        colour, line = styles.get(name, ("tab:red" if name.startswith("searched/") else "tab:gray", "--"
                                         if name.startswith("random/") else "-"))
        xs, ys = zip(*r["curve"])
        ax.plot(xs, ys, color=colour, linestyle=line, alpha=0.85, label=name)
    ax.set_xlabel("training steps")
    ax.set_ylabel("held-out MLM loss (mean over seeds)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    return to_png(fig)


def write_comparison(out_dir: Path, setup: dict, models: dict, results: dict) -> dict:
    summary = summarise(setup, models, results)
    summary["models_arch"] = {name: arch.to_dict() for name, arch in models.items()}
    (out_dir / "comparison.json").write_text(json.dumps(summary, indent=2, default=_json_default) + "\n")
    (out_dir / "comparison.md").write_text(markdown(summary))
    (out_dir / "learning_curves.png").write_bytes(learning_curves(summary))
    return summary


def _json_default(value):
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
