"""Filters, resampling and the anomaly model's input on real PTB-XL records."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.signal as sps
import wfdb

from ecgmodel.signal import (
    SignalWarning,
    apply_preset,
    bandpass,
    map_to_record,
    model_input,
    notch,
    remove_baseline,
    resample,
    resample_to_length,
)


def _ptbxl(ptbxl_dir, ecg_id: int, fs: int = 500) -> np.ndarray:
    folder = "records500" if fs == 500 else "records100"
    suffix = "hr" if fs == 500 else "lr"
    x, _ = wfdb.rdsamp(str(ptbxl_dir / folder / "00000" / f"{ecg_id:05d}_{suffix}"))
    return x.T


def _power_at(x: np.ndarray, fs: float, hz: float) -> float:
    freqs, psd = sps.welch(x, fs=fs, nperseg=1024)
    return float(psd[np.argmin(np.abs(freqs - hz))])


def test_model_input_matches_ptbxl_extra_recipe(ptbxl_dir):
    x = _ptbxl(ptbxl_dir, 1)
    b, a = sps.butter(4, [0.5, 40], btype="band", fs=500)
    y = sps.filtfilt(b, a, x, axis=-1)
    y = (y - y.mean(axis=1, keepdims=True)) / y.std(axis=1, keepdims=True)
    expected = sps.resample_poly(y, 1, 2, axis=-1)
    z, fs = model_input(x, 500)
    assert fs == 250 and z.dtype == np.float32 and z.shape == (12, 2500)
    assert np.abs(z - expected).max() < 1e-2


def test_model_input_same_from_100hz_copy_and_zero_for_missing_lead(ptbxl_dir):
    z500, _ = model_input(_ptbxl(ptbxl_dir, 1, 500), 500)
    x100 = _ptbxl(ptbxl_dir, 1, 100)
    x100[4] = np.nan
    z100, fs = model_input(x100, 100)
    assert fs == 250 and z100.shape == (12, 2500)
    assert np.all(z100[4] == 0)
    for lead in (0, 1, 6, 10):
        assert np.corrcoef(z500[lead, 50:-50], z100[lead, 50:-50])[0, 1] > 0.95


def test_bandpass_removes_drift_and_hf_noise_but_keeps_qrs(ptbxl_dir):
    x = _ptbxl(ptbxl_dir, 1)
    t = np.arange(x.shape[1]) / 500
    noisy = x + 1.0 * np.sin(2 * np.pi * 0.15 * t) + 0.3 * np.sin(2 * np.pi * 120 * t)
    clean = bandpass(noisy, 500, 0.5, 40)
    reference = bandpass(x, 500, 0.5, 40)
    assert np.abs(clean - reference)[:, 500:-500].max() < 0.1  # 1 mV drift + 0.3 mV 120 Hz removed
    assert np.ptp(clean[1, 500:-500]) == pytest.approx(np.ptp(reference[1, 500:-500]), rel=0.05)


def test_notch_removes_50_hz_only(ptbxl_dir):
    x = _ptbxl(ptbxl_dir, 2)
    t = np.arange(x.shape[1]) / 500
    hum = x + 0.2 * np.sin(2 * np.pi * 50 * t)
    out = notch(hum, 500, 50)
    assert _power_at(out[0], 500, 50) < 0.01 * _power_at(hum[0], 500, 50)
    assert np.abs(out - x)[:, 250:-250].max() < 0.05


def test_presets_and_baseline_removal(ptbxl_dir):
    x = _ptbxl(ptbxl_dir, 3)
    for name in ("diagnostic", "monitoring", "notch50", "notch60", "none"):
        out = apply_preset(x, 500, name)
        assert out.shape == x.shape and np.isfinite(out).all()
    np.testing.assert_array_equal(apply_preset(x, 500, "none"), x)
    with pytest.warns(SignalWarning):
        apply_preset(x, 500, "nonsense")
    drift = x + 2.0 * np.linspace(0, 1, x.shape[1])
    assert np.abs(np.median(remove_baseline(drift, 500)[:, 2000:3000], axis=1)).max() < 0.1


def test_filters_leave_nan_rows_nan_and_survive_short_input(ptbxl_dir):
    x = _ptbxl(ptbxl_dir, 4)
    x[3] = np.nan
    out = bandpass(x, 500, 0.5, 40)
    assert np.isnan(out[3]).all() and np.isfinite(out[[0, 1, 2, 4]]).all()
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        short = bandpass(x[:, :3], 500, 0.5, 40)
    assert short.shape == (12, 3)
    assert bandpass(x[:, :40], 500, 0.5, 40).shape == (12, 40)


def test_resample_keeps_time_axis(ptbxl_dir):
    x = bandpass(_ptbxl(ptbxl_dir, 1), 500, None, 80.0)  # content the 250 Hz rate can hold
    y = resample(x, 500, 250)
    assert y.shape == (12, 2500)
    np.testing.assert_allclose(y[:, 100:-100], x[:, 200:-200:2], atol=0.02)
    y360 = resample(x, 500, 360)
    assert y360.shape == (12, 3600)


def test_map_at_model_rate_lands_on_record_samples():
    fs_record, n_record = 500, 5000
    anomaly_250 = np.zeros((12, 2500))
    anomaly_250[:, 1000] = 1.0  # an event at t = 4.0 s
    mapped = map_to_record(anomaly_250, 250, fs_record, n_record)
    assert mapped.shape == (12, n_record) and mapped.dtype == np.float32
    assert int(np.argmax(mapped[0])) == 2000  # t = 4.0 s at 500 Hz
    assert resample_to_length(anomaly_250, 5000).shape == (12, 5000)
    assert int(np.argmax(resample_to_length(anomaly_250, 5000)[0])) == 2000
