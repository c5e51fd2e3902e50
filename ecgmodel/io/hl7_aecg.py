"""HL7 v3 annotated ECG (FDA aECG) XML: the rhythm series' sequences, demographics, annotations.

Read: ``AnnotatedECG/component/series`` (the RHYTHM series, else the first) ->
``component/sequenceSet/component/sequence``: a TIME_ABSOLUTE/TIME_RELATIVE sequence gives the
sample interval (``increment``); each ``MDC_ECG_LEAD_*`` sequence holds ``SLIST_PQ`` digits turned
into physical values as ``origin + scale * digit`` (units uV, mV or V, converted to mV).
"""

from __future__ import annotations

import datetime as _dt
import os
from xml.etree.ElementTree import Element

import numpy as np

from ..errors import CorruptFileError, EcgReadError
from ..types import EcgRecord, Patient
from .common import assemble_record, local_name, parse_age, parse_sex, parse_xml_safely, standard_lead_name

FORMAT = "hl7-aecg"
_TO_MV = {"uv": 1e-3, "mv": 1.0, "v": 1e3, "nv": 1e-6}
_TO_SECONDS = {"s": 1.0, "ms": 1e-3, "us": 1e-6}
#: aECG annotation code -> ECG Lens measurement key.
MEASUREMENT_CODES = {
    "MDC_ECG_HEART_RATE": "hr_bpm",
    "MDC_ECG_TIME_PD_PR": "pr_ms",
    "MDC_ECG_TIME_PD_QRS": "qrs_ms",
    "MDC_ECG_TIME_PD_QT": "qt_ms",
    "MDC_ECG_TIME_PD_QTc": "qtc_ms",
    "MDC_ECG_ANGLE_P_FRONT": "axis_p_deg",
    "MDC_ECG_ANGLE_QRS_FRONT": "axis_qrs_deg",
    "MDC_ECG_ANGLE_T_FRONT": "axis_t_deg",
}


def _strip_namespaces(root: Element) -> Element:
    for element in root.iter():
        element.tag = local_name(element.tag)
        for key in [k for k in element.attrib if k.startswith("{")]:
            element.attrib[local_name(key)] = element.attrib.pop(key)
    return root


def _code(element: Element) -> str:
    code = element.find("code")
    return code.get("code", "") if code is not None else ""


def _hl7_time(text: str | None) -> _dt.datetime | None:
    """HL7 TS value ("20021122091000.000", "20020618") as a datetime; None if unparsable."""
    digits = (text or "").split(".")[0].split("+")[0].split("-")[0]
    for pattern, size in (("%Y%m%d%H%M%S", 14), ("%Y%m%d%H%M", 12), ("%Y%m%d", 8)):
        if len(digits) >= size:
            try:
                return _dt.datetime.strptime(digits[:size], pattern)
            except ValueError:
                return None
    return None


def _physical(value: Element, label: str, path: str) -> np.ndarray:
    origin, scale = value.find("origin"), value.find("scale")
    unit = ((scale.get("unit") if scale is not None else None) or "uV").lower()
    if unit not in _TO_MV:
        raise CorruptFileError(path, f"lead {label} has amplitude unit {unit!r}, which is not a voltage.")
    try:
        digits = np.array((value.findtext("digits") or "").split(), dtype=np.float64)
        scale_value = float(scale.get("value", 1)) if scale is not None else 1.0
        origin_value = float(origin.get("value", 0)) if origin is not None else 0.0
    except ValueError as err:
        raise CorruptFileError(path, f"the samples of lead {label} are not numbers ({err}).") from err
    origin_unit = ((origin.get("unit") if origin is not None else None) or unit).lower()
    return (digits * scale_value * _TO_MV[unit]) + origin_value * _TO_MV.get(origin_unit, _TO_MV[unit])


