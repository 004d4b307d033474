"""Registry of the GLUE tasks: folders, files, column layouts, labels, metrics, submission names.

Layouts are those `download_glue_data.py` writes (``glue_data/<Folder>/<split>.tsv``; the
diagnostic set AX goes to ``glue_data/diagnostic/diagnostic.tsv``, the file served as ``AX.tsv``).

Two kinds of names exist and both are accepted everywhere (case, ``-`` and ``_`` are ignored):

* *configs* — Hugging Face `evaluate`/`datasets` glue config names: cola, sst2, mrpc, stsb, qqp,
  mnli, mnli_matched, mnli_mismatched, qnli, rte, wnli, ax. A config fixes the metric, the
  submission file and, for MNLI, which dev/test half "dev"/"test" mean.
* *tasks* — the data folders: CoLA, SST-2, MRPC, STS-B, QQP, MNLI, QNLI, RTE, WNLI, diagnostic (AX).
  Also "MNLI-m"/"MNLI-mm" (the submission names) resolve to mnli_matched/mnli_mismatched.

Label indices: the position in ``TaskSpec.label_names``. They follow google-research/bert and
the transformers GLUE processors (MNLI/AX: contradiction=0, entailment=1, neutral=2), *not* the
Hugging Face `datasets` integers (entailment=0, neutral=1, contradiction=2); the HF source
(`hf_source.py`) maps by label name.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Mapping

__all__ = ["SplitSpec", "TaskSpec", "ConfigSpec", "TASKS", "CONFIGS", "get_config", "get_task", "resolve_split"]


@dataclass(frozen=True)
class SplitSpec:
    """Where one split lives and how its columns are laid out.

    ``columns`` is the full column list as download_glue_data.py writes it. For a file with a header
    (``has_header``) the fields used below are looked up by *name* in the header, so column order does
    not matter; a headerless file is read by the positions of ``columns``.
    """

    files: tuple[str, ...]          # candidate file names in the task folder; the first that exists wins
    columns: tuple[str, ...]        # full layout, for reading headerless files and for error messages
    has_header: bool
    text_a: str                     # column holding the first sentence
    text_b: str | None              # second sentence column; None for single-sentence tasks
    label: str | None               # label column; None on unlabelled (test) splits
    guid: str | None                # id column; None -> the 0-based data row number
    rows: int | None = None         # official number of data rows (header not counted)

    def describe(self) -> str:
        """Human-readable layout for error messages."""
        cols = " | ".join(self.columns)
        return f"{'header' if self.has_header else 'no header, columns'}: {cols}"

    @property
    def required(self) -> tuple[str, ...]:
        """Columns that must be present for this split to be read."""
        return tuple(c for c in (self.guid, self.text_a, self.text_b, self.label) if c is not None)


@dataclass(frozen=True)
class TaskSpec:
    """One GLUE data folder (a task) with its splits and label vocabulary."""

    name: str                                    # folder name: "CoLA", "SST-2", ..., "diagnostic"
    label_names: tuple[str, ...] | None          # None = regression (STS-B)
    splits: Mapping[str, SplitSpec] = field(repr=False)

    @property
    def is_regression(self) -> bool:
        return self.label_names is None

    @property
    def num_labels(self) -> int:
        """Number of classes (1 for regression: the width of the model head)."""
        return 1 if self.label_names is None else len(self.label_names)


@dataclass(frozen=True)
class ConfigSpec:
    """A Hugging Face glue config name bound to its task, metrics and submission file."""

    name: str                      # "cola", ..., "mnli_mismatched", "ax"
    task: TaskSpec
    metrics: tuple[str, ...]       # keys compute_metrics returns (HF evaluate names)
    submission: str                # official test-prediction file name, e.g. "MNLI-mm.tsv"
    test_split: str                # split that submission file is made from
    dev_split: str | None          # what plain "dev" means for this config (None: AX has no dev)

    @property
    def test_rows(self) -> int | None:
        """Official row count of the test split (what the GLUE server expects)."""
        return self.task.splits[self.test_split].rows


# ----------------------------------------------------------------------------- layouts
_MRPC = ("Quality", "#1 ID", "#2 ID", "#1 String", "#2 String")
_STSB = ("index", "genre", "filename", "year", "old_index", "source1", "source2", "sentence1", "sentence2")
_MNLI = ("index", "promptID", "pairID", "genre", "sentence1_binary_parse", "sentence2_binary_parse",
         "sentence1_parse", "sentence2_parse", "sentence1", "sentence2")
_PAIR = ("index", "sentence1", "sentence2")


def _split(file: str, columns, text_a, text_b=None, label=None, guid="index", rows=None, header=True, alt=()):
    return SplitSpec((file, *alt), tuple(columns), header, text_a, text_b, label, guid, rows)


def _task(name, labels, **splits) -> TaskSpec:
    return TaskSpec(name, None if labels is None else tuple(labels), MappingProxyType(splits))


_BINARY = ("0", "1")
_NLI3 = ("contradiction", "entailment", "neutral")
_NLI2 = ("entailment", "not_entailment")

TASKS: Mapping[str, TaskSpec] = MappingProxyType({t.name: t for t in (
    _task("CoLA", _BINARY,
          # train/dev: no header; source, label, original author's mark ("*" etc.), sentence.
          train=_split("train.tsv", ("source", "label", "original_label", "sentence"), "sentence",
                       label="label", guid=None, rows=8551, header=False),
          dev=_split("dev.tsv", ("source", "label", "original_label", "sentence"), "sentence",
                     label="label", guid=None, rows=1043, header=False),
          test=_split("test.tsv", ("index", "sentence"), "sentence", rows=1063)),
    _task("SST-2", _BINARY,
          train=_split("train.tsv", ("sentence", "label"), "sentence", label="label", guid=None, rows=67349),
          dev=_split("dev.tsv", ("sentence", "label"), "sentence", label="label", guid=None, rows=872),
          test=_split("test.tsv", ("index", "sentence"), "sentence", rows=1821)),
    _task("MRPC", _BINARY,
          train=_split("train.tsv", _MRPC, "#1 String", "#2 String", "Quality", None, rows=3668),
          dev=_split("dev.tsv", _MRPC, "#1 String", "#2 String", "Quality", None, rows=408),
          test=_split("test.tsv", ("index",) + _MRPC[1:], "#1 String", "#2 String", rows=1725)),
    _task("STS-B", None,
          train=_split("train.tsv", _STSB + ("score",), "sentence1", "sentence2", "score", rows=5749),
          dev=_split("dev.tsv", _STSB + ("score",), "sentence1", "sentence2", "score", rows=1500),
          test=_split("test.tsv", _STSB, "sentence1", "sentence2", rows=1379)),
    _task("QQP", _BINARY,
          train=_split("train.tsv", ("id", "qid1", "qid2", "question1", "question2", "is_duplicate"),
                       "question1", "question2", "is_duplicate", "id", rows=363846),
          dev=_split("dev.tsv", ("id", "qid1", "qid2", "question1", "question2", "is_duplicate"),
                     "question1", "question2", "is_duplicate", "id", rows=40430),
          test=_split("test.tsv", ("id", "question1", "question2"), "question1", "question2",
                      guid="id", rows=390965)),
    _task("MNLI", _NLI3,
          train=_split("train.tsv", _MNLI + ("label1", "gold_label"), "sentence1", "sentence2",
                       "gold_label", rows=392702),
          dev_matched=_split("dev_matched.tsv", _MNLI + tuple(f"label{i}" for i in range(1, 6)) + ("gold_label",),
                             "sentence1", "sentence2", "gold_label", rows=9815),
          dev_mismatched=_split("dev_mismatched.tsv",
                                _MNLI + tuple(f"label{i}" for i in range(1, 6)) + ("gold_label",),
                                "sentence1", "sentence2", "gold_label", rows=9832),
          test_matched=_split("test_matched.tsv", _MNLI, "sentence1", "sentence2", rows=9796),
          test_mismatched=_split("test_mismatched.tsv", _MNLI, "sentence1", "sentence2", rows=9847)),
    _task("QNLI", _NLI2,
          train=_split("train.tsv", ("index", "question", "sentence", "label"), "question", "sentence",
                       "label", rows=104743),
          dev=_split("dev.tsv", ("index", "question", "sentence", "label"), "question", "sentence",
                     "label", rows=5463),
          test=_split("test.tsv", ("index", "question", "sentence"), "question", "sentence", rows=5463)),
    _task("RTE", _NLI2,
          train=_split("train.tsv", _PAIR + ("label",), "sentence1", "sentence2", "label", rows=2490),
          dev=_split("dev.tsv", _PAIR + ("label",), "sentence1", "sentence2", "label", rows=277),
          test=_split("test.tsv", _PAIR, "sentence1", "sentence2", rows=3000)),
    _task("WNLI", _BINARY,
          train=_split("train.tsv", _PAIR + ("label",), "sentence1", "sentence2", "label", rows=635),
          dev=_split("dev.tsv", _PAIR + ("label",), "sentence1", "sentence2", "label", rows=71),
          test=_split("test.tsv", _PAIR, "sentence1", "sentence2", rows=146)),
    # AX: MNLI-style pairs scored with MNLI's label set; test only. Also found saved as AX.tsv.
    _task("diagnostic", _NLI3,
          test=_split("diagnostic.tsv", _PAIR, "sentence1", "sentence2", rows=1104, alt=("AX.tsv",))),
)})


def _config(name, folder, metrics, submission, test="test", dev="dev") -> ConfigSpec:
    return ConfigSpec(name, TASKS[folder], tuple(metrics), submission, test, dev)


CONFIGS: Mapping[str, ConfigSpec] = MappingProxyType({c.name: c for c in (
    _config("cola", "CoLA", ["matthews_correlation"], "CoLA.tsv"),
    _config("sst2", "SST-2", ["accuracy"], "SST-2.tsv"),
    _config("mrpc", "MRPC", ["accuracy", "f1"], "MRPC.tsv"),
    _config("stsb", "STS-B", ["pearson", "spearmanr"], "STS-B.tsv"),
    _config("qqp", "QQP", ["accuracy", "f1"], "QQP.tsv"),
    _config("mnli", "MNLI", ["accuracy"], "MNLI-m.tsv", "test_matched", "dev_matched"),
    _config("mnli_matched", "MNLI", ["accuracy"], "MNLI-m.tsv", "test_matched", "dev_matched"),
    _config("mnli_mismatched", "MNLI", ["accuracy"], "MNLI-mm.tsv", "test_mismatched", "dev_mismatched"),
    _config("qnli", "QNLI", ["accuracy"], "QNLI.tsv"),
    _config("rte", "RTE", ["accuracy"], "RTE.tsv"),
    _config("wnli", "WNLI", ["accuracy"], "WNLI.tsv"),
    # GLUE scores the diagnostic set with R3, the multiclass Matthews correlation (Gorodkin 2004).
    _config("ax", "diagnostic", ["matthews_correlation"], "AX.tsv", dev=None),
)})


def _key(name: str) -> str:
    return name.lower().replace("-", "").replace("_", "").replace(" ", "")


# Every accepted spelling (normalised by _key) -> config name.
_ALIASES = {_key(c): c for c in CONFIGS}
# Folder names normalise to config names already ("SST-2" -> "sst2", "MNLI" -> "mnli").
_ALIASES.update({"mnlim": "mnli_matched", "mnlimm": "mnli_mismatched", "diagnostic": "ax"})


def get_config(name: str) -> ConfigSpec:
    """Resolve any accepted task/config spelling to its ConfigSpec ("MNLI" -> mnli, "SST-2" -> sst2)."""
    if not isinstance(name, str) or _key(name) not in _ALIASES:
        raise KeyError(f"unknown GLUE task {name!r}; expected one of {sorted(CONFIGS)} "
                       f"or a folder name {sorted(TASKS)}")
    return CONFIGS[_ALIASES[_key(name)]]


def get_task(name: str) -> TaskSpec:
    """The data folder spec for any accepted task/config spelling."""
    return get_config(name).task


_SPLIT_ALIASES = {"validation": "dev", "valid": "dev", "val": "dev", "eval": "dev",
                  "validation_matched": "dev_matched", "validation_mismatched": "dev_mismatched"}


def resolve_split(config: ConfigSpec, split: str) -> str:
    """Map a requested split to a key of ``config.task.splits``.

    Plain "dev"/"test" follow the config (mnli -> dev_matched, mnli_mismatched -> dev_mismatched);
    HF names ("validation", "validation_matched", ...) are accepted too. Asking a matched config
    for a mismatched split (or the reverse) is an error rather than a silent switch.
    """
    s = _SPLIT_ALIASES.get(split.lower(), split.lower()) if isinstance(split, str) else split
    splits = config.task.splits
    if s == "dev" and config.dev_split is not None and config.dev_split in splits:
        s = config.dev_split
    elif s == "test":
        s = config.test_split
    if s not in splits:
        raise KeyError(f"task {config.name!r} has no split {split!r}; available: {sorted(splits)} "
                       f"(and 'dev'/'test' where those exist)")
    if config.name in ("mnli_matched", "mnli_mismatched") and s != "train":
        half = config.name.split("_")[1]
        if not s.endswith("_" + half):
            raise KeyError(f"split {split!r} contradicts task {config.name!r}; use 'mnli' to pick any half")
    return s
