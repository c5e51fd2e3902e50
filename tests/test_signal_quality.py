"""Lead quality on real PTB-XL records and on synthetic corruptions of them."""

from __future__ import annotations

import numpy as np
import pytest
import wfdb

from ecgmodel.signal import assess, lead_quality


def _ptbxl(ptbxl_dir, ecg_id: int) -> np.ndarray:
    x, _ = wfdb.rdsamp(str(ptbxl_dir / "records500" / "00000" / f"{ecg_id:05d}_hr"))
    return x.T


def test_real_records_are_analysable_with_clean_leads(ptbxl_dir):
    n_clean = n_leads = 0
    for ecg_id in range(1, 31):
        report = assess(_ptbxl(ptbxl_dir, ecg_id), 500)
        assert report.analysable, report.reasons
        n_clean += sum(q.clean for q in report.leads)
        n_leads += len(report.leads)
    assert n_clean / n_leads > 0.95


@pytest.mark.parametrize(
    ("lead", "corrupt", "flag", "sentence"),
    [
        (8, lambda x, t: 0 * x, "flat", "Lead V3 is flat (lead off?)"),
        (1, lambda x, t: np.clip(x, -0.15, 0.15), "saturated", "Lead II is clipped"),
        (6, lambda x, t: x + 0.2 * np.sin(2 * np.pi * 50 * t), "noisy", "Lead V1 is noisy"),
        (9, lambda x, t: x + np.random.default_rng(0).normal(0, 0.08, t.size), "noisy", "Lead V4 is noisy"),
        (0, lambda x, t: x + 2.5 * np.sin(2 * np.pi * 0.15 * t), "baseline_wander", "Lead I has strong"),
        (11, lambda x, t: np.full_like(x, np.nan), "missing", "Lead V6 is missing"),
    ],
)
def test_corrupted_lead_is_flagged_and_only_that_one(ptbxl_dir, lead, corrupt, flag, sentence):
    x = _ptbxl(ptbxl_dir, 1)
    t = np.arange(x.shape[1]) / 500
    x[lead] = corrupt(x[lead], t)
    report = assess(x, 500)
    assert flag in report.leads[lead].flags
    assert sum(bool(q.flags) for q in report.leads) == 1
    assert any(reason.startswith(sentence) for reason in report.reasons)
    assert report.analysable  # one bad lead of twelve is not enough to give up


def test_record_with_many_dead_leads_is_not_analysable(ptbxl_dir):
    x = _ptbxl(ptbxl_dir, 2)
    x[6:] = 0.0
    report = assess(x, 500)
    assert not report.analysable
    assert report.reasons[0].startswith("Only 6 of 12 leads")


def test_scores_are_in_physical_units(ptbxl_dir):
    x = _ptbxl(ptbxl_dir, 3)
    q = lead_quality(x, 500)[1]
    assert q.lead == "II" and 0.2 < q.amplitude_mv < 5 and q.hf_noise_mv < 0.03
