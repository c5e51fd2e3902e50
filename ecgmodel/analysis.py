"""``analyze(record) -> Analysis``: the one entry point that runs the bundled models on an ECG.

Stages (each timed in ``Analysis.timings_ms``): signal quality, model input (band-pass 0.5-40 Hz,
per-lead z-score, 250 Hz), R peaks, anomaly model (all masked passes of all 10 s windows in one batch),
map back to the record's own samples, measured intervals, and the diagnosis model where one is bundled.
Decision support only: nothing here is a diagnosis.
"""

from __future__ import annotations

import threading
import time
import warnings
from pathlib import Path

import numpy as np
import torch

from .anomaly_scoring import AnomalyDetector, Calibration
from .errors import AnalysisError, ModelLoadError
from .models.anomaly import ATTRIBUTES, AnomalyConfig, AnomalyNet
from .models.bundle import default_model_path, load_bundle
from .signal import detect_r_peaks, map_to_record, model_input
from .signal.intervals import measure
from .signal.quality import assess
from .types import Analysis, EcgRecord, ModelInfo

ANOMALY_MODEL_FILE = "ecglens-anomaly.pt"
DIAGNOSIS_MODEL_FILE = "ecglens-diagnosis.pt"
MIN_DURATION_S = 2.5
_cache: dict[str, object] = {}
_cache_lock = threading.Lock()


def detector_from_bundle(path: str | Path) -> AnomalyDetector:
    """Load an anomaly model bundle (weights-only) into an :class:`AnomalyDetector`."""
    payload, sha = load_bundle(path, expected_kind="anomaly")
    try:
        config = AnomalyConfig.from_dict(payload["config"])
        net = AnomalyNet(config)
        net.load_state_dict(payload["state_dict"])
        extras = payload["extras"]
        optional = {
            name: extras[name].numpy()
            for name in ("latent_mean", "latent_precision", "score_norm")
            if name in extras and extras[name].numel() > 1
        }
        calibration = Calibration(
            log_mean=extras["log_mean"].numpy(),
            log_std=extras["log_std"].numpy(),
            reference_scores=extras["reference_scores"].numpy(),
            **optional,
        )
    except (KeyError, RuntimeError, TypeError) as err:
        raise ModelLoadError(f"{path}: the weights do not match this version of ECG Lens ({err}).") from err
    net.eval()
    return AnomalyDetector(
        net=net, calibration=calibration, name=payload["name"], version=payload["version"], sha256=sha
    )


def load_anomaly_detector(path: str | Path | None = None) -> AnomalyDetector:
    """The bundled anomaly detector (cached per path; safe to call from several threads)."""
    path = Path(path) if path is not None else default_model_path(ANOMALY_MODEL_FILE)
    key = f"anomaly:{path}"
    with _cache_lock:
        if key not in _cache:
            _cache[key] = detector_from_bundle(path)
        return _cache[key]  # type: ignore[return-value]


def load_diagnosis_model(path: str | Path | None = None):
    """The bundled diagnosis model, or None where none is installed (the analysis then has no diagnoses)."""
    path = Path(path) if path is not None else default_model_path(DIAGNOSIS_MODEL_FILE)
    if not path.is_file():
        return None
    from .diagnosis import load_diagnosis_model as _load

    key = f"diagnosis:{path}"
    with _cache_lock:
        if key not in _cache:
            _cache[key] = _load(path)
        return _cache[key]


def predicted_attributes(detector: AnomalyDetector, standardized: np.ndarray) -> dict[str, float]:
    """Attribute head output -> age (years), sex_female_probability, hr_bpm, pr/qrs/qt/qtc (ms)."""
    stats = detector.config.attribute_stats
    mean, std = np.asarray(stats["mean"]), np.asarray(stats["std"])
    values = {}
    for i, name in enumerate(ATTRIBUTES):
        if name == "sex":
            values["sex_female_probability"] = float(1.0 / (1.0 + np.exp(-standardized[i])))
        else:
            values[name] = float(standardized[i] * std[i] + mean[i])
    return values


