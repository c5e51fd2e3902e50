"""Project-owned synthetic 12-lead ECG generator (for examples, demos and tests; never for evaluation).

A beat is a cardiac dipole moving through time: P, QRS (septal q, main R, terminal S) and T are
sums of Gaussians, each with a 3-D direction (x left, y inferior, z posterior). The dipole is projected
onto the independent leads I, II, V1-V6 with an approximate Dower-style matrix, and III, aVR, aVL, aVF
are derived, so Einthoven's law (III = II - I) and Goldberger's (aVR = -(I + II)/2, ...) hold exactly.
Heart rate varies with respiration (sinus arrhythmia) plus a little randomness; QT follows the RR
interval (Bazett); baseline wander and white noise are added per electrode lead. Units: mV, s, Hz.

Abnormalities come from :mod:`ecgmodel.abnormalities` (the same injectors the localization benchmark
uses), with their exact location returned as :class:`~ecgmodel.abnormalities.InjectedEvent`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .abnormalities import DIPOLE_TO_LEADS, InjectedEvent, inject, leads_from_independent
from .types import STANDARD_LEADS, EcgRecord, Patient, Source

__all__ = ["synthetic_ecg", "write_wfdb_example", "write_wfdb_record"]

# (name, centre s from R, width s, amplitude mV, direction x/y/z). P and QRS only; T is asymmetric below.
_WAVES: tuple[tuple[str, float, float, float, tuple[float, float, float]], ...] = (
    ("P_right_atrium", -0.185, 0.022, 0.10, (0.10, 0.80, -0.50)),
    ("P_left_atrium", -0.150, 0.024, 0.08, (0.70, 0.35, 0.25)),
    ("q_septal", -0.026, 0.008, 0.25, (-0.50, 0.10, -0.85)),
    ("R_main", 0.000, 0.011, 1.60, (0.85, 0.45, 0.35)),
    ("S_terminal", 0.022, 0.012, 0.45, (-0.45, -0.35, 0.80)),
)
_T_DIRECTION = (0.80, 0.50, -0.30)


def _unit(v: tuple[float, float, float] | np.ndarray) -> np.ndarray:
    v = np.asarray(v, dtype=np.float64)
    return v / np.linalg.norm(v)


def _rotation(rng: np.random.Generator, sd_deg: float) -> np.ndarray:
    """A small random 3-D rotation (axis uniform, angle ~ N(0, sd_deg)): per-person heart orientation."""
    axis = _unit(rng.normal(size=3))
    angle = np.deg2rad(rng.normal(0.0, sd_deg))
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + np.sin(angle) * k + (1 - np.cos(angle)) * (k @ k)


def beat_times_s(duration_s: float, hr_bpm: float, rng: np.random.Generator) -> np.ndarray:
    """R-peak times (s) from before 0 to after ``duration_s``: mean RR = 60/hr_bpm, respiratory sinus
    arrhythmia (+-4 % at 0.2-0.3 Hz) and 1 % random beat-to-beat variation."""
    rr_mean = 60.0 / hr_bpm
    resp_hz, phase = rng.uniform(0.2, 0.3), rng.uniform(0, 2 * np.pi)
    t = -rr_mean * rng.uniform(0.3, 1.0)
    times = []
    while t < duration_s + rr_mean:
        times.append(t)
        rr = rr_mean * (1 + 0.04 * np.sin(2 * np.pi * resp_hz * t + phase) + rng.normal(0, 0.01))
        t += rr
    return np.asarray(times)


def _beat_dipole(t: np.ndarray, rr_s: float, shapes: dict[str, tuple[float, float, np.ndarray]],
                 t_shape: tuple[float, float, float, np.ndarray]) -> np.ndarray:
    """Dipole (3, len(t)) of one beat; t in s relative to its R peak."""
    out = np.zeros((3, t.size))
    for name, centre, width, _amp, _dir in _WAVES:
        amp, width_scale, direction = shapes[name]
        g = np.exp(-0.5 * ((t - centre) / (width * width_scale)) ** 2)
        out += amp * np.outer(direction, g)
    t_amp, qtc, _pad, t_dir = t_shape
    qt = qtc * np.sqrt(rr_s)  # Bazett, from QRS onset (R - 40 ms)
    t_end = -0.040 + qt
    sigma_r, sigma_l = 0.045, 0.075
    t_peak = t_end - 2.3 * sigma_r
    g = np.where(t < t_peak, np.exp(-0.5 * ((t - t_peak) / sigma_l) ** 2),
                 np.exp(-0.5 * ((t - t_peak) / sigma_r) ** 2))
    return out + t_amp * np.outer(t_dir, g)


def _baseline_wander(rng: np.random.Generator, n: int, fs: float) -> np.ndarray:
    """(8, n) slow baseline drift (mV) of the independent leads: respiration-like sinusoids 0.1-0.4 Hz."""
    t = np.arange(n) / fs
    out = np.zeros((8, n))
    for _ in range(2):
        f = rng.uniform(0.1, 0.4, size=(8, 1))
        amp = rng.uniform(0.01, 0.06, size=(8, 1))
        out += amp * np.sin(2 * np.pi * f * t[None, :] + rng.uniform(0, 2 * np.pi, size=(8, 1)))
    return out


def synthetic_ecg(duration_s: float = 10.0, fs: float = 500.0, hr_bpm: float = 70.0, seed: int = 0,
                  abnormality: str | Sequence[str] | None = None, noise_mv: float = 0.01,
                  age: float | None = None, sex: str | None = None) -> tuple[EcgRecord, list[InjectedEvent]]:
    """A synthetic resting 12-lead ECG (mV, canonical lead order) and the abnormalities injected into it.

    ``abnormality``: None, one of :data:`ecgmodel.abnormalities.ABNORMALITY_KINDS` ("pvc",
    "st_elevation", ...) or a sequence of them (e.g. ("pvc", "pvc") for two PVCs on separate beats),
    injected in order with their exact locations (events). ``noise_mv``: white-noise SD per
    independent lead. ``sex`` "M"/"F" (women: ~15 % lower QRS voltage). Same arguments -> same record.
    """
    if not 30 <= hr_bpm <= 150:
        raise ValueError(f"hr_bpm must be 30-150 for a sinus-rhythm synthetic ECG, not {hr_bpm}")
    if duration_s <= 0 or fs <= 0:
        raise ValueError("duration_s and fs must be positive")
    rng = np.random.default_rng(seed)
    n = int(round(duration_s * fs))
    rot = _rotation(rng, 12.0)
    voltage = rng.uniform(0.85, 1.15) * (0.85 if sex == "F" else 1.0)
    shapes = {name: (amp * voltage * (rng.uniform(0.8, 1.2) if name.startswith(("q", "S")) else 1.0),
                     rng.uniform(0.9, 1.1), rot @ _unit(direction))
              for name, _c, _w, amp, direction in _WAVES}
    t_shape = (rng.uniform(0.28, 0.40) * voltage, rng.uniform(0.39, 0.43), 0.0, rot @ _unit(_T_DIRECTION))
    r_times = beat_times_s(duration_s, hr_bpm, rng)
    t = np.arange(n) / fs
    dipole = np.zeros((3, n))
    for k, r_t in enumerate(r_times):
        rr = (r_times[k + 1] - r_t) if k + 1 < r_times.size else (r_t - r_times[k - 1])
        lo, hi = np.searchsorted(t, [r_t - 0.35, r_t + 0.75])
        dipole[:, lo:hi] += _beat_dipole(t[lo:hi] - r_t, rr, shapes, t_shape)
    independent = DIPOLE_TO_LEADS @ dipole + _baseline_wander(rng, n, fs)
    independent += rng.normal(0.0, noise_mv, size=independent.shape)
    signal = leads_from_independent(independent)
    r_peaks = np.round(r_times[(r_times >= 0) & (r_times < duration_s)] * fs).astype(int)
    signal, events = _inject_all(signal, fs, r_peaks, seed, abnormality)
    record = EcgRecord(
        signal=signal.astype(np.float32), fs=float(fs), leads=STANDARD_LEADS,
        patient=Patient(age=age, sex=sex), source=Source(path=None, format="synthetic"),
        metadata={"synthetic": True, "seed": seed, "hr_bpm": hr_bpm, "r_peaks": r_peaks.tolist(),
                  "abnormality": abnormality},
    )
    return record, events


def _inject_all(signal: np.ndarray, fs: float, r_peaks: np.ndarray, seed: int,
                abnormality: str | Sequence[str] | None) -> tuple[np.ndarray, list[InjectedEvent]]:
    """Inject the abnormalities in order; returns the new signal (12, n) mV and all events.

    Repeated PVCs go on beats at least 3 beats apart so each keeps its sinus neighbours.
    """
    kinds = [abnormality] if isinstance(abnormality, str) else list(abnormality or [])
    rng = np.random.default_rng(np.random.SeedSequence([seed, 1]))
    events: list[InjectedEvent] = []
    pvc_beats: list[int] = []
    for kind in kinds:
        options = {}
        if kind == "pvc":
            free = [k for k in range(2, r_peaks.size - 2) if all(abs(k - u) >= 3 for u in pvc_beats)]
            if not free:
                raise ValueError("record too short for another PVC")
            options["beat_index"] = int(rng.choice(free))
            pvc_beats.append(options["beat_index"])
        signal, _mask, new_events = inject(kind, signal, fs, r_peaks, int(rng.integers(2**31)), **options)
        events += new_events
    return signal, events


def write_wfdb_record(path_stem: str | os.PathLike[str], signal: np.ndarray, fs: float,
                      patient: Patient | None = None, comments: list[str] | None = None) -> Path:
    """Write (12, n) mV as a WFDB record ``<stem>.hea`` + ``<stem>.dat`` (format 16, 1 uV per unit) with
    "Age: .." / "Sex: .." header comments; returns the header path."""
    import wfdb

    stem = Path(path_stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    lines = list(comments or [])
    if patient is not None and patient.age is not None:
        lines.append(f"Age: {patient.age:g}")
    if patient is not None and patient.sex is not None:
        lines.append(f"Sex: {patient.sex}")
    p_signal = np.round(np.asarray(signal, dtype=np.float64).T * 1000.0) / 1000.0
    wfdb.wrsamp(stem.name, fs=float(fs), units=["mV"] * len(STANDARD_LEADS), sig_name=list(STANDARD_LEADS),
                p_signal=p_signal, fmt=["16"] * len(STANDARD_LEADS), adc_gain=[1000.0] * len(STANDARD_LEADS),
                baseline=[0] * len(STANDARD_LEADS), comments=lines, write_dir=str(stem.parent))
    return stem.with_suffix(".hea")


def write_wfdb_example(path_stem: str | os.PathLike[str], **kwargs) -> tuple[EcgRecord, list[InjectedEvent]]:
    """Generate :func:`synthetic_ecg` (``kwargs``) and write it as a WFDB record plus
    ``<stem>.events.json`` listing the injected events (empty list for a normal ECG)."""
    record, events = synthetic_ecg(**kwargs)
    stem = Path(path_stem)
    args = ", ".join(f"{k}={v!r}" for k, v in sorted(kwargs.items()))
    note = f"Synthetic ECG made by ecgmodel.synthetic.synthetic_ecg({args}); not a patient"
    write_wfdb_record(stem, record.signal, record.fs, record.patient, comments=[note])
    sidecar = {"generator": "ecgmodel.synthetic.synthetic_ecg", "arguments": kwargs,
               "events": [e.to_dict() for e in events]}
    stem.with_name(stem.name + ".events.json").write_text(json.dumps(sidecar, indent=1) + "\n")
    return record, events
