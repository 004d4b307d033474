"""Final selection: a run's best few architectures by proxy, each trained briefly from scratch.

The BIWS proxy scores a child that inherits trained supernet weights, so it cannot see a layer that
trains badly from random initialisation (measured: an unnormalised ``exp`` attention ranked first by
the proxy on one seed and last but BERT stand-alone, docs/search.md). The final selection trains the
proxy's top ``k`` from scratch for ``steps`` steps and keeps the one with the lowest held-out loss.

Evolution concentrates on one layer layout (which layers are attention and which conv of which
kernel): on one run the proxy's top 6 all had the layout attention, conv 3, conv 3, conv 3 and
differed only in the attention graph, so a top-3 re-ranking could not choose anything else. With
``per_layout`` (the default) the finalists are the best candidate of each of the ``k`` best layouts.

The proxy's blind spot is largest between attention and convolution (how an attention graph trains
from scratch): on another run it put one slow-training attention layer into every one of its top
layouts, and the first layout without attention came 22nd. With ``per_attention_count`` (the
default) the finalists also hold the best candidate of each number of attention layers, so the
from-scratch training, not the proxy alone, decides how much attention the answer has.

Its held-out blocks are a seeded slice of the *training* blocks, so the selection never reads the
text a comparison finally scores. ``k = 1`` keeps the proxy's best as it is.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Callable, Optional

from autobert.model.config import ArchConfig, ConvLayer
from autobert.model.flexi_layer import FlexiLayer
from autobert.search.standalone import MLMBlocks, StandaloneConfig, train_cached
from autobert.search.store import SearchStore
from autobert.train import split_blocks
from autobert.train.run_config import JsonConfig, check_bool, check_int

SELECTION_SPLIT_SEED = 24681357   # which training blocks the selection holds out
SELECTION_FRACTION = 0.05


@dataclasses.dataclass(frozen=True)
class FinalistConfig(JsonConfig):
    """How many of a run's best architectures are re-ranked, and how long each trains."""

    FILE_NAME = "finalist_config.json"

    k: int = 3             # the proxy's top k (1: no re-ranking)
    steps: int = 500       # stand-alone steps of each finalist
    seed: int = 0          # its initialisation, batches and masks
    per_layout: bool = True  # at most one finalist per layer layout (False: the plain top k)
    per_attention_count: bool = True  # plus the best of each number of attention layers

    def __post_init__(self):
        check_int("FinalistConfig", "k", self.k, 1)
        check_int("FinalistConfig", "steps", self.steps, 1)
        check_int("FinalistConfig", "seed", self.seed, 0)
        check_bool("FinalistConfig", "per_layout", self.per_layout)
        check_bool("FinalistConfig", "per_attention_count", self.per_attention_count)


def selection_data(data: MLMBlocks) -> MLMBlocks:
    """A held-out slice of ``data.train`` (``data.heldout`` is never read)."""
    train, heldout = split_blocks(data.train, SELECTION_FRACTION, SELECTION_SPLIT_SEED)
    return MLMBlocks(train, heldout, data.masking)


def layer_layout(arch: ArchConfig) -> tuple[str, ...]:
    """Per layer ``"attention"``, ``"conv k=K"`` or the FlexiBERT layer's description: what the
    architecture is apart from its attention graphs."""
    return tuple(f"conv k={lay.kernel}" if isinstance(lay, ConvLayer)
                 else lay.describe() if isinstance(lay, FlexiLayer) else "attention" for lay in arch.layers)


def attention_layers(arch: ArchConfig) -> int:
    """How many of ``arch``'s layers are attention graphs (FlexiBERT layers are not counted)."""
    return layer_layout(arch).count("attention")


def top_k(db_file: Path, k: int, per_layout: bool = False, per_attention_count: bool = False) -> list[dict]:
    """The ``k`` best done candidates of a search database, best first: {"id", "fitness", "arch"}.
    With ``per_layout`` the best of each of the ``k`` best layer layouts (``layer_layout``), topped up
    with the next best by proxy when the run has fewer than ``k`` layouts; with
    ``per_attention_count`` also the best of each number of attention layers the run evaluated."""
    with SearchStore(db_file) as store:
        rows = store.best(store.count("done") if per_layout or per_attention_count else k)
    if not rows:
        raise ValueError(f"search database {db_file} has no finished candidate yet")
    cands = [{"id": r["id"], "fitness": r["fitness"], "arch": ArchConfig.from_json(r["arch_json"])} for r in rows]
    picks = _firsts(cands, layer_layout, k) if per_layout else list(range(min(k, len(cands))))
    rest = [i for i in range(len(cands)) if i not in picks]
    picks += rest[:k - len(picks)]
    if per_attention_count:
        picks += [i for i in _firsts(cands, attention_layers, len(cands)) if i not in picks]
    return [cands[i] for i in sorted(picks)]


def _firsts(cands: list[dict], key: Callable[[ArchConfig], object], n: int) -> list[int]:
    """Indices of the first candidate of each of the first ``n`` distinct ``key`` values."""
    firsts, seen = [], set()
    for i, cand in enumerate(cands):
        value = key(cand["arch"])
        if value not in seen:
            seen.add(value)
            firsts.append(i)
    return firsts[:n]


def select_finalist(name: str, candidates: list[dict], sized: Callable[[ArchConfig], ArchConfig],
                    data: MLMBlocks, base: StandaloneConfig, config: FinalistConfig, cache_dir: Path,
                    progress: Optional[Callable[..., None]] = None) -> tuple[ArchConfig, list[dict]]:
    """The candidate (of ``top_k``, sized by ``sized`` to the comparison's widths) with the lowest held-out
    loss after ``config.steps`` steps from scratch, and the per-finalist table. ``data`` comes from
    ``selection_data``. Results are cached per finalist in ``cache_dir``."""
    if config.k == 1 or len(candidates) == 1:
        return candidates[0]["arch"], []
    train_config = dataclasses.replace(base, steps=config.steps, eval_every=config.steps)
    table = []
    for rank, cand in enumerate(candidates):
        file = cache_dir / name.replace("/", "__") / f"candidate{cand['id']}.json"
        report = None if progress is None else (
            lambda step, loss, r=rank: progress("train", model=f"{name} finalist {r}", seed=config.seed, step=step,
                                                steps=train_config.steps, loss=loss))
        result = train_cached(file, sized(cand["arch"]), data, train_config, config.seed, progress=report)
        table.append({"rank": rank, "id": cand["id"], "proxy_fitness": cand["fitness"], "loss": result["loss"],
                      "layout": ", ".join(layer_layout(cand["arch"]))})
    winner = min(table, key=lambda row: (row["loss"], row["rank"]))
    winner["selected"] = True
    return candidates[winner["rank"]]["arch"], table
