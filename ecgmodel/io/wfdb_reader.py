"""WFDB records (PhysioNet): ``.hea`` header + ``.dat``/``.mat`` signal files, via ``wfdb.rdrecord``.

Handles single- and multi-segment records in any signal format wfdb-python decodes (16, 212, 24, ...),
converts physical units (uV, mV, V) to mV, maps 12-lead names case-insensitively ("AVR", "avr", ...)
and keeps non-standard channels (e.g. Frank leads vx, vy, vz) in ``metadata["extra_leads"]``.
"""

from __future__ import annotations

import datetime as _dt
import os
import re
from pathlib import Path

import numpy as np
import wfdb

from ..errors import CorruptFileError, EcgReadError, UnsupportedFormatError
from ..types import EcgRecord, Patient
from .common import assemble_record, check_readable_file, parse_age, parse_sex, standard_lead_name

FORMAT = "wfdb"
SIGNAL_EXTENSIONS = (".dat", ".mat", ".xyz")

# Bytes per sample of the uncompressed WFDB signal formats (used to spot truncated signal files).
_BYTES_PER_SAMPLE = {
    "8": 1, "16": 2, "24": 3, "32": 4, "61": 2, "80": 1, "160": 2, "212": 1.5, "310": 4 / 3, "311": 4 / 3,
}
_FLAC_FORMATS = {"508", "516", "524"}
# Scale from a header's physical unit to millivolts; other units leave the channel as is (warned).
_TO_MV = {"mv": 1.0, "uv": 1e-3, "µv": 1e-3, "μv": 1e-3, "microvolt": 1e-3, "v": 1e3, "volt": 1e3}
_ID_COMMENT = re.compile(r"^\s*(mrn|patient[\s_]*id|id)\b", re.IGNORECASE)


def header_path_for(path: str | os.PathLike[str]) -> Path:
    """The ``.hea`` file of a record given its header, its signal file or its extension-less name."""
    file_path = Path(path)
    if file_path.suffix.lower() == ".hea":
        return file_path
    if file_path.suffix.lower() in SIGNAL_EXTENSIONS or not file_path.suffix:
        return file_path.with_suffix(".hea")
    return file_path


def _read_header(header: Path) -> wfdb.Record | wfdb.MultiRecord:
    try:
        return wfdb.rdheader(str(header.with_suffix("")), rd_segments=True)
    except FileNotFoundError as err:
        missing = Path(err.filename or "").name
        raise CorruptFileError(header, f"a file the header refers to is missing ({missing}).") from err
    except Exception as err:  # wfdb raises bare ValueError/IndexError on malformed text
        raise CorruptFileError(header, f"the WFDB header could not be parsed ({err}).") from err


def _check_signal_files(header: Path, record: wfdb.Record) -> None:
    """Refuse unsupported formats, missing and truncated signal files before decoding."""
    files: dict[str, list[int]] = {}
    for index, name in enumerate(record.file_name or []):
        files.setdefault(name, []).append(index)
    for name, channels in files.items():
        fmt = str(record.fmt[channels[0]])
        if fmt not in _BYTES_PER_SAMPLE and fmt not in _FLAC_FORMATS:
            raise UnsupportedFormatError(header, f"WFDB signal format {fmt} (file {name}) is not supported.")
        signal_file = header.parent / name
        if not signal_file.is_file():
            raise CorruptFileError(header, f"the header points at signal file {name}, which does not exist.")
        if fmt in _FLAC_FORMATS or not record.sig_len:
            continue
        frame = sum((record.samps_per_frame or [1] * record.n_sig)[c] for c in channels)
        offset = int((record.byte_offset or [0] * record.n_sig)[channels[0]] or 0)
        expected = offset + int(np.ceil(frame * record.sig_len * _BYTES_PER_SAMPLE[fmt]))
        actual = signal_file.stat().st_size
        if actual < expected:
            have_s = max(actual - offset, 0) / (frame * _BYTES_PER_SAMPLE[fmt]) / record.fs
            raise CorruptFileError(
                header,
                f"signal file {name} is truncated: it holds {have_s:.2f} s of the "
                f"{record.sig_len / record.fs:.2f} s the header announces.",
            )


