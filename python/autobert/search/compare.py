"""``run_compare``: does a search's answer beat the hand-designed backbones and random search?

For the given search runs (all of one preset size), every model is trained stand-alone from
scratch at the search preset's own size (``train_standalone``: equal steps, equal data, the same
batches and masks per seed) and scored on held-out text:

- ``searched/<run>``: the run's answer: of its best ``FinalistConfig.k`` architectures by proxy, the
  one with the lowest loss after a short training from scratch (``autobert.search.finalists``);
- ``random/<run>``: the same for as many random architectures as the run evaluated, scored by the
  same proxy on the run's own supernet (a ``--strategy random`` search with the run's budget, seed
  and warmed-up supernet, run in ``OUT/random/<run>``) and re-ranked the same way;
- ``bert``: standard attention in every layer; ``autobert-zero``: the AutoBERT-Zero library hybrid.

Every model's FFN width is matched to BERT's backbone parameter count (within ``PARAM_TOLERANCE``).
Results are cached per model and seed under ``OUT/models``, so an interrupted comparison continues.
``comparison.json``, ``comparison.md`` and ``learning_curves.png`` are written by
``autobert.search.compare_report``.
"""
from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Callable, Optional, Sequence

import torch

from autobert.graph import library
from autobert.model.config import ArchConfig, AttentionLayer
from autobert.search.biws import compact_map
from autobert.search.config import SearchConfig
from autobert.search.finalists import FinalistConfig, select_finalist, selection_data, top_k
from autobert.search.runner import CONFIG_FILE, DB_FILE, SUPERNET_FILE, run_search
from autobert.search.standalone import MLMBlocks, StandaloneConfig, train_cached
from autobert.search.store import SearchStore
from autobert.train import MaskingIds, WordPieceTokenizer, load_corpus, split_blocks
from autobert.train.archs import abz_layers, match_ffn

log = logging.getLogger(__name__)

PARAM_TOLERANCE = 0.02      # |params - BERT's params| / BERT's params after FFN matching
SPLIT_SEED = 987654321      # held-out split of the corpus when no evaluation corpus is given
_SIZE_FIELDS = ("n_layers", "hidden", "heads", "ffn", "max_positions", "dropout")


@dataclasses.dataclass(frozen=True)
class SearchRun:
    """What the comparison needs of one search run."""

    name: str
    path: Path
    config: SearchConfig
    best: ArchConfig      # the run's best architecture (its vocabulary: the search's compact one)
    evaluated: int        # candidates done: the random-search budget


def load_search_run(path, name: Optional[str] = None) -> SearchRun:
    """ValueError/FileNotFoundError naming the folder when it is not a finished search run."""
    path = Path(path)
    if not (path / CONFIG_FILE).is_file() or not (path / DB_FILE).is_file():
        raise FileNotFoundError(f"{path} is not a search run folder (needs {CONFIG_FILE} and {DB_FILE})")
    config = SearchConfig.load(path / CONFIG_FILE)
    with SearchStore(path / DB_FILE) as store:
        best, done = store.best(1), store.count("done")
    if not best:
        raise ValueError(f"search run {path} has no finished candidate yet")
    return SearchRun(name or path.name, path, config, ArchConfig.from_json(best[0]["arch_json"]), done)


def _check_same_sizes(runs: Sequence[SearchRun]) -> None:
    first = runs[0]
    for run in runs[1:]:
        for field in _SIZE_FIELDS:
            a, b = getattr(first.config.model, field), getattr(run.config.model, field)
            if a != b:
                raise ValueError(f"runs differ in model.{field}: {first.path} has {a}, {run.path} has {b}; "
                                 "compare runs of one preset size")
        if run.config.biws.seq_len != first.config.biws.seq_len:
            raise ValueError(f"runs differ in biws.seq_len: {first.path} has {first.config.biws.seq_len}, "
                             f"{run.path} has {run.config.biws.seq_len}")


