"""Zero-phase filters, resampling and the anomaly model's input preprocessing.

Every function takes ``signal`` as a float array of shape (n_leads, n_samples) in mV (a 1-D array is
treated as one lead and returned 1-D) and ``fs`` in Hz. All-NaN rows (missing leads) stay all-NaN;
isolated NaN samples are bridged by linear interpolation for filtering and put back afterwards.
Bad input never raises: problems are reported with :class:`SignalWarning` (``warnings.warn``) and the
signal is returned unfiltered where filtering is impossible.
"""

from __future__ import annotations

import warnings
from fractions import Fraction
from functools import lru_cache

import numpy as np
from scipy import signal as _sps

__all__ = [
    "MODEL_FS", "PRESETS", "SignalWarning", "apply_preset", "bandpass", "highpass", "lowpass",
    "map_to_record", "model_input", "notch", "remove_baseline", "resample", "resample_to_length", "zscore",
]

#: Sampling rate (Hz) of the anomaly model's input.
MODEL_FS = 250.0

#: Named filter presets for display and analysis: name -> (low_hz, high_hz, mains_hz).
PRESETS: dict[str, tuple[float | None, float | None, float | None]] = {
    "diagnostic": (0.05, 150.0, None),
    "monitoring": (0.5, 40.0, None),
    "notch50": (None, None, 50.0),
    "notch60": (None, None, 60.0),
    "none": (None, None, None),
}


class SignalWarning(UserWarning):
    """A signal-processing step met bad or unusual input and degraded gracefully."""


def warn(message: str) -> None:
    """Emit a :class:`SignalWarning` attributed to the caller of the public function."""
    warnings.warn(message, SignalWarning, stacklevel=3)


# --------------------------------------------------------------------------------------------- helpers
@lru_cache(maxsize=128)
def _butter_cached(order: int, corner_hz: float | tuple[float, float], btype: str, fs: float) -> np.ndarray:
    return _sps.butter(order, corner_hz, btype=btype, fs=fs, output="sos")


def butter_sos(order: int, corner_hz: float | tuple[float, float], btype: str, fs: float) -> np.ndarray:
    """Butterworth design as SOS (cached: designing costs about as much as filtering a 10 s record)."""
    return _butter_cached(int(order), corner_hz, btype, float(fs)).copy()


def as_2d(signal: np.ndarray) -> tuple[np.ndarray, bool]:
    """``signal`` as a float64 (n_leads, n_samples) array, and whether the input was 1-D."""
    x = np.asarray(signal, dtype=np.float64)
    if x.ndim == 1:
        return x[None, :], True
    if x.ndim != 2:
        warn(f"expected a (leads, samples) array, got shape {x.shape}; flattening to one lead")
        return x.reshape(1, -1), True
    return x, False


def _restore_shape(x: np.ndarray, was_1d: bool) -> np.ndarray:
    return x[0] if was_1d else x


