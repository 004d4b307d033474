"""``run_bench_search``: search strategies and surrogates on the tabular NAS-Bench-BERT.

Writes into ``out``: ``config.json``; ``regret.json`` (per strategy the regret after each query,
mean over repeats with a 95% bootstrap CI, and the bootstrap CI of the difference of final mean
regrets between strategies, whose repeats are independent); ``regret.png``; ``surrogate.json`` (each surrogate trained
on ``labelled`` random labels, Kendall tau and Spearman rho on the rest, over ``surrogate_splits``
splits). Every finished search and split is appended to ``cache.jsonl``: a killed run resumes.
"""
from __future__ import annotations

import csv
import dataclasses
import hashlib
import json
import os
import random
import time
from pathlib import Path
from typing import Callable, Optional

import numpy as np

from autobert.rank.benchmark import TARGET, load_nas_bench_bert
from autobert.rank.construction import CONSTRUCTIONS, construct
from autobert.rank.encoding import feature_matrix
from autobert.rank.jsonl_cache import JsonlCache
from autobert.rank.plots import regret_curves
from autobert.rank.strategies import STRATEGIES
from autobert.rank.surrogate import make_surrogate
from autobert.rank.tabular import TabularBenchmark, pad_curve
from autobert.search.rankcorr import kendall_tau, spearman_rho

SURROGATES = ("ensemble", "gp", "rf")
_N_BOOT = 2000


