"""Evaluation of the diagnosis model on the PTB-XL benchmark split (fold 10 = test), numpy only.

- macro AUROC over the 5 superclasses and over every trained statement with >= 1 positive in the test
  fold, each with a percentile-bootstrap 95% CI (records resampled);
- macro AUROC per frequency bucket (common / uncommon / rare by the statement's positives in the FULL
  release's training folds 1-8, :data:`BUCKET_CUTOFFS`) and the common - rare gap;
- fairness: the same macro AUROCs per sex and per age band with the largest gap between groups, and
  true/false positive rates at the stored thresholds per group (superclasses) with their largest gaps;
- calibration: Brier score and expected calibration error of the calibrated probabilities.
"""

from __future__ import annotations

from collections import Counter

import numpy as np

from ..datasets import PtbxlRow
from ..metrics import age_band, auroc
from .train_diagnosis import TRAIN_FOLDS

#: Buckets by positives in the full PTB-XL release's folds 1-8 (17,4xx records): common >= 1000,
#: uncommon 200-999, rare < 200.
BUCKET_CUTOFFS: dict[str, tuple[int, int | None]] = {
    "common": (1000, None),
    "uncommon": (200, 999),
    "rare": (0, 199),
}


def full_release_counts(full_rows: list[PtbxlRow]) -> Counter:
    """Positives of every SCP code in the full release's training folds 1-8."""
    return Counter(c for r in full_rows if r.strat_fold in TRAIN_FOLDS for c in r.scp_codes)


def frequency_bucket(count: int) -> str:
    """"common", "uncommon" or "rare" for a statement with ``count`` full-release training positives."""
    for name, (lo, hi) in BUCKET_CUTOFFS.items():
        if count >= lo and (hi is None or count <= hi):
            return name
    return "rare"


def macro_with_ci(
    targets: np.ndarray, scores: np.ndarray, columns: list[int], n_boot: int = 1000, seed: int = 0
) -> dict:
    """Macro AUROC over ``columns`` (those with both classes) with a record-bootstrap 95% CI."""
    columns = [j for j in columns if 0 < targets[:, j].sum() < len(targets)]
    if not columns:
        return {"auroc": float("nan"), "ci95": [float("nan"), float("nan")], "n_labels": 0}
    point = float(np.mean([auroc(targets[:, j], scores[:, j]) for j in columns]))
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(n_boot):
        idx = rng.integers(0, len(targets), len(targets))
        per = [auroc(targets[idx, j], scores[idx, j]) for j in columns]
        per = [v for v in per if np.isfinite(v)]
        if per:
            values.append(np.mean(per))
    lo, hi = np.quantile(values, [0.025, 0.975]) if values else (np.nan, np.nan)
    return {"auroc": point, "ci95": [float(lo), float(hi)], "n_labels": len(columns)}


def _macro(targets: np.ndarray, scores: np.ndarray, columns: list[int]) -> float:
    per = [auroc(targets[:, j], scores[:, j]) for j in columns]
    per = [v for v in per if np.isfinite(v)]
    return float(np.mean(per)) if per else float("nan")


def paired_difference(
    targets: np.ndarray, probs_a: np.ndarray, probs_b: np.ndarray, labels: list[str], kinds: list[str],
    full_counts: Counter, n_boot: int = 1000, seed: int = 0,
) -> dict[str, dict]:
    """Model A minus model B on the same records (paired record bootstrap, 95% CI): macro AUROC of the
    superclasses, statements, each bucket, and the common - rare gap. Both models share ``labels``."""
    stmt = [j for j, k in enumerate(kinds) if k != "superclass" and 0 < targets[:, j].sum() < len(targets)]
    sets = {
        "superclass": [j for j, k in enumerate(kinds) if k == "superclass"],
        "statements": stmt,
        **{name: [j for j in stmt if frequency_bucket(full_counts.get(labels[j], 0)) == name]
           for name in BUCKET_CUTOFFS},
    }

    def diffs(idx: np.ndarray) -> dict[str, float]:
        t = targets[idx]
        a = {k: _macro(t, probs_a[idx], cols) for k, cols in sets.items()}
        b = {k: _macro(t, probs_b[idx], cols) for k, cols in sets.items()}
        out = {k: a[k] - b[k] for k in sets}
        out["common_rare_gap"] = (a["common"] - a["rare"]) - (b["common"] - b["rare"])
        return out

    point = diffs(np.arange(len(targets)))
    rng = np.random.default_rng(seed)
    boots = [diffs(rng.integers(0, len(targets), len(targets))) for _ in range(n_boot)]
    result = {}
    for key, value in point.items():
        values = np.array([d[key] for d in boots])
        values = values[np.isfinite(values)]
        lo, hi = np.quantile(values, [0.025, 0.975]) if values.size else (np.nan, np.nan)
        result[key] = {"difference": value, "ci95": [float(lo), float(hi)]}
    return result


def grouped_macro(
    targets: np.ndarray, scores: np.ndarray, columns: list[int], groups: np.ndarray, min_per_class: int = 3
) -> tuple[dict[str, dict], float]:
    """Macro AUROC within each group over the columns with >= ``min_per_class`` positives and negatives
    there; returns per-group {auroc, n_labels, n} and the largest gap between groups."""
    out: dict[str, dict] = {}
    for g in sorted(set(groups.tolist())):
        sel = groups == g
        t, s = targets[sel], scores[sel]
        usable = [
            j for j in columns if t[:, j].sum() >= min_per_class and (1 - t[:, j]).sum() >= min_per_class
        ]
        value = float(np.mean([auroc(t[:, j], s[:, j]) for j in usable])) if usable else float("nan")
        out[str(g) or "unknown"] = {"auroc": value, "n_labels": len(usable), "n": int(sel.sum())}
    finite = [v["auroc"] for v in out.values() if np.isfinite(v["auroc"])]
    return out, (float(max(finite) - min(finite)) if len(finite) >= 2 else float("nan"))


