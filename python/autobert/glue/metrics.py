"""GLUE metrics in numpy, with the names and keys of Hugging Face ``evaluate.load("glue", config)``.

=======================================================  =============================
config                                                   keys
=======================================================  =============================
cola                                                     matthews_correlation
sst2, mnli, mnli_matched, mnli_mismatched, qnli, rte,    accuracy
wnli
mrpc, qqp                                                accuracy, f1 (positive class 1)
stsb                                                     pearson, spearmanr
ax                                                       matthews_correlation
=======================================================  =============================

HF evaluate's glue metric has no "ax" config; GLUE scores the diagnostic set with R3, the
multiclass Matthews correlation, which is what ``ax`` returns here. All values are fractions
(1.0 = perfect), never percentages. The formulas reproduce scikit-learn's ``matthews_corrcoef``
and ``f1_score`` and scipy's ``pearsonr``/``spearmanr`` (ties get average ranks) without importing
either. Non-finite STS-B predictions (a diverged model) give NaN correlations rather than an error;
bad inputs (length mismatch, empty, labels out of range) raise ValueError.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .tasks import get_config

__all__ = ["compute_metrics", "accuracy", "f1_binary", "matthews_corrcoef", "pearson", "spearman", "rankdata"]


def accuracy(predictions, labels) -> float:
    """Fraction of positions where prediction == label."""
    p, y = np.asarray(predictions), np.asarray(labels)
    return float((p == y).mean())


def f1_binary(predictions, labels, pos_label: int = 1) -> float:
    """F1 of the positive class, 2TP / (2TP + FP + FN); 0.0 when there is no positive at all
    (scikit-learn's zero_division default)."""
    p, y = np.asarray(predictions) == pos_label, np.asarray(labels) == pos_label
    tp = int(np.sum(p & y))
    denom = 2 * tp + int(np.sum(p & ~y)) + int(np.sum(~p & y))
    return 0.0 if denom == 0 else 2.0 * tp / denom


def matthews_corrcoef(predictions, labels) -> float:
    """Matthews correlation for binary or multiclass labels (Gorodkin's R_K, as scikit-learn).

    0.0 when either side has a single class (the coefficient is undefined there).
    """
    p, y = np.asarray(predictions).ravel(), np.asarray(labels).ravel()
    classes, inv = np.unique(np.concatenate([y, p]), return_inverse=True)
    k, n = len(classes), len(y)
    t_sum = np.bincount(inv[:n], minlength=k).astype(np.float64)   # true count per class
    p_sum = np.bincount(inv[n:], minlength=k).astype(np.float64)   # predicted count per class
    correct = float(np.sum(inv[:n] == inv[n:]))
    # float64 throughout: n^2 * n^2 overflows int64 already for n ~ 60k (QQP dev is 40k, train 364k).
    cov_ytyp = correct * n - t_sum @ p_sum
    cov_ypyp = float(n) * n - p_sum @ p_sum
    cov_ytyt = float(n) * n - t_sum @ t_sum
    if cov_ypyp * cov_ytyt == 0:
        return 0.0
    return float(cov_ytyp / np.sqrt(cov_ytyt * cov_ypyp))


def pearson(x, y) -> float:
    """Pearson's r; NaN for fewer than 2 points, constant or non-finite input."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if len(x) < 2 or not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
        return float("nan")
    xm, ym = x - x.mean(), y - y.mean()
    nx, ny = np.linalg.norm(xm), np.linalg.norm(ym)
    if nx == 0 or ny == 0:
        return float("nan")
    # Normalise before the dot product (as scipy does) so large values cannot overflow.
    r = float(np.dot(xm / nx, ym / ny))
    return max(-1.0, min(1.0, r))


def rankdata(a) -> np.ndarray:
    """1-based ranks with ties given their average rank (scipy.stats.rankdata, method='average')."""
    a = np.asarray(a, dtype=np.float64).ravel()
    order = np.argsort(a, kind="mergesort")
    inverse = np.empty_like(order)
    inverse[order] = np.arange(len(a))
    sorted_a = a[order]
    new_value = np.concatenate([[True], sorted_a[1:] != sorted_a[:-1]])
    dense = np.cumsum(new_value)[inverse]                          # 1-based id of each value's tie group
    starts = np.concatenate([np.nonzero(new_value)[0], [len(a)]])  # group g spans [starts[g-1], starts[g])
    return 0.5 * (starts[dense] + starts[dense - 1] + 1)


def spearman(x, y) -> float:
    """Spearman's rho: Pearson's r of the average ranks."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if len(x) < 2 or not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
        return float("nan")
    return pearson(rankdata(x), rankdata(y))


# ----------------------------------------------------------------------------- task dispatch
def as_1d_array(values: Any, what: str) -> np.ndarray:
    """``values`` (list, numpy array or torch tensor) as a 1-D numeric array; (N, 1) is squeezed."""
    if hasattr(values, "detach"):            # torch tensor, possibly on GPU / requiring grad
        values = values.detach().cpu().numpy()
    arr = np.asarray(values)
    if arr.ndim == 2 and arr.shape[1] == 1:  # (N, 1) regression head output
        arr = arr[:, 0]
    if arr.ndim != 1:
        raise ValueError(f"{what} must be 1-D (one value per example), got shape {arr.shape}; "
                         "for classification pass class indices (argmax of the logits)")
    if arr.dtype == object or arr.dtype.kind not in "biuf":
        raise ValueError(f"{what} must be numbers, got dtype {arr.dtype}")
    return arr


def _class_indices(arr: np.ndarray, num_labels: int, what: str, task: str) -> np.ndarray:
    if arr.dtype.kind == "f":
        if not np.all(np.isfinite(arr)) or np.any(arr != np.round(arr)):
            raise ValueError(f"{what} for {task} must be integer class indices, got non-integral values")
        arr = arr.astype(np.int64)
    bad = (arr < 0) | (arr >= num_labels)
    if np.any(bad):
        i = int(np.argmax(bad))
        raise ValueError(f"{what}[{i}] = {arr[i]} is not a class index of {task} (0..{num_labels - 1})")
    return arr.astype(np.int64)


def compute_metrics(task: str, predictions, labels) -> dict[str, float]:
    """GLUE metrics of ``predictions`` against ``labels`` for one task.

    Args:
        task: HF glue config name or folder name (see module doc for the keys each returns).
        predictions: N class indices (N floats for stsb). Lists, numpy arrays and torch tensors work;
            an (N, 1) array is taken as N values.
        labels: N gold class indices / scores, in the same order.

    Returns:
        dict of fractions, e.g. ``{"accuracy": 0.9, "f1": 0.93}``.
    """
    config = get_config(task)
    p, y = as_1d_array(predictions, "predictions"), as_1d_array(labels, "labels")
    if len(p) != len(y):
        raise ValueError(f"{config.name}: {len(p)} predictions but {len(y)} labels")
    if len(p) == 0:
        raise ValueError(f"{config.name}: no predictions to score (empty input)")
    if config.task.is_regression:
        y = y.astype(np.float64)
        if not np.all(np.isfinite(y)):
            raise ValueError(f"{config.name}: labels contain NaN or inf")
        p = p.astype(np.float64)
        return {"pearson": pearson(p, y), "spearmanr": spearman(p, y)}
    k = config.task.num_labels
    p = _class_indices(p, k, "predictions", config.name)
    y = _class_indices(y, k, "labels", config.name)
    out: dict[str, float] = {}
    for name in config.metrics:
        if name == "accuracy":
            out[name] = accuracy(p, y)
        elif name == "f1":
            out[name] = f1_binary(p, y)
        elif name == "matthews_correlation":
            out[name] = matthews_corrcoef(p, y)
        else:  # pragma: no cover - the registry and this dispatch must agree
            raise AssertionError(f"no implementation for metric {name!r}")
    return out
