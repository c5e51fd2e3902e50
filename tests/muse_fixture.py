"""Writes GE MUSE XML test files from the documented structure (no real patient data).

``write_muse_xml(path, leads_uv, fs)`` builds ``<RestingECG>`` with demographics, measurements,
statements and one ``<Waveform>`` block per entry of ``waveforms`` (Rhythm and/or Median), each
``<LeadData>`` holding base64 little-endian int16 samples at ``units_per_bit`` microvolts per bit.
"""

from __future__ import annotations

import base64
import zlib
from pathlib import Path
from xml.sax.saxutils import escape

import numpy as np

EIGHT_LEADS = ("I", "II", "V1", "V2", "V3", "V4", "V5", "V6")


def synthetic_leads_uv(n_samples: int, fs: float = 500.0, names=EIGHT_LEADS) -> dict[str, np.ndarray]:
    """Smooth made-up waveforms (microvolts) for each lead name: not an ECG, just distinct shapes."""
    t = np.arange(n_samples) / fs
    return {name: 800.0 * np.sin(2 * np.pi * (1.0 + 0.1 * k) * t) for k, name in enumerate(names)}


def _lead_block(name: str, samples_uv: np.ndarray, units_per_bit: float, corrupt: bool) -> str:
    digital = np.round(np.asarray(samples_uv) / units_per_bit).astype("<i2")
    raw = digital.tobytes()
    payload = base64.b64encode(raw).decode("ascii")
    if corrupt:
        payload = "!!not-base64!!" + payload[10:]
    return (
        "      <LeadData>\n"
        f"         <LeadByteCountTotal>{len(raw)}</LeadByteCountTotal>\n"
        f"         <LeadSampleCountTotal>{digital.size}</LeadSampleCountTotal>\n"
        f"         <LeadAmplitudeUnitsPerBit>{units_per_bit}</LeadAmplitudeUnitsPerBit>\n"
        "         <LeadAmplitudeUnits>MICROVOLTS</LeadAmplitudeUnits>\n"
        f"         <LeadID>{escape(name)}</LeadID>\n"
        "         <LeadSampleSize>2</LeadSampleSize>\n"
        f"         <LeadDataCRC32>{zlib.crc32(raw)}</LeadDataCRC32>\n"
        f"         <WaveFormData>{payload}</WaveFormData>\n"
        "      </LeadData>\n"
    )


def write_muse_xml(
    path: Path,
    leads_uv: dict[str, np.ndarray],
    fs: float = 500.0,
    *,
    waveforms: tuple[str, ...] = ("Median", "Rhythm"),
    units_per_bit: float = 4.88,
    corrupt_lead: str | None = None,
    age: str = "61",
    gender: str = "FEMALE",
) -> Path:
    """A MUSE XML file at ``path`` holding ``leads_uv`` (µV) as the Rhythm (and a 600-sample Median)."""
    blocks = []
    for kind in waveforms:
        leads = leads_uv if kind == "Rhythm" else {k: v[:600] for k, v in leads_uv.items()}
        lead_xml = "".join(
            _lead_block(name, samples, units_per_bit, corrupt=(name == corrupt_lead and kind == "Rhythm"))
            for name, samples in leads.items()
        )
        blocks.append(
            "   <Waveform>\n"
            f"      <WaveformType>{kind}</WaveformType>\n"
            f"      <SampleBase>{int(fs)}</SampleBase>\n      <SampleExponent>0</SampleExponent>\n"
            f"{lead_xml}   </Waveform>\n"
        )
    text = (
        '<?xml version="1.0" encoding="ISO-8859-1"?>\n'
        '<!DOCTYPE RestingECG SYSTEM "restecg.dtd">\n'
        "<RestingECG>\n"
        "   <MuseInfo><MuseVersion>9.0.0</MuseVersion></MuseInfo>\n"
        f"   <PatientDemographics><PatientAge>{age}</PatientAge><AgeUnits>YEARS</AgeUnits>"
        f"<Gender>{gender}</Gender><PatientID>TEST-0001</PatientID></PatientDemographics>\n"
        "   <TestDemographics><AcquisitionTime>08:15:00</AcquisitionTime>"
        "<AcquisitionDate>01-31-2024</AcquisitionDate></TestDemographics>\n"
        "   <RestingECGMeasurements><VentricularRate>72</VentricularRate><PRInterval>160</PRInterval>"
        "<QRSDuration>92</QRSDuration><QTInterval>380</QTInterval><QTCorrected>415</QTCorrected>"
        "<PAxis>50</PAxis><RAxis>30</RAxis><TAxis>40</TAxis></RestingECGMeasurements>\n"
        "   <Diagnosis><DiagnosisStatement><StmtFlag>ENDSLINE</StmtFlag><StmtText>Normal sinus rhythm"
        "</StmtText></DiagnosisStatement></Diagnosis>\n"
        + "".join(blocks)
        + "</RestingECG>\n"
    )
    path.write_text(text, encoding="iso-8859-1")
    return path
