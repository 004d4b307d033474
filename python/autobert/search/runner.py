"""``run_search``: the search loop over a run folder — propose, check, evaluate, record, resume.

Run folder: ``config.json`` (the frozen SearchConfig), ``search.sqlite`` (every candidate, see
``SearchStore``), ``supernet/warmup.pt`` (the warmed-up BIWS supernet), ``best.json`` and
``pareto.json``. The database is the only state: on ``resume`` interrupted evaluations go back to
pending (and are evaluated again), finished ones are kept, and the evolution state is rebuilt by
replaying the finished results in the order they arrived.
"""
from __future__ import annotations

import dataclasses
import json
import logging
import shutil
from pathlib import Path
from typing import Callable, Optional

from autobert.graph import library
from autobert.model.config import ArchConfig, AttentionLayer
from autobert.model.space import SearchSpace, degeneracy
from autobert.search.config import SearchConfig
from autobert.search.device import resolve_device, worker_device
from autobert.search.evolution import Evolution, SearchExhausted
from autobert.search.executor import make_executor
from autobert.search.outcome import Outcome
from autobert.search.hierarchy import HierarchicalPriority
from autobert.search.results import write_results
from autobert.search.store import SearchStore
from autobert.train.archs import abz_layers
from autobert.train.run_lock import RunLock

log = logging.getLogger(__name__)

CONFIG_FILE, DB_FILE, SUPERNET_FILE = "config.json", "search.sqlite", "supernet/warmup.pt"
TOY_VOCAB = 128  # vocabulary of the architectures a toy (training-free) search describes


@dataclasses.dataclass(frozen=True)
class SearchSummary:
    run_dir: Path
    done: int
    failed: int
    best: Optional[dict]   # the best candidate (see results.candidate_summary)
    stopped: str           # "budget" | "proposal limit" | "space exhausted"


def search_space(config: SearchConfig) -> SearchSpace:
    e = config.evolution
    return SearchSpace(config.model.n_layers, graphs=tuple(library.values()), kernel_sizes=e.kernel_sizes,
                       max_nodes=e.max_nodes, conv_prob=e.conv_prob, random_graph_prob=e.random_graph_prob,
                       mutation_prob=0.5)


def base_arch(config: SearchConfig, vocab_size: int) -> ArchConfig:
    m = config.model
    return ArchConfig(layers=(AttentionLayer(library["standard"]),) * m.n_layers, vocab_size=vocab_size,
                      hidden=m.hidden, heads=m.heads, ffn=m.ffn, max_positions=m.max_positions, dropout=m.dropout)


def seed_architectures(config: SearchConfig) -> list[tuple]:
    """The hand-designed starting points: BERT (standard attention everywhere) and the AutoBERT-Zero
    hybrid (``autobert.train.archs.abz_layers``); the rest of the initial population is random."""
    n = config.model.n_layers
    return [(AttentionLayer(library["standard"]),) * n, abz_layers(n)]


def build_engine(config: SearchConfig, base: ArchConfig) -> Evolution:
    e = config.evolution
    priority = HierarchicalPriority(c=e.ucb_c, temperature=e.temperature, failure_penalty=e.failure_penalty,
                                    reward_norm=e.reward_norm, prior_count=e.prior_count)
    return Evolution(base, search_space(config), e.strategy, e.population_size, e.sample_size, config.seed,
                     priority, seeds=seed_architectures(config))


def replay_engine(engine: Evolution, store: SearchStore) -> None:
    """Rebuild the evolution state (population, op statistics) from the finished rows."""
    engine.replay([{"fingerprint": r["fingerprint"], "layers": ArchConfig.from_json(r["arch_json"]).layers,
                    "fitness": r["fitness"] if r["status"] == "done" else None, "parent": r["parent"],
                    "arm": r["op"], "generation": r["generation"]} for r in store.finished()])


class EvaluatorFactory:
    """Picklable: builds a run's evaluator (a Ray worker calls it once) on the GPU it reserved
    (``gpus`` > 0) or on the CPU."""

    def __init__(self, config: SearchConfig, run_dir, gpus: float = 0.0):
        self.config_json, self.run_dir, self.gpus = config.to_json(), str(run_dir), gpus

    def __call__(self):
        config = SearchConfig.from_dict(json.loads(self.config_json))
        if config.fitness == "toy":
            from autobert.search.toy import OpCountFitness
            return OpCountFitness()
        evaluator = _biws_evaluator(config, worker_device(self.gpus))
        evaluator.load(Path(self.run_dir) / SUPERNET_FILE)
        return evaluator


