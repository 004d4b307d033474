"""Markdown for the bert_vs_abz comparison (``comparison.md``)."""
from __future__ import annotations

_NAMES = {"bert": "BERT (standard attention)", "abz": "AutoBERT-Zero hybrid"}
_METRIC_NAMES = {"matthews_correlation": "MCC", "accuracy": "acc", "f1": "F1", "pearson": "Pearson",
                 "spearmanr": "Spearman"}


def _pm(stat: dict) -> str:
    return f"{100 * stat['mean']:.1f} ± {100 * stat['std']:.1f}"


def _model_rows(models: dict) -> list[str]:
    keys = list(models)
    rows = ["| | " + " | ".join(_NAMES.get(k, k) for k in keys) + " |", "|---" * (len(keys) + 1) + "|"]

    def row(label, fn):
        rows.append(f"| {label} | " + " | ".join(fn(models[k]) for k in keys) + " |")

    row("layers", lambda m: "<br>".join(m["layers"]))
    row("FFN width", lambda m: str(m["ffn"]))
    row("backbone parameters", lambda m: f"{m['backbone_parameters']:,}")
    row("parameters with MLM head", lambda m: f"{m['mlm_parameters']:,}")
    def held_out(key, fmt):
        return lambda m: format(m["pretrain"]["eval"][key], fmt) if m["pretrain"].get("eval") else "-"

    row("held-out MLM loss", held_out("loss", ".3f"))
    row("held-out perplexity", held_out("perplexity", ".1f"))
    row("pretraining throughput (tokens/s)", lambda m: f"{m['pretrain']['tokens_per_s']:,.0f}")
    row("pretraining wall time", lambda m: f"{m['pretrain']['wall_s'] / 60:.1f} min")
    row("GLUE fine-tuning wall time", lambda m: f"{m['glue_call_s'] / 60:.1f} min")
    return rows


def _glue_rows(models: dict) -> list[str]:
    keys = list(models)
    rows = ["| task (dev) | metric | " + " | ".join(_NAMES.get(k, k) for k in keys) + " |",
            "|---|---|" + "---|" * len(keys)]
    first = models[keys[0]]["glue"]["tasks"]
    for task, result in first.items():
        for cfg, stats in result["summary"].items():
            for metric in stats:
                if metric == "score":
                    continue
                cells = []
                for k in keys:
                    r = models[k]["glue"]["tasks"].get(task)
                    cells.append(_pm(r["summary"][cfg][metric]) if r else "-")
                n = f" ({result['n_train']} of {result['n_train_full']} train)" \
                    if result["n_train"] != result["n_train_full"] else ""
                rows.append(f"| {cfg}{n} | {_METRIC_NAMES.get(metric, metric)} | " + " | ".join(cells) + " |")
    avg = [models[k]["glue"]["glue_dev_average"] for k in keys]
    rows.append(f"| **average ({len(first)} tasks)** | GLUE-style | "
                + " | ".join("-" if a is None else f"**{100 * a:.1f}**" for a in avg) + " |")
    return rows


def comparison_markdown(results: dict) -> str:
    """Two tables (models; GLUE dev metrics as mean ± sample std over seeds, percent) and notes."""
    models = results["models"]
    out = _model_rows(models) + [""] + _glue_rows(models)
    skipped = next(iter(models.values()))["glue"]["skipped"]
    if skipped:
        out += [""] + [f"- skipped {why}" for why in skipped.values()]
    out.append(f"\nTotal wall time: {results['wall_s'] / 60:.1f} min")
    return "\n".join(out)
