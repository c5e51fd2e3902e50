"""WFDB reader on real records (PTB-XL, CPSC 2018, PTB, GE MUSE conversions) and on damaged copies."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import wfdb

import ecgmodel
from ecgmodel import STANDARD_LEADS
from ecgmodel.errors import CorruptFileError, SignalTooShortError, UnsupportedFormatError
from ecgmodel.io import describe, detect_format

WFDB_NAMES = ("I", "II", "III", "AVR", "AVL", "AVF", "V1", "V2", "V3", "V4", "V5", "V6")


def _write_record(folder: Path, name: str, signal_mv: np.ndarray, names, fs=500, fmt="16", units="mV",
                  comments=None) -> Path:
    """A WFDB record in ``folder`` (samples x channels, physical units); returns its header path."""
    n_channels = signal_mv.shape[1]
    wfdb.wrsamp(
        name, fs=fs, units=[units] * n_channels, sig_name=list(names), p_signal=signal_mv,
        fmt=[fmt] * n_channels, adc_gain=[1000.0 if units == "mV" else 1.0] * n_channels,
        baseline=[0] * n_channels, comments=comments or [], write_dir=str(folder),
    )
    return folder / f"{name}.hea"


def _sine_leads(n_samples: int, fs: float = 500, n_channels: int = 12) -> np.ndarray:
    t = np.arange(n_samples) / fs
    return np.stack([0.5 * np.sin(2 * np.pi * (1 + k / 10) * t) for k in range(n_channels)], axis=1)


@pytest.mark.parametrize("relative", ["records500/00000/00007_hr", "records100/00000/00007_lr"])
def test_ptbxl_values_match_wfdb_rdsamp(ptbxl_dir, relative):
    record = ecgmodel.read(ptbxl_dir / f"{relative}.hea")
    expected, fields = wfdb.rdsamp(str(ptbxl_dir / relative))
    assert record.source.format == "wfdb" and record.fs == fields["fs"]
    assert record.signal.dtype == np.float32 and record.signal.shape == (12, fields["sig_len"])
    assert record.leads == STANDARD_LEADS and record.derived_leads == () and record.missing_leads == ()
    np.testing.assert_allclose(record.signal, expected.T, atol=1e-6)


def test_signal_file_path_opens_the_record_too(ptbxl_dir):
    dat = ptbxl_dir / "records500/00000/00001_hr.dat"
    assert detect_format(dat) == "wfdb"
    assert ecgmodel.read(dat).n_samples == 5000


def test_cpsc_age_and_sex_from_header_comments(shared_data):
    for header in sorted((shared_data / "cpsc2018_samples").glob("*.hea")):
        record = ecgmodel.read(header)
        assert record.patient.sex in ("M", "F") and 0 < record.patient.age < 110, header.name
        assert record.duration_s >= 10
    first = ecgmodel.read(shared_data / "cpsc2018_samples/A1980.hea")
    assert (first.patient.age, first.patient.sex) == (52, "M")


def test_ptbdb_keeps_12_standard_leads_and_frank_leads_aside(shared_data):
    record = ecgmodel.read(shared_data / "ptbdb_sample/s0010_re.hea")
    expected, _ = wfdb.rdsamp(str(shared_data / "ptbdb_sample/s0010_re"))
    assert record.signal.shape == (12, 38400) and record.fs == 1000
    np.testing.assert_allclose(record.signal, expected[:, :12].T, atol=1e-6)
    extra = record.metadata["extra_leads"]
    assert list(extra) == ["vx", "vy", "vz"]
    np.testing.assert_allclose(extra["vz"], expected[:, 14], atol=1e-6)
    assert (record.patient.age, record.patient.sex) == (81, "F")
    assert any("vx" in message for message in record.warnings)


def test_ge_muse_wfdb_conversion_has_date_and_demographics(shared_data):
    record = ecgmodel.read(shared_data / "formats/ge_muse/muse-af.hea")
    assert record.acquired.year == 2010 and record.patient.sex == "F" and record.patient.age == 71
    # file order is I, II, III, AVF, AVL, AVR: rows must still come out in standard order
    expected, _ = wfdb.rdsamp(str(shared_data / "formats/ge_muse/muse-af"))
    np.testing.assert_allclose(record.lead("aVF"), expected[:, 3], atol=1e-6)
    np.testing.assert_allclose(record.lead("aVR"), expected[:, 5], atol=1e-6)
    assert "074747981" not in describe(record)  # MRN never printed


@pytest.mark.parametrize("fmt", ["212", "24"])
def test_other_signal_formats_decode(tmp_path, fmt):
    signal = _sine_leads(2500)
    header = _write_record(tmp_path, f"fmt{fmt}", signal, WFDB_NAMES, fmt=fmt)
    record = ecgmodel.read(header)
    np.testing.assert_allclose(record.signal, signal.T, atol=2e-3)


def test_microvolt_units_become_millivolts(tmp_path):
    signal_uv = _sine_leads(2000) * 1000
    header = _write_record(tmp_path, "uv", signal_uv, WFDB_NAMES, units="uV")
    record = ecgmodel.read(header)
    np.testing.assert_allclose(record.signal, signal_uv.T / 1000, atol=2e-3)


def test_lowercase_and_partial_leads_derive_limb_leads_and_warn(tmp_path):
    signal = _sine_leads(5000, n_channels=4)
    header = _write_record(tmp_path, "part", signal, ["i", "ii", "v1", "v2"])
    record = ecgmodel.read(header)
    lead_i, lead_ii = signal[:, 0], signal[:, 1]
    np.testing.assert_allclose(record.lead("III"), lead_ii - lead_i, atol=2e-3)
    np.testing.assert_allclose(record.lead("aVR"), -(lead_i + lead_ii) / 2, atol=2e-3)
    assert record.derived_leads == ("III", "aVR", "aVL", "aVF")
    assert record.missing_leads == ("V3", "V4", "V5", "V6")
    assert np.isnan(record.lead("V4")).all()
    assert any("V3, V4, V5, V6" in message for message in record.warnings)


def test_multi_segment_record_is_joined(tmp_path):
    first = _sine_leads(1500)
    second = _sine_leads(1000) * 2
    _write_record(tmp_path, "seg1", first, WFDB_NAMES)
    _write_record(tmp_path, "seg2", second, WFDB_NAMES)
    (tmp_path / "multi.hea").write_text("multi/2 12 500 2500\nseg1 1500\nseg2 1000\n")
    record = ecgmodel.read(tmp_path / "multi.hea")
    assert record.n_samples == 2500
    np.testing.assert_allclose(record.signal, np.vstack([first, second]).T, atol=2e-3)


def test_truncated_signal_file_is_a_clear_error(ptbxl_dir, tmp_path):
    source = ptbxl_dir / "records500/00000/00001_hr"
    shutil.copy(source.with_suffix(".hea"), tmp_path / "00001_hr.hea")
    (tmp_path / "00001_hr.dat").write_bytes(source.with_suffix(".dat").read_bytes()[:50_000])
    with pytest.raises(CorruptFileError, match="truncated"):
        ecgmodel.read(tmp_path / "00001_hr.hea")


def test_header_pointing_at_missing_signal_file(ptbxl_dir, tmp_path):
    text = (ptbxl_dir / "records500/00000/00001_hr.hea").read_text()
    text = text.replace("00001_hr.dat", "gone.dat").replace("00001_hr", "lost", 1)
    (tmp_path / "lost.hea").write_text(text)
    with pytest.raises(CorruptFileError, match=r"lost\.hea.*gone\.dat.*does not exist"):
        ecgmodel.read(tmp_path / "lost.hea")


def test_unsupported_wfdb_signal_format(ptbxl_dir, tmp_path):
    text = (ptbxl_dir / "records500/00000/00001_hr.hea").read_text()
    shutil.copy(ptbxl_dir / "records500/00000/00001_hr.dat", tmp_path / "00001_hr.dat")
    (tmp_path / "00001_hr.hea").write_text(text.replace(".dat 16 ", ".dat 99 "))
    with pytest.raises(UnsupportedFormatError, match="format 99"):
        ecgmodel.read(tmp_path / "00001_hr.hea")


def test_record_shorter_than_two_seconds(tmp_path):
    header = _write_record(tmp_path, "short", _sine_leads(750), WFDB_NAMES)  # 1.5 s
    with pytest.raises(SignalTooShortError, match=r"short\.hea.*1\.50 s"):
        ecgmodel.read(header)


def test_lead_without_any_valid_sample_is_missing_with_a_warning(tmp_path):
    signal = _sine_leads(2000)
    signal[:, 7] = np.nan  # V2
    header = _write_record(tmp_path, "nan", signal, WFDB_NAMES)
    record = ecgmodel.read(header)
    assert record.missing_leads == ("V2",) and np.isnan(record.lead("V2")).all()
    assert any("V2" in message for message in record.warnings)
    assert "missing" in describe(record)


def test_all_leads_invalid_is_an_error(tmp_path):
    header = _write_record(tmp_path, "allnan", np.full((2000, 12), np.nan), WFDB_NAMES)
    with pytest.raises(CorruptFileError, match="no lead"):
        ecgmodel.read(header)


def test_describe_names_format_rate_duration_and_flat_lead(tmp_path):
    signal = _sine_leads(5000)
    signal[:, 9] = 0.0  # V4 flat
    header = _write_record(tmp_path, "flat", signal, WFDB_NAMES, comments=["age: 40", "sex: F"])
    record = ecgmodel.read(header)
    text = describe(record)
    assert "wfdb" in text and "500 Hz" in text and "10.00 s" in text and "age 40 years, sex female" in text
    assert next(line for line in text.splitlines() if line.strip().startswith("V4 ")).endswith("flat")


def test_partly_non_finite_lead_is_kept_with_a_warning(tmp_path):
    signal = _sine_leads(2500)
    signal[100:200, 3] = np.nan  # a gap in aVR
    record = ecgmodel.read(_write_record(tmp_path, "gap", signal, WFDB_NAMES))
    assert record.missing_leads == () and np.isnan(record.lead("aVR")).sum() == 100
    assert any("aVR has 100 non-finite samples" in message for message in record.warnings)
