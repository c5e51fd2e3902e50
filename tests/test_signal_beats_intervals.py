"""Beat windows, median beat and interval measurements vs device measurements and physiology."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import wfdb

from ecgmodel.signal import INTERVAL_KEYS, beat_windows, detect_r_peaks, measure, median_beat


def _ptbxl(ptbxl_dir, ecg_id: int) -> np.ndarray:
    x, _ = wfdb.rdsamp(str(ptbxl_dir / "records500" / "00000" / f"{ecg_id:05d}_hr"))
    return x.T


def _muse_wfdb(shared_data, name: str) -> np.ndarray:
    """The MUSE WFDB copy reordered to the standard lead order."""
    x, fields = wfdb.rdsamp(str(shared_data / "formats" / "ge_muse" / name))
    order = ["I", "II", "III", "AVR", "AVL", "AVF", "V1", "V2", "V3", "V4", "V5", "V6"]
    names = [s.upper() for s in fields["sig_name"]]
    return x.T[[names.index(o) for o in order]]


def test_beat_windows_are_raw_slices_and_edge_beats_are_dropped(ptbxl_dir):
    x = _ptbxl(ptbxl_dir, 1)
    peaks = detect_r_peaks(x, 500)
    windows, starts = beat_windows(x, np.concatenate([[10], peaks, [4990]]), 500)
    assert windows.shape[1:] == (12, 480)
    assert 10 - 140 not in starts and 4990 - 140 not in starts
    k = len(starts) // 2
    np.testing.assert_array_equal(windows[k], x[:, starts[k]:starts[k] + 480])


def test_median_beat_ignores_an_ectopic_beat(ptbxl_dir):
    x = _ptbxl(ptbxl_dir, 1)
    peaks = detect_r_peaks(x, 500)
    reference = median_beat(x, peaks, 500)
    ectopic = x.copy()
    s = peaks[4]
    ectopic[:, s - 60:s + 60] *= -3  # one grossly different beat
    assert reference.shape == (12, 480)
    assert np.abs(median_beat(ectopic, peaks, 500) - reference).max() < 0.1


def test_muse_sinus_measurements_close_to_the_device(shared_data):
    device = {"hr_bpm": 90, "pr_ms": 144, "qrs_ms": 86, "qt_ms": 402, "axis_deg": 0}
    m = measure(_muse_wfdb(shared_data, "muse-sinus"), 500)
    assert set(m) == set(INTERVAL_KEYS)
    assert m["hr_bpm"] == pytest.approx(device["hr_bpm"], abs=2)
    assert m["pr_ms"] == pytest.approx(device["pr_ms"], abs=25)
    assert m["qrs_ms"] == pytest.approx(device["qrs_ms"], abs=20)
    assert m["qt_ms"] == pytest.approx(device["qt_ms"], abs=50)
    assert m["axis_deg"] == pytest.approx(device["axis_deg"], abs=30)
    rr_s = 60 / m["hr_bpm"]
    assert m["qtc_bazett_ms"] == pytest.approx(m["qt_ms"] / math.sqrt(rr_s))
    assert m["qtc_fridericia_ms"] == pytest.approx(m["qt_ms"] / rr_s ** (1 / 3))


def test_atrial_fibrillation_has_no_pr_and_a_high_rr_spread(shared_data):
    m = measure(_muse_wfdb(shared_data, "muse-af"), 500)
    assert math.isnan(m["pr_ms"])
    assert m["rr_sdnn_ms"] > 80
    assert 40 < m["qrs_ms"] < 160


def test_ptbxl_intervals_are_physiological(ptbxl_dir):
    values = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for ecg_id in range(1, 41):
            x = _ptbxl(ptbxl_dir, ecg_id)
            m = measure(x, 500)
            peaks = detect_r_peaks(x, 500)
            assert m["hr_bpm"] == pytest.approx(60 * 500 / np.diff(peaks).mean(), rel=0.02)
            values.append([m[k] for k in ("pr_ms", "qrs_ms", "qt_ms", "qtc_bazett_ms")])
    pr, qrs, qt, qtc = np.nanmedian(np.array(values), axis=0)
    assert 120 < pr < 200 and 70 < qrs < 110 and 330 < qt < 440 and 360 < qtc < 460
    assert np.isfinite(np.array(values)[:, 1:]).mean() > 0.95
