"""The anomaly-detection protocol of ``../shared/data/README.md``: fit, calibrate, evaluate.

- Primary split: normals of folds 1-8 train the model (fold 8's normals are held out of the gradient
  steps and used to calibrate the error statistics and the percentile reference); every record of folds
  9-10 with a diagnostic superclass is scored (normal = {NORM} only, abnormal = any other superclass).
- 5-fold CV over fold pairs {1,2} ... {9,10}; each record scored by a model that never saw its fold.
Results are reported for "raw" PTB-XL records only and for raw + ``ptbxl_extra``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import torch

from ..anomaly_scoring import (
    AnomalyDetector,
    Calibration,
    calibrated_map,
    fit_calibration,
    fit_latent_gaussian,
    n_phase_bins,
    phase_bins,
    restoration_errors,
    score_from_map,
)
from ..metrics import age_band, auroc, bootstrap_auroc_ci, grouped_auroc
from ..models.anomaly import AnomalyConfig, AnomalyNet
from .data import SUPERCLASSES, EcgArrays
from .train_anomaly import train_anomaly

CV_FOLD_PAIRS: tuple[tuple[int, int], ...] = ((1, 2), (3, 4), (5, 6), (7, 8), (9, 10))


def batched_errors(
    net: AnomalyNet, arrays: EcgArrays, index: np.ndarray, batch: int = 16
) -> dict[str, np.ndarray]:
    """:func:`restoration_errors` over many ECGs, ``batch`` ECGs per forward pass."""
    parts: dict[str, list[np.ndarray]] = {}
    for start in range(0, len(index), batch):
        chunk = index[start : start + batch]
        out = restoration_errors(net, arrays.signal[chunk], [arrays.r_peaks[i] for i in chunk])
        for key, value in out.items():
            parts.setdefault(key, []).append(value)
    return {k: np.concatenate(v) for k, v in parts.items()}


def calibrate(
    net: AnomalyNet, arrays: EcgArrays, calib_index: np.ndarray, train_index: np.ndarray | None = None
) -> Calibration:
    """Error statistics, latent Gaussian and reference scores from normal ECGs.

    The latent Gaussian is fitted on the training normals (``train_index``; the calibration normals when
    None); map statistics, score normalisation and the percentile reference come from the held-out
    calibration normals only.
    """
    config = net.config
    errors = batched_errors(net, arrays, calib_index)
    bins = np.stack([phase_bins(arrays.r_peaks[i], config.n_samples, config) for i in calib_index])
    log_mean, log_std = fit_calibration(errors, bins, n_phase_bins(config))
    map_scores = np.array([score_from_map(m) for m in calibrated_map(errors, bins, log_mean, log_std)])
    fit_embeddings = (
        errors["embedding"] if train_index is None else batched_errors(net, arrays, train_index)["embedding"]
    )
    latent_mean, latent_precision = fit_latent_gaussian(fit_embeddings)
    calibration = Calibration(
        log_mean=log_mean,
        log_std=log_std,
        reference_scores=np.zeros(0, np.float32),
        latent_mean=latent_mean,
        latent_precision=latent_precision,
    )
    latent = calibration.latent_distance(errors["embedding"])
    calibration.score_norm = np.array(
        [map_scores.mean(), map_scores.std() + 1e-6, latent.mean(), latent.std() + 1e-6], np.float32
    )
    calibration.reference_scores = np.sort(calibration.combine(map_scores, latent)).astype(np.float32)
    return calibration


def score_many(
    detector: AnomalyDetector, arrays: EcgArrays, index: np.ndarray, batch: int = 16
) -> np.ndarray:
    """Anomaly scores of ``arrays[index]`` (one 10 s window each)."""
    scores = []
    for start in range(0, len(index), batch):
        chunk = index[start : start + batch]
        out = detector.score_windows(arrays.signal[chunk], [arrays.r_peaks[i] for i in chunk])
        scores.append(out["scores"])
    return np.concatenate(scores) if scores else np.zeros(0)


def split_indices(
    arrays: EcgArrays, test_folds: tuple[int, ...], sources: tuple[str, ...]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(train normals, calibration normals, test records) for the given test folds and data sources.

    Calibration = normals of the highest non-test fold; training = normals of the other non-test folds.
    """
    in_source = np.isin(arrays.source, sources)
    train_folds = sorted(set(range(1, 11)) - set(test_folds))
    calib_fold = train_folds[-1]
    normal = arrays.is_normal & in_source
    train = np.flatnonzero(normal & np.isin(arrays.fold, train_folds[:-1]))
    calib = np.flatnonzero(normal & (arrays.fold == calib_fold))
    test = np.flatnonzero(in_source & np.isin(arrays.fold, test_folds) & arrays.has_diagnosis)
    return train, calib, test


def fit_detector(
    arrays: EcgArrays,
    train_index: np.ndarray,
    calib_index: np.ndarray,
    config: AnomalyConfig,
    run_dir: str | Path,
    progress: bool = True,
    max_minutes: float | None = None,
) -> AnomalyDetector:
    """Train on normals, calibrate on held-out normals, return the detector (also saved in ``run_dir``)."""
    net = train_anomaly(arrays, train_index, config, run_dir, progress=progress, max_minutes=max_minutes)
    calibration = calibrate(net, arrays, calib_index, train_index)
    return AnomalyDetector(net=net, calibration=calibration)


