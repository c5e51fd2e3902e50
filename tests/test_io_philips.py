"""Philips Sierra ECG XML reader on the real sample files, damaged copies and hostile XML."""

from __future__ import annotations

import re
import time

import numpy as np
import pytest

import ecgmodel
from ecgmodel.errors import CorruptFileError, EcgReadError, UnsupportedFormatError
from ecgmodel.io import detect_format

VALID = ("129DYPRG.XML", "3191723_ZZDEMOPTONLY_1-04_orig.xml", "ad4d3d80-d165_1-04_orig.xml",
         "repbeats_example.xml")


@pytest.fixture(scope="module")
def philips_dir(shared_data):
    return shared_data / "formats" / "philips_sierra"


@pytest.mark.parametrize("name", VALID)
def test_valid_files_give_plausible_millivolts_obeying_einthoven(philips_dir, name):
    record = ecgmodel.read(philips_dir / name)
    assert record.source.format == "philips-xml" and record.fs == 500
    assert record.missing_leads == () and 10.0 <= record.duration_s <= 11.0
    lead_i, lead_ii = record.lead("I"), record.lead("II")
    assert 0.3 < np.ptp(lead_ii) < 3.0
    # residual limb leads rebuilt: Einthoven and Goldberger hold to within integer rounding (5 uV)
    np.testing.assert_allclose(record.lead("III"), lead_ii - lead_i, atol=0.011)
    np.testing.assert_allclose(record.lead("aVR"), -(lead_i + lead_ii) / 2, atol=0.011)
    np.testing.assert_allclose(record.lead("aVF"), lead_ii - lead_i / 2, atol=0.011)
    assert record.metadata["philips_trailing_samples_removed"] > 0  # calibration pulse cut off
    assert record.patient.sex in ("M", "F") and record.acquired is not None


def test_device_statements_and_measurements_1_03(philips_dir):
    record = ecgmodel.read(philips_dir / "129DYPRG.XML")
    assert record.metadata["device_statements"][0] == "Sinus bradycardia (rate< 50)"
    assert "ABNORMAL ECG" in record.metadata["device_statements"]
    measured = record.metadata["device_measurements"]
    assert measured == {
        "hr_bpm": 41, "atrial_rate_bpm": 41, "pr_ms": 151, "qrs_ms": 135, "qt_ms": 476, "qtc_ms": 393,
        "axis_p_deg": 66, "axis_qrs_deg": -21, "axis_t_deg": 59,
    }
    assert (record.patient.age, record.patient.sex) == (50, "M")


def test_utf16_1_04_file_statements_as_printed(philips_dir):
    record = ecgmodel.read(philips_dir / "ad4d3d80-d165_1-04_orig.xml")
    assert record.metadata["device_statements"] == [
        "SINUS BRADYCARDIA (V-rate<60)",
        "NO PREVIOUS TRACING AVAILABLE FOR COMPARISON",
        "OTHERWISE NORMAL ECG",
    ]
    assert record.metadata["device_measurements"]["qt_ms"] == 564
    assert (record.patient.age, record.patient.sex) == (32, "F")


@pytest.mark.parametrize(("name", "problem"), [
    ("invalid-doc-type.xml", "MortaraECG"), ("invalid-doc-version.xml", "1.05"),
])
def test_invalid_documents_are_refused_clearly(philips_dir, name, problem):
    assert detect_format(philips_dir / name) == "philips-xml"
    with pytest.raises(UnsupportedFormatError, match=rf"{name}.*{problem}.*not supported"):
        ecgmodel.read(philips_dir / name)


def _copy_with_payload(philips_dir, tmp_path, edit) -> object:
    text = (philips_dir / "129DYPRG.XML").read_text(encoding="utf-8")
    match = re.search(r"(<parsedwaveforms[^>]*>)([^<]+)(</parsedwaveforms>)", text)
    damaged = text[: match.start(2)] + edit(match.group(2)) + text[match.end(2):]
    path = tmp_path / "damaged.xml"
    path.write_text(damaged, encoding="utf-8")
    return path


def test_corrupted_base64_block(philips_dir, tmp_path):
    path = _copy_with_payload(philips_dir, tmp_path, lambda b64: b64[:500] + "@@##" + b64[504:])
    with pytest.raises(CorruptFileError, match=r"damaged\.xml.*base64"):
        ecgmodel.read(path)


def test_truncated_xli_block(philips_dir, tmp_path):
    path = _copy_with_payload(philips_dir, tmp_path, lambda b64: b64[: len(b64) // 8 * 4])
    with pytest.raises(CorruptFileError, match=r"damaged\.xml"):
        ecgmodel.read(path)


def test_billion_laughs_is_refused_quickly(tmp_path):
    entities = "".join(f'<!ENTITY l{k} "{f"&l{k - 1};" * 10}">' for k in range(1, 10))
    path = tmp_path / "bomb.xml"
    path.write_text(f'<?xml version="1.0"?><!DOCTYPE restingecgdata [<!ENTITY l0 "ha">{entities}]>'
                    "<restingecgdata>&l9;</restingecgdata>")
    start = time.perf_counter()
    with pytest.raises(EcgReadError, match=r"bomb\.xml.*refused"):
        ecgmodel.read(path)
    assert time.perf_counter() - start < 1.0


def test_external_entity_is_refused(tmp_path):
    path = tmp_path / "xxe.xml"
    path.write_text('<?xml version="1.0"?><!DOCTYPE restingecgdata [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
                    "<restingecgdata>&x;</restingecgdata>")
    with pytest.raises(EcgReadError, match=r"xxe\.xml.*refused"):
        ecgmodel.read(path)
