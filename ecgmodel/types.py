"""The few core types every part of ECG Lens passes around.

Plain dataclasses holding plain numpy arrays (wfdb-python style): nothing here computes.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field
from typing import Any

import numpy as np

#: Canonical 12-lead order used everywhere (signal rows, model inputs, anomaly maps).
STANDARD_LEADS: tuple[str, ...] = (
    "I",
    "II",
    "III",
    "aVR",
    "aVL",
    "aVF",
    "V1",
    "V2",
    "V3",
    "V4",
    "V5",
    "V6",
)


@dataclass
class Patient:
    """Demographics as stated in the file. ``sex`` is "M", "F" or None; ``age`` in years or None."""

    age: float | None = None
    sex: str | None = None
    id: str | None = None


@dataclass
class Source:
    """Where a record came from: file path and detected format name (e.g. "wfdb", "philips-xml")."""

    path: str | None = None
    format: str = "unknown"


@dataclass
class EcgRecord:
    """One 12-lead ECG.

    - ``signal``: float32 array (12, n_samples) in millivolts, rows in :data:`STANDARD_LEADS` order.
      A lead the file did not contain and that could not be derived is all-NaN and listed in
      ``missing_leads``.
    - ``fs``: sampling rate in Hz.
    - ``derived_leads``: leads computed from others (e.g. III, aVR, aVL, aVF in GE MUSE files).
    - ``metadata``: free dict (device statements, device measurements in ms under
      ``"device_measurements"``, extra non-standard leads under ``"extra_leads"``, ...).
    - ``warnings``: human-readable problems found while reading (partial record, ...).
    """

    signal: np.ndarray
    fs: float
    leads: tuple[str, ...] = STANDARD_LEADS
    patient: Patient = field(default_factory=Patient)
    source: Source = field(default_factory=Source)
    acquired: _dt.datetime | None = None
    derived_leads: tuple[str, ...] = ()
    missing_leads: tuple[str, ...] = ()
    metadata: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    @property
    def n_samples(self) -> int:
        return int(self.signal.shape[1])

    @property
    def duration_s(self) -> float:
        """Record length in seconds."""
        return self.n_samples / float(self.fs)

    def lead(self, name: str) -> np.ndarray:
        """The samples (mV) of one lead by its standard name."""
        return self.signal[self.leads.index(name)]

    def time_axis(self) -> np.ndarray:
        """Sample times in seconds, from 0."""
        return np.arange(self.n_samples, dtype=np.float64) / float(self.fs)


@dataclass
class Diagnosis:
    """One ranked diagnosis: SCP-ECG code, English name, calibrated probability (0..1)."""

    code: str
    name: str
    probability: float
    likely: bool = False  # probability above the statement's stored decision threshold
    kind: str = ""  # "diagnostic", "form", "rhythm" or "superclass"


@dataclass
class ModelInfo:
    """Identity of the model that produced a result: name, version, sha256 of the weights file."""

    name: str
    version: str
    weights_sha256: str
    card_path: str | None = None


@dataclass
class Analysis:
    """Everything :func:`ecgmodel.analyze` says about one record.

    - ``anomaly_score``: calibrated score (higher = less like the normal reference ECGs).
    - ``anomaly_percentile``: percentage of normal reference ECGs that scored lower (0..100).
    - ``anomaly_map``: float32 (12, n_samples) on the *record's own* time axis; units are
      standard deviations above the error expected for a normal ECG at that lead and position
      (0 = typical of normal ECGs; see the model card for the colour scale).
    - ``predicted``: model-predicted attributes (``age`` years, ``sex_female_probability``,
      ``hr_bpm``, ``pr_ms``, ``qrs_ms``, ``qt_ms``, ``qtc_ms``).
    - ``measured``: intervals measured by the signal pipeline (same keys, ms / bpm / degrees).
    - ``lead_scores``: per-lead anomaly score (same units as the map, averaged over time).
    """

    anomaly_score: float
    anomaly_percentile: float
    anomaly_map: np.ndarray
    diagnoses: list[Diagnosis] = field(default_factory=list)
    predicted: dict[str, float] = field(default_factory=dict)
    measured: dict[str, float] = field(default_factory=dict)
    lead_scores: dict[str, float] = field(default_factory=dict)
    lead_quality: dict[str, str] = field(default_factory=dict)
    models: list[ModelInfo] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    timings_ms: dict[str, float] = field(default_factory=dict)

    @property
    def model(self) -> ModelInfo | None:
        """The anomaly model's identity (first of ``models``)."""
        return self.models[0] if self.models else None