def gpus_per_worker(config: SearchConfig) -> float:
    """GPUs each Ray evaluator reserves: the configured number, else 1 when the search runs on CUDA."""
    if config.gpus_per_worker is not None:
        return float(config.gpus_per_worker)
    if config.fitness == "toy":
        return 0.0
    return 1.0 if resolve_device(config.device).type == "cuda" else 0.0


def _biws_evaluator(config: SearchConfig, device=None):
    """The BIWS evaluator of ``config`` on ``device`` (default: ``config.device`` resolved)."""
    from autobert.search.biws import BIWSEvaluator, load_glue_data, load_mlm_data
    device = resolve_device(config.device) if device is None else device
    data = load_mlm_data(config.corpus, config.vocab, config.biws, config.seed)
    glue = None
    if config.biws.glue_task:
        glue = load_glue_data(config.vocab, config.biws, config.seed, data.id_map)
    base = base_arch(config, data.vocab_size)
    return BIWSEvaluator(base, search_space(config), data, config.biws, config.seed, config.constraints, glue,
                         device=device)


def check_inputs(config: SearchConfig) -> None:
    """Fail fast on data paths that do not exist (corpus, vocab, the GLUE proxy's train/dev files).

    Raises FileNotFoundError naming the config field and the path.
    """
    if config.fitness != "mlm":
        return
    for field, path in (("corpus", config.corpus), ("vocab", config.vocab)):
        if not Path(path).exists():
            raise FileNotFoundError(f"search {field} not found: {path}")
    if config.biws.glue_task:
        from autobert.glue.loaders import find_split_file
        for split in ("train", "dev"):  # glue_task is already the config name (BIWSConfig normalises it)
            find_split_file(config.biws.glue_task, config.biws.glue_dir, split)


def _open_run(run_dir: Path, config: Optional[SearchConfig], resume: bool, budget: Optional[int],
              lock: RunLock, preload: Callable[[SearchConfig], object],
              reuse: bool = False) -> tuple[SearchConfig, object]:
    """Lock the run folder and write its config.json; returns (config, what ``preload`` returned).

    A new run checks its inputs and calls ``preload`` (which loads the data) before it creates
    anything, so bad input leaves no folder behind; a folder in use by another process is refused
    (``RunInUseError``) before anything in it is read or written. ``reuse``: a new run into a folder
    holding a search of the same config resumes that search (compared under the lock).
    """
    path = run_dir / CONFIG_FILE
    if resume:
        if not path.exists():
            raise FileNotFoundError(f"{run_dir} is not a search run folder (no {CONFIG_FILE}); nothing to resume")
        lock.acquire()
        config = _load_config(path)
        resolve_device(config.device)  # a run made on a GPU machine, resumed on one without: say so now
        loaded = preload(config)
    else:
        if config is None:
            raise ValueError("a new search needs a SearchConfig")
        if run_dir.is_dir():
            lock.acquire()
        if (run_dir / DB_FILE).exists():
            if not reuse:
                raise FileExistsError(f"{run_dir} already holds a search; resume it (--resume), reuse it when its "
                                      f"settings are these (--reuse) or choose another folder")
            stored = _load_config(path)
            differ = config_differences(stored, config)
            if differ:
                raise FileExistsError(f"{run_dir} already holds a search with other settings ({', '.join(differ)} "
                                      f"differ from its {CONFIG_FILE}); resume it (--resume) or choose another folder")
            log.info("%s holds a search with these settings: resuming it", run_dir)
            return _open_run(run_dir, None, True, config.budget, lock, preload)
        resolve_device(config.device)  # an explicit CUDA request without CUDA fails before any work
        check_inputs(config)  # before the folder exists: a typo in a path leaves nothing behind
        loaded = preload(config)
        run_dir.mkdir(parents=True, exist_ok=True)
        lock.acquire()
    if budget is not None and budget != config.budget:
        config = config.replace(budget=budget)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(config.to_json())
    tmp.replace(path)
    return config, loaded


def config_differences(a: SearchConfig, b: SearchConfig) -> list[str]:
    """Dotted names of the fields whose values differ between ``a`` and ``b``, the budget aside (a
    run's budget may grow)."""
    def flat(doc: dict, prefix: str = "") -> dict:
        out = {}
        for k, v in doc.items():
            out.update(flat(v, f"{prefix}{k}.") if isinstance(v, dict) else {prefix + k: v})
        return out
    fa, fb = flat(a.to_dict()), flat(b.to_dict())
    return sorted(k for k in fa.keys() | fb.keys() if k != "budget" and fa.get(k) != fb.get(k))


