"""Assemble model-ready arrays (250 Hz z-scored signals, R peaks, attribute targets) from PTB-XL.

Raw PTB-XL records go through :func:`ecgmodel.signal.model_input`, the same recipe that produced
``ptbxl_extra``; both sources then share one array layout. Nothing here is written into the project:
the optional cache goes to a path the caller gives (e.g. ``runs/cache``).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from ..datasets import PtbxlRow, load_ptbxl_extra, load_ptbxl_table, read_ptbxl_record
from ..models.anomaly import ATTRIBUTES
from ..signal import detect_r_peaks, model_input
from ..signal.intervals import measure

MODEL_FS = 250
WINDOW = 2500
SUPERCLASSES = ("NORM", "MI", "STTC", "CD", "HYP")


@dataclass
class EcgArrays:
    """N preprocessed ECGs: ``signal`` (N, 12, 2500) z-scored at 250 Hz, R peaks at 250 Hz, targets."""

    ecg_id: np.ndarray  # (N,) int
    source: np.ndarray  # (N,) "raw" | "extra" | "folder"
    signal: np.ndarray  # (N, 12, 2500) float32
    r_peaks: list[np.ndarray]  # N arrays of int64 sample indices (250 Hz)
    attributes: np.ndarray  # (N, len(ATTRIBUTES)) float32, NaN = unknown
    fold: np.ndarray  # (N,) int, 0 = none
    is_normal: np.ndarray  # (N,) bool: diagnostic superclass set exactly {NORM}
    superclass: np.ndarray  # (N, 5) bool in SUPERCLASSES order
    age: np.ndarray  # (N,) float, NaN = unknown
    sex: np.ndarray  # (N,) "M" | "F" | ""

    def __len__(self) -> int:
        return len(self.ecg_id)

    def subset(self, index: np.ndarray) -> EcgArrays:
        index = np.asarray(index)
        return EcgArrays(
            ecg_id=self.ecg_id[index],
            source=self.source[index],
            signal=self.signal[index],
            r_peaks=[self.r_peaks[i] for i in index],
            attributes=self.attributes[index],
            fold=self.fold[index],
            is_normal=self.is_normal[index],
            superclass=self.superclass[index],
            age=self.age[index],
            sex=self.sex[index],
        )

    @property
    def has_diagnosis(self) -> np.ndarray:
        """Records with at least one diagnostic superclass (the evaluation protocol's test population)."""
        return self.superclass.any(axis=1)


def attribute_targets(z: np.ndarray, r_peaks: np.ndarray, age: float | None, sex: str | None) -> np.ndarray:
    """Attribute vector in :data:`ATTRIBUTES` order: age (years, capped 90), sex (1 = female), intervals.

    Intervals (HR bpm, PR/QRS/QT/QTc ms) are measured by :func:`ecgmodel.signal.intervals.measure` on
    the model input itself, so training and inference targets come from the same signal.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        measured = measure(z, MODEL_FS, r_peaks=r_peaks)
    values = {
        "age": min(float(age), 90.0) if age is not None and np.isfinite(age) else np.nan,
        "sex": {"F": 1.0, "M": 0.0}.get(sex or "", np.nan),
        "hr_bpm": measured.get("hr_bpm", np.nan),
        "pr_ms": measured.get("pr_ms", np.nan),
        "qrs_ms": measured.get("qrs_ms", np.nan),
        "qt_ms": measured.get("qt_ms", np.nan),
        "qtc_ms": measured.get("qtc_bazett_ms", np.nan),
    }
    return np.array([values[name] for name in ATTRIBUTES], dtype=np.float32)


def fit_window(z: np.ndarray) -> np.ndarray:
    """Crop or zero-pad a (12, n) array to exactly 2500 samples (10 s at 250 Hz)."""
    if z.shape[1] >= WINDOW:
        return z[:, :WINDOW]
    return np.pad(z, ((0, 0), (0, WINDOW - z.shape[1])))


def _label_arrays(rows: list[PtbxlRow]) -> dict[str, np.ndarray]:
    return {
        "fold": np.array([r.strat_fold or 0 for r in rows], dtype=np.int64),
        "is_normal": np.array([r.superclasses == frozenset({"NORM"}) for r in rows]),
        "superclass": np.array([[c in r.superclasses for c in SUPERCLASSES] for r in rows], dtype=bool),
        "age": np.array([np.nan if r.age is None else r.age for r in rows], dtype=np.float64),
        "sex": np.array([r.sex or "" for r in rows]),
    }


def _finish(ecg_id, source, signals, rows, progress: bool) -> EcgArrays:
    r_peaks, attributes = [], []
    for z, row in tqdm(list(zip(signals, rows)), desc="R peaks + intervals", disable=not progress):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            peaks = detect_r_peaks(z, MODEL_FS)
        r_peaks.append(peaks)
        attributes.append(attribute_targets(z, peaks, row.age, row.sex))
    return EcgArrays(
        ecg_id=np.asarray(ecg_id),
        source=np.asarray(source),
        signal=np.stack(signals),
        r_peaks=r_peaks,
        attributes=np.stack(attributes),
        **_label_arrays(rows),
    )


def load_ptbxl_arrays(
    ptbxl_root: str | Path,
    extra_root: str | Path | None = None,
    cache: str | Path | None = None,
    progress: bool = True,
) -> EcgArrays:
    """Every PTB-XL record under ``ptbxl_root`` (raw, 500 Hz) plus, optionally, ``ptbxl_extra``.

    Works unchanged on the full release. With ``cache`` (an ``.npz`` path) the arrays are computed once.
    """
    if cache is not None and Path(cache).is_file():
        return load_cache(cache)
    rows = load_ptbxl_table(ptbxl_root)
    signals, ids, sources, kept = [], [], [], []
    for row in tqdm(rows, desc="reading PTB-XL", disable=not progress):
        try:
            record = read_ptbxl_record(ptbxl_root, row, fs=500)
        except Exception as err:  # a damaged record is skipped, never fatal for training
            tqdm.write(f"skipped ecg_id {row.ecg_id}: {err}")
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            z, _ = model_input(np.nan_to_num(record.signal), record.fs)
        signals.append(fit_window(z))
        ids.append(row.ecg_id)
        sources.append("raw")
        kept.append(row)
    if extra_root is not None:
        extra = load_ptbxl_extra(extra_root)
        for ecg_id, z, row in zip(extra.ecg_ids, extra.signals, extra.rows):
            signals.append(fit_window(z.astype(np.float32)))
            ids.append(int(ecg_id))
            sources.append("extra")
            kept.append(row)
    arrays = _finish(ids, sources, signals, kept, progress)
    if cache is not None:
        save_cache(arrays, cache)
    return arrays


def save_cache(arrays: EcgArrays, path: str | Path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    lengths = np.array([len(p) for p in arrays.r_peaks])
    flat = np.concatenate(arrays.r_peaks) if lengths.sum() else np.zeros(0, np.int64)
    np.savez(
        path,
        ecg_id=arrays.ecg_id,
        source=arrays.source,
        signal=arrays.signal,
        r_lengths=lengths,
        r_flat=flat,
        attributes=arrays.attributes,
        fold=arrays.fold,
        is_normal=arrays.is_normal,
        superclass=arrays.superclass,
        age=arrays.age,
        sex=arrays.sex,
    )


def load_cache(path: str | Path) -> EcgArrays:
    with np.load(path, allow_pickle=False) as f:
        lengths = f["r_lengths"]
        r_peaks = np.split(f["r_flat"], np.cumsum(lengths)[:-1]) if len(lengths) else []
        return EcgArrays(
            ecg_id=f["ecg_id"],
            source=f["source"],
            signal=f["signal"],
            r_peaks=list(r_peaks),
            attributes=f["attributes"],
            fold=f["fold"],
            is_normal=f["is_normal"],
            superclass=f["superclass"],
            age=f["age"],
            sex=f["sex"],
        )
