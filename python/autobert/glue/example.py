"""One GLUE example and the list-like split that holds them."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, Sequence, overload

__all__ = ["Example", "GlueDataset"]


@dataclass(frozen=True, slots=True)
class Example:
    """One row of a GLUE split.

    text_a: first (or only) sentence.
    text_b: second sentence; None for single-sentence tasks (CoLA, SST-2).
    label: class index into the task's ``label_names`` (int), the STS-B score (float), None on test.
    guid: the row's id from the file (``index``/``id`` column) as a string, or the 0-based data row
        number where the file has no id column (CoLA/SST-2/MRPC train and dev).
    """

    text_a: str
    text_b: str | None
    label: int | float | None
    guid: str


class GlueDataset(Sequence[Example]):
    """The examples of one split, in file order, with what a model needs to know about them.

    Behaves like a read-only list (len, indexing, slicing -> list, iteration). Submission files are
    written in this order, so predictions must keep it.
    """

    def __init__(self, examples: list[Example], *, config: str, task: str, split: str,
                 label_names: tuple[str, ...] | None, source: str):
        self._examples = examples
        self.config = config            # HF glue config name, e.g. "mnli_mismatched"
        self.task = task                # data folder name, e.g. "MNLI"
        self.split = split              # resolved split, e.g. "dev_mismatched"
        self.label_names = label_names  # None for regression (STS-B)
        self.source = source            # file path (or "hf:<dataset>/<config>/<split>")

    @overload
    def __getitem__(self, i: int) -> Example: ...
    @overload
    def __getitem__(self, i: slice) -> list[Example]: ...

    def __getitem__(self, i):
        return self._examples[i]

    def __len__(self) -> int:
        return len(self._examples)

    def __iter__(self) -> Iterator[Example]:
        return iter(self._examples)

    @property
    def is_regression(self) -> bool:
        return self.label_names is None

    @property
    def num_labels(self) -> int:
        """Width of the classification head (1 for STS-B regression)."""
        return 1 if self.label_names is None else len(self.label_names)

    @property
    def has_labels(self) -> bool:
        return bool(self._examples) and self._examples[0].label is not None

    @property
    def texts_a(self) -> list[str]:
        return [e.text_a for e in self._examples]

    @property
    def texts_b(self) -> list[str] | None:
        """Second sentences, or None for single-sentence tasks (pass straight to the tokenizer)."""
        if not self._examples or self._examples[0].text_b is None:
            return None
        return [e.text_b for e in self._examples]

    @property
    def labels(self) -> list[int | float | None]:
        return [e.label for e in self._examples]

    def __repr__(self) -> str:
        return (f"GlueDataset(config={self.config!r}, split={self.split!r}, n={len(self)}, "
                f"source={self.source!r})")
