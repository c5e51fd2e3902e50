"""Shared pieces of every reader: lead-name aliases, limb-lead derivation, record assembly, checks.

Every reader turns its file into ``{lead name: samples in mV}`` and hands it to
:func:`assemble_record`, which builds the one :class:`~ecgmodel.types.EcgRecord` layout
(float32, 12 rows in :data:`~ecgmodel.types.STANDARD_LEADS` order), derives the limb leads the file
lacks, marks the rest missing and checks what a clinician would want flagged.
"""

from __future__ import annotations

import base64
import binascii
import datetime as _dt
import os
import re
from pathlib import Path
from typing import Any
from xml.etree.ElementTree import Element, ParseError

import defusedxml
import defusedxml.ElementTree as safe_et
import numpy as np

from ..errors import CorruptFileError, EcgReadError, SignalTooShortError, UnsupportedFormatError
from ..types import STANDARD_LEADS, EcgRecord, Patient, Source

#: Shortest record (seconds) a reader accepts; shorter ones raise :class:`SignalTooShortError`.
MIN_DURATION_S = 2.0
#: Largest file (bytes) a reader will decode; protects against absurd or malicious inputs.
MAX_FILE_BYTES = 200 * 1024 * 1024

_LIMB_LEADS = ("I", "II", "III", "aVR", "aVL", "aVF")

# Keys are "squashed" names: lower case with spaces, "_", "-", "." and a leading "lead"/"mdc_ecg_lead"
# removed (see _squash). Only names of the 12 standard leads are mapped: no guessing of Holter leads.
_ALIASES: dict[str, str] = {
    "i": "I", "1": "I", "ii": "II", "2": "II", "iii": "III", "3": "III",
    "avr": "aVR", "avl": "aVL", "avf": "aVF",
    **{f"v{k}": f"V{k}" for k in range(1, 7)},
    **{f"c{k}": f"V{k}" for k in range(1, 7)},  # European precordial naming (C1-C6)
}


def _squash(name: str) -> str:
    text = name.strip().lower()
    text = re.sub(r"\(.*?\)", "", text)  # "Lead I (Einthoven)" -> "Lead I"
    text = re.sub(r"^(mdc_ecg_lead_|mdc_ecg_lead|lead)", "", text.strip())
    return re.sub(r"[\s_\-.]", "", text)


def standard_lead_name(name: str) -> str | None:
    """The standard 12-lead name (e.g. ``"aVR"``) for a file's lead label, case-insensitive; else None.

    Accepts ``"AVR"``, ``"avr"``, ``"Lead aVR"``, ``"MDC_ECG_LEAD_AVR"``, ``"C1"`` (= V1), ...
    """
    return _ALIASES.get(_squash(str(name)))