def _fill_gaps(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Bridge NaN gaps of partly finite rows by linear interpolation.

    Returns (filled copy, boolean mask of rows with at least 2 finite samples, NaN mask).
    """
    nan_mask = ~np.isfinite(x)
    finite_count = x.shape[1] - nan_mask.sum(axis=1)
    usable = finite_count >= 2
    filled = np.where(nan_mask, 0.0, x)
    partial = np.flatnonzero(usable & (finite_count < x.shape[1]))
    if partial.size:
        idx = np.arange(x.shape[1])
        for row in partial:  # per-lead loop only for leads that contain gaps
            good = ~nan_mask[row]
            filled[row] = np.interp(idx, idx[good], x[row, good])
    return filled, usable, nan_mask


def _sosfiltfilt_rows(sos: np.ndarray, x: np.ndarray, min_padlen: int = 0) -> np.ndarray:
    """Zero-phase ``sos`` filtering of every usable row of ``x``; NaN rows/samples stay NaN.

    Odd-reflection padding of ``min_padlen`` samples about a robust end level when that is longer than
    scipy's default (short, odd) padding, which is used otherwise; never longer than the signal.
    """
    out = np.array(x, dtype=np.float64, copy=True)
    n = x.shape[1]
    if n < 4:
        warn(f"signal of {n} samples is too short to filter; returned unfiltered")
        return out
    filled, usable, nan_mask = _fill_gaps(x)
    if not usable.any():
        return out
    # scipy's default pad length, shortened for short records (never longer than the signal).
    default_padlen = 3 * (2 * len(sos) + 1 - min((sos[:, 2] == 0).sum(), (sos[:, 5] == 0).sum()))
    padlen = int(min(max(default_padlen, min_padlen), n - 1))
    rows = filled[usable]
    if min_padlen > default_padlen:
        # long odd reflections about a robust end level (median of the last few samples), so that neither
        # a noisy end sample (step) nor a sloping baseline (kink) starts an edge transient
        edge = max(min(n // 20, 10), 1)
        first = np.median(rows[:, :edge], axis=1, keepdims=True)
        last = np.median(rows[:, -edge:], axis=1, keepdims=True)
        head = 2 * first - rows[:, padlen:0:-1]
        tail = 2 * last - rows[:, -2:-padlen - 2:-1]
        padded = np.concatenate([head, rows, tail], axis=1)
        out[usable] = _sps.sosfiltfilt(sos, padded, axis=-1, padtype=None)[:, padlen:padlen + n]
    else:
        out[usable] = _sps.sosfiltfilt(sos, rows, axis=-1, padlen=padlen)
    out[nan_mask] = np.nan
    return out


def _valid_fs(fs: float) -> bool:
    try:
        ok = float(fs) > 0 and np.isfinite(float(fs))
    except (TypeError, ValueError):
        ok = False
    if not ok:
        warn(f"invalid sampling rate {fs!r}; signal returned unfiltered")
    return ok


def _design(fs: float, low_hz: float | None, high_hz: float | None, order: int) -> np.ndarray | None:
    """Butterworth SOS for a band-pass / high-pass / low-pass; None when no filtering is needed."""
    nyq = fs / 2.0
    low = low_hz if low_hz is not None and low_hz > 0 else None
    high = high_hz if high_hz is not None and high_hz < 0.95 * nyq else None
    if low is not None and low >= 0.95 * nyq:
        warn(f"high-pass corner {low} Hz is not below Nyquist ({nyq} Hz); not applied")
        low = None
    if low is not None and high is not None and low >= high:
        warn(f"band {low}-{high} Hz is empty; signal returned unfiltered")
        return None
    if low is not None and high is not None:
        return butter_sos(order, (float(low), float(high)), "bandpass", fs)
    if low is not None:
        return butter_sos(order, float(low), "highpass", fs)
    if high is not None:
        return butter_sos(order, float(high), "lowpass", fs)
    return None


# ---------------------------------------------------------------------------------------------- filters
def bandpass(signal: np.ndarray, fs: float, low_hz: float | None, high_hz: float | None,
             order: int = 4, edge_padding: bool = True) -> np.ndarray:
    """Zero-phase Butterworth band-pass (``sosfiltfilt``) of each lead.

    ``low_hz``/``high_hz`` in Hz; None (or a high corner at/above Nyquist) drops that side, so the
    same call is a high-pass or low-pass. ``edge_padding`` pads each end by one period of the high-pass
    corner (at most 1 s; odd reflection) to keep edge transients small; False uses scipy's short
    default padding. Returns float64 mV, same shape as ``signal``.
    """
    x, was_1d = as_2d(signal)
    if not _valid_fs(fs):
        return _restore_shape(x.copy(), was_1d)
    sos = _design(float(fs), low_hz, high_hz, order)
    # one period of the high-pass corner, at most 1 s (0.2 s for a pure low-pass)
    pad_s = min(1.0 / low_hz, 1.0) if low_hz else 0.2
    min_padlen = int(round(pad_s * float(fs))) if edge_padding else 0
    out = x.copy() if sos is None else _sosfiltfilt_rows(sos, x, min_padlen)
    return _restore_shape(out, was_1d)


def highpass(signal: np.ndarray, fs: float, cutoff_hz: float, order: int = 2) -> np.ndarray:
    """Zero-phase Butterworth high-pass at ``cutoff_hz`` (Hz). Returns mV, same shape."""
    return bandpass(signal, fs, cutoff_hz, None, order=order)


def lowpass(signal: np.ndarray, fs: float, cutoff_hz: float, order: int = 4) -> np.ndarray:
    """Zero-phase Butterworth low-pass at ``cutoff_hz`` (Hz). Returns mV, same shape."""
    return bandpass(signal, fs, None, cutoff_hz, order=order)


def remove_baseline(signal: np.ndarray, fs: float, cutoff_hz: float = 0.5) -> np.ndarray:
    """Remove baseline wander with a zero-phase 2nd-order high-pass at ``cutoff_hz`` (Hz)."""
    return highpass(signal, fs, cutoff_hz, order=2)


def notch(signal: np.ndarray, fs: float, mains_hz: float = 50.0, quality: float = 30.0) -> np.ndarray:
    """Zero-phase IIR notch at the mains frequency ``mains_hz`` (50 or 60 Hz).

    ``quality`` is the notch Q (bandwidth = mains_hz / Q). Skipped with a warning when the mains
    frequency is not below Nyquist (e.g. 60 Hz at fs = 100 Hz).
    """
    x, was_1d = as_2d(signal)
    if not _valid_fs(fs):
        return _restore_shape(x.copy(), was_1d)
    if mains_hz >= 0.95 * fs / 2.0:
        warn(f"{mains_hz} Hz notch not applied: not below Nyquist at fs = {fs} Hz")
        return _restore_shape(x.copy(), was_1d)
    b, a = _sps.iirnotch(mains_hz, quality, fs=fs)
    out = _sosfiltfilt_rows(_sps.tf2sos(b, a), x)
    return _restore_shape(out, was_1d)


def apply_preset(signal: np.ndarray, fs: float, name: str) -> np.ndarray:
    """Apply a named filter preset (see :data:`PRESETS`): "diagnostic" (0.05-150 Hz, capped below
    Nyquist), "monitoring" (0.5-40 Hz), "notch50", "notch60" or "none". Unknown names warn and
    return the signal unchanged. Returns float64 mV, same shape."""
    if name not in PRESETS:
        warn(f"unknown filter preset {name!r}; expected one of {sorted(PRESETS)}")
        x, was_1d = as_2d(signal)
        return _restore_shape(x.copy(), was_1d)
    low, high, mains = PRESETS[name]
    if high is not None and _valid_fs(fs):
        high = min(high, 0.9 * float(fs) / 2.0)  # cap the low-pass corner below Nyquist
    out = np.asarray(signal, dtype=np.float64)
    if low is not None or high is not None:
        out = bandpass(out, fs, low, high, order=2 if name == "diagnostic" else 4)
    if mains is not None:
        out = notch(out, fs, mains)
    if low is None and high is None and mains is None:
        out = out.copy()
    return out


# ------------------------------------------------------------------------------------------- resampling
def _ratio(fs_in: float, fs_out: float, max_denominator: int = 1000) -> tuple[int, int]:
    frac = Fraction(float(fs_out) / float(fs_in)).limit_denominator(max_denominator)
    return max(frac.numerator, 1), max(frac.denominator, 1)


def resample(signal: np.ndarray, fs_in: float, fs_out: float) -> np.ndarray:
    """Polyphase resampling (``resample_poly``) from ``fs_in`` to ``fs_out`` Hz along the last axis.

    The rate ratio is approximated by a fraction with denominator <= 1000. Output sample ``i`` sits at
    time ``i / fs_out`` s (same origin as the input); the output has ``ceil(n * up / down)`` samples.
    NaN rows stay NaN.
    """
    x, was_1d = as_2d(signal)
    try:
        ok = float(fs_in) > 0 and float(fs_out) > 0 and np.isfinite(float(fs_in) * float(fs_out))
    except (TypeError, ValueError):
        ok = False
    if not ok:
        warn(f"invalid rates fs_in={fs_in!r}, fs_out={fs_out!r}; signal returned unchanged")
        return _restore_shape(x.copy(), was_1d)
    up, down = _ratio(fs_in, fs_out)
    if up == down:
        return _restore_shape(x.copy(), was_1d)
    n_out = -(-x.shape[1] * up // down)
    out = np.full((x.shape[0], n_out), np.nan)
    if x.shape[1] == 0:
        return _restore_shape(out, was_1d)
    filled, usable, nan_mask = _fill_gaps(x)
    if usable.any():
        out[usable] = _sps.resample_poly(filled[usable], up, down, axis=-1)
    partial = usable & nan_mask.any(axis=1)
    if partial.any():  # put NaN back where the input had NaN (nearest input sample)
        src = np.minimum(np.round(np.arange(n_out) * down / up).astype(np.int64), x.shape[1] - 1)
        rows = np.flatnonzero(partial)
        out[rows] = np.where(nan_mask[rows][:, src], np.nan, out[rows])
    return _restore_shape(out, was_1d)


def resample_to_length(x: np.ndarray, n_out: int) -> np.ndarray:
    """Linearly interpolate ``x`` (..., n_in) onto ``n_out`` samples covering the same duration.

    Input sample ``j`` sits at time ``j / fs_in`` and output sample ``i`` at ``i / fs_out`` with
    ``fs_out / fs_in = n_out / n_in``; the end is held constant. Suited to maps (no ringing).
    """
    arr = np.asarray(x, dtype=np.float64)
    n_in = arr.shape[-1] if arr.ndim else 0
    n_out = int(n_out)
    if n_out <= 0 or n_in == 0:
        return np.full(arr.shape[:-1] + (max(n_out, 0),), np.nan) if arr.ndim else np.full(0, np.nan)
    return _interp_last_axis(arr, np.arange(n_out) * (n_in / n_out))


def map_to_record(values: np.ndarray, fs_values: float, fs_record: float, n_record: int) -> np.ndarray:
    """Map a per-sample map computed at ``fs_values`` Hz (e.g. the model's 250 Hz) onto a record's own
    time axis of ``n_record`` samples at ``fs_record`` Hz: record sample ``k`` gets the map's value at
    time ``k / fs_record`` (linear interpolation, ends held). Returns float32 (..., n_record).
    """
    arr = np.asarray(values, dtype=np.float64)
    positions = np.arange(int(n_record)) * (float(fs_values) / float(fs_record))
    return _interp_last_axis(arr, positions).astype(np.float32)


def _interp_last_axis(arr: np.ndarray, positions: np.ndarray) -> np.ndarray:
    n_in = arr.shape[-1]
    positions = np.clip(positions, 0, n_in - 1)
    left = np.floor(positions).astype(np.int64)
    right = np.minimum(left + 1, n_in - 1)
    frac = positions - left
    return arr[..., left] * (1.0 - frac) + arr[..., right] * frac


# ------------------------------------------------------------------------------------------ model input
def zscore(signal: np.ndarray) -> np.ndarray:
    """Per-lead z-score (mean 0, std 1 over time); flat or NaN leads become zeros."""
    x, was_1d = as_2d(signal)
    with np.errstate(invalid="ignore", divide="ignore"):
        finite = np.isfinite(x)
        count = finite.sum(axis=1, keepdims=True)
        xz = np.where(finite, x, 0.0)
        mean = xz.sum(axis=1, keepdims=True) / np.maximum(count, 1)
        var = (np.where(finite, x - mean, 0.0) ** 2).sum(axis=1, keepdims=True) / np.maximum(count, 1)
        std = np.sqrt(var)
        ok = (count[:, 0] >= 2) & (std[:, 0] > 1e-6)
        out = np.zeros_like(x)
        out[ok] = (x[ok] - mean[ok]) / std[ok]
    out[~np.isfinite(out)] = 0.0
    return _restore_shape(out, was_1d)


def model_input(signal: np.ndarray, fs: float) -> tuple[np.ndarray, float]:
    """Preprocess a record for the anomaly model: returns (z float32 (n_leads, n_250), 250.0).

    Same recipe as ``ptbxl_extra``: 4th-order Butterworth band-pass 0.5-40 Hz, zero-phase, at the
    native rate -> per-lead z-score over the whole record -> polyphase resampling to 250 Hz.
    Flat or missing (NaN) leads become zeros. Output sample ``i`` sits at ``i / 250`` s.
    """
    x, _ = as_2d(signal)
    if not _valid_fs(fs) or x.shape[1] == 0:
        return np.zeros((x.shape[0], 0), dtype=np.float32), MODEL_FS
    filtered = bandpass(x, fs, 0.5, 40.0, order=4, edge_padding=False)  # scipy default, as in training
    z = zscore(filtered)
    z = resample(z, fs, MODEL_FS)
    z[~np.isfinite(z)] = 0.0
    return z.astype(np.float32), MODEL_FS
