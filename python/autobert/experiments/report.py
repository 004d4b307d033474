"""Markdown for the bert_vs_abz comparison (``comparison.md``)."""
from __future__ import annotations

_NAMES = {"bert": "BERT (standard attention)", "abz": "AutoBERT-Zero hybrid", "searched": "best searched (OP-NAS)"}
_METRIC_NAMES = {"matthews_correlation": "MCC", "accuracy": "acc", "f1": "F1", "pearson": "Pearson",
                 "spearmanr": "Spearman"}


def _pm(stat: dict) -> str:
    return f"{100 * stat['mean']:.1f} ± {100 * stat['std']:.1f}"


def _held_out(key: str, fmt: str):
    return lambda m: format(m["pretrain"]["eval"][key], fmt) if m["pretrain"].get("eval") else "-"


def _model_rows(models: dict) -> list[str]:
    keys = list(models)
    rows = ["| | " + " | ".join(_NAMES.get(k, k) for k in keys) + " |", "|---" * (len(keys) + 1) + "|"]

    def row(label, fn):
        rows.append(f"| {label} | " + " | ".join(fn(models[k]) for k in keys) + " |")

    row("layers", lambda m: "<br>".join(m["layers"]))
    row("FFN width", lambda m: str(m["ffn"]))
    row("backbone parameters", lambda m: f"{m['backbone_parameters']:,}")
    row("parameters with MLM head", lambda m: f"{m['mlm_parameters']:,}")
    row("held-out MLM loss", _held_out("loss", ".3f"))
    row("held-out perplexity", _held_out("perplexity", ".1f"))
    row("pretraining throughput (tokens/s, in-run)", lambda m: f"{m['pretrain']['tokens_per_s']:,.0f}")
    row("pretraining wall time", lambda m: f"{m['pretrain']['wall_s'] / 60:.1f} min")
    row("GLUE fine-tuning wall time", lambda m: f"{m['glue']['wall_s'] / 60:.1f} min")
    return rows


def glue_columns(results: dict) -> dict:
    """Column title -> GLUE suite document: the pretrained models, then the no-pretraining controls."""
    cols = {_NAMES.get(k, k): m["glue"] for k, m in results["models"].items()}
    for k, g in results.get("scratch", {}).items():
        cols[f"{_NAMES.get(k, k)}, no pretraining"] = g
    return cols


def _glue_rows(cols: dict) -> list[str]:
    titles = list(cols)
    rows = ["| task (dev) | metric | " + " | ".join(titles) + " |", "|---|---|" + "---|" * len(titles)]
    first = cols[titles[0]]["tasks"]
    for task, result in first.items():
        n = f" ({result['n_train']} of {result['n_train_full']} train)" \
            if result["n_train"] != result["n_train_full"] else ""
        for cfg, stats in result["summary"].items():
            for metric in (m for m in stats if m != "score"):
                cells = [_pm(cols[t]["tasks"][task]["summary"][cfg][metric]) if task in cols[t]["tasks"] else "-"
                         for t in titles]
                rows.append(f"| {cfg}{n} | {_METRIC_NAMES.get(metric, metric)} | " + " | ".join(cells) + " |")
    avg = [cols[t]["glue_dev_average"] for t in titles]
    rows.append(f"| **average ({len(first)} tasks)** | GLUE-style | "
                + " | ".join("-" if a is None else f"**{100 * a:.1f}**" for a in avg) + " |")
    return rows


def comparison_markdown(results: dict) -> str:
    """Two tables (models; GLUE dev metrics as mean ± sample std over seeds, percent) and notes."""
    models = results["models"]
    out = _model_rows(models) + [""] + _glue_rows(glue_columns(results))
    skipped = next(iter(models.values()))["glue"]["skipped"]
    if skipped:
        out += [""] + [f"- skipped {why}" for why in skipped.values()]
    out.append(f"\nWall time of all stages: {results['wall_s'] / 60:.1f} min")
    return "\n".join(out)