def _load_config(path: Path) -> SearchConfig:
    try:
        return SearchConfig.load(path)
    except (ValueError, TypeError, UnicodeDecodeError) as e:  # JSON errors are ValueErrors
        raise ValueError(f"{path}: not a config.json this version can read ({e})") from None


def _prepare_evaluator(config: SearchConfig, run_dir: Path, store: SearchStore, progress,
                       evaluator) -> tuple[Callable, int]:
    """(evaluator factory for the executor, vocabulary size); warms the supernet up if not yet done.

    ``evaluator``: the BIWS evaluator ``_preload`` built (None for the toy fitness)."""
    if config.fitness == "toy":
        return EvaluatorFactory(config, run_dir), TOY_VOCAB
    ckpt = run_dir / SUPERNET_FILE
    if ckpt.exists():
        evaluator.load(ckpt)
    else:  # an interrupted warm-up starts over: it is seeded, so it ends with the same weights
        total = config.biws.warmup_steps
        stats = evaluator.warm_up(progress=lambda s, loss: progress("warmup", step=s, total=total, loss=loss))
        evaluator.save(ckpt)
        store.set_meta("warmup", {k: stats[k] for k in ("steps", "seconds", "skipped")} | {"losses": stats["losses"]})
    factory = (lambda: evaluator) if config.executor == "local" else EvaluatorFactory(
        config, run_dir, gpus_per_worker(config))
    return factory, evaluator.base.vocab_size


def _preload(config: SearchConfig):
    """The BIWS evaluator with its data loaded (None for the toy fitness): the data's errors come first."""
    return _biws_evaluator(config) if config.fitness == "mlm" else None


def _share_supernet(source, run_dir: Path, store: SearchStore) -> None:
    """Start a new run from ``source``'s warmed-up supernet (the same proxy: paired comparisons)."""
    src = Path(source) / SUPERNET_FILE
    if not src.is_file():
        raise FileNotFoundError(f"--supernet-from: {source} has no warmed-up supernet ({SUPERNET_FILE})")
    dst = run_dir / SUPERNET_FILE
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_suffix(".pt.tmp")
    shutil.copyfile(src, tmp)
    tmp.replace(dst)
    store.set_meta("warmup", {**(_meta(Path(source)) or {}), "copied_from": str(Path(source).resolve())})


def _meta(run_dir: Path) -> Optional[dict]:
    with SearchStore(run_dir / DB_FILE) as store:
        return store.meta("warmup")


def run_search(run_dir, config: Optional[SearchConfig] = None, *, resume: bool = False, budget: Optional[int] = None,
               progress: Optional[Callable[..., None]] = None,
               evaluator_factory: Optional[Callable[[], Callable]] = None, supernet_from=None,
               reuse: bool = False) -> SearchSummary:
    """Run (or ``resume``) the search in ``run_dir`` until ``budget`` candidates are done.

    Args:
        config: the new run's config (ignored on resume: config.json is read).
        budget: overrides the config's budget (e.g. to extend a finished run).
        reuse: a new run whose folder already holds a search with the same config (the budget
            aside) continues that search (a finished one only rewrites its results) instead of
            being refused; a search with another config is refused all the same.
        supernet_from: a run folder whose warmed-up supernet this new run uses instead of warming up
            its own (same sizes, data and seed needed: the checkpoint's base architecture is checked).
        progress: called as ``progress(event, **info)`` with events "warmup", "candidate".
        evaluator_factory: replaces the configured evaluator (tests: failing or toy fitness).
    """
    run_dir = Path(run_dir)
    if supernet_from is not None and resume:
        raise ValueError("supernet_from applies to a new run; a resumed run keeps its own supernet")
    lock = RunLock(run_dir)  # taken by _open_run once the folder exists; released however this ends
    try:
        preload = (lambda c: None) if evaluator_factory is not None else _preload
        config, evaluator = _open_run(run_dir, config, resume, budget, lock, preload, reuse)
        return _run(run_dir, config, progress or (lambda event, **info: None), evaluator_factory, evaluator,
                    supernet_from)
    finally:
        lock.release()