def analyze(
    record: EcgRecord,
    *,
    anomaly_model: str | Path | None = None,
    diagnosis_model: str | Path | None = None,
    with_diagnosis: bool = True,
    threads: int | None = None,
) -> Analysis:
    """Analyse one record: anomaly score + percentile, per-lead map on the record's samples, attributes.

    ``threads`` bounds torch's CPU threads for this call (default: leave torch's setting).
    Raises :class:`AnalysisError` for records that cannot be analysed (shorter than 2.5 s, no usable
    lead) and :class:`ModelLoadError` when the bundled weights are missing or damaged.
    """
    timings: dict[str, float] = {}
    t0 = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal t0
        now = time.perf_counter()
        timings[name] = round(1000 * (now - t0), 2)
        t0 = now

    name = record.source.path or "this record"
    if record.duration_s < MIN_DURATION_S:
        raise AnalysisError(
            f"{name}: the record is {record.duration_s:.1f} s long; at least "
            f"{MIN_DURATION_S} s are needed for analysis."
        )
    if threads is not None:
        torch.set_num_threads(threads)
    detector = load_anomaly_detector(anomaly_model)
    lap("load_model")

    warnings_out = list(record.warnings)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        quality = assess(record.signal, record.fs, record.leads)
    lead_quality = {q.lead: ", ".join(q.flags) if q.flags else "ok" for q in quality.leads}
    unusable = {q.lead for q in quality.leads if {"missing", "flat"} & set(q.flags)}
    valid = np.array([lead not in unusable for lead in record.leads])
    if not valid.any():
        raise AnalysisError(f"{name}: no lead carries a usable signal (all missing or flat).")
    warnings_out += [r for r in quality.reasons if r not in warnings_out]
    lap("quality")

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        z, fs_model = model_input(np.nan_to_num(record.signal), record.fs)
        r_peaks = detect_r_peaks(np.where(valid[:, None], z, 0.0), fs_model)
    if r_peaks.size < 2:
        warnings_out.append(
            "Fewer than 2 heartbeats were detected; the beat-level analysis is unavailable "
            "and the anomaly map relies on the whole-ECG restoration only."
        )
    if record.duration_s < 10.0:
        warnings_out.append(f"Short record ({record.duration_s:.1f} s): the model was trained on 10 s ECGs.")
    lap("preprocess")

    result = detector.score_record(z, r_peaks, valid)
    lap("anomaly_model")
    anomaly_map = map_to_record(result["map"], fs_model, record.fs, record.n_samples).astype(np.float32)
    anomaly_map[~valid] = np.nan
    lead_scores = {lead: float(np.nanmean(anomaly_map[i])) for i, lead in enumerate(record.leads) if valid[i]}
    lap("map")

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        measured = measure(np.where(valid[:, None], record.signal, np.nan), record.fs)
    measured = {k: float(v) for k, v in measured.items()}
    lap("intervals")

    models = [
        ModelInfo(
            name=detector.name,
            version=detector.version,
            weights_sha256=detector.sha256,
            card_path=str(default_model_path("ecglens-anomaly.md")),
        )
    ]
    diagnoses = []
    if with_diagnosis:
        diagnosis = load_diagnosis_model(diagnosis_model)
        if diagnosis is not None:
            diagnoses = diagnosis.predict(z, r_peaks, valid)
            models.append(diagnosis.info)
        lap("diagnosis")

    score = float(result["score"])
    return Analysis(
        anomaly_score=score,
        anomaly_percentile=detector.calibration.percentile(score),
        anomaly_map=anomaly_map,
        diagnoses=diagnoses,
        predicted=predicted_attributes(detector, result["attributes"]),
        measured=measured,
        lead_scores=lead_scores,
        lead_quality=lead_quality,
        models=models,
        warnings=warnings_out,
        timings_ms=timings,
    )