def comparison_data(corpus, vocab, config: SearchConfig, eval_corpus=None) -> MLMBlocks:
    """Blocks of the search's length (and compact vocabulary, if the search used one): all of ``corpus``
    for training and ``eval_corpus`` held out, or a seeded split of ``corpus``."""
    tokenizer = WordPieceTokenizer.from_vocab(vocab)
    seq_len = config.biws.seq_len
    blocks = load_corpus(corpus, tokenizer, seq_len)  # (n, seq_len)
    masking = MaskingIds.from_tokenizer(tokenizer)
    lut = None
    if config.biws.compact_vocab:
        lut, masking = compact_map(blocks, masking)
        blocks = lut[blocks]
    if eval_corpus is None:
        train, heldout = split_blocks(blocks, config.biws.holdout_fraction, SPLIT_SEED)
        return MLMBlocks(train, heldout, masking)
    heldout = load_corpus(eval_corpus, tokenizer, seq_len)
    if lut is not None:  # word pieces the training corpus never used become [UNK] (never scored)
        heldout = lut[heldout]
        heldout = torch.where(heldout < 0, torch.full_like(heldout, int(lut[tokenizer.unk_token_id])), heldout)
    return MLMBlocks(blocks, heldout, masking)


def random_search_best(run: SearchRun, out_dir: Path, progress: Optional[Callable[..., None]] = None) -> ArchConfig:
    """The best of ``run.evaluated`` random architectures scored on ``run``'s own supernet (resumable)."""
    folder = out_dir / "random" / run.name
    if progress is not None:
        report, label = progress, f"random search ({run.name})"
        progress = lambda event, **info: report(event, label=label, **info)  # noqa: E731 — one bar per run
    supernet = run.path / SUPERNET_FILE
    if not supernet.is_file():
        raise FileNotFoundError(f"{run.path} has no warmed-up supernet ({SUPERNET_FILE}); the random-search "
                                "baseline scores its candidates on it")
    if (folder / DB_FILE).is_file():
        summary = run_search(folder, resume=True, budget=run.evaluated, progress=progress)
    else:  # the same proxy: the run's own supernet, no warm-up of its own
        config = run.config.replace(evolution={"strategy": "random"}, budget=run.evaluated)
        summary = run_search(folder, config, progress=progress, supernet_from=run.path)
    return ArchConfig.from_dict(summary.best["arch"])


def _bert(config: SearchConfig, vocab_size: int) -> ArchConfig:
    m = config.model
    return ArchConfig(layers=(AttentionLayer(library["standard"]),) * m.n_layers, vocab_size=vocab_size,
                      hidden=m.hidden, heads=m.heads, ffn=m.ffn, max_positions=m.max_positions, dropout=m.dropout)


def sized_like_bert(layers, bert: ArchConfig, name: str = "model") -> ArchConfig:
    """``layers`` at BERT's sizes, FFN matched to BERT's backbone parameters (ValueError beyond tolerance)."""
    target = bert.num_parameters()
    arch = match_ffn(bert.replace(layers=tuple(layers)), target)
    off = abs(arch.num_parameters() - target) / target
    if off > PARAM_TOLERANCE:
        raise ValueError(f"{name}: {arch.num_parameters()} parameters at the closest FFN width {arch.ffn}, "
                         f"{100 * off:.1f}% from BERT's {target} (tolerance {100 * PARAM_TOLERANCE:.0f}%)")
    return arch


def comparison_models(runs: Sequence[SearchRun], randoms: dict, vocab_size: int) -> dict[str, ArchConfig]:
    """name -> architecture at the runs' sizes, FFN matched to BERT's backbone parameters."""
    bert = _bert(runs[0].config, vocab_size)
    models = {"bert": bert, "autobert-zero": sized_like_bert(abz_layers(len(bert.layers)), bert, "autobert-zero")}
    for run in runs:
        models[f"searched/{run.name}"] = sized_like_bert(run.best.layers, bert, f"searched/{run.name}")
        if run.name in randoms:
            models[f"random/{run.name}"] = sized_like_bert(randoms[run.name].layers, bert, f"random/{run.name}")
    return models


