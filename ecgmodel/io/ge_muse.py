"""GE MUSE XML exports (``<RestingECG>``): rhythm strip, demographics, statements, measurements.

Structure read (MUSE 7-9 exports)::

    RestingECG/PatientDemographics/{PatientAge, AgeUnits, Gender, PatientID}
    RestingECG/TestDemographics/{AcquisitionDate (MM-DD-YYYY), AcquisitionTime}
    RestingECG/RestingECGMeasurements/{VentricularRate, PRInterval, QRSDuration, QTInterval, ...}
    RestingECG/Diagnosis/DiagnosisStatement/{StmtFlag, StmtText}
    RestingECG/Waveform/{WaveformType (Rhythm|Median), SampleBase, SampleExponent,
                         LeadData/{LeadID, LeadAmplitudeUnitsPerBit, LeadAmplitudeUnits,
                                   LeadDataCRC32, WaveFormData (base64 little-endian int16)}}

Usually 8 leads are stored (I, II, V1-V6); III, aVR, aVL, aVF are derived.
"""

from __future__ import annotations

import datetime as _dt
import os
import zlib
from xml.etree.ElementTree import Element

import numpy as np

from ..errors import CorruptFileError, EcgReadError
from ..types import EcgRecord, Patient
from .common import assemble_record, decode_base64, parse_age, parse_sex, parse_xml_safely, standard_lead_name

FORMAT = "ge-muse-xml"

#: MUSE measurement tag -> ECG Lens key (ms, bpm, degrees).
MEASUREMENT_KEYS = {
    "VentricularRate": "hr_bpm",
    "AtrialRate": "atrial_rate_bpm",
    "PRInterval": "pr_ms",
    "QRSDuration": "qrs_ms",
    "QTInterval": "qt_ms",
    "QTCorrected": "qtc_ms",
    "PAxis": "axis_p_deg",
    "RAxis": "axis_qrs_deg",
    "TAxis": "axis_t_deg",
}
_UNIT_TO_MV = {"MICROVOLTS": 1e-3, "MICROVOLT": 1e-3, "UV": 1e-3, "MILLIVOLTS": 1.0, "MV": 1.0}
_AGE_UNIT_TO_YEARS = {
    "YEARS": 1.0, "MONTHS": 1 / 12, "WEEKS": 7 / 365.25, "DAYS": 1 / 365.25, "HOURS": 1 / 8766,
}


def _float(text: str | None) -> float | None:
    try:
        return float(text) if text not in (None, "") else None
    except ValueError:
        return None


def _patient(root: Element) -> Patient:
    demo = root.find("PatientDemographics")
    if demo is None:
        return Patient()
    age = parse_age(demo.findtext("PatientAge"))
    factor = _AGE_UNIT_TO_YEARS.get((demo.findtext("AgeUnits") or "YEARS").strip().upper(), 1.0)
    return Patient(
        age=round(age * factor, 2) if age is not None else None,
        sex=parse_sex(demo.findtext("Gender")),
        id=(demo.findtext("PatientID") or "").strip() or None,
    )


def _acquired(root: Element) -> _dt.datetime | None:
    date_text = (root.findtext("TestDemographics/AcquisitionDate") or "").strip()
    time_text = (root.findtext("TestDemographics/AcquisitionTime") or "00:00:00").strip()
    for pattern in ("%m-%d-%Y %H:%M:%S", "%m-%d-%Y %H:%M", "%Y-%m-%d %H:%M:%S"):
        try:
            return _dt.datetime.strptime(f"{date_text} {time_text}", pattern)
        except ValueError:
            continue
    return None


def _statements(root: Element) -> list[str]:
    """Statement lines: consecutive StmtText joined until a StmtFlag ENDSLINE."""
    block = root.find("Diagnosis")
    if block is None:
        block = root.find("OriginalDiagnosis")
    if block is None:
        return []
    lines, current = [], []
    for statement in block.findall("DiagnosisStatement"):
        text = (statement.findtext("StmtText") or "").strip()
        if text:
            current.append(text)
        flags = {(flag.text or "").strip().upper() for flag in statement.findall("StmtFlag")}
        if "ENDSLINE" in flags and current:
            lines.append(" ".join(current).replace(" ,", ","))
            current = []
    if current:
        lines.append(" ".join(current).replace(" ,", ","))
    return lines


