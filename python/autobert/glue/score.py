"""The GLUE leaderboard average ("Score" column of gluebenchmark.com).

Rule (GLUE paper, Wang et al. 2019, and the leaderboard):

1. A task with two metrics scores the unweighted mean of them: MRPC (F1, accuracy),
   QQP (F1, accuracy), STS-B (Pearson, Spearman).
2. MNLI is *one* task whose score is the mean of MNLI-m and MNLI-mm accuracy.
3. The GLUE score is the unweighted mean over the nine tasks CoLA, SST-2, MRPC, STS-B, QQP,
   MNLI, QNLI, RTE, WNLI. The diagnostic set AX is reported but not averaged.

Rule 2 is the one that is easy to get wrong; the published leaderboard rows fix it. BERT-large:
CoLA 60.5, SST-2 94.9, MRPC 89.3/85.4, STS-B 87.6/86.5, QQP 72.1/89.3, MNLI 86.7/85.9, QNLI 92.7,
RTE 70.1, WNLI 65.1 -> Score 80.5. Averaging MNLI-m/mm first gives 724.7 / 9 = 80.52; counting
them as two entries would give 81.1. The GLUE human baseline (Score 87.1) and T5-11B (90.3)
discriminate the same way: 87.05 and 90.31 with MNLI averaged, 87.6 and 90.5 with ten entries.
"""
from __future__ import annotations

import logging
import math
from typing import Mapping

from .tasks import get_config

__all__ = ["glue_score", "task_score", "GLUE_SCORE_TASKS"]

log = logging.getLogger(__name__)

#: Config names of the nine averaged tasks (MNLI stands for the mean of its two halves).
GLUE_SCORE_TASKS = ("cola", "sst2", "mrpc", "stsb", "qqp", "mnli", "qnli", "rte", "wnli")


def task_score(task: str, metrics: Mapping[str, float] | float) -> float:
    """One task's leaderboard score: the mean of its GLUE metrics (a number is taken as is).

    ``metrics`` is what compute_metrics returns; other keys (e.g. "loss") are ignored.
    """
    config = get_config(task)
    if isinstance(metrics, Mapping):
        missing = [m for m in config.metrics if m not in metrics]
        if missing:
            raise KeyError(f"results for {config.name} lack {missing}; expected keys {list(config.metrics)}")
        values = [float(metrics[m]) for m in config.metrics]
    else:
        values = [float(metrics)]
    return sum(values) / len(values)


def glue_score(results_by_task: Mapping[str, Mapping[str, float] | float], *,
               require_all: bool = False, percent: bool = False) -> float:
    """GLUE leaderboard average of per-task results (see module doc for the rule).

    Args:
        results_by_task: task name (any spelling load_task accepts, e.g. "mnli", "MNLI-mm", "SST-2")
            -> metrics dict from compute_metrics, or an already averaged task score. "mnli" counts as
            the matched half. "ax" entries are ignored.
        require_all: raise unless all nine tasks (and both MNLI halves) are present. With False
            (default) the mean runs over the tasks given, which is what dev-set sweeps over a subset
            report; it is then not comparable to leaderboard numbers.
        percent: multiply the result by 100. The inputs' scale is kept otherwise: fractions in
            (compute_metrics' output), fraction out.

    Returns:
        The average, NaN if any included task score is NaN.
    """
    per_task: dict[str, float] = {}
    mnli: dict[str, float] = {}
    seen: dict[str, str] = {}
    for name, metrics in results_by_task.items():
        config = get_config(name)
        slot = "mnli_matched" if config.name == "mnli" else config.name
        if slot in seen:
            raise ValueError(f"{name!r} and {seen[slot]!r} are the same GLUE entry ({slot})")
        seen[slot] = name
        if slot == "ax":
            log.debug("glue_score: ignoring AX (diagnostic, not part of the average)")
            continue
        score = task_score(config.name, metrics)
        if slot.startswith("mnli_"):
            mnli[slot] = score
        else:
            per_task[slot] = score
    if mnli:
        per_task["mnli"] = sum(mnli.values()) / len(mnli)
    if require_all:
        missing = [t for t in GLUE_SCORE_TASKS if t not in per_task]
        missing += [h for h in ("mnli_matched", "mnli_mismatched") if mnli and h not in mnli]
        if missing:
            raise ValueError(f"GLUE score needs all nine tasks; missing {missing}")
    if not per_task:
        raise ValueError("no GLUE task results to average")
    if len(mnli) == 1:
        log.info("glue_score: only %s given; it stands for MNLI", next(iter(mnli)))
    mean = math.fsum(per_task.values()) / len(per_task)
    return 100.0 * mean if percent else mean
