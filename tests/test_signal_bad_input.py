"""Bad input never raises: results are NaN / empty and a SignalWarning says why."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import wfdb

from ecgmodel.signal import (
    SignalWarning,
    apply_preset,
    assess,
    detect_r_peaks,
    measure,
    median_beat,
    model_input,
)


def _ptbxl(ptbxl_dir, ecg_id: int = 1) -> np.ndarray:
    x, _ = wfdb.rdsamp(str(ptbxl_dir / "records500" / "00000" / f"{ecg_id:05d}_hr"))
    return x.T


def _run_pipeline(x: np.ndarray, fs: float):
    """Every public step on one input; returns (r_peaks, intervals, quality, caught warnings)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        apply_preset(x, fs, "diagnostic")
        z, _ = model_input(x, fs)
        assert np.isfinite(z).all()
        peaks = detect_r_peaks(x, fs)
        median_beat(x, peaks, fs)
        intervals = measure(x, fs, peaks)
        quality = assess(x, fs)
    return peaks, intervals, quality, [w for w in caught if issubclass(w.category, SignalWarning)]


def test_all_zero_record():
    peaks, intervals, quality, caught = _run_pipeline(np.zeros((12, 5000)), 500)
    assert peaks.size == 0 and all(math.isnan(v) for v in intervals.values())
    assert not quality.analysable and caught


def test_all_nan_record():
    peaks, intervals, quality, caught = _run_pipeline(np.full((12, 5000), np.nan), 500)
    assert peaks.size == 0 and not quality.analysable and caught
    assert all("missing" in q.flags for q in quality.leads)


def test_single_lead(ptbxl_dir):
    x = _ptbxl(ptbxl_dir)[1:2]
    peaks, intervals, quality, _ = _run_pipeline(x, 500)
    assert peaks.size == 11 and 55 < intervals["hr_bpm"] < 75
    assert math.isnan(intervals["axis_deg"])  # needs leads I and aVF
    assert quality.leads[0].lead == "lead 1"


def test_two_second_record(ptbxl_dir):
    x = _ptbxl(ptbxl_dir)[:, :1000]
    peaks, intervals, quality, _ = _run_pipeline(x, 500)
    assert 1 <= peaks.size <= 3
    assert not quality.analysable and "s long" in quality.reasons[0]


def test_tiny_record_and_bad_rate(ptbxl_dir):
    x = _ptbxl(ptbxl_dir)[:, :20]
    peaks, intervals, _, caught = _run_pipeline(x, 500)
    assert peaks.size == 0 and math.isnan(intervals["hr_bpm"]) and caught
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        assert detect_r_peaks(_ptbxl(ptbxl_dir), 0).size == 0
        assert math.isnan(measure(_ptbxl(ptbxl_dir), float("nan"))["hr_bpm"])


def test_38_s_record_at_1000_hz(shared_data):
    x, fields = wfdb.rdsamp(str(shared_data / "ptbdb_sample" / "s0010_re"))
    x = x.T[:12]
    peaks, intervals, quality, _ = _run_pipeline(x, 1000)
    duration_min = x.shape[1] / 1000 / 60
    assert peaks.size == pytest.approx(intervals["hr_bpm"] * duration_min, abs=2)
    assert 50 < intervals["hr_bpm"] < 110 and quality.analysable


def test_nan_gaps_reversed_lead_and_pacing_spikes(ptbxl_dir):
    x = _ptbxl(ptbxl_dir)
    clean_peaks = detect_r_peaks(x, 500)
    x[2, 1000:1300] = np.nan  # a gap
    x[6] = -x[6]  # V1 electrode reversed
    spikes = clean_peaks - 40  # pacing-like spikes 80 ms before each QRS: 2 samples, 6 mV
    x[:, spikes] += 6.0
    x[:, spikes + 1] -= 6.0
    peaks, intervals, _, _ = _run_pipeline(x, 500)
    assert peaks.size == clean_peaks.size
    assert np.abs(peaks - clean_peaks).max() <= 25
    assert 55 < intervals["hr_bpm"] < 75


def test_wrong_shape_does_not_raise():
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        assert detect_r_peaks(np.zeros((2, 3, 100)), 500).size == 0
        assert detect_r_peaks(np.zeros((12, 0)), 500).size == 0
        assert math.isnan(measure(np.zeros((12, 0)), 500)["qt_ms"])