def _measurements(root: Element) -> dict[str, float]:
    block = root.find("RestingECGMeasurements")
    if block is None:
        block = root.find("OriginalRestingECGMeasurements")
    if block is None:
        return {}
    values = {key: _float(block.findtext(tag)) for tag, key in MEASUREMENT_KEYS.items()}
    return {key: value for key, value in values.items() if value is not None}


def _waveform_leads(waveform: Element, path: str) -> tuple[float, dict[str, np.ndarray], list[str]]:
    """(fs in Hz, {standard lead: mV}, warnings) of one <Waveform> block."""
    kind = waveform.findtext("WaveformType") or "?"
    base = _float(waveform.findtext("SampleBase"))
    exponent = _float(waveform.findtext("SampleExponent")) or 0.0
    if not base or base <= 0:
        raise CorruptFileError(path, f"the {kind} waveform has no valid sampling rate (SampleBase).")
    fs = base * 10.0**exponent
    leads: dict[str, np.ndarray] = {}
    notes: list[str] = []
    for lead_data in waveform.findall("LeadData"):
        label = (lead_data.findtext("LeadID") or "").strip()
        name = standard_lead_name(label)
        raw = decode_base64(lead_data.findtext("WaveFormData"), path=path, what=f"lead {label or '?'}")
        if len(raw) % 2:
            raise CorruptFileError(path, f"the waveform data of lead {label} has an odd number of bytes.")
        crc = _float(lead_data.findtext("LeadDataCRC32"))
        if crc is not None and zlib.crc32(raw) != int(crc):
            raise CorruptFileError(path, f"the waveform data of lead {label} fails its CRC32 check.")
        units = (lead_data.findtext("LeadAmplitudeUnits") or "MICROVOLTS").strip().upper()
        to_mv = _UNIT_TO_MV.get(units)
        if to_mv is None:
            raise CorruptFileError(path, f"lead {label} uses amplitude unit {units!r}, not a voltage.")
        per_bit = _float(lead_data.findtext("LeadAmplitudeUnitsPerBit")) or 1.0
        samples = np.frombuffer(raw, dtype="<i2").astype(np.float64) * per_bit * to_mv
        if name is None:
            notes.append(f"Lead {label!r} of the {kind} waveform is not a standard lead and was skipped.")
        elif name not in leads:
            leads[name] = samples
    return fs, leads, notes


def read_ge_muse(path: str | os.PathLike[str]) -> EcgRecord:
    """Read a GE MUSE XML export's rhythm waveform into an EcgRecord (mV).

    Metadata: ``device_statements`` (list[str]), ``device_measurements`` (hr_bpm, pr_ms, qrs_ms,
    qt_ms, qtc_ms, axis_*_deg), ``median_beats`` (``{"fs": Hz, "leads": {name: mV}}``) where present.
    """
    root = parse_xml_safely(path)
    where = str(path)
    if root.tag != "RestingECG":
        raise EcgReadError(where, f"this XML (root <{root.tag}>) is not a GE MUSE resting ECG.")
    waveforms = {(w.findtext("WaveformType") or "").strip().lower(): w for w in root.findall("Waveform")}
    metadata: dict[str, object] = {
        "device_statements": _statements(root),
        "device_measurements": _measurements(root),
        "muse_version": root.findtext("MuseInfo/MuseVersion"),
    }
    warnings: list[str] = []
    if "median" in waveforms:
        median_fs, median_leads, _ = _waveform_leads(waveforms["median"], where)
        metadata["median_beats"] = {
            "fs": median_fs, "leads": {k: v.astype(np.float32) for k, v in median_leads.items()}
        }
    if "rhythm" not in waveforms:
        if "median" in waveforms:
            raise EcgReadError(where, "the file holds only a median beat and no rhythm strip to analyse.")
        raise CorruptFileError(where, "the file contains no <Waveform> with ECG samples.")
    fs, leads, notes = _waveform_leads(waveforms["rhythm"], where)
    warnings.extend(notes)
    return assemble_record(
        leads, fs, path=where, fmt=FORMAT, patient=_patient(root), acquired=_acquired(root),
        metadata=metadata, warnings=warnings,
    )