def _sequence_set_leads(
    sequence_set: Element, path: str
) -> tuple[float | None, dict[str, np.ndarray], list[str]]:
    fs, leads, notes = None, {}, []
    for sequence in sequence_set.iter("sequence"):
        code, value = _code(sequence), sequence.find("value")
        if value is None:
            continue
        if code.startswith("TIME_"):
            increment = value.find("increment")
            if increment is not None and float(increment.get("value", 0) or 0) > 0:
                seconds = float(increment.get("value")) * _TO_SECONDS.get(increment.get("unit", "s"), 1.0)
                fs = 1.0 / seconds
            continue
        name = standard_lead_name(code)
        if name is None:
            notes.append(f"Sequence {code or '?'} is not a standard 12-lead lead and was skipped.")
        elif name not in leads:
            leads[name] = _physical(value, name, path)
    return fs, leads, notes


def _rhythm_series(root: Element) -> Element | None:
    series = [s for s in root.iter("series")]
    rhythm = [s for s in series if _code(s) == "RHYTHM"]
    return (rhythm or series or [None])[0]


def _patient(root: Element, acquired: _dt.datetime | None) -> Patient:
    sex_code = root.find(".//administrativeGenderCode")
    age = None
    for observation in root.iter("relatedObservation"):
        if _code(observation) == "21612-7" and observation.find("value") is not None:
            value = observation.find("value")
            age = parse_age(value.get("value")) if value.get("unit", "a") in ("a", "yr", "years") else None
    birth = root.find(".//birthTime")
    born = _hl7_time(birth.get("value")) if birth is not None else None
    if age is None and born and acquired:
        age = float(int((acquired - born).days // 365.25))
    return Patient(age=age, sex=parse_sex(sex_code.get("code")) if sex_code is not None else None)


def _measurements(root: Element) -> dict[str, float]:
    values: dict[str, float] = {}
    for annotation in root.iter("annotation"):
        key = MEASUREMENT_CODES.get(_code(annotation))
        value = annotation.find("value")
        if key and key not in values and value is not None:
            try:
                values[key] = float(value.get("value"))
            except (TypeError, ValueError):
                continue
    return values


def read_hl7_aecg(path: str | os.PathLike[str], *, min_duration_s: float | None = None) -> EcgRecord:
    """Read an HL7 aECG file's rhythm series into an EcgRecord (mV).

    Metadata: ``device_measurements`` from the global annotations (pr_ms, qrs_ms, qt_ms, qtc_ms,
    axis_*_deg). ``min_duration_s`` overrides the usual 2 s minimum (for inspecting tiny examples).
    """
    where = str(path)
    root = _strip_namespaces(parse_xml_safely(path))
    if root.tag != "AnnotatedECG":
        raise EcgReadError(where, f"this XML (root <{root.tag}>) is not an HL7 annotated ECG.")
    series = _rhythm_series(root)
    if series is None:
        raise CorruptFileError(where, "the HL7 aECG document is empty: it contains no ECG waveform series.")
    sequence_sets = [c for comp in series.findall("component") for c in comp.findall("sequenceSet")]
    if not sequence_sets:
        raise CorruptFileError(where, "the HL7 aECG series contains no sequence of samples.")
    fs, leads, notes = _sequence_set_leads(sequence_sets[0], where)
    if len(sequence_sets) > 1:
        notes.append(f"Only the first of {len(sequence_sets)} sequence sets of the rhythm series was read.")
    if fs is None:
        raise CorruptFileError(where, "the HL7 aECG series gives no sample interval (time increment).")
    low = series.find("effectiveTime/low")
    center = root.find("effectiveTime/center")
    stamp = low if low is not None else center
    acquired = _hl7_time(stamp.get("value") if stamp is not None else None)
    extra = {} if min_duration_s is None else {"min_duration_s": min_duration_s}
    return assemble_record(
        leads, fs, path=where, fmt=FORMAT, patient=_patient(root, acquired), acquired=acquired,
        metadata={"device_measurements": _measurements(root), "series_code": _code(series)},
        warnings=notes, **extra,
    )
