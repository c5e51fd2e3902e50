"""Evaluation metrics shared by the anomaly, diagnosis and localization evaluations (numpy only)."""

from __future__ import annotations

import numpy as np
from scipy.stats import rankdata


def auroc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve (rank-based Mann-Whitney U, ties averaged).

    ``labels``: 1 = positive (abnormal), 0 = negative. NaN if either class is empty.
    """
    labels = np.asarray(labels).astype(bool).ravel()
    scores = np.asarray(scores, dtype=np.float64).ravel()
    n_pos = int(labels.sum())
    n_neg = labels.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = rankdata(scores)
    return float((ranks[labels].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def bootstrap_auroc_ci(
    labels: np.ndarray, scores: np.ndarray, n_boot: int = 1000, seed: int = 0, alpha: float = 0.05
) -> tuple[float, float]:
    """Percentile bootstrap confidence interval of the AUROC (resampling records, stratified by class)."""
    labels = np.asarray(labels).astype(bool).ravel()
    scores = np.asarray(scores, dtype=np.float64).ravel()
    pos, neg = np.flatnonzero(labels), np.flatnonzero(~labels)
    if pos.size == 0 or neg.size == 0:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    values = np.empty(n_boot)
    for i in range(n_boot):
        idx = np.concatenate([rng.choice(pos, pos.size), rng.choice(neg, neg.size)])
        values[i] = auroc(labels[idx], scores[idx])
    return float(np.quantile(values, alpha / 2)), float(np.quantile(values, 1 - alpha / 2))


def age_band(age: float | None) -> str:
    """Age band used in every fairness report: "<40", "40-59", "60-79", ">=80" or "unknown"."""
    if age is None or not np.isfinite(age):
        return "unknown"
    if age < 40:
        return "<40"
    if age < 60:
        return "40-59"
    if age < 80:
        return "60-79"
    return ">=80"


def grouped_auroc(
    labels: np.ndarray, scores: np.ndarray, groups: np.ndarray, min_per_class: int = 3
) -> tuple[dict[str, float], float]:
    """AUROC within each group (e.g. sex or age band) and the largest gap between groups.

    Groups with fewer than ``min_per_class`` positives or negatives are reported as NaN and left out
    of the gap.
    """
    labels = np.asarray(labels).astype(bool)
    scores = np.asarray(scores, dtype=np.float64)
    groups = np.asarray(groups)
    per_group: dict[str, float] = {}
    for g in sorted(set(groups.tolist())):
        sel = groups == g
        if labels[sel].sum() < min_per_class or (~labels[sel]).sum() < min_per_class:
            per_group[str(g)] = float("nan")
        else:
            per_group[str(g)] = auroc(labels[sel], scores[sel])
    finite = [v for v in per_group.values() if np.isfinite(v)]
    gap = float(max(finite) - min(finite)) if len(finite) >= 2 else float("nan")
    return per_group, gap
