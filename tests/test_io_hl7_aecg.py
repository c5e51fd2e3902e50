"""HL7 aECG reader on the FDA examples, including the empty and the minimal documents."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

import ecgmodel
from ecgmodel.errors import CorruptFileError, SignalTooShortError
from ecgmodel.io import detect_format
from ecgmodel.io.hl7_aecg import read_hl7_aecg


@pytest.fixture(scope="module")
def aecg_dir(shared_data):
    return shared_data / "formats" / "hl7_aecg"


@pytest.mark.parametrize("name", ["Example_aECG.xml", "subject1_0.xml", "subject1_1.xml"])
def test_full_examples_read_12_leads_in_millivolts(aecg_dir, name):
    record = ecgmodel.read(aecg_dir / name)
    assert detect_format(aecg_dir / name) == "hl7-aecg"
    assert record.fs == 500 and record.signal.shape == (12, 5000) and record.missing_leads == ()
    lead_i, lead_ii = record.lead("I"), record.lead("II")
    np.testing.assert_allclose(record.lead("III"), lead_ii - lead_i, atol=0.003)  # stored, consistent
    assert 0.3 < np.ptp(lead_ii) < 3.0  # 2.5 uV digits scaled to mV
    assert (record.patient.age, record.patient.sex) == (46, "M")


def test_example_annotations_and_time(aecg_dir):
    record = ecgmodel.read(aecg_dir / "Example_aECG.xml")
    assert record.acquired == dt.datetime(2002, 11, 22, 9, 10)
    assert record.metadata["device_measurements"] == {
        "pr_ms": 148, "qrs_ms": 120, "qt_ms": 420, "qtc_ms": 443,
        "axis_p_deg": 44, "axis_qrs_deg": -61, "axis_t_deg": 86,
    }
    assert ecgmodel.read(aecg_dir / "subject1_1.xml").acquired == dt.datetime(2002, 11, 22, 10, 10)


def test_empty_document_is_a_clear_error(aecg_dir):
    with pytest.raises(CorruptFileError, match=r"empty\.xml.*no ECG waveform"):
        ecgmodel.read(aecg_dir / "empty.xml")


def test_minimal_document_is_too_short_to_analyse(aecg_dir):
    with pytest.raises(SignalTooShortError, match=r"minimum_aecg\.xml.*0\.03 s"):
        ecgmodel.read(aecg_dir / "minimum_aecg.xml")


def test_minimal_document_holds_only_lead_ii(aecg_dir):
    record = read_hl7_aecg(aecg_dir / "minimum_aecg.xml", min_duration_s=0)
    assert record.n_samples == 13 and record.fs == 500
    assert record.missing_leads == tuple(lead for lead in record.leads if lead != "II")
    np.testing.assert_allclose(record.lead("II")[:3], [-0.005, -0.005, -0.005])  # -2 x 2.5 uV
    assert any("Missing lead(s) I, III" in message for message in record.warnings)


def test_millivolt_scale_unit_is_honoured(aecg_dir, tmp_path):
    text = (aecg_dir / "minimum_aecg.xml").read_text()
    digits = " ".join(["1"] * 1500)
    text = text.replace('<scale value="2.5" unit="uV"/>', '<scale value="0.5" unit="mV"/>')
    text = text.replace("-2 -2 -2 -2 -3 -4 -3 -5 -5 -4 -6 -9 -9 ", digits)
    (tmp_path / "mv.xml").write_text(text)
    record = ecgmodel.read(tmp_path / "mv.xml")
    assert record.duration_s == 3.0 and np.allclose(record.lead("II"), 0.5)
