"""NAS-Bench-BERT (Serianni & Kalita, ACL 2023): 500 FlexiBERT-space architectures with GLUE scores.

``load_nas_bench_bert(path)`` reads ``BERT_benchmark.json`` (``path`` is the file or the folder that
holds it) into ``BenchmarkEntry`` values: the benchmark id, the architecture exactly as labelled
(``FlexiEncoding``) and the scores (per GLUE task and their mean ``glue``). Every problem raises
``BenchmarkError`` naming the file, the entry (list index and id) and the field; nothing is
skipped silently. Turning an encoding into a model is ``autobert.rank.construction``'s job.
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
from pathlib import Path
from typing import Any, NamedTuple, Optional, Sequence

import numpy as np

from autobert.model.operation import Operation

BENCHMARK_FILE = "BERT_benchmark.json"
TASKS = ("cola", "mnli", "mrpc", "qnli", "qqp", "rte", "sst", "sts")
TARGET = "glue"  # the mean of the eight task scores; the label every ranking is judged against
_OPERATIONS = {("SA", "SDP"): "sdp", ("SA", "WMA"): "wma", ("LT", "DFT"): "dft", ("LT", "DCT"): "dct"}
_LAYER_KEYS = ("operation_type", "operation_parameter", "num_operation_heads", "feed_forward_dimension",
               "num_feed_forward")


class BenchmarkError(ValueError):
    """A benchmark file that cannot be read; names the file, the entry and what is wrong."""


class LayerLabels(NamedTuple):
    """One encoder layer as the benchmark labels it."""

    operation: Operation   # the labelled operation (SA-SDP -> sdp, LT-DCT -> dct, DSC-9 -> dsc(9), ...)
    heads: int             # num_operation_heads
    ffn_dim: int           # feed_forward_dimension
    ffn_layers: int        # num_feed_forward


class FlexiEncoding(NamedTuple):
    """An architecture of the NAS-Bench-BERT space, exactly as labelled."""

    hidden: int
    layers: tuple[LayerLabels, ...]


@dataclasses.dataclass(frozen=True)
class BenchmarkEntry:
    id: int                      # the benchmark's own id
    encoding: FlexiEncoding
    scores: dict                 # task -> dev score, and "glue" (their mean)

    @property
    def glue(self) -> float:
        return self.scores[TARGET]


@dataclasses.dataclass(frozen=True)
class Benchmark:
    """The entries of one benchmark file, in file order."""

    entries: tuple[BenchmarkEntry, ...]
    path: str

    def __len__(self) -> int:
        return len(self.entries)

    @property
    def ids(self) -> list[int]:
        return [e.id for e in self.entries]

    def labels(self, task: str = TARGET) -> np.ndarray:
        """(len,) float64 scores of ``task`` in entry order."""
        return np.array([e.scores[task] for e in self.entries], dtype=float)

    def subset(self, ids: Sequence[int]) -> "Benchmark":
        """The entries with these ids, in the order given; KeyError naming a missing id."""
        by_id = {e.id: e for e in self.entries}
        missing = [i for i in ids if i not in by_id]
        if missing:
            raise KeyError(f"{self.path}: no entries with ids {missing[:5]}")
        return Benchmark(tuple(by_id[i] for i in ids), self.path)

    def head(self, n: Optional[int]) -> "Benchmark":
        """The first ``n`` entries (all when None)."""
        return self if n is None else Benchmark(self.entries[:n], self.path)


def benchmark_file(path: "str | os.PathLike") -> Path:
    path = Path(path)
    file = path / BENCHMARK_FILE if path.is_dir() else path
    if not file.is_file():
        raise FileNotFoundError(f"NAS-Bench-BERT file not found: {file} (give {BENCHMARK_FILE} or its folder)")
    return file


def load_nas_bench_bert(path: "str | os.PathLike") -> Benchmark:
    """Read NAS-Bench-BERT's ``BERT_benchmark.json`` (the file or its folder)."""
    file = benchmark_file(path)
    try:
        doc = json.loads(file.read_text())
    except (ValueError, UnicodeDecodeError, RecursionError) as e:
        raise BenchmarkError(f"{file}: not valid JSON: {e}") from None
    if not isinstance(doc, list) or not doc:
        raise BenchmarkError(f"{file}: expected a non-empty JSON list of entries, got {type(doc).__name__}")
    entries, seen = [], {}
    for index, raw in enumerate(doc):
        entry = _entry(raw, f"{file}: entry [{index}]")
        if entry.id in seen:
            raise BenchmarkError(f"{file}: entry [{index}] repeats id {entry.id} (first at entry [{seen[entry.id]}])")
        seen[entry.id] = index
        entries.append(entry)
    return Benchmark(tuple(entries), str(file))


