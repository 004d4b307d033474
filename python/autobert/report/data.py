"""Read a search run folder into plain data for plotting (``load_run``)."""
from __future__ import annotations

import dataclasses
from pathlib import Path

from autobert.model.config import ArchConfig
from autobert.search.config import SearchConfig
from autobert.search.runner import CONFIG_FILE, DB_FILE, base_arch, build_engine, replay_engine
from autobert.search.store import SearchStore


@dataclasses.dataclass
class RunData:
    name: str                 # folder name
    path: Path
    config: SearchConfig
    rows: list[dict]          # every candidate, in proposal order
    finished: list[dict]      # done + failed, in the order results arrived
    priority_history: list[dict]  # OpPriority snapshots after each update (replayed)
    warmup: dict | None       # supernet warm-up statistics, if any
    rejected: dict            # draws redrawn while proposing, by reason (degenerate, functional duplicate, ...)

    @property
    def strategy(self) -> str:
        return self.config.evolution.strategy

    def best_curve(self) -> tuple[list[int], list[float]]:
        """(evaluations done, best fitness so far) after each done candidate."""
        xs, ys, best = [], [], float("inf")
        for r in self.finished:
            if r["status"] == "done":
                best = min(best, r["fitness"])
                xs.append(len(xs) + 1)
                ys.append(best)
        return xs, ys


def load_run(run_dir) -> RunData:
    """Everything the report shows about ``run_dir``; FileNotFoundError when it is not a run folder."""
    path = Path(run_dir)
    if not (path / CONFIG_FILE).exists() or not (path / DB_FILE).exists():
        raise FileNotFoundError(f"{path} is not a search run folder (needs {CONFIG_FILE} and {DB_FILE})")
    config = SearchConfig.load(path / CONFIG_FILE)
    with SearchStore(path / DB_FILE) as store:
        rows = [dict(r) for r in store.rows()]
        finished = [dict(r) for r in store.finished()]
        warmup = store.meta("warmup")
        rejected = store.rejected_totals()
        vocab = ArchConfig.from_json(rows[0]["arch_json"]).vocab_size if rows else 128
        engine = build_engine(config, base_arch(config, vocab))
        replay_engine(engine, store)  # the op statistics are a function of the stored results
    return RunData(path.name, path, config, rows, finished, engine.priority.history, warmup, rejected)
