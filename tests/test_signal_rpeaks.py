"""Multi-lead R-peak detection on real PTB-XL records vs wfdb's XQRS on lead II."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import wfdb
from wfdb import processing

from ecgmodel.signal import detect_r_peaks, resample


def _ptbxl(ptbxl_dir, ecg_id: int, fs: int = 500) -> np.ndarray:
    folder, suffix = ("records500", "hr") if fs == 500 else ("records100", "lr")
    x, _ = wfdb.rdsamp(str(ptbxl_dir / folder / "00000" / f"{ecg_id:05d}_{suffix}"))
    return x.T


def _matched(found: np.ndarray, reference: np.ndarray, tolerance: int) -> int:
    if found.size == 0 or reference.size == 0:
        return 0
    return int((np.abs(reference[:, None] - found[None, :]).min(axis=1) <= tolerance).sum())


def _inner(peaks: np.ndarray, n: int, margin: int) -> np.ndarray:
    return peaks[(peaks >= margin) & (peaks < n - margin)]


@pytest.mark.parametrize("ecg_id", [1, 2, 3, 8, 17, 26, 39, 77])
def test_agrees_with_xqrs_within_50_ms(ptbxl_dir, ecg_id):
    x = _ptbxl(ptbxl_dir, ecg_id)
    reference = _inner(processing.xqrs_detect(x[1], 500, verbose=False), x.shape[1], 250)
    found = _inner(detect_r_peaks(x, 500), x.shape[1], 250)
    assert found.dtype == np.int64
    tp = _matched(found, reference, 25)
    f1 = 2 * tp / (found.size + reference.size)
    assert f1 >= 0.95, (found, reference)


def test_polarity_noisy_and_flat_leads_do_not_change_the_beats(ptbxl_dir):
    x = _ptbxl(ptbxl_dir, 5)
    clean = detect_r_peaks(x, 500)
    corrupted = -x.copy()
    corrupted[7] += np.random.default_rng(1).normal(0, 0.5, x.shape[1])  # EMG burst on V2
    corrupted[3] = 0.0  # aVR off
    found = detect_r_peaks(corrupted, 500)
    assert found.size == clean.size
    assert np.abs(found - clean).max() <= 15  # 30 ms: the dominant lead may change


def test_100_hz_copy_gives_the_same_beats(ptbxl_dir):
    p500 = detect_r_peaks(_ptbxl(ptbxl_dir, 1, 500), 500)
    p100 = detect_r_peaks(_ptbxl(ptbxl_dir, 1, 100), 100)
    assert p100.size == p500.size
    assert np.abs(p100 * 5 - p500).max() <= 10  # 20 ms


@pytest.mark.parametrize("factor", [1 / 3.0, 2.1])  # ~190 bpm and ~30 bpm from a 64 bpm record
def test_fast_and_slow_rates(ptbxl_dir, factor):
    x = _ptbxl(ptbxl_dir, 1)
    expected = detect_r_peaks(x, 500).size
    stretched = resample(x, 500, 500 * factor)  # same beats, squeezed / stretched in time
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        found = detect_r_peaks(stretched, 500)
    assert abs(found.size - expected) <= 1


def test_atrial_fibrillation_irregular_rhythm(shared_data):
    x, fields = wfdb.rdsamp(str(shared_data / "formats" / "ge_muse" / "muse-af"))
    lead_ii = fields["sig_name"].index("II")
    reference = _inner(processing.xqrs_detect(x[:, lead_ii], 500, verbose=False), x.shape[0], 250)
    found = _inner(detect_r_peaks(x.T, 500), x.shape[0], 250)
    rr = np.diff(found) / 500
    assert rr.std() > 0.08  # irregularly irregular: kept, not regularised
    assert _matched(found, reference, 25) >= 0.95 * max(found.size, reference.size)
