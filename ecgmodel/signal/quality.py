"""Per-lead signal quality (missing, flat, saturated, noisy, baseline wander) and a record verdict.

Thresholds were calibrated on the 500 raw PTB-XL records (500 Hz): with them almost every lead of
that set is clean, while synthetic corruptions (zeroed, clipped, 50 Hz, EMG, large drift, NaN lead)
are flagged.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy import signal as _sps

from ..types import STANDARD_LEADS
from .filters import as_2d, butter_sos

__all__ = ["LeadQuality", "QualityReport", "assess", "lead_quality"]

FLAT_PTP_MV = 0.03  # band-passed peak-to-peak below this: no ECG on the lead
SATURATED_FRACTION = 0.02  # fraction of samples stuck at the lead's extreme values
NOISE_HF_MV = 0.03  # robust RMS (mV) of the content above 40 Hz
NOISE_RATIO = 0.08  # ... or that RMS relative to the lead's QRS amplitude
WANDER_MV = 1.5  # peak-to-peak (mV) of the content below 0.5 Hz
MIN_DURATION_S = 5.0
MIN_GOOD_LEADS = 8  # of 12 (scaled for fewer leads)


@dataclass
class LeadQuality:
    """Quality of one lead: ``flags`` among "missing", "flat", "saturated", "noisy", "baseline_wander";
    scores: ``hf_noise_mv`` (robust RMS above 40 Hz, mV), ``hf_noise_ratio`` (that over the lead's
    1-99 % amplitude range), ``baseline_wander_mv`` (peak-to-peak below 0.5 Hz, mV), ``saturated_fraction``
    (fraction of samples at the extremes), ``amplitude_mv`` (1-99 % range of the band-passed lead)."""

    lead: str
    flags: list[str] = field(default_factory=list)
    hf_noise_mv: float = float("nan")
    hf_noise_ratio: float = float("nan")
    baseline_wander_mv: float = float("nan")
    saturated_fraction: float = float("nan")
    amplitude_mv: float = float("nan")

    @property
    def usable(self) -> bool:
        """True when the lead holds an ECG (not missing, flat or saturated); noise is tolerated."""
        return not {"missing", "flat", "saturated"} & set(self.flags)

    @property
    def clean(self) -> bool:
        return not self.flags


@dataclass
class QualityReport:
    """Record-level verdict: per-lead results, ``analysable`` and human-readable ``reasons``."""

    leads: list[LeadQuality]
    analysable: bool
    reasons: list[str] = field(default_factory=list)

    def flags_by_lead(self) -> dict[str, str]:
        """``{lead: "ok" | comma-separated flags}`` (the form :class:`~ecgmodel.types.Analysis` keeps)."""
        return {q.lead: ", ".join(q.flags) if q.flags else "ok" for q in self.leads}


_SENTENCES = {
    "missing": "Lead {} is missing",
    "flat": "Lead {} is flat (lead off?)",
    "saturated": "Lead {} is clipped (amplifier saturated)",
    "noisy": "Lead {} is noisy (muscle or mains interference)",
    "baseline_wander": "Lead {} has strong baseline wander",
}


def _lead_names(n_leads: int, leads: Sequence[str] | None) -> list[str]:
    if leads is not None and len(leads) == n_leads:
        return list(leads)
    if n_leads == len(STANDARD_LEADS):
        return list(STANDARD_LEADS)
    return [f"lead {i + 1}" for i in range(n_leads)]


def lead_quality(signal: np.ndarray, fs: float, leads: Sequence[str] | None = None) -> list[LeadQuality]:
    """Assess each lead of ``signal`` (n_leads, n_samples, mV) at ``fs`` Hz; see :class:`LeadQuality`."""
    x, _ = as_2d(signal)
    names = _lead_names(x.shape[0], leads)
    results = [LeadQuality(name) for name in names]
    n = x.shape[1]
    finite = np.isfinite(x)
    missing = finite.mean(axis=1) < 0.5 if n else np.ones(x.shape[0], bool)
    for i in np.flatnonzero(missing):
        results[i].flags.append("missing")
    rows = np.flatnonzero(~missing)
    try:
        fs = float(fs)
    except (TypeError, ValueError):
        fs = float("nan")
    if rows.size == 0 or n < 16 or not np.isfinite(fs) or fs <= 0:
        return results
    xr = x[rows]
    if not finite[rows].all():  # fill gaps of partly missing leads with the lead's median
        xr = np.where(np.isfinite(xr), xr, np.nanmedian(xr, axis=1, keepdims=True))
    # saturation: samples stuck at either extreme of the raw lead
    span = xr.max(axis=1) - xr.min(axis=1)
    tol = np.maximum(span * 1e-3, 1e-9)[:, None]
    at_max = np.abs(xr - xr.max(axis=1, keepdims=True)) <= tol
    stuck = at_max | (np.abs(xr - xr.min(axis=1, keepdims=True)) <= tol)
    saturated_fraction = stuck.mean(axis=1)
    # baseline wander: content below 0.5 Hz, on block means (blocks of 1/25 s cancel mains at 50 Hz)
    block = max(int(fs // 25), 1)
    n_blocks = n // block
    if n_blocks >= 16:
        coarse = xr[:, :n_blocks * block].reshape(rows.size, n_blocks, block).mean(axis=2)
        coarse_fs = fs / block
    else:
        coarse, coarse_fs = xr, fs
    sos_low = butter_sos(2, min(0.5, 0.4 * coarse_fs), "lowpass", coarse_fs)
    wander = _sps.sosfiltfilt(sos_low, coarse, axis=-1, padlen=min(15, coarse.shape[1] - 1))
    wander_ptp = np.percentile(wander, 99, axis=1) - np.percentile(wander, 1, axis=1)
    # ECG-band amplitude and high-frequency noise (robust: the median absolute value ignores QRS
    # spikes); single-pass filters: only magnitudes are used, phase does not matter
    sos_band = butter_sos(2, (0.5, min(40.0, 0.4 * fs)), "bandpass", fs)
    band = _sps.sosfilt(sos_band, xr - xr[:, :1], axis=-1)[:, min(int(fs), n // 4):]
    amplitude = np.percentile(band, 99, axis=1) - np.percentile(band, 1, axis=1)
    if fs > 100.0:
        sos_high = butter_sos(2, min(40.0, 0.4 * fs), "highpass", fs)
        high = _sps.sosfilt(sos_high, xr - xr[:, :1], axis=-1)[:, min(int(0.1 * fs), n // 4):]
        hf_noise = 1.4826 * np.median(np.abs(high), axis=1)
    else:
        hf_noise = np.full(rows.size, np.nan)  # nothing above 40 Hz to look at
    for k, i in enumerate(rows):
        q = results[i]
        q.saturated_fraction = float(saturated_fraction[k])
        q.baseline_wander_mv = float(wander_ptp[k])
        q.amplitude_mv = float(amplitude[k])
        q.hf_noise_mv = float(hf_noise[k])
        q.hf_noise_ratio = float(hf_noise[k] / amplitude[k]) if amplitude[k] > 0 else float("nan")
        if amplitude[k] < FLAT_PTP_MV:
            q.flags.append("flat")
            continue
        if saturated_fraction[k] > SATURATED_FRACTION:
            q.flags.append("saturated")
        if hf_noise[k] > NOISE_HF_MV or q.hf_noise_ratio > NOISE_RATIO:
            q.flags.append("noisy")
        if wander_ptp[k] > WANDER_MV:
            q.flags.append("baseline_wander")
    return results


def assess(signal: np.ndarray, fs: float, leads: Sequence[str] | None = None) -> QualityReport:
    """Record-level quality verdict for ``signal`` (n_leads, n_samples, mV) at ``fs`` Hz.

    ``analysable`` is True when the record lasts at least 5 s and at least 8 of 12 leads (two thirds
    of the leads present) hold a usable ECG (not missing, flat or saturated). ``reasons`` lists one
    sentence per problem, e.g. "Lead V3 is flat (lead off?)".
    """
    x, _ = as_2d(signal)
    per_lead = lead_quality(x, fs, leads)
    reasons = [_SENTENCES[flag].format(q.lead) for q in per_lead for flag in q.flags]
    analysable = True
    try:
        duration = x.shape[1] / float(fs)
    except (TypeError, ValueError, ZeroDivisionError):
        duration = 0.0
    if not duration >= MIN_DURATION_S:
        analysable = False
        reasons.insert(0, f"Record is {duration:.1f} s long (at least {MIN_DURATION_S:.0f} s needed)")
    n_usable = sum(q.usable for q in per_lead)
    needed = int(np.ceil(MIN_GOOD_LEADS / 12 * len(per_lead)))
    if n_usable < needed:
        analysable = False
        reasons.insert(0, f"Only {n_usable} of {len(per_lead)} leads hold a usable ECG "
                          f"(at least {needed} needed)")
    return QualityReport(per_lead, analysable, reasons)