def derive_limb_leads(leads: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Limb leads computable from the ones present (Einthoven + Goldberger), all in mV.

    Input: ``{standard name: samples}``. Output: only the newly derived leads. Any two of I, II, III
    give the third (II = I + III); with I and II: aVR = -(I+II)/2, aVL = I - II/2, aVF = II - I/2.
    """
    have = dict(leads)
    derived: dict[str, np.ndarray] = {}
    if "I" in have and "II" not in have and "III" in have:
        derived["II"] = have["I"] + have["III"]
    elif "II" in have and "I" not in have and "III" in have:
        derived["I"] = have["II"] - have["III"]
    have.update(derived)
    if "I" not in have or "II" not in have:
        return derived
    lead_i, lead_ii = have["I"], have["II"]
    formulas = {
        "III": lambda: lead_ii - lead_i,
        "aVR": lambda: -(lead_i + lead_ii) / 2.0,
        "aVL": lambda: lead_i - lead_ii / 2.0,
        "aVF": lambda: lead_ii - lead_i / 2.0,
    }
    for name, formula in formulas.items():
        if name not in have:
            derived[name] = formula()
    return derived


def check_readable_file(path: str | os.PathLike[str], max_bytes: int | None = None) -> Path:
    """The path as a :class:`Path` after checking it exists, is a non-empty file and is not too big.

    ``max_bytes`` defaults to :data:`MAX_FILE_BYTES`.

    Raises :class:`EcgReadError` (missing / not a file) or :class:`UnsupportedFormatError` (empty).
    """
    file_path = Path(path)
    if not file_path.exists():
        raise EcgReadError(file_path, "the file does not exist.")
    if not file_path.is_file():
        raise EcgReadError(file_path, "this is a folder, not an ECG file.")
    size = file_path.stat().st_size
    max_bytes = MAX_FILE_BYTES if max_bytes is None else max_bytes
    if size == 0:
        raise UnsupportedFormatError(file_path, "the file is empty (0 bytes), so it holds no ECG.")
    if size > max_bytes:
        raise EcgReadError(
            file_path,
            f"the file is {size / 1e6:.0f} MB, larger than the {max_bytes / 1e6:.0f} MB an ECG file "
            "can reasonably be, so it was not decoded.",
        )
    return file_path


def _finite_lead_warnings(signal: np.ndarray, present: list[str]) -> tuple[list[str], list[str]]:
    """(leads that are entirely non-finite, warnings about partly non-finite leads)."""
    all_bad, messages = [], []
    for name in present:
        row = signal[STANDARD_LEADS.index(name)]
        n_bad = int(np.count_nonzero(~np.isfinite(row)))
        if n_bad == row.size:
            all_bad.append(name)
        elif n_bad:
            messages.append(f"Lead {name} has {n_bad} non-finite samples (shown as gaps).")
    return all_bad, messages


def assemble_record(
    leads_mv: dict[str, np.ndarray],
    fs: float,
    *,
    path: str | os.PathLike[str] | None,
    fmt: str,
    patient: Patient | None = None,
    acquired: _dt.datetime | None = None,
    metadata: dict[str, Any] | None = None,
    warnings: list[str] | None = None,
    min_duration_s: float = MIN_DURATION_S,
) -> EcgRecord:
    """Build the standard :class:`EcgRecord` from ``{standard lead name: samples in mV}``.

    Derives missing limb leads, fills unobtainable leads with NaN and lists them (with a warning),
    turns +/-inf into NaN, and raises :class:`SignalTooShortError` when the record is shorter than
    ``min_duration_s`` seconds or :class:`CorruptFileError` when no lead holds a finite sample.
    """
    where = str(path) if path is not None else None
    notes = list(warnings or [])
    if not leads_mv:
        raise CorruptFileError(where, "the file contains none of the 12 standard ECG leads.")
    if not fs or not np.isfinite(fs) or fs <= 0:
        raise CorruptFileError(where, f"the sampling rate ({fs!r} Hz) is not a positive number.")
    lengths = {np.asarray(v).shape[-1] for v in leads_mv.values()}
    n_samples = min(lengths)
    if len(lengths) > 1:
        notes.append(f"Leads had different lengths; all were cut to the shortest ({n_samples} samples).")
    leads = {k: np.asarray(v, dtype=np.float64)[:n_samples] for k, v in leads_mv.items()}
    duration_s = n_samples / float(fs)
    if duration_s < min_duration_s:
        raise SignalTooShortError(
            where, f"the record lasts {duration_s:.2f} s, shorter than the {min_duration_s:g} s needed."
        )

    signal = np.full((len(STANDARD_LEADS), n_samples), np.nan, dtype=np.float32)
    for name, samples in leads.items():
        signal[STANDARD_LEADS.index(name)] = samples
    n_inf = int(np.count_nonzero(np.isinf(signal)))
    if n_inf:
        signal[np.isinf(signal)] = np.nan
        notes.append(f"{n_inf} infinite samples were replaced by gaps (NaN).")

    stored = [name for name in STANDARD_LEADS if name in leads]
    unusable, partial_notes = _finite_lead_warnings(signal, stored)
    notes.extend(partial_notes)
    if len(unusable) == len(stored):
        raise CorruptFileError(where, "no lead contains a single valid (finite) sample.")
    usable = {name: signal[STANDARD_LEADS.index(name)] for name in stored if name not in unusable}
    if unusable:
        notes.append(f"Lead(s) {', '.join(unusable)} contain no valid samples and are treated as missing.")

    derived = derive_limb_leads(usable)
    for name, samples in derived.items():
        signal[STANDARD_LEADS.index(name)] = samples
    obtained = set(usable) | set(derived)
    missing = tuple(name for name in STANDARD_LEADS if name not in obtained)
    if missing:
        notes.append(f"Missing lead(s) {', '.join(missing)}: not in the file and not derivable.")
    return EcgRecord(
        signal=signal,
        fs=float(fs),
        patient=patient or Patient(),
        source=Source(path=where, format=fmt),
        acquired=acquired,
        derived_leads=tuple(name for name in STANDARD_LEADS if name in derived),
        missing_leads=missing,
        metadata=dict(metadata or {}),
        warnings=notes,
    )


def parse_sex(text: str | None) -> str | None:
    """"M", "F" or None from free text such as "Male", "FEMALE", "m", "1"? (numbers are not guessed)."""
    if text is None:
        return None
    value = str(text).strip().lower()
    if value in {"m", "male", "man", "masculine"}:
        return "M"
    if value in {"f", "female", "woman", "feminine", "w"}:
        return "F"
    return None


def parse_age(text: object) -> float | None:
    """Age in years from a number or text like "52", "52 years", "81.0"; None when absent or absurd."""
    if text is None:
        return None
    match = re.search(r"-?\d+(\.\d+)?", str(text))
    if not match:
        return None
    age = float(match.group(0))
    return age if 0 <= age < 130 else None


def parse_xml_safely(path: str | os.PathLike[str], max_bytes: int | None = None) -> Element:
    """The root element of an XML file parsed with ``defusedxml`` (entity bombs and XXE refused).

    Raises :class:`CorruptFileError` for malformed XML and :class:`EcgReadError` for forbidden
    constructs (entity declarations, external references), each naming the file.
    """
    file_path = check_readable_file(path, max_bytes)
    try:
        return safe_et.parse(str(file_path)).getroot()
    except defusedxml.DefusedXmlException as err:
        raise EcgReadError(
            file_path,
            f"the XML declares entities or external references, refused for safety ({type(err).__name__}).",
        ) from err
    except ParseError as err:
        raise CorruptFileError(file_path, f"the XML is malformed ({err}).") from err


def local_name(tag: str) -> str:
    """An XML tag without its ``{namespace}`` prefix."""
    return tag.rsplit("}", 1)[-1]


def decode_base64(text: str | None, *, path: object, what: str) -> bytes:
    """Bytes of a base64 text block; :class:`CorruptFileError` naming ``what`` when it is not valid base64."""
    cleaned = re.sub(r"\s+", "", text or "")
    try:
        return base64.b64decode(cleaned, validate=True)
    except (binascii.Error, ValueError) as err:
        raise CorruptFileError(path, f"the waveform data of {what} is not valid base64 ({err}).") from err
