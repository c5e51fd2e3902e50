"""DICOM 12-lead waveform reader on pydicom's bundled ECG and on a DICOM without waveform."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file

import ecgmodel
from ecgmodel.errors import UnsupportedFormatError
from ecgmodel.io import detect_format


def _raw_samples(ds) -> np.ndarray:
    group = ds.WaveformSequence[0]
    return np.frombuffer(group.WaveformData, dtype="<i2").reshape(-1, group.NumberOfWaveformChannels)


@pytest.fixture(scope="module")
def ecg_dcm():
    return get_testdata_file("waveform_ecg.dcm")


def test_rhythm_group_in_millivolts_with_standard_names(ecg_dcm):
    record = ecgmodel.read(ecg_dcm)
    assert detect_format(ecg_dcm) == "dicom"
    assert record.fs == 1000 and record.signal.shape == (12, 10000)  # not the 1.2 s median group
    assert record.metadata["dicom_group"] == "RHYTHM" and record.missing_leads == ()
    raw = _raw_samples(pydicom.dcmread(ecg_dcm))
    np.testing.assert_allclose(record.lead("I"), raw[:, 0] * 1.25e-3, atol=1e-6)  # 1.25 uV/bit
    lead_i, lead_ii = record.lead("I"), record.lead("II")
    np.testing.assert_allclose(record.lead("III"), lead_ii - lead_i, atol=0.003)
    assert (record.patient.age, record.patient.sex) == (42, "F") and record.acquired.year == 2013


def test_sensitivity_correction_and_baseline_are_applied(ecg_dcm, tmp_path):
    ds = pydicom.dcmread(ecg_dcm)
    channel = ds.WaveformSequence[0].ChannelDefinitionSequence[1]
    channel.ChannelSensitivityCorrectionFactor = 2
    channel.ChannelBaseline = 10
    ds.save_as(tmp_path / "scaled.dcm")
    raw = _raw_samples(ds)[:, 1]
    record = ecgmodel.read(tmp_path / "scaled.dcm")
    # DICOM: baseline is an offset in Channel Sensitivity Units (here uV)
    np.testing.assert_allclose(record.lead("II"), (raw * 1.25 * 2 + 10) * 1e-3, atol=1e-5)


def test_dicom_without_waveform_is_refused(ecg_dcm, tmp_path):
    ds = pydicom.dcmread(ecg_dcm)
    del ds.WaveformSequence
    ds.save_as(tmp_path / "nowave.dcm")
    with pytest.raises(UnsupportedFormatError, match=r"nowave\.dcm.*no waveform"):
        ecgmodel.read(tmp_path / "nowave.dcm")