def _field(doc: Any, key: str, where: str) -> Any:
    if not isinstance(doc, dict):
        raise BenchmarkError(f"{where}: expected an object, got {type(doc).__name__}")
    if key not in doc:
        raise BenchmarkError(f"{where}: missing '{key}'")
    return doc[key]


def _int(value: Any, where: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise BenchmarkError(f"{where}: expected an int >= 1, got {value!r}")
    return value


def _entry(raw: Any, where: str) -> BenchmarkEntry:
    entry_id = _field(raw, "id", where)
    if not isinstance(entry_id, int) or isinstance(entry_id, bool):
        raise BenchmarkError(f"{where}: 'id' must be an int, got {entry_id!r}")
    where = f"{where} (id {entry_id})"
    scores = _field(raw, "scores", where)
    if not isinstance(scores, dict):
        raise BenchmarkError(f"{where}.scores: expected an object, got {type(scores).__name__}")
    for task in (*TASKS, TARGET):
        value = _field(scores, task, f"{where}.scores")
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
            raise BenchmarkError(f"{where}.scores.{task}: expected a finite number, got {value!r}")
    overrides = _field(_field(raw, "hparams", where), "model_hparam_overrides", f"{where}.hparams")
    where = f"{where}.hparams.model_hparam_overrides"
    hidden = _int(_field(overrides, "hidden_size", where), f"{where}.hidden_size")
    layers = _field(_field(overrides, "nas_config", where), "encoder_layers", f"{where}.nas_config")
    if not isinstance(layers, list) or not layers:
        raise BenchmarkError(f"{where}.nas_config.encoder_layers: expected a non-empty list, got {layers!r}")
    encoding = FlexiEncoding(hidden, tuple(_layer(layer, hidden, f"{where}.nas_config.encoder_layers[{i}]")
                                           for i, layer in enumerate(layers)))
    return BenchmarkEntry(entry_id, encoding, {k: float(scores[k]) for k in (*TASKS, TARGET)})


def _layer(doc: Any, hidden: int, where: str) -> LayerLabels:
    kind, param = (_field(doc, key, where) for key in _LAYER_KEYS[:2])
    if kind == "DSC" and isinstance(param, int) and not isinstance(param, bool):
        name = f"dsc({param})"
    elif (kind, param) in _OPERATIONS:
        name = _OPERATIONS[(kind, param)]
    else:
        raise BenchmarkError(f"{where}: unknown operation {kind!r} / {param!r} (expected SA SDP|WMA, LT DFT|DCT "
                             f"or DSC <odd kernel>)")
    try:
        operation = Operation.parse(name)
    except ValueError as e:
        raise BenchmarkError(f"{where}.operation_parameter: {e}") from None
    heads, ffn_dim, ffn_layers = (_int(_field(doc, key, where), f"{where}.{key}") for key in _LAYER_KEYS[2:])
    if hidden % heads:
        raise BenchmarkError(f"{where}.num_operation_heads: {heads} does not divide hidden_size {hidden}")
    return LayerLabels(operation, heads, ffn_dim, ffn_layers)
