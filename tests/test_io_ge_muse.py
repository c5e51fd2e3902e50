"""GE MUSE XML reader: the one real export, plus variants written from the documented structure."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
from muse_fixture import EIGHT_LEADS, synthetic_leads_uv, write_muse_xml

import ecgmodel
from ecgmodel.errors import CorruptFileError, EcgReadError, SignalTooShortError
from ecgmodel.io import describe, detect_format


@pytest.fixture(scope="module")
def muse_dir(shared_data):
    return shared_data / "formats" / "ge_muse"


def test_real_export_reads_with_derived_limb_leads(muse_dir):
    record = ecgmodel.read(muse_dir / "muse-sinus.xml")
    assert detect_format(muse_dir / "muse-sinus.xml") == "ge-muse-xml"
    assert record.fs == 500 and record.signal.shape == (12, 5000)
    assert record.derived_leads == ("III", "aVR", "aVL", "aVF") and record.missing_leads == ()
    assert (record.patient.age, record.patient.sex) == (43, "M")
    assert record.acquired == dt.datetime(2023, 4, 29, 22, 41, 16)
    lead_i, lead_ii = record.lead("I"), record.lead("II")
    np.testing.assert_allclose(record.lead("III"), lead_ii - lead_i, atol=1e-6)
    np.testing.assert_allclose(record.lead("aVF"), lead_ii - lead_i / 2, atol=1e-6)
    assert 0.3 < np.ptp(lead_ii) < 3.0  # plausible mV at 4.88 uV/bit


def test_real_export_statements_and_measurements(muse_dir):
    record = ecgmodel.read(muse_dir / "muse-sinus.xml")
    statements = record.metadata["device_statements"]
    assert statements[0] == "Normal Sinus rhythm"
    assert "Anterior infarct, age undetermined" in statements
    measured = record.metadata["device_measurements"]
    assert measured["hr_bpm"] == 90 and measured["pr_ms"] == 144 and measured["qrs_ms"] == 86
    assert measured["qt_ms"] == 402 and measured["qtc_ms"] == 491 and measured["axis_t_deg"] == 111
    assert record.metadata["median_beats"]["leads"]["I"].shape == (600,)


def test_rhythm_matches_the_wfdb_conversion_of_the_same_ecg(muse_dir):
    xml = ecgmodel.read(muse_dir / "muse-sinus.xml")
    converted = ecgmodel.read(muse_dir / "muse-sinus.hea")
    for lead in ("I", "II", "V1", "V6"):
        assert np.corrcoef(xml.lead(lead), converted.lead(lead))[0, 1] > 0.9999
    # the other tool's WFDB copy declares 5 uV/unit but stored microvolts: 5x our (correct) 4.88 uV/bit
    slope = np.polyfit(xml.lead("I"), converted.lead("I"), 1)[0]
    assert slope == pytest.approx(5.0, rel=0.01)


def test_describe_never_prints_the_patient_id(muse_dir):
    record = ecgmodel.read(muse_dir / "muse-sinus.xml")
    assert record.patient.id and record.patient.id not in describe(record)


def test_round_trip_of_written_file(tmp_path):
    leads = synthetic_leads_uv(5000)
    path = write_muse_xml(tmp_path / "rt.xml", leads)
    record = ecgmodel.read(path)
    for name in EIGHT_LEADS:
        np.testing.assert_allclose(record.lead(name), leads[name] / 1000, atol=4.88e-3)
    assert (record.patient.age, record.patient.sex) == (61, "F")
    assert record.acquired == dt.datetime(2024, 1, 31, 8, 15)
    assert record.metadata["device_measurements"]["qtc_ms"] == 415


def test_rhythm_only_file_reads(tmp_path):
    path = write_muse_xml(tmp_path / "rhythm.xml", synthetic_leads_uv(5000), waveforms=("Rhythm",))
    record = ecgmodel.read(path)
    assert record.n_samples == 5000 and "median_beats" not in record.metadata


def test_median_only_file_is_refused_clearly(tmp_path):
    path = write_muse_xml(tmp_path / "median.xml", synthetic_leads_uv(5000), waveforms=("Median",))
    with pytest.raises(EcgReadError, match=r"median\.xml.*only a median beat"):
        ecgmodel.read(path)


def test_missing_precordial_leads_load_with_warning(tmp_path):
    leads = synthetic_leads_uv(5000, names=("I", "II", "V1", "V2"))
    record = ecgmodel.read(write_muse_xml(tmp_path / "part.xml", leads))
    assert record.missing_leads == ("V3", "V4", "V5", "V6")
    assert np.isnan(record.lead("V5")).all()
    assert any("V3, V4, V5, V6" in message for message in record.warnings)


def test_corrupt_base64_names_the_file_and_lead(tmp_path):
    path = write_muse_xml(tmp_path / "bad.xml", synthetic_leads_uv(5000), corrupt_lead="V3")
    with pytest.raises(CorruptFileError, match=r"bad\.xml.*lead V3.*base64"):
        ecgmodel.read(path)


def test_crc_mismatch_is_detected(tmp_path):
    path = write_muse_xml(tmp_path / "crc.xml", synthetic_leads_uv(5000))
    text = path.read_text(encoding="iso-8859-1")
    start = text.index("<LeadDataCRC32>", text.index("<WaveformType>Rhythm")) + len("<LeadDataCRC32>")
    path.write_text(text[:start] + "7" + text[start:], encoding="iso-8859-1")  # another number
    with pytest.raises(CorruptFileError, match="CRC32"):
        ecgmodel.read(path)


def test_short_rhythm_strip(tmp_path):
    path = write_muse_xml(tmp_path / "short.xml", synthetic_leads_uv(700), waveforms=("Rhythm",))
    with pytest.raises(SignalTooShortError, match=r"short\.xml"):
        ecgmodel.read(path)
