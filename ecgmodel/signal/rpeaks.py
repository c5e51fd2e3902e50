"""Multi-lead R-peak (QRS) detection.

The detector combines all usable leads: each lead is band-passed (QRS band), differentiated and
rectified (so polarity does not matter), scaled by its own typical QRS slope, weighted by how "peaky"
it is (a lead full of noise or flat gets little weight), summed and smoothed into one envelope. Peaks
of the envelope above an adaptive threshold, separated by a refractory period, are beats; each is then
moved to the largest deflection of the dominant lead. Fully vectorised (numpy/scipy only).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as _ndi
from scipy import signal as _sps

from .filters import as_2d, butter_sos, warn

__all__ = ["detect_r_peaks", "qrs_envelope"]

_QRS_BAND_HZ = (8.0, 30.0)
_REFRACTORY_S = 0.2  # no two beats closer than this (300 bpm)
_SMOOTH_S = 0.06  # envelope smoothing window
_REFINE_S = 0.06  # half-width of the search window when moving a beat to the dominant lead's extremum
_MIN_SAMPLES_S = 0.5


def _usable_leads(x: np.ndarray) -> np.ndarray:
    """Leads that are finite enough and not flat (peak-to-peak > 10 µV)."""
    finite = np.isfinite(x)
    finite_fraction = finite.mean(axis=1)
    span = np.where(finite, x, -np.inf).max(axis=1) - np.where(finite, x, np.inf).min(axis=1)
    return (finite_fraction > 0.5) & (span > 0.01)


def qrs_envelope(signal: np.ndarray, fs: float) -> tuple[np.ndarray, np.ndarray]:
    """The combined multi-lead QRS envelope and the per-lead weights used to build it.

    Returns (envelope float64 (n_samples,), weights float64 (n_leads,)); the envelope is dimensionless
    (about 1 at a typical QRS) and zero when no lead is usable.
    """
    x, _ = as_2d(signal)
    n = x.shape[1]
    weights = np.zeros(x.shape[0])
    usable = _usable_leads(x) if n else np.zeros(x.shape[0], bool)
    if not usable.any() or n < 8:
        return np.zeros(n), weights
    xs = np.nan_to_num(x[usable], nan=0.0)
    high = min(_QRS_BAND_HZ[1], 0.45 * fs)
    sos = butter_sos(2, (_QRS_BAND_HZ[0], high), "bandpass", fs)
    padlen = int(min(3 * (2 * len(sos) + 1), n - 1))
    filtered = _sps.sosfiltfilt(sos, xs, axis=-1, padlen=padlen)
    slope = np.abs(np.diff(filtered, axis=-1, prepend=filtered[:, :1]))
    # per-lead scale: the typical QRS slope (upper percentile), robust to a few huge beats
    scale = np.percentile(slope, 99.0, axis=1)
    typical = np.median(slope, axis=1)
    scale = np.where(scale > 0, scale, 1.0)
    slope_n = np.minimum(slope / scale[:, None], 3.0)  # clip spikes (pacing, steps) to 3x a QRS slope
    # "peakiness": clean leads have a low median slope relative to their QRS slope
    peakiness = typical / scale
    lead_weight = np.clip((0.25 - peakiness) / 0.15, 0.05, 1.0)
    weights[usable] = lead_weight
    combined = (lead_weight[:, None] * slope_n).sum(axis=0) / lead_weight.sum()
    width = max(int(round(_SMOOTH_S * fs)), 1)
    envelope = _ndi.uniform_filter1d(combined, width, mode="nearest")
    return envelope, weights


def _pick_peaks(envelope: np.ndarray, fs: float) -> np.ndarray:
    distance = max(int(round(_REFRACTORY_S * fs)), 1)
    candidates, props = _sps.find_peaks(envelope, distance=distance, height=0.0)
    if candidates.size == 0:
        return candidates
    heights = props["peak_heights"]
    # typical beat height: median of the tallest peaks (about one per 1.5 s of record)
    n_expected = max(int(len(envelope) / fs / 1.5), 1)
    top = np.sort(heights)[::-1][:n_expected]
    typical = np.median(top)
    # local reference: tallest envelope value within +-1.5 s, so a run of small beats next to large
    # PVCs is still found
    window = max(int(round(3.0 * fs)), 1)
    local_max = _ndi.maximum_filter1d(envelope, window, mode="nearest")[candidates]
    threshold = np.maximum(0.3 * np.minimum(local_max, typical * 1.5), 0.2 * typical)
    keep = heights >= threshold
    peaks = candidates[keep]
    heights = heights[keep]
    if peaks.size < 2:
        return peaks
    # T-wave rejection: a peak soon after a beat (< 360 ms) that is much smaller than it
    close = np.diff(peaks) < int(0.36 * fs)
    small = heights[1:] < 0.5 * heights[:-1]
    drop = np.zeros(peaks.size, bool)
    drop[1:] = close & small
    return peaks[~drop]


def _refine(x: np.ndarray, peaks: np.ndarray, weights: np.ndarray, fs: float) -> np.ndarray:
    """Move each beat to the largest absolute deflection (from the local median) of the dominant lead."""
    if peaks.size == 0 or not (weights > 0).any():
        return peaks
    n = x.shape[1]
    half = max(int(round(_REFINE_S * fs)), 1)
    offsets = np.arange(-half, half + 1)
    idx = np.clip(peaks[:, None] + offsets[None, :], 0, n - 1)
    leads = np.flatnonzero(weights > 0)
    xs = np.nan_to_num(x[leads], nan=0.0)
    win = xs[:, idx]  # (leads, beats, window)
    dev = np.abs(win - np.median(win, axis=-1, keepdims=True))
    amp = np.median(dev.max(axis=-1), axis=1) * weights[leads]
    dominant = int(np.argmax(amp))
    refined = idx[np.arange(peaks.size), np.argmax(dev[dominant], axis=-1)]
    refined = np.unique(refined)
    if refined.size > 1:  # two envelope peaks moved onto the same deflection: keep one
        refined = refined[np.concatenate([[True], np.diff(refined) >= int(_REFRACTORY_S * fs)])]
    return refined


def detect_r_peaks(signal: np.ndarray, fs: float) -> np.ndarray:
    """Detect R peaks (QRS complexes) using all leads jointly.

    ``signal``: (n_leads, n_samples) mV (1-D = one lead; NaN / flat leads ignored), ``fs`` in Hz
    (100-1000). Returns sorted int64 sample indices on the input's own axis, each at the largest
    deflection of the dominant lead (polarity-agnostic). Works for 30-220 bpm; an empty array and a
    :class:`~ecgmodel.signal.filters.SignalWarning` when nothing can be detected.
    """
    x, _ = as_2d(signal)
    try:
        fs = float(fs)
    except (TypeError, ValueError):
        fs = float("nan")
    if not np.isfinite(fs) or fs <= 0:
        warn(f"invalid sampling rate {fs!r}; no R peaks detected")
        return np.zeros(0, dtype=np.int64)
    n = x.shape[1]
    if n < _MIN_SAMPLES_S * fs:
        warn(f"record of {n / fs:.2f} s is too short for R-peak detection")
        return np.zeros(0, dtype=np.int64)
    envelope, weights = qrs_envelope(x, fs)
    if not envelope.any():
        warn("no usable lead (all missing or flat); no R peaks detected")
        return np.zeros(0, dtype=np.int64)
    peaks = _pick_peaks(envelope, fs)
    peaks = _refine(x, peaks, weights, fs)
    if peaks.size == 0:
        warn("no QRS complexes found")
    return peaks.astype(np.int64)
