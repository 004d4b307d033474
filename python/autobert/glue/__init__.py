"""The nine GLUE tasks (+ the AX diagnostic): TSV loaders, metrics, the GLUE score, submissions.

Typical use::

    from autobert.glue import load_task, compute_metrics, glue_score, write_submission
    dev = load_task("rte", "/data/glue_data/RTE", "dev")       # GlueDataset of Example
    metrics = compute_metrics("rte", predictions, dev.labels)  # {"accuracy": 0.66}
    glue_score({"rte": metrics, "cola": {...}})               # leaderboard-style average (fraction)
    write_submission("rte", test_predictions, "submission/")   # submission/RTE.tsv

Task names are Hugging Face glue config names (cola, sst2, mrpc, stsb, qqp, mnli, mnli_matched,
mnli_mismatched, qnli, rte, wnli, ax) or the data folder names (CoLA, SST-2, ..., MNLI-m, MNLI-mm).
"""
from .errors import GlueFileNotFoundError, GlueFormatError
from .example import Example, GlueDataset
from .loaders import find_split_file, load_task
from .metrics import accuracy, compute_metrics, f1_binary, matthews_corrcoef, pearson, spearman
from .score import GLUE_SCORE_TASKS, glue_score, task_score
from .submission import SUBMISSION_FILES, format_predictions, write_submission, zip_submission
from .tasks import CONFIGS, TASKS, ConfigSpec, SplitSpec, TaskSpec, get_config, get_task, resolve_split

__all__ = [
    # data
    "load_task", "find_split_file", "Example", "GlueDataset",
    # registry
    "CONFIGS", "TASKS", "ConfigSpec", "TaskSpec", "SplitSpec", "get_config", "get_task", "resolve_split",
    # metrics and score
    "compute_metrics", "accuracy", "f1_binary", "matthews_corrcoef", "pearson", "spearman",
    "glue_score", "task_score", "GLUE_SCORE_TASKS",
    # submission
    "write_submission", "zip_submission", "format_predictions", "SUBMISSION_FILES",
    # errors
    "GlueFormatError", "GlueFileNotFoundError",
]
