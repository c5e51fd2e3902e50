"""Format detection from content, and the bad inputs every reader must refuse with one clear sentence."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

import ecgmodel
from ecgmodel.errors import EcgReadError, UnsupportedFormatError
from ecgmodel.io import SUPPORTED_EXTENSIONS, derive_limb_leads, detect_format, standard_lead_name


@pytest.mark.parametrize(("relative", "expected"), [
    ("ptbxl/records500/00000/00001_hr.hea", "wfdb"),
    ("formats/ge_muse/muse-sinus.xml", "ge-muse-xml"),
    ("formats/philips_sierra/129DYPRG.XML", "philips-xml"),
    ("formats/philips_sierra/ad4d3d80-d165_1-04_orig.xml", "philips-xml"),  # UTF-16
    ("formats/hl7_aecg/Example_aECG.xml", "hl7-aecg"),
])
def test_detects_real_files(shared_data, relative, expected):
    assert detect_format(shared_data / relative) == expected


def test_content_decides_not_the_extension(shared_data, tmp_path):
    disguised = tmp_path / "ecg_export.txt"
    shutil.copy(shared_data / "formats/ge_muse/muse-sinus.xml", disguised)
    assert detect_format(disguised) == "ge-muse-xml"
    assert ecgmodel.read(disguised).source.format == "ge-muse-xml"


def test_random_binary_and_empty_files_are_unsupported(tmp_path):
    noise = tmp_path / "noise.xml"
    noise.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    with pytest.raises(UnsupportedFormatError, match=r"noise\.xml.*not a recognised ECG format"):
        ecgmodel.read(noise)
    empty = tmp_path / "empty.hea"
    empty.write_bytes(b"")
    with pytest.raises(UnsupportedFormatError, match=r"empty\.hea.*empty"):
        ecgmodel.read(empty)


def test_xml_that_is_not_an_ecg(tmp_path):
    path = tmp_path / "invoice.xml"
    path.write_text('<?xml version="1.0"?>\n<!-- bill -->\n<Invoice><Total>12</Total></Invoice>\n')
    with pytest.raises(UnsupportedFormatError, match=r"invoice\.xml.*<Invoice>.*not an ECG format"):
        ecgmodel.read(path)


def test_scp_ecg_is_named_as_not_yet_supported(shared_data):
    with pytest.raises(UnsupportedFormatError, match="SCP-ECG"):
        ecgmodel.read(shared_data / "formats/scp_ecg/Example.scp")


def test_missing_file(tmp_path):
    with pytest.raises(EcgReadError, match=r"nothing\.xml.*does not exist"):
        ecgmodel.read(tmp_path / "nothing.xml")


def test_oversized_file_is_refused_before_decoding(tmp_path, monkeypatch):
    import ecgmodel.io.common as common

    path = tmp_path / "big.xml"
    path.write_text("<RestingECG>" + " " * 5000 + "</RestingECG>")
    monkeypatch.setattr(common, "MAX_FILE_BYTES", 1000)
    with pytest.raises(EcgReadError, match=r"big\.xml.*larger than"):
        ecgmodel.read(path)


def test_lead_aliases_are_12_lead_only():
    assert [standard_lead_name(n) for n in ("AVR", "avl", "Lead aVF", "MDC_ECG_LEAD_V3", "C2", "ii")] == [
        "aVR", "aVL", "aVF", "V3", "V2", "II"]
    assert standard_lead_name("MLII") is None and standard_lead_name("vx") is None


def test_any_two_einthoven_leads_give_all_six():
    lead_i, lead_iii = np.array([1.0, 0.2]), np.array([0.5, -0.4])
    derived = derive_limb_leads({"I": lead_i, "III": lead_iii})
    np.testing.assert_allclose(derived["II"], lead_i + lead_iii)
    np.testing.assert_allclose(derived["aVR"], -(lead_i + derived["II"]) / 2)
    assert set(derived) == {"II", "aVR", "aVL", "aVF"}


def test_open_dialog_extensions():
    assert {".hea", ".xml", ".dcm"} <= set(SUPPORTED_EXTENSIONS)
