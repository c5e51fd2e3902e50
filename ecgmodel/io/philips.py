"""Philips Sierra / PhilipsECG XML 1.03, 1.04, 1.04.xx with XLI-compressed (or raw) waveforms.

The XML is parsed here with ``defusedxml``; only the XLI (LZW + delta) decoder of the ``sierraecg``
package is reused. In XLI files Philips stores III, aVR, aVL and aVF as residuals against I and II;
they are reconstructed here. The trailing padding and 1 mV calibration pulse Philips appends after
the ECG (all 12 leads identical) are cut off.
"""

from __future__ import annotations

import datetime as _dt
import os
from xml.etree.ElementTree import Element

import numpy as np

from ..errors import CorruptFileError, EcgReadError, UnsupportedFormatError
from ..types import STANDARD_LEADS, EcgRecord, Patient
from .common import (
    assemble_record,
    decode_base64,
    local_name,
    parse_age,
    parse_sex,
    parse_xml_safely,
    standard_lead_name,
)

FORMAT = "philips-xml"
SUPPORTED_DOCUMENTS = {"SierraECG", "PhilipsECG"}
SUPPORTED_VERSIONS = ("1.03", "1.04")

#: ECG Lens key -> Philips measurement tags, first found wins (ms, bpm, degrees).
MEASUREMENT_TAGS = {
    "hr_bpm": ("heartrate", "meanventrate"),
    "atrial_rate_bpm": ("atrialrate",),
    "pr_ms": ("meanprint", "print"),
    "qrs_ms": ("meanqrsdur", "qrsdur"),
    "qt_ms": ("meanqtint", "qtint"),
    "qtc_ms": ("meanqtc", "qtcb"),
    "axis_p_deg": ("pfrontaxis",),
    "axis_qrs_deg": ("qrsfrontaxis",),
    "axis_t_deg": ("tfrontaxis",),
}


def _strip_namespaces(root: Element) -> Element:
    for element in root.iter():
        element.tag = local_name(element.tag)
    return root


def _text(root: Element, path: str) -> str | None:
    found = root.find(path)
    return found.text.strip() if found is not None and found.text else None


def _check_document(root: Element, path: str) -> str:
    doc_type = _text(root, "documentinfo/documenttype") or "?"
    version = _text(root, "documentinfo/documentversion") or "?"
    if doc_type not in SUPPORTED_DOCUMENTS or not version.startswith(SUPPORTED_VERSIONS):
        raise UnsupportedFormatError(
            path, f"Philips XML document type {doc_type} version {version} is not supported "
            "(SierraECG/PhilipsECG 1.03-1.04 are)."
        )
    return f"{doc_type} {version}"


def _lead_labels(waveforms: Element, root: Element) -> list[str]:
    labels = (waveforms.get("leadlabels") or "").split()
    if labels:
        count = int(waveforms.get("numberofleads") or len(labels))
        return labels[:count]
    lead_set = _text(root, ".//signalcharacteristics/acquisitiontype") or ""
    count = int(_text(root, ".//signalcharacteristics/numberchannelsallocated") or 12)
    if lead_set in ("STD-12", "10-WIRE") and count == 12:
        return list(STANDARD_LEADS)
    return [f"Channel {k + 1}" for k in range(count)]


def _decode_xli(payload: bytes, labels: list[str], path: str) -> list[np.ndarray]:
    try:
        from sierraecg.xli import xli_decode
    except ImportError as err:  # pragma: no cover - dependency declared in pyproject
        raise EcgReadError(path, "reading Philips XLI waveforms needs the 'sierraecg' package.") from err
    try:
        return [np.asarray(lead, dtype=np.int16) for lead in xli_decode(payload, labels)]
    except Exception as err:  # the LZW decoder raises bare IndexError/ValueError on damaged data
        raise CorruptFileError(path, f"the XLI-compressed waveform block is damaged ({err}).") from err


def _reconstruct_limb_residuals(digital: dict[str, np.ndarray]) -> None:
    """XLI stores III, aVR, aVL, aVF as residuals; rebuild them in place (integer units)."""
    lead_i, lead_ii = digital["I"].astype(np.int32), digital["II"].astype(np.int32)
    lead_iii = lead_ii - lead_i - digital["III"].astype(np.int32)
    digital["III"] = lead_iii
    digital["aVR"] = -digital["aVR"].astype(np.int32) - np.floor_divide(lead_i + lead_ii, 2)
    digital["aVL"] = np.floor_divide(lead_i - lead_iii, 2) - digital["aVL"].astype(np.int32)
    digital["aVF"] = np.floor_divide(lead_ii + lead_iii, 2) - digital["aVF"].astype(np.int32)


def _ecg_length(stacked: np.ndarray) -> int:
    """Samples before the trailing block where every lead is identical (padding + calibration pulse)."""
    differs = np.nonzero(~(stacked == stacked[0]).all(axis=0))[0]
    return int(differs[-1]) + 1 if differs.size else stacked.shape[1]


