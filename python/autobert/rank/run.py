"""``run_rank``: every proxy for every benchmark architecture, then how well each ranks them.

Steps, in a run folder:
1. ``config.json`` (the RankConfig);
2. proxies per architecture, computed from the architectures alone (``compute_proxies`` never sees
   a label) into ``cache.jsonl``, one line per distinct model as it finishes, so a killed run
   resumes where it stopped; architectures that construct the same model share one computation;
3. ``proxies.csv``: ``id`` then one column per proxy, in benchmark order (no label column);
4. ``metrics.json``: per proxy Kendall tau-b, Spearman rho, NDCG@k, precision in the top fraction,
   95% bootstrap CIs, the paired difference from the anchor rule, and the compute time;
5. ``proxy_vs_glue.png`` and ``rank_vs_rank.png``.
"""
from __future__ import annotations

import csv
import json
import logging
import os
import statistics
import time
from pathlib import Path
from typing import Callable, Optional, Sequence

from autobert.model.config import ArchConfig
from autobert.rank.benchmark import TARGET, load_nas_bench_bert
from autobert.rank.config import RankConfig
from autobert.rank.construction import construct
from autobert.rank.evaluate import evaluate_proxies
from autobert.rank.jsonl_cache import JsonlCache
from autobert.rank.plots import proxy_scatter, rank_vs_rank
from autobert.rank.probe import Probe
from autobert.rank.scoring import resolve, score_probe
from autobert.rank.text_batch import TextBatch, text_batch
from autobert.train.tokenizer import WordPieceTokenizer

log = logging.getLogger(__name__)

Progress = Callable[..., None]


def compute_proxies(archs: Sequence[ArchConfig], batch: TextBatch, config: RankConfig, cache: JsonlCache,
                    progress: Optional[Progress] = None) -> list[dict]:
    """{proxy: value} per architecture, in order; values come from ``cache`` when it has them."""
    names = [p.name for p in resolve(config.proxies)]
    out = []
    for i, arch in enumerate(archs):
        fp = arch.fingerprint()
        cached = cache.get(fp)
        if cached is None or any(n not in cached for n in names):
            start = time.perf_counter()
            probe = Probe(arch, batch, config.seed, sample_tokens=config.sample_tokens, pca_eta=config.pca_eta)
            cached = {**(cached or {}), **score_probe(probe, names)}
            cache.add(fp, cached, time.perf_counter() - start)
        out.append({n: cached[n] for n in names})
        if progress is not None:
            progress("arch", done=i + 1, total=len(archs))
    return out


def write_proxies_csv(path: Path, ids: Sequence[int], rows: Sequence[dict]) -> None:
    names = list(rows[0]) if rows else []
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["id", *names])
        for entry_id, row in zip(ids, rows):
            writer.writerow([entry_id, *(repr(float(row[n])) for n in names)])


def _compute_summary(cache: JsonlCache, archs: Sequence[ArchConfig]) -> dict:
    seconds = [cache.seconds[fp] for fp in {a.fingerprint() for a in archs}]
    return {"architectures": len(archs), "distinct_models": len(seconds), "seconds_total": sum(seconds),
            "seconds_median_per_model": statistics.median(seconds) if seconds else 0.0}


def run_rank(benchmark: "str | os.PathLike", corpus: "str | os.PathLike", vocab: "str | os.PathLike",
             out: "str | os.PathLike", config: RankConfig = RankConfig(), progress: Optional[Progress] = None,
             plots: bool = True) -> dict:
    """Run (or resume) a rank study into ``out``; returns the metrics document written to metrics.json."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(json.dumps(config.to_dict(), indent=2, sort_keys=True) + "\n")
    bench = load_nas_bench_bert(benchmark).head(config.limit)
    tokenizer = WordPieceTokenizer.from_vocab(vocab)
    # Models get the probe vocabulary's size: BERT's uncased vocab gives the benchmark's 30522 rows.
    archs = [construct(e.encoding, config.construction, tokenizer.vocab_size) for e in bench.entries]
    batch = text_batch(corpus, tokenizer, config.batch_size, config.seq_len, config.seed, config.mask_prob)
    cache = JsonlCache(out / "cache.jsonl", config.probe_key())
    rows = compute_proxies(archs, batch, config, cache, progress)
    write_proxies_csv(out / "proxies.csv", bench.ids, rows)
    log.info("proxies of %d architectures written to %s", len(rows), out / "proxies.csv")
    table = {n: [r[n] for r in rows] for n in rows[0]}
    labels = bench.labels(TARGET)  # read only now, after every proxy value is fixed
    metrics = evaluate_proxies(table, labels, config.anchor, config.ndcg_k, config.top_fraction, config.n_boot,
                               config.seed)
    metrics.update(label=TARGET, construction=config.construction, compute=_compute_summary(cache, archs),
                   benchmark=str(bench.path))
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    if plots:
        proxy_scatter(table, labels, metrics["proxies"], out / "proxy_vs_glue.png")
        rank_vs_rank(table, labels, metrics["proxies"], out / "rank_vs_rank.png")
    return metrics
