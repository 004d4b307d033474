"""Optional second source: the Hugging Face `datasets` copy of GLUE (``nyu-mll/glue``).

`datasets` is imported only when this is used, so the package never needs it. Set
``HF_DATASETS_OFFLINE=1`` to be sure nothing is downloaded; a dataset already in the local cache is
then used as is. Labels are mapped by *name* into this package's label order (HF orders MNLI as
entailment, neutral, contradiction; here it is contradiction, entailment, neutral).
"""
from __future__ import annotations

from .errors import GlueFileNotFoundError
from .example import Example, GlueDataset
from .tasks import get_config, resolve_split

__all__ = ["load_hf_task", "HF_DATASET_IDS"]

#: Hub ids tried in order (the canonical one moved from "glue" to "nyu-mll/glue").
HF_DATASET_IDS = ("nyu-mll/glue", "glue")

# config -> (HF config, first text field, second text field)
_FIELDS = {
    "cola": ("cola", "sentence", None), "sst2": ("sst2", "sentence", None),
    "mrpc": ("mrpc", "sentence1", "sentence2"), "stsb": ("stsb", "sentence1", "sentence2"),
    "qqp": ("qqp", "question1", "question2"), "mnli": ("mnli", "premise", "hypothesis"),
    "mnli_matched": ("mnli", "premise", "hypothesis"), "mnli_mismatched": ("mnli", "premise", "hypothesis"),
    "qnli": ("qnli", "question", "sentence"), "rte": ("rte", "sentence1", "sentence2"),
    "wnli": ("wnli", "sentence1", "sentence2"), "ax": ("ax", "premise", "hypothesis"),
}
_HF_SPLIT = {"train": "train", "dev": "validation", "test": "test",
             "dev_matched": "validation_matched", "dev_mismatched": "validation_mismatched",
             "test_matched": "test_matched", "test_mismatched": "test_mismatched"}


def load_hf_task(task: str, split: str = "train") -> GlueDataset:
    """Load a split through ``datasets.load_dataset``; same result type and label order as load_task.

    Raises ImportError when `datasets` is not installed, GlueFileNotFoundError when no dataset id
    could be loaded (e.g. offline without a cached copy).
    """
    config = get_config(task)
    key = resolve_split(config, split)
    try:
        import datasets  # noqa: F401  (optional dependency)
    except ImportError as e:
        raise ImportError("loading GLUE without a task_dir needs the optional `datasets` package "
                          "(pip install datasets), or pass the folder of the GLUE TSV files") from e
    hf_config, field_a, field_b = _FIELDS[config.name]
    errors = []
    for ds_id in HF_DATASET_IDS:
        try:
            ds = datasets.load_dataset(ds_id, hf_config, split=_HF_SPLIT[key])
            break
        except Exception as e:  # noqa: BLE001 — offline/cache misses come in many exception types
            errors.append(f"{ds_id}: {type(e).__name__}: {e}")
    else:
        raise GlueFileNotFoundError(f"could not load GLUE {hf_config}/{_HF_SPLIT[key]} from Hugging Face "
                                    f"datasets: {'; '.join(errors)}")
    label_map = _label_map(ds, config.task.label_names)
    examples = []
    for row_no, row in enumerate(ds):
        raw = row.get("label")
        if raw is None or raw < 0:
            label = None            # HF marks unlabelled test rows with -1 (STS-B: -1.0)
        elif label_map is None:
            label = float(raw)
        else:
            label = label_map[int(raw)]
        guid = str(row.get("idx", row_no))
        examples.append(Example(row[field_a], None if field_b is None else row[field_b], label, guid))
    return GlueDataset(examples, config=config.name, task=config.task.name, split=key,
                       label_names=config.task.label_names, source=f"hf:{ds_id}/{hf_config}/{_HF_SPLIT[key]}")


def _label_map(ds, label_names: tuple[str, ...] | None) -> dict[int, int] | None:
    """HF label int -> our label index (None for regression)."""
    if label_names is None:
        return None
    if label_names == ("0", "1"):
        return {0: 0, 1: 1}          # HF's names here (negative/positive, ...) mean GLUE's "0"/"1"
    feature = getattr(ds, "features", {}).get("label")
    hf_names = list(getattr(feature, "names", []) or [])
    if sorted(hf_names) != sorted(label_names):
        raise ValueError(f"Hugging Face label names {hf_names} do not match GLUE's {list(label_names)}")
    return {i: label_names.index(name) for i, name in enumerate(hf_names)}