def _waveform_leads(root: Element, path: str) -> tuple[float, dict[str, np.ndarray], dict[str, object]]:
    waveforms = root.find(".//parsedwaveforms")
    if waveforms is None:
        raise CorruptFileError(path, "the Philips XML has no <parsedwaveforms> block with ECG samples.")
    fs = float(waveforms.get("samplespersecond") or _text(root, ".//signalcharacteristics/samplingrate") or 0)
    resolution_text = waveforms.get("resolution") or _text(root, ".//signalcharacteristics/signalresolution")
    resolution_uv = float(resolution_text or 5)
    offset = float(waveforms.get("signaloffset") or _text(root, ".//signalcharacteristics/signaloffset") or 0)
    if fs <= 0:
        raise CorruptFileError(path, "the Philips XML gives no valid sampling rate.")
    encoding = waveforms.get("dataencoding", "Base64")
    if encoding != "Base64":
        raise UnsupportedFormatError(path, f"Philips waveform encoding {encoding!r} is not supported.")
    labels = _lead_labels(waveforms, root)
    payload = decode_base64(waveforms.text, path=path, what="the parsed waveforms")
    method = waveforms.get("compressmethod") or waveforms.get("compression") or "Uncompressed"
    n_expected = int(round(float(waveforms.get("durationperchannel") or 0) * fs / 1000.0))
    if method.upper() == "XLI":
        decoded = _decode_xli(payload, labels, path)
    elif method.lower() in ("uncompressed", "none", ""):
        flat = np.frombuffer(payload[: len(payload) // 2 * 2], dtype="<i2")
        per_lead = n_expected or flat.size // max(len(labels), 1)
        decoded = [flat[k * per_lead:(k + 1) * per_lead] for k in range(len(labels))]
    else:
        raise UnsupportedFormatError(path, f"Philips waveform compression {method!r} is not supported.")
    if len(decoded) < len(labels) or min((lead.size for lead in decoded), default=0) == 0:
        raise CorruptFileError(
            path, f"the waveform block decodes to {len(decoded)} leads, not {len(labels)}."
        )
    n_samples = min(lead.size for lead in decoded[: len(labels)])
    if n_expected:
        n_samples = min(n_samples, n_expected)
    digital: dict[str, np.ndarray] = {}
    for label, lead in zip(labels, decoded):
        name = standard_lead_name(label)
        if name is not None and name not in digital:
            digital[name] = lead[:n_samples]
    if method.upper() == "XLI" and all(k in digital for k in ("I", "II", "III", "aVR", "aVL", "aVF")):
        _reconstruct_limb_residuals(digital)
    names = list(digital)
    stacked = np.stack([digital[name] for name in names]).astype(np.float64)
    length = _ecg_length(stacked) if len(names) > 1 else n_samples
    extras = {"philips_trailing_samples_removed": int(n_samples - length), "resolution_uv": resolution_uv}
    leads = {name: (stacked[k, :length] - offset) * resolution_uv / 1000.0 for k, name in enumerate(names)}
    return fs, leads, extras


def _measurements(root: Element) -> dict[str, float]:
    blocks = [b for tag in ("interpretationmeasurements", "globalmeasurements", "crossleadmeasurements")
              for b in root.iter(tag)]
    values: dict[str, float] = {}
    for key, tags in MEASUREMENT_TAGS.items():
        for block in blocks:
            found = next((_text(block, tag) for tag in tags if _text(block, tag)), None)
            try:
                values[key] = float(found)  # type: ignore[arg-type]
                break
            except (TypeError, ValueError):  # absent, "Indeterminate", "Failed"
                continue
    return values


def _statements(root: Element) -> list[str]:
    interpretation = root.find(".//interpretations/interpretation")
    if interpretation is None:
        return []
    lines = []
    printed = interpretation.findall("statement")  # the lines as printed on the report
    if printed:
        pairs = [(_text(st, "leftstatement"), _text(st, "rightstatement")) for st in printed]
    else:  # 1.04 files without printed lines: the coded statements not deleted by an editor
        pairs = [
            (_text(st, ".//lhsstatement"), _text(st, ".//rhsstatement"))
            for st in interpretation.iter("codedstatement") if st.get("deleted", "False") != "True"
        ]
    for left, right in pairs:
        if left:
            lines.append(f"{left} ({right})" if right else left)
    severity = _text(interpretation, "severity")
    if severity:
        lines.append(severity.strip(" -"))
    return lines


def _acquired(root: Element) -> _dt.datetime | None:
    node = root.find("dataacquisition")
    if node is None or not node.get("date"):
        return None
    try:
        return _dt.datetime.fromisoformat(f"{node.get('date')}T{node.get('time') or '00:00:00'}")
    except ValueError:
        return None


def _patient(root: Element, acquired: _dt.datetime | None) -> Patient:
    data = root.find(".//patient/generalpatientdata")
    if data is None:
        return Patient()
    age = parse_age(_text(data, "age/years"))
    birth = _text(data, "age/dateofbirth")
    if age is None and birth and acquired is not None:
        try:
            age = float(int((acquired - _dt.datetime.fromisoformat(birth)).days // 365.25))
        except ValueError:
            age = None
    return Patient(age=age, sex=parse_sex(_text(data, "sex")), id=_text(data, "patientid"))


def read_philips(path: str | os.PathLike[str]) -> EcgRecord:
    """Read a Philips Sierra/PhilipsECG XML file into an EcgRecord (mV).

    Metadata: ``device_statements`` (list[str], interpretation lines), ``device_measurements``
    (hr_bpm, pr_ms, qrs_ms, qt_ms, qtc_ms, axis_p/qrs/t_deg where present), ``philips_document``.
    """
    where = str(path)
    root = _strip_namespaces(parse_xml_safely(path))
    if root.tag != "restingecgdata":
        raise EcgReadError(where, f"this XML (root <{root.tag}>) is not a Philips resting ECG.")
    document = _check_document(root, where)
    fs, leads, extras = _waveform_leads(root, where)
    acquired = _acquired(root)
    metadata = {
        "philips_document": document,
        "device_statements": _statements(root),
        "device_measurements": _measurements(root),
        **extras,
    }
    return assemble_record(
        leads, fs, path=where, fmt=FORMAT, patient=_patient(root, acquired), acquired=acquired,
        metadata=metadata,
    )
