"""The project-owned synthetic 12-lead generator and the bundled example ECGs it made."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import ecgmodel
from ecgmodel.synthetic import synthetic_ecg, write_wfdb_example

EXAMPLES = Path(__file__).resolve().parents[1] / "resources" / "examples"
#: Arguments the bundled examples were generated with (keep in sync with resources/examples/README.md).
EXAMPLE_ARGS = {
    "example_normal": dict(duration_s=10, fs=500, hr_bpm=70, seed=8, noise_mv=0.008, age=54, sex="F"),
    "example_pvc": dict(duration_s=10, fs=500, hr_bpm=70, seed=0, noise_mv=0.008, age=67, sex="M",
                        abnormality=("pvc", "pvc")),
}


def _lead(record, name):
    return record.signal[record.leads.index(name)].astype(np.float64)


def test_limb_leads_obey_einthoven_and_goldberger():
    rec, _ = synthetic_ecg(seed=3)
    i, ii = _lead(rec, "I"), _lead(rec, "II")
    assert np.allclose(_lead(rec, "III"), ii - i, atol=1e-5)
    assert np.allclose(_lead(rec, "aVR"), -(i + ii) / 2, atol=1e-5)
    assert np.allclose(_lead(rec, "aVL"), i - ii / 2, atol=1e-5)
    assert np.allclose(_lead(rec, "aVF"), ii - i / 2, atol=1e-5)


def test_same_seed_same_record_other_seed_other_record():
    a, _ = synthetic_ecg(seed=5, abnormality="pvc")
    b, _ = synthetic_ecg(seed=5, abnormality="pvc")
    c, _ = synthetic_ecg(seed=6, abnormality="pvc")
    assert np.array_equal(a.signal, b.signal)
    assert not np.allclose(a.signal, c.signal)


def test_shape_units_and_demographics():
    rec, events = synthetic_ecg(duration_s=8, fs=250, age=61, sex="M")
    assert rec.signal.shape == (12, 2000) and rec.signal.dtype == np.float32
    assert rec.leads == ecgmodel.STANDARD_LEADS and rec.fs == 250
    assert rec.patient.age == 61 and rec.patient.sex == "M"
    assert events == []


@pytest.mark.parametrize("hr_bpm", [50, 70, 110])
def test_heart_rate_matches_request_and_project_detector_finds_the_beats(hr_bpm):
    from ecgmodel.signal.rpeaks import detect_r_peaks

    rec, _ = synthetic_ecg(hr_bpm=hr_bpm, seed=2)
    truth = np.asarray(rec.metadata["r_peaks"])
    rr_s = np.diff(truth) / rec.fs
    assert 60 / rr_s.mean() == pytest.approx(hr_bpm, rel=0.05)
    assert rr_s.std() > 0.002  # sinus arrhythmia: not a metronome
    found = detect_r_peaks(rec.signal, rec.fs)
    inner = truth[(truth > 0.1 * rec.fs) & (truth < rec.n_samples - 0.1 * rec.fs)]
    assert all(np.abs(found - r).min() <= 0.02 * rec.fs for r in inner)


def test_waves_have_physiological_amplitudes_and_polarities():
    rec, _ = synthetic_ecg(seed=0, noise_mv=0.0)
    r = np.asarray(rec.metadata["r_peaks"])[2]
    qrs = slice(r - 25, r + 25)
    assert 0.5 < _lead(rec, "II")[qrs].max() < 2.5  # upright R in II, mV
    assert _lead(rec, "V1")[qrs].min() < -0.4 < -_lead(rec, "V1")[qrs].max()  # rS in V1
    assert _lead(rec, "V6")[qrs].max() > 2 * -_lead(rec, "V6")[qrs].min()  # qR in V6
    assert _lead(rec, "aVR")[qrs].min() < -0.3  # negative QRS in aVR
    t_wave = slice(r + 90, r + 200)
    assert 0.1 < _lead(rec, "II")[t_wave].max() < 0.8  # upright T in II
    p_wave = slice(r - 120, r - 50)
    assert 0.03 < _lead(rec, "II")[p_wave].max() < 0.3  # P wave present


def test_injected_pvc_is_returned_with_its_location_and_changes_only_there():
    normal, _ = synthetic_ecg(seed=4)
    with_pvc, events = synthetic_ecg(seed=4, abnormality="pvc")
    assert [e.kind for e in events] == ["pvc"] and not events[0].is_artifact
    changed = np.flatnonzero(np.abs(with_pvc.signal - normal.signal).max(axis=0) > 1e-5) / normal.fs
    assert changed.min() >= events[0].t_start_s and changed.max() <= events[0].t_end_s
    assert np.ptp(with_pvc.signal[:, int(events[0].t_start_s * 500):int(events[0].t_end_s * 500)]) > 1.0


def test_two_pvcs_go_on_different_beats():
    _, events = synthetic_ecg(seed=0, abnormality=("pvc", "pvc"))
    assert len(events) == 2
    first, second = sorted(events, key=lambda e: e.t_start_s)
    assert first.t_end_s <= second.t_start_s


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError):
        synthetic_ecg(hr_bpm=400)
    with pytest.raises(ValueError):
        synthetic_ecg(abnormality="heart_attack")


def test_wfdb_example_round_trips_through_the_project_reader(tmp_path):
    rec, events = write_wfdb_example(tmp_path / "ex", seed=2, abnormality="st_elevation", age=40, sex="F")
    back = ecgmodel.read(tmp_path / "ex.hea")
    assert back.fs == 500 and back.leads == ecgmodel.STANDARD_LEADS
    assert back.patient.age == 40 and back.patient.sex == "F"
    assert np.abs(back.signal - rec.signal).max() <= 0.0006  # 1 uV quantisation
    sidecar = json.loads((tmp_path / "ex.events.json").read_text())
    assert [e["kind"] for e in sidecar["events"]] == [e.kind for e in events]
    assert (tmp_path / "ex.dat").stat().st_size < 150_000


@pytest.mark.parametrize("name", sorted(EXAMPLE_ARGS))
def test_bundled_examples_are_exactly_what_the_generator_makes(name, tmp_path):
    assert (EXAMPLES / f"{name}.hea").is_file(), "regenerate with the command in resources/examples/README.md"
    fresh_record, _ = write_wfdb_example(tmp_path / name, **EXAMPLE_ARGS[name])
    record = ecgmodel.read(EXAMPLES / f"{name}.hea")
    assert np.abs(record.signal - fresh_record.signal).max() <= 0.0011  # 1 uV storage step
    bundled = json.loads((EXAMPLES / f"{name}.events.json").read_text())
    fresh = json.loads((tmp_path / f"{name}.events.json").read_text())
    assert bundled["events"] == fresh["events"]
    assert (EXAMPLES / f"{name}.dat").stat().st_size + (EXAMPLES / f"{name}.hea").stat().st_size < 150_000
    assert record.duration_s == 10 and record.fs == 500
    assert len(bundled["events"]) == (2 if name == "example_pvc" else 0)