@dataclasses.dataclass(frozen=True)
class SearchStudyConfig:
    strategies: tuple = ("random", "evolution", "opnas", "boshnas")
    repeats: int = 30                 # searches per strategy (seeds seed/strategy/0..)
    budget: int = 50                  # label queries per search
    construction: str = "as-trained"  # the models the surrogates' encodings describe
    seed: int = 0
    labelled: int = 25                # surrogate study: labels each surrogate is trained on
    surrogate_splits: int = 30        # surrogate study: random splits (0: no study)
    surrogates: tuple = SURROGATES

    def __post_init__(self):
        for name in ("strategies", "surrogates"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        unknown = [s for s in self.strategies if s not in STRATEGIES]
        if unknown or not self.strategies:
            raise ValueError(f"SearchStudyConfig.strategies: unknown {unknown}; known: {sorted(STRATEGIES)}")
        bad = [s for s in self.surrogates if s not in SURROGATES]
        if bad:
            raise ValueError(f"SearchStudyConfig.surrogates: unknown {bad}; known: {SURROGATES}")
        for name, minimum in (("repeats", 1), ("budget", 1), ("seed", 0), ("labelled", 2), ("surrogate_splits", 0)):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
                raise ValueError(f"SearchStudyConfig.{name} must be an int >= {minimum}, got {value!r}")
        if self.construction not in CONSTRUCTIONS:
            raise ValueError(f"SearchStudyConfig.construction must be one of {sorted(CONSTRUCTIONS)}, "
                             f"got {self.construction!r}")

    def key(self, proxies: Optional[str]) -> str:
        text = json.dumps([dataclasses.asdict(self), proxies], sort_keys=True, default=list)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def read_proxies_csv(path: "str | os.PathLike", ids: list[int]) -> dict[str, list[float]]:
    """The proxy columns of a rank run's proxies.csv, in the order of ``ids``; KeyError naming a missing id."""
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    if not rows or rows[0][:1] != ["id"]:
        raise ValueError(f"{path}: not a proxies.csv (its first column must be 'id')")
    names, by_id = rows[0][1:], {}
    for n, row in enumerate(rows[1:], start=2):
        try:
            by_id[int(row[0])] = [float(v) for v in row[1:]]
        except (ValueError, IndexError):
            raise ValueError(f"{path}: line {n} is not an id followed by numbers") from None
    missing = [i for i in ids if i not in by_id]
    if missing:
        raise KeyError(f"{path}: no proxy values for benchmark ids {missing[:5]}")
    return {name: [by_id[i][j] for i in ids] for j, name in enumerate(names)}


def mean_ci(values: np.ndarray, seed: int = 0) -> tuple[float, float]:
    """95% percentile-bootstrap CI of the mean of ``values`` (first axis resampled)."""
    values = np.asarray(values, float)
    rng = np.random.default_rng(seed)
    means = np.stack([values[rng.integers(0, len(values), len(values))].mean(0) for _ in range(_N_BOOT)])
    return tuple(np.quantile(means, [0.025, 0.975], axis=0))


def _searches(bench: TabularBenchmark, config: SearchStudyConfig, cache: JsonlCache, progress) -> dict:
    curves, total, done = {}, len(config.strategies) * config.repeats, 0
    for name in config.strategies:
        rows = []
        for r in range(config.repeats):
            key = f"search/{name}/{r}"
            if cache.get(key) is None:
                start = time.perf_counter()
                session = STRATEGIES[name](bench, config.budget, random.Random(f"{config.seed}/{name}/{r}"))
                cache.add(key, {"order": session.order, "regret": session.regret_curve().tolist()},
                          time.perf_counter() - start)
            rows.append(pad_curve(cache.get(key)["regret"], config.budget))
            done += 1
            if progress is not None:
                progress("search", done=done, total=total)
        curves[name] = np.stack(rows)  # (repeats, budget)
    return curves


def _summarise(curves: dict, seed: int) -> dict:
    out = {}
    for name, c in curves.items():
        lo, hi = mean_ci(c, seed)
        out[name] = {"mean": c.mean(0).tolist(), "ci_low": lo.tolist(), "ci_high": hi.tolist(),
                     "final_regret": float(c[:, -1].mean()), "final_regret_ci": (float(lo[-1]), float(hi[-1]))}
    names = list(curves)
    comparisons = {}
    for a in names:
        for b in names:
            if a < b:
                fa, fb = curves[a][:, -1], curves[b][:, -1]  # final regrets; repeats are independent
                comparisons[f"{a} - {b}"] = {"difference": float(fa.mean() - fb.mean()),
                                             "ci": mean_ci_difference(fa, fb, seed)}
    return {"strategies": out, "comparisons": comparisons}


def mean_ci_difference(a: np.ndarray, b: np.ndarray, seed: int = 0) -> tuple[float, float]:
    """95% bootstrap CI of mean(a) - mean(b) for independent samples a and b."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    rng = np.random.default_rng(seed)
    diffs = [a[rng.integers(0, len(a), len(a))].mean() - b[rng.integers(0, len(b), len(b))].mean()
             for _ in range(_N_BOOT)]
    lo, hi = np.quantile(diffs, [0.025, 0.975])
    return float(lo), float(hi)


def surrogate_study(x: np.ndarray, y: np.ndarray, config: SearchStudyConfig, cache: JsonlCache) -> dict:
    """Each surrogate on ``config.labelled`` random labels, ranked on the others, over the splits."""
    out = {}
    for kind in config.surrogates:
        taus, rhos = [], []
        for split in range(config.surrogate_splits):
            key = f"surrogate/{kind}/{split}"
            if cache.get(key) is None:
                start = time.perf_counter()
                order = np.random.default_rng([config.seed, split]).permutation(len(y))
                train, test = order[:config.labelled], order[config.labelled:]
                mean, _ = make_surrogate(kind, seed=split).fit(x[train], y[train]).predict(x[test])
                cache.add(key, {"kendall_tau": kendall_tau(mean, y[test]), "spearman_rho": spearman_rho(mean, y[test])},
                          time.perf_counter() - start)
            taus.append(cache.get(key)["kendall_tau"])
            rhos.append(cache.get(key)["spearman_rho"])
        t, r = np.array(taus), np.array(rhos)
        out[kind] = {"kendall_tau": float(t.mean()), "kendall_tau_ci": tuple(map(float, mean_ci(t))),
                     "spearman_rho": float(r.mean()), "spearman_rho_ci": tuple(map(float, mean_ci(r))),
                     "kendall_tau_per_split": taus}
    return {"labelled": config.labelled, "held_out": len(y) - config.labelled, "splits": config.surrogate_splits,
            "surrogates": out}


def run_bench_search(benchmark: "str | os.PathLike", out: "str | os.PathLike",
                     config: SearchStudyConfig = SearchStudyConfig(), proxies_csv: "str | os.PathLike | None" = None,
                     progress: Optional[Callable[..., None]] = None) -> dict:
    """Run (or resume) the search and surrogate study into ``out``; returns the regret document."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(json.dumps({**dataclasses.asdict(config), "proxies_csv": proxies_csv},
                                                indent=2, default=list) + "\n")
    table = load_nas_bench_bert(benchmark)
    if config.surrogate_splits and config.labelled > len(table) - 2:
        raise ValueError(f"labelled ({config.labelled}) leaves fewer than 2 of the {len(table)} architectures "
                         f"to rank; use fewer labels or --surrogate-splits 0")
    proxies = read_proxies_csv(proxies_csv, table.ids) if proxies_csv else None
    x = feature_matrix([construct(e.encoding, config.construction) for e in table.entries], proxies)
    bench = TabularBenchmark(tuple(e.encoding for e in table.entries), table.labels(TARGET), x)
    cache = JsonlCache(out / "cache.jsonl", config.key(str(proxies_csv) if proxies_csv else None))
    result = _summarise(_searches(bench, config, cache, progress), config.seed)
    for name in result["strategies"]:
        seconds = [cache.seconds[f"search/{name}/{r}"] for r in range(config.repeats)]
        result["strategies"][name]["seconds_per_search"] = float(np.median(seconds))
    result.update(budget=config.budget, repeats=config.repeats, best_label=bench.best, label=TARGET,
                  features=list(proxies) if proxies else [])
    (out / "regret.json").write_text(json.dumps(result, indent=2) + "\n")
    regret_curves(result["strategies"], out / "regret.png")
    if config.surrogate_splits:
        study = surrogate_study(x, bench.labels, config, cache)
        (out / "surrogate.json").write_text(json.dumps(study, indent=2) + "\n")
        result["surrogate"] = study
    return result
