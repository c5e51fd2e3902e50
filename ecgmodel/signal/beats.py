"""Beat windows around R peaks and the median (representative) beat."""

from __future__ import annotations

import warnings

import numpy as np

from .filters import as_2d, warn

__all__ = ["beat_windows", "median_beat"]


def beat_windows(signal: np.ndarray, r_peaks: np.ndarray, fs: float, before_s: float = 0.28,
                 after_s: float = 0.68) -> tuple[np.ndarray, np.ndarray]:
    """Cut one window per beat: ``before_s`` s before to ``after_s`` s after each R peak.

    Beats whose window would run past either end of the record are **dropped** (not padded), so every
    window holds real samples only. Returns (windows float64 (n_beats, n_leads, n_win), starts int64
    (n_beats,)) where ``starts[k]`` is the record sample of ``windows[k, :, 0]`` and the R peak sits at
    window index ``round(before_s * fs)``. Empty arrays (n_beats = 0) when no beat fits.
    """
    x, _ = as_2d(signal)
    n_before = int(round(before_s * fs))
    n_win = n_before + int(round(after_s * fs))
    peaks = np.asarray(r_peaks, dtype=np.int64).ravel() if r_peaks is not None else np.zeros(0, np.int64)
    starts = peaks - n_before
    starts = starts[(starts >= 0) & (starts + n_win <= x.shape[1])]
    if n_win <= 0 or starts.size == 0:
        return np.zeros((0, x.shape[0], max(n_win, 0))), np.zeros(0, dtype=np.int64)
    idx = starts[:, None] + np.arange(n_win)[None, :]
    windows = x[:, idx].transpose(1, 0, 2)
    return windows, starts


def median_beat(signal: np.ndarray, r_peaks: np.ndarray, fs: float, before_s: float = 0.28,
                after_s: float = 0.68, min_correlation: float = 0.8) -> np.ndarray:
    """The median beat per lead (n_leads, n_win) in mV, R peak at index ``round(before_s * fs)``.

    Beats are cut with :func:`beat_windows` (edge beats dropped). When there are 3 or more beats, beats
    whose multi-lead QRS shape correlates less than ``min_correlation`` with the provisional median
    (e.g. PVCs, artefacts) are left out, as long as at least half of the beats remain. Missing leads
    stay NaN; an all-NaN array and a warning when no beat fits.
    """
    x, _ = as_2d(signal)
    windows, _ = beat_windows(x, r_peaks, fs, before_s, after_s)
    if windows.shape[0] == 0:
        warn("no complete beat in the record; median beat is undefined")
        return np.full((x.shape[0], windows.shape[2]), np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        median_fn = np.median if np.isfinite(windows).all() else np.nanmedian  # nanmedian is slow
        median = median_fn(windows, axis=0)
        if windows.shape[0] >= 3:
            keep = _dominant_beats(windows, median, fs, before_s, min_correlation)
            if keep.sum() >= max(windows.shape[0] // 2, 2) and not keep.all():
                median = median_fn(windows[keep], axis=0)
    return median


def _dominant_beats(windows: np.ndarray, median: np.ndarray, fs: float, before_s: float,
                    min_correlation: float) -> np.ndarray:
    """Boolean mask of beats whose QRS region (R +-100 ms, all leads) correlates with the median."""
    centre = int(round(before_s * fs))
    half = int(round(0.1 * fs))
    lo, hi = max(centre - half, 0), min(centre + half + 1, windows.shape[2])
    good_leads = np.isfinite(median).all(axis=1)
    if not good_leads.any() or hi - lo < 3:
        return np.ones(windows.shape[0], bool)
    beats = np.nan_to_num(windows[:, good_leads, lo:hi]).reshape(windows.shape[0], -1)
    ref = median[good_leads, lo:hi].reshape(-1)
    beats = beats - beats.mean(axis=1, keepdims=True)
    ref = ref - ref.mean()
    denom = np.linalg.norm(beats, axis=1) * np.linalg.norm(ref)
    corr = np.where(denom > 0, beats @ ref / np.where(denom > 0, denom, 1.0), 0.0)
    return corr >= min_correlation