def _comments_to_patient(comments: list[str]) -> tuple[Patient, list[str]]:
    """Age/sex from header comments ("Age: 52", "# sex FEMALE"), and the comments minus ID lines."""
    patient = Patient()
    kept = []
    for line in comments:
        match = re.match(r"^\s*(age|sex|gender)\s*[:=]?\s*(.+?)\s*$", line, re.IGNORECASE)
        if match and match.group(1).lower() == "age" and patient.age is None:
            patient.age = parse_age(match.group(2))
        elif match and patient.sex is None:
            patient.sex = parse_sex(match.group(2))
        if _ID_COMMENT.match(line):
            patient.id = re.sub(_ID_COMMENT, "", line).strip(" :=") or None
            continue
        kept.append(line)
    return patient, kept


def _unit_scale(unit: str | None) -> float | None:
    return _TO_MV.get((unit or "mV").strip().lower())


def read_wfdb(path: str | os.PathLike[str]) -> EcgRecord:
    """Read a WFDB record (header, signal file or extension-less record name) into an EcgRecord (mV).

    Channels with standard 12-lead names become signal rows; others (e.g. Frank vx/vy/vz) go to
    ``metadata["extra_leads"]`` as ``{name: float32 array}`` (mV when their unit is a voltage).
    Age/sex come from header comments where present; ``acquired`` from the header's base date/time.
    """
    header = header_path_for(path)
    check_readable_file(header)
    head = _read_header(header)
    if isinstance(head, wfdb.Record):
        _check_signal_files(header, head)
    try:
        record = wfdb.rdrecord(str(header.with_suffix("")), physical=True, m2s=True)
    except FileNotFoundError as err:
        missing = Path(err.filename or "").name
        raise CorruptFileError(header, f"the header points at {missing}, which does not exist.") from err
    except (ValueError, IndexError, KeyError, OSError) as err:
        raise CorruptFileError(header, f"the signal data could not be decoded ({err}).") from err
    if record.p_signal is None or record.p_signal.size == 0:
        raise CorruptFileError(header, "the record holds no samples.")

    warnings: list[str] = []
    leads: dict[str, np.ndarray] = {}
    extra: dict[str, np.ndarray] = {}
    units = record.units or ["mV"] * record.n_sig
    for index, name in enumerate(record.sig_name):
        samples = record.p_signal[:, index]
        scale = _unit_scale(units[index])
        if scale is None:
            warnings.append(f"Channel {name} has unit {units[index]!r}; its values were kept unchanged.")
            scale = 1.0
        standard = standard_lead_name(name)
        if standard is None:
            extra[str(name)] = (samples * scale).astype(np.float32)
        elif standard in leads:
            warnings.append(f"Channel {name} repeats lead {standard}; the first one was kept.")
        else:
            leads[standard] = samples * scale

    patient, comments = _comments_to_patient(list(record.comments or []))
    acquired = None
    if record.base_date is not None:
        acquired = _dt.datetime.combine(record.base_date, record.base_time or _dt.time())
    metadata: dict[str, object] = {"header_comments": comments, "wfdb_record_name": record.record_name}
    if extra:
        metadata["extra_leads"] = extra
        warnings.append(
            f"Non-standard channel(s) {', '.join(extra)} are kept aside in metadata['extra_leads']."
        )
    if not leads:
        names = ", ".join(record.sig_name)
        raise EcgReadError(header, f"none of the channels ({names}) is a 12-lead ECG lead.")
    return assemble_record(
        leads, float(record.fs), path=header, fmt=FORMAT, patient=patient, acquired=acquired,
        metadata=metadata, warnings=warnings,
    )