def _run(run_dir: Path, config: SearchConfig, progress, evaluator_factory, evaluator, supernet_from) -> SearchSummary:
    with SearchStore(run_dir / DB_FILE) as store:
        if supernet_from is not None and not (run_dir / SUPERNET_FILE).exists():
            _share_supernet(supernet_from, run_dir, store)
        requeued = store.requeue_running()
        if requeued:
            log.info("resume: %d interrupted evaluation(s) will run again", requeued)
        if evaluator_factory is not None:
            factory, vocab = evaluator_factory, TOY_VOCAB
        else:
            factory, vocab = _prepare_evaluator(config, run_dir, store, progress, evaluator)
        engine = build_engine(config, base_arch(config, vocab))
        replay_engine(engine, store)
        executor = make_executor(config.executor, factory, config.workers, config.address,
                                 gpus_per_worker=gpus_per_worker(config),
                                 time_limit=config.constraints.max_eval_seconds)
        try:
            stopped = _Loop(config, store, engine, executor, progress).run()
        finally:
            executor.close()
        results = write_results(run_dir, store)
        return SearchSummary(run_dir, store.count("done"), store.count("failed"),
                             results["best"][0] if results["best"] else None, stopped)


class _Loop:
    """Keeps the executor busy until the budget is met; the driver alone writes the database."""

    def __init__(self, config: SearchConfig, store: SearchStore, engine: Evolution, executor, progress):
        self.config, self.store, self.engine, self.executor, self.progress = config, store, engine, executor, progress
        self.known = store.fingerprints()
        self.queue = [r["id"] for r in store.pending()]  # interrupted or never started: first
        self.next_index = store.next_index()

    def run(self) -> str:
        budget = self.config.budget
        while True:
            done = self.store.count("done")
            stopped = None
            while self.executor.in_flight < self.executor.capacity and done + self.executor.in_flight < budget:
                try:
                    index = self._next_candidate()
                except SearchExhausted as e:
                    log.warning("stopping: %s", e)
                    index, stopped = None, "space exhausted"
                    break
                if index is None:
                    stopped = "proposal limit"
                    break
                self._submit(index)
            if self.executor.in_flight == 0:
                if stopped:
                    log.warning("stopping: %d proposals made (limit %d) but only %d of %d candidates done",
                                self.next_index, self.config.proposal_limit, done, budget)
                return stopped or "budget"
            for index, outcome in self.executor.wait():
                self._record(index, outcome)

    def _next_candidate(self) -> Optional[int]:
        if self.queue:
            return self.queue.pop(0)
        if self.next_index >= self.config.proposal_limit:
            return None
        p = self.engine.propose(self.next_index, self.known.__contains__)
        arch = self.engine.arch(p.layers)
        self.store.add(p.index, p.fingerprint, arch.to_json(), params=arch.num_parameters("mlm"),
                       flops=arch.flops(self.config.constraints.seq_len), parent=p.parent, op=p.arm, kind=p.kind,
                       layer=p.layer, generation=p.generation, function=p.function, rejected=p.rejected)
        self.known.update((p.fingerprint, p.function))
        self.next_index += 1
        return p.index

    def _row(self, index: int):
        return self.store.db.execute("SELECT * FROM candidates WHERE id=?", (index,)).fetchone()

    def _submit(self, index: int) -> bool:
        """Start evaluating candidate ``index``; a degenerate layer or a constraint violation fails it at
        once instead (no evaluation, no budget)."""
        row = self._row(index)
        arch = ArchConfig.from_json(row["arch_json"])
        reason = degeneracy(arch.layers) or self.config.constraints.static_violation(arch)
        if reason is not None:
            self._record(index, Outcome("failed", reason=reason))
            return False
        self.store.start(index)
        self.executor.submit(index, row["arch_json"])
        return True

    def _record(self, index: int, outcome: Outcome) -> None:
        row = self._row(index)
        layers = ArchConfig.from_json(row["arch_json"]).layers
        reward = self.engine.tell(row["fingerprint"], layers, outcome.fitness, row["parent"], row["op"],
                                  row["generation"])
        metrics = dict(outcome.metrics, seconds=outcome.seconds)
        self.store.finish(index, outcome.status, fitness=outcome.fitness, reason=outcome.reason, metrics=metrics,
                          reward=reward)
        best = self.engine.best
        self.progress("candidate", index=index, status=outcome.status, fitness=outcome.fitness, reason=outcome.reason,
                      done=self.store.count("done"), budget=self.config.budget,
                      best=None if best is None else best.fitness)
