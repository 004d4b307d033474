"""``SearchConfig``: everything a search run needs, frozen and validated, saved as ``config.json``.

Grouped into the model sizes, the evolution settings, the BIWS evaluation settings and the
constraints. ``SearchConfig.preset("tiny")`` is the CPU-sized search (minutes on 2 cores);
``replace`` / ``from_dict`` accept nested dicts, so a JSON file can override any field.
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any, Optional

from autobert.model.space import DEFAULT_KERNELS
from autobert.search.constraints import Constraints
from autobert.search.device import check_device_name
from autobert.search.evolution import STRATEGIES
from autobert.search.priority import REWARD_NORMS
from autobert.train.run_config import check_bool

FITNESSES = ("mlm", "toy")
EXECUTORS = ("local", "ray")
#: GLUE tasks the quick proxy can fine-tune on (those with a train split).
GLUE_PROXY_TASKS = ("cola", "sst2", "mrpc", "stsb", "qqp", "mnli", "qnli", "rte", "wnli")


def glue_task_name(task) -> str:
    """Any GLUE spelling ("SST-2", "sst2", "RTE") -> its config name; ValueError naming an unknown task."""
    from autobert.glue import get_config
    try:
        name = get_config(task).name
    except KeyError:
        name = None
    if name not in GLUE_PROXY_TASKS:
        raise ValueError(f"BIWSConfig.glue_task: unknown GLUE task {task!r}; expected one of {GLUE_PROXY_TASKS}")
    return name


def _int(owner: str, name: str, value, minimum: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ValueError(f"{owner}.{name} must be an int >= {minimum}, got {value!r}")


def _num(owner: str, name: str, value, minimum: float, strict: bool = False) -> None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    ok = ok and (value > minimum if strict else value >= minimum)
    if not ok:
        raise ValueError(f"{owner}.{name} must be a number {'>' if strict else '>='} {minimum}, got {value!r}")


@dataclasses.dataclass(frozen=True)
class ModelSizes:
    """Sizes shared by every candidate (only the layer choices are searched)."""

    n_layers: int = 4        # layers of every candidate
    hidden: int = 64         # model width
    heads: int = 4           # attention heads / conv groups
    ffn: int = 128           # FFN inner width
    max_positions: int = 128  # learned positions (>= the BIWS seq_len)
    dropout: float = 0.1

    def __post_init__(self):
        for name, lo in (("n_layers", 1), ("hidden", 1), ("heads", 1), ("ffn", 1), ("max_positions", 1)):
            _int("ModelSizes", name, getattr(self, name), lo)
        if self.hidden % self.heads:
            raise ValueError(f"ModelSizes.hidden ({self.hidden}) must be divisible by heads ({self.heads})")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"ModelSizes.dropout must be in [0, 1), got {self.dropout!r}")


@dataclasses.dataclass(frozen=True)
class EvolutionConfig:
    """Search strategy and its hyper-parameters (see ``autobert.search.evolution``)."""

    strategy: str = "opnas"             # opnas | evolution | random
    population_size: int = 16           # P: aging population and number of initial individuals
    sample_size: int = 8                # S: tournament size
    ucb_c: float = 0.1                  # UCB exploration weight (reward units: MLM loss)
    temperature: float = 0.05           # softmax temperature over UCB scores
    failure_penalty: float = 0.5        # reward of a failed child is -failure_penalty
    reward_norm: str = "none"           # none: raw rewards | std: rewards / running std (c, T in std units)
    prior_count: float = 0.0            # pseudo-results of reward 0 per arm (0: untried arms are drawn first)
    max_nodes: int = 10                 # op-node limit of mutated / random graphs
    kernel_sizes: tuple = DEFAULT_KERNELS[:5]  # conv kernels (the supernet holds the largest)
    conv_prob: float = 0.3              # chance a random layer is a conv layer
    random_graph_prob: float = 0.3      # chance a random attention layer gets a random graph (else a library one)

    def __post_init__(self):
        if self.strategy not in STRATEGIES:
            raise ValueError(f"EvolutionConfig.strategy must be one of {STRATEGIES}, got {self.strategy!r}")
        for name, lo in (("population_size", 1), ("sample_size", 1), ("max_nodes", 1)):
            _int("EvolutionConfig", name, getattr(self, name), lo)
        _num("EvolutionConfig", "ucb_c", self.ucb_c, 0)
        _num("EvolutionConfig", "temperature", self.temperature, 0, strict=True)
        _num("EvolutionConfig", "failure_penalty", self.failure_penalty, 0)
        _num("EvolutionConfig", "prior_count", self.prior_count, 0)
        if self.reward_norm not in REWARD_NORMS:
            raise ValueError(f"EvolutionConfig.reward_norm must be one of {REWARD_NORMS}, got {self.reward_norm!r}")
        for name in ("conv_prob", "random_graph_prob"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"EvolutionConfig.{name} must be in [0, 1], got {getattr(self, name)!r}")
        kernels = tuple(self.kernel_sizes)
        if not kernels or any(not isinstance(k, int) or k < 1 or k % 2 == 0 for k in kernels):
            raise ValueError(f"EvolutionConfig.kernel_sizes must be odd ints >= 1, got {self.kernel_sizes!r}")
        object.__setattr__(self, "kernel_sizes", tuple(sorted(set(kernels))))


@dataclasses.dataclass(frozen=True)
class BIWSConfig:
    """Data and training budget of the weight-sharing evaluation (see ``autobert.search.biws``)."""

    seq_len: int = 64                  # tokens per block
    batch_size: int = 16               # blocks per training step (supernet and children)
    max_tokens: Optional[int] = None   # read at most this many corpus tokens (None: all)
    holdout_fraction: float = 0.1      # blocks held out for the fitness
    eval_blocks: int = 256             # held-out blocks scored per candidate (fixed masks)
    compact_vocab: bool = True         # re-number the ids the corpus uses densely (smaller softmax)
    warmup_steps: int = 300            # supernet warm-up steps (sampled children)
    single_change_prob: float = 0.5    # share of warm-up children from the single-change sampler
    supernet_lr: float = 1e-3
    child_steps: int = 20              # MLM steps a candidate trains after inheriting weights
    child_lr: float = 1e-3
    # A child starts at inherit x its supernet weights + (1 - inherit) x a fresh seeded init (shrink
    # and perturb): below 1 the proxy also sees how well the layers train from random weights.
    inherit: float = 1.0
    threads: int = 0                   # torch threads per evaluator (0: leave torch's default)
    # Optional quick GLUE proxy: after its MLM steps each candidate is fine-tuned on a seeded
    # subsample of a GLUE task's train split and scored on a fixed dev subsample.
    glue_task: Optional[str] = None    # a GLUE task with a train split (sst2, rte, mrpc, cola, ...); None: off
    glue_dir: Optional[str] = None     # the GLUE data root (glue_data) or the task's own folder
    glue_train_examples: int = 512     # seeded train subsample
    glue_dev_examples: int = 256       # fixed (seeded) dev subsample
    glue_epochs: int = 1               # passes over the train subsample
    glue_batch_size: int = 16
    glue_lr: float = 1e-3              # peak lr (linear warm-up 10%, then linear decay)
    glue_max_length: int = 64          # tokens per example incl. specials (<= model.max_positions)
    glue_weight: float = 1.0           # fitness = MLM loss - glue_weight * dev score (lower is better)
    glue_only: bool = False            # fitness = -dev score (the MLM loss is recorded, not used)

    def __post_init__(self):
        for name, lo in (("seq_len", 3), ("batch_size", 1), ("eval_blocks", 1), ("warmup_steps", 0),
                         ("child_steps", 0), ("threads", 0), ("glue_train_examples", 1), ("glue_dev_examples", 1),
                         ("glue_epochs", 1), ("glue_batch_size", 1), ("glue_max_length", 4)):
            _int("BIWSConfig", name, getattr(self, name), lo)
        _num("BIWSConfig", "glue_lr", self.glue_lr, 0, strict=True)
        _num("BIWSConfig", "glue_weight", self.glue_weight, 0)
        check_bool("BIWSConfig", "glue_only", self.glue_only)
        if self.glue_task is not None:
            object.__setattr__(self, "glue_task", glue_task_name(self.glue_task))
            if not self.glue_dir:
                raise ValueError(f"BIWSConfig.glue_task {self.glue_task!r} needs glue_dir (the GLUE data folder)")
        if self.max_tokens is not None:
            _int("BIWSConfig", "max_tokens", self.max_tokens, 1)
        if not 0 < self.holdout_fraction < 1:
            raise ValueError(f"BIWSConfig.holdout_fraction must be in (0, 1), got {self.holdout_fraction!r}")
        if not 0 <= self.single_change_prob <= 1:
            raise ValueError(f"BIWSConfig.single_change_prob must be in [0, 1], got {self.single_change_prob!r}")
        _num("BIWSConfig", "supernet_lr", self.supernet_lr, 0, strict=True)
        _num("BIWSConfig", "child_lr", self.child_lr, 0, strict=True)
        _num("BIWSConfig", "inherit", self.inherit, 0)
        if self.inherit > 1:
            raise ValueError(f"BIWSConfig.inherit must be in [0, 1], got {self.inherit!r}")


_NESTED = {"model": ModelSizes, "evolution": EvolutionConfig, "biws": BIWSConfig, "constraints": Constraints}


@dataclasses.dataclass(frozen=True)
class SearchConfig:
    """A search run. ``budget`` counts candidates with status done, over the run and its resumes."""

    budget: int = 60                     # candidates to finish (status done)
    seed: int = 0                        # seeds proposals, supernet warm-up, data split and child training
    fitness: str = "mlm"                 # mlm (BIWS held-out MLM loss) | toy (training-free, for tests)
    corpus: Optional[str] = None         # text file or folder (fitness mlm)
    vocab: Optional[str] = None          # WordPiece vocab.txt (fitness mlm)
    executor: str = "local"              # local | ray
    address: Optional[str] = None        # Ray cluster address (None: start a local Ray instance)
    workers: int = 2                     # Ray workers
    device: str = "auto"                 # auto (CUDA when available) | cpu | cuda | cuda:N: supernet and children
    gpus_per_worker: Optional[float] = None  # GPUs a Ray evaluator reserves (fractional packs several per GPU);
    #                                          None: 1 when the device resolves to CUDA, else 0
    max_proposals: Optional[int] = None  # stop after this many proposals (None: 20 * budget), failed included
    model: ModelSizes = ModelSizes()
    evolution: EvolutionConfig = EvolutionConfig()
    biws: BIWSConfig = BIWSConfig()
    constraints: Constraints = Constraints()

    def __post_init__(self):
        _int("SearchConfig", "budget", self.budget, 1)
        _int("SearchConfig", "seed", self.seed, 0)
        _int("SearchConfig", "workers", self.workers, 1)
        check_device_name(self.device)
        if self.gpus_per_worker is not None:
            _num("SearchConfig", "gpus_per_worker", self.gpus_per_worker, 0)
        if self.max_proposals is not None:
            _int("SearchConfig", "max_proposals", self.max_proposals, 1)
        if self.fitness not in FITNESSES:
            raise ValueError(f"SearchConfig.fitness must be one of {FITNESSES}, got {self.fitness!r}")
        if self.executor not in EXECUTORS:
            raise ValueError(f"SearchConfig.executor must be one of {EXECUTORS}, got {self.executor!r}")
        if self.fitness == "mlm" and (not self.corpus or not self.vocab):
            raise ValueError("SearchConfig: fitness 'mlm' needs 'corpus' (a text file or folder) and 'vocab' "
                             "(a WordPiece vocab.txt)")
        for name, cls in _NESTED.items():
            value = getattr(self, name)
            if isinstance(value, dict):
                object.__setattr__(self, name, _build(cls, value, name))
            elif not isinstance(value, cls):
                raise ValueError(f"SearchConfig.{name} must be a {cls.__name__} or a dict, got {type(value).__name__}")
        if self.fitness == "mlm" and self.biws.seq_len > self.model.max_positions:
            raise ValueError(f"biws.seq_len {self.biws.seq_len} exceeds model.max_positions {self.model.max_positions}")
        if self.fitness == "mlm" and self.biws.glue_task and self.biws.glue_max_length > self.model.max_positions:
            raise ValueError(f"biws.glue_max_length {self.biws.glue_max_length} exceeds model.max_positions "
                             f"{self.model.max_positions}")

    @property
    def proposal_limit(self) -> int:
        return self.max_proposals or 20 * self.budget

    # ---- (de)serialisation ----
    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, doc: Any) -> "SearchConfig":
        return _build(cls, doc, "SearchConfig")

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def load(cls, path) -> "SearchConfig":
        return cls.from_dict(json.loads(Path(path).read_text()))

    def replace(self, **changes) -> "SearchConfig":
        """A copy with fields changed; nested groups may be given as partial dicts."""
        doc = self.to_dict()
        for key, value in changes.items():
            if key in _NESTED and isinstance(value, dict):
                doc[key] = {**doc[key], **value}
            else:
                doc[key] = dataclasses.asdict(value) if dataclasses.is_dataclass(value) else value
        return SearchConfig.from_dict(doc)

    @classmethod
    def preset(cls, name: str, **changes) -> "SearchConfig":
        """A named starting point: ``demo`` (CPU, about a minute), ``tiny`` (CPU, minutes) or ``small``
        (a GPU-sized proxy)."""
        if name not in PRESETS:
            raise ValueError(f"unknown search preset {name!r}; presets: {sorted(PRESETS)}")
        doc = json.loads(json.dumps(PRESETS[name]))
        base = cls.__new__(cls)  # no validation yet: corpus/vocab may come with ``changes``
        for f in dataclasses.fields(cls):
            object.__setattr__(base, f.name, f.default)
        merged = {**dataclasses.asdict(base), **doc}
        for key, value in changes.items():
            if key in _NESTED and isinstance(value, dict):
                merged[key] = {**merged[key], **value}
            else:
                merged[key] = value
        return cls.from_dict(merged)


def _build(cls, doc: Any, where: str):
    if not isinstance(doc, dict):
        raise ValueError(f"{where} must be a JSON object, got {type(doc).__name__}")
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = set(doc) - names
    if unknown:
        raise ValueError(f"{where}: unknown keys {sorted(unknown)}; expected some of {sorted(names)}")
    kwargs = dict(doc)
    for name, sub in _NESTED.items():
        if cls is SearchConfig and name in kwargs and isinstance(kwargs[name], dict):
            kwargs[name] = _build(sub, kwargs[name], f"{where}.{name}")
    if "kernel_sizes" in kwargs and isinstance(kwargs["kernel_sizes"], list):
        kwargs["kernel_sizes"] = tuple(kwargs["kernel_sizes"])
    return cls(**kwargs)


PRESETS: dict[str, dict] = {
    # 2 CPU cores, WikiText-2-sized corpus: warm-up + 60 candidates in a few minutes.
    # One torch thread: on a model this small, a second OpenMP thread buys little and, on a busy
    # machine, spin-waiting makes a step ~10x slower (measured on 2 cores).
    # 2000 warm-up steps at lr 1e-3: only a supernet trained that long has left MLM's unigram plateau
    # on WikiText-2, and only then do candidates differ (held-out losses 6.2-6.9 instead of 6.85-6.95;
    # proxy vs stand-alone Kendall tau 0.77 instead of 0.04, docs/search.md). At lr 2e-3-3e-3 the
    # post-LN children stay on the plateau whatever the warm-up length.
    # Half the layers drawn during warm-up (and for random individuals) are convolutions, and a child
    # trains 100 steps from the inherited weights: with 30% conv draws and 20 child steps the proxy
    # ranked 10 conv-containing architectures against their stand-alone losses (2000 steps) at Kendall
    # tau 0.18; with these settings at 0.76 (docs/search.md). A candidate then takes ~3 s.
    # A child starts halfway between its inherited weights and a fresh init (inherit 0.5): fully
    # inherited, the proxy ranked attention layers above 4 x conv k=3, the best backbone trained
    # stand-alone; halfway, it ranked that one first on one supernet of two (docs/search.md).
    # Kernels 3, 5, 7 on 64-token blocks: stand-alone, wider kernels train slower (4 x k: 5.67, 5.70,
    # 5.77, 5.82 for k = 3, 5, 9, 15), which a child that inherits trained taps cannot show (the
    # proxy ranked a k = 15 layer among its best).
    "tiny": {"budget": 60, "evolution": {"conv_prob": 0.5, "kernel_sizes": [3, 5, 7]},
             "biws": {"threads": 1, "warmup_steps": 2000, "child_steps": 100, "eval_blocks": 512, "inherit": 0.5}},
    # The out-of-the-box demo (README's install command; the embedded WikiText-2 text and BERT
    # vocabulary when no data is given): the tiny sizes with a short warm-up, short child training
    # and 10 candidates on the first 60k tokens; under 3 minutes on 2 CPU cores (docs/reliability.md).
    # Too short to rank architectures well: it shows the search end to end.
    "demo": {"budget": 10, "evolution": {"population_size": 6, "sample_size": 3, "conv_prob": 0.5,
                                         "kernel_sizes": [3, 5, 7]},
             "biws": {"threads": 1, "max_tokens": 60000, "warmup_steps": 400, "child_steps": 30,
                      "eval_blocks": 64}},
    # A GPU-sized proxy: BERT-small widths, longer warm-up and child training.
    "small": {"budget": 200, "model": {"n_layers": 4, "hidden": 256, "heads": 4, "ffn": 1024,
                                        "max_positions": 128},
              "biws": {"seq_len": 128, "batch_size": 32, "warmup_steps": 3000, "child_steps": 100,
                       "eval_blocks": 256}},
}