def rates_by_group(
    targets: np.ndarray, probs: np.ndarray, thresholds: np.ndarray, columns: list[int], groups: np.ndarray
) -> dict:
    """Macro TPR and FPR at the stored thresholds within each group, and their largest gaps."""
    out: dict[str, dict] = {}
    for g in sorted(set(groups.tolist())):
        sel = groups == g
        tprs, fprs = [], []
        for j in columns:
            y, pred = targets[sel, j] > 0.5, probs[sel, j] >= thresholds[j]
            if y.sum():
                tprs.append(float((pred & y).sum() / y.sum()))
            if (~y).sum():
                fprs.append(float((pred & ~y).sum() / (~y).sum()))
        out[str(g) or "unknown"] = {
            "tpr": float(np.mean(tprs)) if tprs else float("nan"),
            "fpr": float(np.mean(fprs)) if fprs else float("nan"),
            "n": int(sel.sum()),
        }
    gaps = {}
    for key in ("tpr", "fpr"):
        finite = [v[key] for v in out.values() if np.isfinite(v[key])]
        gaps[f"{key}_gap"] = float(max(finite) - min(finite)) if len(finite) >= 2 else float("nan")
    return {"groups": out, **gaps}


def calibration_errors(targets: np.ndarray, probs: np.ndarray, n_bins: int = 10) -> dict[str, float]:
    """Brier score and expected calibration error (equal-width bins) over all label entries."""
    y, p = targets.ravel(), probs.ravel()
    bins = np.minimum((p * n_bins).astype(int), n_bins - 1)
    ece = sum(abs(p[bins == b].mean() - y[bins == b].mean()) * (bins == b).mean()
              for b in range(n_bins) if (bins == b).any())
    return {"brier": float(((p - y) ** 2).mean()), "ece": float(ece)}


def evaluate_predictions(
    targets: np.ndarray,
    probs: np.ndarray,
    labels: list[str],
    kinds: list[str],
    thresholds: np.ndarray,
    full_counts: Counter,
    age: np.ndarray,
    sex: np.ndarray,
    n_boot: int = 1000,
) -> dict:
    """Full report for test-fold targets (N, C) and calibrated probabilities (N, C)."""
    columns_super = [j for j, k in enumerate(kinds) if k == "superclass"]
    columns_stmt = [j for j, k in enumerate(kinds) if k != "superclass" and targets[:, j].sum() >= 1]
    buckets = {j: frequency_bucket(full_counts.get(labels[j], 0)) for j in columns_stmt}
    report: dict = {
        "n_records": int(len(targets)),
        "superclass": macro_with_ci(targets, probs, columns_super, n_boot),
        "statements": macro_with_ci(targets, probs, columns_stmt, n_boot),
        "buckets": {},
        "per_label": {
            labels[j]: {
                "auroc": auroc(targets[:, j], probs[:, j]),
                "n_pos": int(targets[:, j].sum()),
                "kind": kinds[j],
                "bucket": buckets.get(j, "superclass" if kinds[j] == "superclass" else ""),
                "full_train_count": int(full_counts.get(labels[j], 0)),
            }
            for j in range(len(labels))
        },
        "calibration": calibration_errors(targets, probs),
    }
    for name in BUCKET_CUTOFFS:
        in_bucket = [j for j in columns_stmt if buckets[j] == name]
        report["buckets"][name] = macro_with_ci(targets, probs, in_bucket, n_boot)
    report["common_rare_gap"] = report["buckets"]["common"]["auroc"] - report["buckets"]["rare"]["auroc"]
    groups = {
        "sex": np.array([s or "unknown" for s in sex]),
        "age_band": np.array([age_band(a) for a in age]),
    }
    report["fairness"] = {}
    for key, g in groups.items():
        sup, sup_gap = grouped_macro(targets, probs, columns_super, g)
        stm, stm_gap = grouped_macro(targets, probs, columns_stmt, g)
        report["fairness"][key] = {
            "superclass": sup, "superclass_gap": sup_gap,
            "statements": stm, "statements_gap": stm_gap,
            "rates_superclass": rates_by_group(targets, probs, thresholds, columns_super, g),
        }
    return report


def format_report(name: str, r: dict) -> str:
    """A few human-readable lines of one report."""
    def ci(m: dict) -> str:
        return f"{m['auroc']:.3f} [{m['ci95'][0]:.3f}-{m['ci95'][1]:.3f}] ({m['n_labels']} labels)"

    lines = [f"{name} (n={r['n_records']}): superclass {ci(r['superclass'])}; "
             f"statements {ci(r['statements'])}"]
    lines.append("  buckets: " + "; ".join(f"{k} {ci(v)}" for k, v in r["buckets"].items())
                 + f"; common-rare gap {r['common_rare_gap']:.3f}")
    for key, f in r["fairness"].items():
        lines.append(
            f"  {key}: superclass " + ", ".join(f"{g} {v['auroc']:.3f}" for g, v in f["superclass"].items())
            + f" (gap {f['superclass_gap']:.3f}); statements gap {f['statements_gap']:.3f}; "
            f"TPR gap {f['rates_superclass']['tpr_gap']:.3f}, FPR gap {f['rates_superclass']['fpr_gap']:.3f}"
        )
    lines.append(f"  calibration: Brier {r['calibration']['brier']:.4f}, ECE {r['calibration']['ece']:.4f}")
    return "\n".join(lines)
