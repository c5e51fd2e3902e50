"""DICOM 12-lead ECG waveforms (Waveform IOD) via ``pydicom``.

Picks the rhythm/original multiplex group holding the most standard leads, lets pydicom apply channel
sensitivity, sensitivity correction factor and baseline, converts the sensitivity unit (uV/mV/V) to mV,
and maps channel source code meanings / labels (e.g. "Lead I (Einthoven)") to standard names.
"""

from __future__ import annotations

import datetime as _dt
import os

import numpy as np

from ..errors import CorruptFileError, UnsupportedFormatError
from ..types import EcgRecord, Patient
from .common import assemble_record, check_readable_file, parse_sex, standard_lead_name

FORMAT = "dicom"
_TO_MV = {"uv": 1e-3, "mv": 1.0, "v": 1e3}
_AGE_UNIT_TO_YEARS = {"Y": 1.0, "M": 1 / 12, "W": 7 / 365.25, "D": 1 / 365.25}


def _channel_name(channel) -> str | None:
    labels = []
    if "ChannelSourceSequence" in channel and len(channel.ChannelSourceSequence):
        labels.append(str(channel.ChannelSourceSequence[0].get("CodeMeaning", "")))
    labels.append(str(channel.get("ChannelLabel", "") or ""))
    return next((standard_lead_name(label) for label in labels if standard_lead_name(label)), None)


def _channel_scale_to_mv(channel) -> float | None:
    units = channel.get("ChannelSensitivityUnitsSequence")
    code = str(units[0].get("CodeValue", "uV")) if units else "uV"
    return _TO_MV.get(code.lower())


def _group_rank(group) -> tuple[int, int, int]:
    label = str(group.get("MultiplexGroupLabel", "")).upper()
    originality = str(group.get("WaveformOriginality", "")).upper()
    n_standard = sum(_channel_name(ch) is not None for ch in group.get("ChannelDefinitionSequence", []))
    is_rhythm = "MEDIAN" not in label and originality != "DERIVED"
    return (n_standard, is_rhythm, int(group.NumberOfWaveformSamples))


def _age_years(text: str | None) -> float | None:
    value = (text or "").strip()
    if len(value) >= 2 and value[:-1].isdigit() and value[-1].upper() in _AGE_UNIT_TO_YEARS:
        return round(int(value[:-1]) * _AGE_UNIT_TO_YEARS[value[-1].upper()], 2)
    return None


def _acquired(ds) -> _dt.datetime | None:
    stamp = str(ds.get("AcquisitionDateTime", "") or "")
    if not stamp:
        stamp = f"{ds.get('ContentDate', '') or ''}{ds.get('ContentTime', '') or ''}"
    try:
        return _dt.datetime.strptime(stamp.split(".")[0][:14], "%Y%m%d%H%M%S")
    except ValueError:
        return None


def read_dicom(path: str | os.PathLike[str]) -> EcgRecord:
    """Read a DICOM ECG waveform file into an EcgRecord (mV); other groups (e.g. median beat) are ignored."""
    import pydicom
    from pydicom.errors import InvalidDicomError

    file_path = check_readable_file(path)
    where = str(path)
    try:
        ds = pydicom.dcmread(str(file_path))
    except (InvalidDicomError, EOFError, OSError, ValueError) as err:
        raise CorruptFileError(where, f"the DICOM file could not be parsed ({err}).") from err
    groups = list(ds.get("WaveformSequence", []) or [])
    if not groups:
        raise UnsupportedFormatError(where, "this DICOM file holds no waveform (it is not an ECG).")
    index = max(range(len(groups)), key=lambda k: _group_rank(groups[k]))
    group = groups[index]
    try:
        samples = ds.waveform_array(index)  # (n_samples, n_channels), sensitivity/baseline applied
    except Exception as err:  # pydicom raises ValueError/KeyError on inconsistent waveform data
        raise CorruptFileError(where, f"the waveform data could not be decoded ({err}).") from err
    leads: dict[str, np.ndarray] = {}
    notes: list[str] = []
    for k, channel in enumerate(group.ChannelDefinitionSequence):
        name, scale = _channel_name(channel), _channel_scale_to_mv(channel)
        if name is None:
            label = channel.get("ChannelLabel", "?")
            notes.append(f"Channel {k + 1} ({label}) is not a standard lead; skipped.")
        elif scale is None:
            notes.append(f"Lead {name} has a non-voltage sensitivity unit and was skipped.")
        elif name not in leads:
            leads[name] = samples[:, k] * scale
    patient = Patient(
        age=_age_years(ds.get("PatientAge")), sex=parse_sex(ds.get("PatientSex")),
        id=str(ds.get("PatientID", "") or "") or None,
    )
    metadata = {"dicom_group": str(group.get("MultiplexGroupLabel", "")), "dicom_groups": len(groups)}
    return assemble_record(
        leads, float(group.SamplingFrequency), path=where, fmt=FORMAT, patient=patient,
        acquired=_acquired(ds), metadata=metadata, warnings=notes,
    )