def final_selection(runs: Sequence[SearchRun], out_dir: Path, data: MLMBlocks, base: StandaloneConfig,
                    config: FinalistConfig, random_search: bool, progress) -> tuple[list[SearchRun], dict, dict]:
    """Each run's (and its random baseline's) answer after re-ranking its top ``config.k`` from scratch
    (``autobert.search.finalists``): the runs with ``best`` replaced, the random picks, the tables."""
    bert = _bert(runs[0].config, data.masking.vocab_size)
    sel_data = selection_data(data)
    picked, randoms, tables = [], {}, {}
    for run in runs:
        sources = [("searched", run.path / DB_FILE)]
        if random_search:
            sources.append(("random", out_dir / "random" / run.name / DB_FILE))
        for group, db in sources:
            name = f"{group}/{run.name}"
            sized = lambda a, n=name: sized_like_bert(a.layers, bert, n)  # noqa: E731
            arch, tables[name] = select_finalist(name, top_k(db, config.k, config.per_layout, config.per_attention_count), sized, sel_data, base, config,
                                                 out_dir / "finalists", progress)
            if group == "searched":
                picked.append(dataclasses.replace(run, best=arch))
            else:
                randoms[run.name] = arch
    return picked, randoms, tables


def _unique_names(paths: Sequence) -> list[str]:
    names = [Path(p).name or str(p) for p in paths]
    return [n if names.count(n) == 1 else f"{n}-{i}" for i, n in enumerate(names)]


def _train_cached(name: str, arch: ArchConfig, seed: int, data: MLMBlocks, config: StandaloneConfig,
                  out_dir: Path, progress) -> dict:
    file = out_dir / "models" / name.replace("/", "__") / f"seed{seed}.json"
    return train_cached(file, arch, data, config, seed,
                        progress=lambda step, loss: progress("train", model=name, seed=seed, step=step,
                                                             steps=config.steps, loss=loss))


def run_compare(run_dirs: Sequence, corpus, vocab, out_dir, *, seeds: Sequence[int] = (0, 1, 2),
                config: StandaloneConfig = StandaloneConfig(), eval_corpus=None, random_search: bool = True,
                finalists: FinalistConfig = FinalistConfig(), progress: Optional[Callable[..., None]] = None) -> dict:
    """Train every model (see the module doc) for every seed; write and return the comparison."""
    from autobert.search.compare_report import write_comparison
    if not run_dirs:
        raise ValueError("compare needs at least one search run folder")
    if not seeds or len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds must be distinct and at least one, got {list(seeds)}")
    for what, path in (("corpus", corpus), ("vocab", vocab), ("eval corpus", eval_corpus)):
        if path is not None and not Path(path).exists():
            raise FileNotFoundError(f"compare {what} not found: {path}")
    progress = progress or (lambda event, **info: None)
    runs = [load_search_run(p, n) for p, n in zip(run_dirs, _unique_names(run_dirs))]
    _check_same_sizes(runs)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / config.FILE_NAME).write_text(config.to_json())
    data = comparison_data(corpus, vocab, runs[0].config, eval_corpus)
    (out_dir / finalists.FILE_NAME).write_text(finalists.to_json())
    randoms = {r.name: random_search_best(r, out_dir, progress) for r in runs} if random_search else {}
    runs, randoms, selection = final_selection(runs, out_dir, data, config, finalists, random_search, progress)
    models = comparison_models(runs, randoms, data.masking.vocab_size)
    results = {name: {seed: _train_cached(name, arch, seed, data, config, out_dir, progress) for seed in seeds}
               for name, arch in models.items()}
    setup = {"runs": [str(r.path) for r in runs], "corpus": str(corpus), "eval_corpus": eval_corpus and str(eval_corpus),
             "vocab": str(vocab), "seeds": list(seeds), "standalone": config.to_dict(),
             "train_blocks": int(data.train.shape[0]), "heldout_blocks": int(min(len(data.heldout), config.eval_blocks)),
             "random_budget": {r.name: r.evaluated for r in runs} if random_search else None,
             "finalists": finalists.to_dict(), "final_selection": selection}
    return write_comparison(out_dir, setup, models, results)
