"""Global ECG intervals (HR, PR, QRS, QT, QTc) and the frontal QRS axis from the median beat.

Delineation is global across leads: QRS onset/offset from the spatial velocity (root of the summed
squared first differences of all baseline-corrected median beats), T end by the tangent method and the
P wave on the spatial magnitude. Values are NaN where they cannot be measured (no P wave in AF, too few
beats, no usable lead); problems are reported as :class:`~ecgmodel.signal.filters.SignalWarning`.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence

import numpy as np
from scipy import ndimage as _ndi

from ..types import STANDARD_LEADS
from .beats import beat_windows, median_beat
from .filters import as_2d, bandpass, warn
from .rpeaks import detect_r_peaks

__all__ = ["INTERVAL_KEYS", "delineate", "measure"]

#: Keys of the dict returned by :func:`measure` (ms, bpm or degrees).
INTERVAL_KEYS: tuple[str, ...] = (
    "hr_bpm", "rr_sdnn_ms", "pr_ms", "qrs_ms", "qt_ms", "qtc_bazett_ms", "qtc_fridericia_ms", "axis_deg",
)

BEFORE_S = 0.28
QRS_THRESHOLD = 0.06  # fraction of the peak spatial velocity that marks QRS on/offset
T_END_FRACTION = 0.1  # T end no earlier than where the T magnitude falls to this fraction
AFTER_S = 0.68


def _empty() -> dict[str, float]:
    return {key: math.nan for key in INTERVAL_KEYS}


def _smooth(x: np.ndarray, fs: float, seconds: float) -> np.ndarray:
    width = max(int(round(seconds * fs)), 1)
    return _ndi.uniform_filter1d(x, width, mode="nearest")


def delineate(median: np.ndarray, fs: float, r_index: int, rr_s: float = math.nan) -> dict[str, float]:
    """Global fiducial points of a median beat (n_leads, n_win) in mV with the R peak at ``r_index``.

    Returns sample indices into the median beat (float, NaN when not found): ``p_onset``, ``p_peak``,
    ``qrs_onset``, ``qrs_offset``, ``t_peak``, ``t_end``. ``rr_s`` (mean RR, s) bounds the T-wave search.
    """
    points = dict.fromkeys(("p_onset", "p_peak", "qrs_onset", "qrs_offset", "t_peak", "t_end"), math.nan)
    m = np.asarray(median, dtype=np.float64)
    m = m[np.isfinite(m).all(axis=1)] if m.ndim == 2 else m[None, :]
    n = m.shape[1] if m.size else 0
    if m.shape[0] == 0 or n < int(0.5 * fs) or not 0 < r_index < n:
        return points
    ms = fs / 1000.0

    # --- QRS on/offset from spatial velocity
    velocity = _smooth(np.sqrt((np.diff(m, axis=1, prepend=m[:, :1]) ** 2).sum(axis=0)), fs, 0.008)
    core_lo, core_hi = max(r_index - int(60 * ms), 1), min(r_index + int(60 * ms), n - 1)
    v_peak = velocity[core_lo:core_hi + 1].max()
    quiet_lo, quiet_hi = max(r_index - int(260 * ms), 0), max(r_index - int(200 * ms), 1)
    v_noise = np.median(velocity[quiet_lo:quiet_hi]) if quiet_hi > quiet_lo else 0.0
    v_noise = min(v_noise, 0.1 * v_peak)
    threshold = v_noise + QRS_THRESHOLD * (v_peak - v_noise)
    above = velocity >= threshold
    core = np.flatnonzero(above[core_lo:core_hi + 1]) + core_lo
    if core.size == 0 or v_peak <= 0:
        return points
    search_lo = max(r_index - int(150 * ms), 0)
    below_before = np.flatnonzero(~above[search_lo:core[0]]) + search_lo
    qrs_on = below_before[-1] + 1 if below_before.size else search_lo
    search_hi = min(r_index + int(200 * ms), n)
    below_after = np.flatnonzero(~above[core[-1]:search_hi]) + core[-1]
    qrs_off = below_after[0] if below_after.size else search_hi - 1
    points["qrs_onset"], points["qrs_offset"] = float(qrs_on), float(qrs_off)

    # --- baseline: the isoelectric PR segment just before QRS onset, per lead
    b_lo = max(qrs_on - int(20 * ms), 0)
    baseline = np.median(m[:, b_lo:qrs_on + 1], axis=1, keepdims=True)
    magnitude = np.sqrt(((m - baseline) ** 2).sum(axis=0))
    magnitude = _smooth(magnitude, fs, 0.02)

    # --- T wave: peak of the magnitude after the ST segment, end by the tangent method
    t_lo = qrs_off + int(60 * ms)
    t_limit = 0.7 * rr_s * fs if np.isfinite(rr_s) and rr_s > 0 else 0.6 * fs
    t_hi = min(r_index + int(t_limit), n - 1)
    if t_hi - t_lo > int(40 * ms):
        t_peak = t_lo + int(np.argmax(magnitude[t_lo:t_hi]))
        slope = np.diff(magnitude[t_peak:min(t_peak + int(200 * ms), n)])
        if slope.size > 2 and t_peak < t_hi - 1 and slope.min() < 0:
            k = int(np.argmin(slope))
            level = np.percentile(magnitude[t_peak:min(t_hi + int(100 * ms), n)], 5)
            t_end = t_peak + k + (magnitude[t_peak + k] - level) / -slope[k]
            if T_END_FRACTION > 0:
                cut = level + T_END_FRACTION * (magnitude[t_peak] - level)
                fall = np.flatnonzero(magnitude[t_peak:t_hi] < cut)
                if fall.size:
                    t_end = max(t_end, float(t_peak + fall[0]))
            if t_peak < t_end < n:
                points["t_peak"], points["t_end"] = float(t_peak), float(t_end)

    # --- P wave: a clear bump of the magnitude 50-300 ms before QRS onset, onset where the magnitude
    # falls to 20 % of the bump height above the valley that precedes it
    p_lo, p_hi = max(qrs_on - int(300 * ms), 0), qrs_on - int(50 * ms)
    if p_hi - p_lo > int(40 * ms):
        p_peak = p_lo + int(np.argmax(magnitude[p_lo:p_hi]))
        v_lo = max(p_peak - int(150 * ms), 0)
        if p_lo < p_peak < p_hi - 1 and p_peak > v_lo:
            valley = v_lo + int(np.argmin(magnitude[v_lo:p_peak]))
            p_amp = magnitude[p_peak] - magnitude[valley]
            after = magnitude[p_peak:qrs_on].min() if qrs_on > p_peak else magnitude[p_peak]
            qrs_amp = magnitude[qrs_on:qrs_off + 1].max()
            rises = magnitude[p_peak] - after
            if min(p_amp, rises) > max(0.02, 0.03 * qrs_amp):
                # the PR segment may sit off the TP level: re-reference the P wave to the TP segment
                tp_hi = max(p_peak - int(70 * ms), v_lo + 1)
                tp_lo = max(tp_hi - int(16 * ms), v_lo)
                tp_level = np.median(m[:, tp_lo:tp_hi + 1], axis=1, keepdims=True)
                p_mag = _smooth(np.sqrt(((m[:, v_lo:p_peak + 1] - tp_level) ** 2).sum(axis=0)), fs, 0.01)
                below = np.flatnonzero(p_mag < 0.25 * p_mag[-1])
                points["p_peak"] = float(p_peak)
                points["p_onset"] = float(v_lo + (below[-1] + 1 if below.size else 0))
    return points


def _p_wave_consistent(x: np.ndarray, r_peaks: np.ndarray, fs: float, points: dict[str, float]) -> bool:
    """True when the P wave of the median beat recurs beat after beat (sinus-like), not fibrillation."""
    if not np.isfinite(points["p_onset"]):
        return False
    r_index = int(round(BEFORE_S * fs))
    lo = int(points["p_onset"]) - r_index
    hi = int(points["qrs_onset"]) - r_index
    if hi - lo < 4:
        return False
    windows, _ = beat_windows(x, r_peaks, fs, before_s=-lo / fs, after_s=hi / fs)
    if windows.shape[0] < 3:
        return True
    windows = np.nan_to_num(windows).reshape(windows.shape[0], -1)
    windows = windows - windows.mean(axis=1, keepdims=True)
    template = np.median(windows, axis=0)
    denom = np.linalg.norm(windows, axis=1) * np.linalg.norm(template)
    corr = np.where(denom > 0, windows @ template / np.where(denom > 0, denom, 1.0), 0.0)
    return float(np.median(corr)) >= 0.5


def measure(signal: np.ndarray, fs: float, r_peaks: np.ndarray | None = None,
            leads: Sequence[str] = STANDARD_LEADS) -> dict[str, float]:
    """Measure global intervals of a resting ECG.

    ``signal``: (n_leads, n_samples) mV; ``fs`` Hz; ``r_peaks``: sample indices (detected when None);
    ``leads``: row names (axis needs I and aVF, or I and II). Returns a dict with every key of
    :data:`INTERVAL_KEYS`: ``hr_bpm`` (from the mean RR), ``rr_sdnn_ms``, ``pr_ms``, ``qrs_ms``,
    ``qt_ms``, ``qtc_bazett_ms``, ``qtc_fridericia_ms`` (ms) and ``axis_deg`` (frontal QRS axis,
    degrees, -180..180). NaN where not measurable. Never raises.
    """
    result = _empty()
    try:
        return _measure(signal, fs, r_peaks, leads, result)
    except Exception as err:  # noqa: BLE001 - contract: bad input never raises
        warn(f"interval measurement failed: {err!r}")
        return _empty()


def _measure(signal, fs, r_peaks, leads, result):
    x, _ = as_2d(signal)
    fs = float(fs)
    if not np.isfinite(fs) or fs <= 0 or x.shape[1] < fs:
        warn("record too short or invalid sampling rate for interval measurement")
        return result
    filtered = bandpass(x, fs, 0.5, min(45.0, 0.45 * fs), order=2)
    peaks = detect_r_peaks(x, fs) if r_peaks is None else np.asarray(r_peaks, dtype=np.int64).ravel()
    peaks = np.sort(peaks[(peaks >= 0) & (peaks < x.shape[1])])
    if peaks.size >= 2:
        rr = np.diff(peaks) / fs
        rr = rr[(rr > 0.25) & (rr < 2.5)]
        if rr.size:
            rr_mean = float(rr.mean())
            result["hr_bpm"] = 60.0 / rr_mean
            if rr.size >= 2:
                result["rr_sdnn_ms"] = float(rr.std(ddof=1) * 1000.0)
    else:
        warn("fewer than 2 beats: heart rate not measurable")
    rr_mean = 60.0 / result["hr_bpm"] if np.isfinite(result["hr_bpm"]) else math.nan
    if peaks.size == 0:
        return result
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        median = median_beat(filtered, peaks, fs, BEFORE_S, AFTER_S)
    r_index = int(round(BEFORE_S * fs))
    if not np.isfinite(median).any():
        warn("no complete beat: intervals not measurable")
        return result
    points = delineate(median, fs, r_index, rr_mean)
    to_ms = 1000.0 / fs
    qrs_on, qrs_off, t_end = points["qrs_onset"], points["qrs_offset"], points["t_end"]
    result["qrs_ms"] = (qrs_off - qrs_on) * to_ms
    if np.isfinite(points["p_onset"]) and _p_wave_consistent(filtered, peaks, fs, points):
        result["pr_ms"] = (qrs_on - points["p_onset"]) * to_ms
    result["qt_ms"] = (t_end - qrs_on) * to_ms
    if np.isfinite(result["qt_ms"]) and np.isfinite(rr_mean):
        result["qtc_bazett_ms"] = result["qt_ms"] / math.sqrt(rr_mean)
        result["qtc_fridericia_ms"] = result["qt_ms"] / rr_mean ** (1.0 / 3.0)
    result["axis_deg"] = _frontal_axis(median, leads, qrs_on, qrs_off)
    return result


def _frontal_axis(median: np.ndarray, leads: Sequence[str], qrs_on: float, qrs_off: float) -> float:
    """Frontal QRS axis (degrees) from the net QRS area of leads I and aVF (aVF = II - I/2 if needed)."""
    if not (np.isfinite(qrs_on) and np.isfinite(qrs_off)) or qrs_off <= qrs_on:
        return math.nan
    names = list(leads)[: median.shape[0]]
    lo, hi = int(qrs_on), int(qrs_off) + 1

    def net_area(name: str) -> float:
        if name not in names:
            return math.nan
        row = median[names.index(name)]
        return float(np.sum(row[lo:hi] - row[lo])) if np.isfinite(row[lo:hi]).all() else math.nan

    lead_i, lead_avf = net_area("I"), net_area("aVF")
    if not np.isfinite(lead_avf):
        lead_avf = net_area("II") - lead_i / 2.0
    if not (np.isfinite(lead_i) and np.isfinite(lead_avf)) or (lead_i == 0 and lead_avf == 0):
        return math.nan
    # aVF projects the vertical component scaled by sqrt(3)/2 relative to lead I
    return float(np.degrees(np.arctan2(lead_avf * 2.0 / math.sqrt(3.0), lead_i)))