def detection_report(
    labels: np.ndarray, scores: np.ndarray, arrays: EcgArrays, index: np.ndarray, n_boot: int = 1000
) -> dict:
    """AUROC with 95% bootstrap CI, per abnormal superclass vs normals, per sex and age band (+ gaps)."""
    value = auroc(labels, scores)
    lo, hi = bootstrap_auroc_ci(labels, scores, n_boot=n_boot)
    report: dict = {
        "n_normal": int((~labels).sum()),
        "n_abnormal": int(labels.sum()),
        "auroc": value,
        "ci95": [lo, hi],
        "per_class": {},
    }
    normal = ~labels
    for c, name in enumerate(SUPERCLASSES):
        if name == "NORM":
            continue
        has = arrays.superclass[index, c]
        sel = normal | has
        report["per_class"][name] = {"n": int(has.sum()), "auroc": auroc(has[sel], scores[sel])}
    sexes = arrays.sex[index]
    bands = np.array([age_band(a) for a in arrays.age[index]])
    report["per_sex"], report["sex_gap"] = grouped_auroc(labels, scores, sexes)
    report["per_age_band"], report["age_gap"] = grouped_auroc(labels, scores, bands)
    report["groups"] = {}
    for kind, groups in (("sex", sexes), ("age_band", bands)):
        for g in sorted(set(groups.tolist()), key=str):
            sel = groups == g
            n_abn, n_norm = int(labels[sel].sum()), int((~labels[sel]).sum())
            enough = min(n_abn, n_norm) >= 3
            ci = bootstrap_auroc_ci(labels[sel], scores[sel], n_boot=n_boot) if enough else None
            report["groups"][f"{kind}={g}"] = {"n_normal": n_norm, "n_abnormal": n_abn, "ci95": ci}
    return report


def evaluate_split(detector: AnomalyDetector, arrays: EcgArrays, test_index: np.ndarray) -> dict:
    scores = score_many(detector, arrays, test_index)
    labels = ~arrays.is_normal[test_index]
    return {
        "scores": scores,
        "labels": labels,
        "report": detection_report(labels, scores, arrays, test_index),
    }


def run_protocol(
    arrays: EcgArrays,
    config: AnomalyConfig,
    out_dir: str | Path,
    sources: tuple[str, ...],
    cv: bool = False,
    progress: bool = True,
    trained: dict | None = None,
) -> dict:
    """Primary split (+ optional 5-fold CV) for the given sources; writes ``report.json`` in ``out_dir``.

    ``trained`` maps a test-fold pair to an already trained detector that is used instead of training one.
    """
    out_dir = Path(out_dir)
    results: dict = {"sources": list(sources), "config": config.to_dict()}
    folds = [(9, 10)] + ([p for p in CV_FOLD_PAIRS if p != (9, 10)] if cv else [])
    pooled_scores, pooled_index = [], []
    detectors = {}
    for pair in folds:
        train, calib, test = split_indices(arrays, pair, sources)
        started = time.monotonic()
        if trained and pair in trained:  # e.g. the bundled model for the primary split: no retraining
            detector = trained[pair]
        else:
            cfg = AnomalyConfig.from_dict(config.to_dict())
            cfg.attribute_stats = {}
            detector = fit_detector(
                arrays, train, calib, cfg, out_dir / f"test_folds_{pair[0]}_{pair[1]}", progress=progress
            )
        detectors[pair] = detector
        seconds = time.monotonic() - started
        evaluation = evaluate_split(detector, arrays, test)
        pooled_scores.append(evaluation["scores"])
        pooled_index.append(test)
        entry = {"n_train": len(train), "n_calibration": len(calib), "train_seconds": round(seconds, 1)}
        for name, keep in (("raw", arrays.source[test] == "raw"), ("all", np.ones(len(test), bool))):
            if keep.any():
                entry[name] = detection_report(
                    evaluation["labels"][keep], evaluation["scores"][keep], arrays, test[keep]
                )
        results[f"test_folds_{pair[0]}_{pair[1]}"] = entry
        if progress:
            print(
                json.dumps(
                    {"folds": pair, **{k: v for k, v in entry.items() if k in ("raw", "all")}}, default=float
                )[:2000]
            )
    if cv:
        index = np.concatenate(pooled_index)
        scores = np.concatenate(pooled_scores)
        labels = ~arrays.is_normal[index]
        results["cv_pooled"] = {}
        for name, keep in (("raw", arrays.source[index] == "raw"), ("all", np.ones(len(index), bool))):
            results["cv_pooled"][name] = detection_report(labels[keep], scores[keep], arrays, index[keep])
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "report.json").write_text(json.dumps(results, indent=2, default=float))
    results["detectors"] = detectors
    return results


def detector_extras(detector: AnomalyDetector) -> dict:
    """The calibration as tensors, for :func:`ecgmodel.models.bundle.save_bundle`."""
    cal = detector.calibration
    names = ("log_mean", "log_std", "reference_scores", "latent_mean", "latent_precision", "score_norm")
    return {name: torch.from_numpy(np.asarray(getattr(cal, name), np.float32)) for name in names}
