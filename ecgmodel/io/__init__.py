"""ECG file readers: one entry point, :func:`read`, that detects the format from the file's content.

Every reader returns the same :class:`~ecgmodel.types.EcgRecord`: float32 millivolts, shape (12, n),
rows in :data:`~ecgmodel.types.STANDARD_LEADS` order, derived limb leads listed in ``derived_leads``,
unobtainable leads as NaN rows listed in ``missing_leads`` (with a warning).
"""

from __future__ import annotations

import os
from collections.abc import Callable

from ..types import EcgRecord
from .common import MAX_FILE_BYTES, MIN_DURATION_S, derive_limb_leads, standard_lead_name
from .detect import DICOM, GE_MUSE_XML, HL7_AECG, PHILIPS_XML, WFDB, detect_format
from .summary import describe, lead_sanity

__all__ = [
    "FORMATS", "MAX_FILE_BYTES", "MIN_DURATION_S", "SUPPORTED_EXTENSIONS", "derive_limb_leads",
    "describe", "detect_format", "lead_sanity", "read", "standard_lead_name",
]

#: Format names :func:`detect_format` returns.
FORMATS: tuple[str, ...] = (WFDB, PHILIPS_XML, HL7_AECG, GE_MUSE_XML, DICOM)

#: File extensions (lower case, with dot) for the viewer's open dialog; content decides the format.
SUPPORTED_EXTENSIONS: tuple[str, ...] = (".hea", ".dat", ".mat", ".xml", ".dcm")


def _reader_for(fmt: str) -> Callable[[str | os.PathLike[str]], EcgRecord]:
    if fmt == WFDB:
        from .wfdb_reader import read_wfdb

        return read_wfdb
    if fmt == GE_MUSE_XML:
        from .ge_muse import read_ge_muse

        return read_ge_muse
    if fmt == PHILIPS_XML:
        from .philips import read_philips

        return read_philips
    if fmt == HL7_AECG:
        from .hl7_aecg import read_hl7_aecg

        return read_hl7_aecg
    if fmt == DICOM:
        from .dicom import read_dicom

        return read_dicom
    raise ValueError(f"unknown ECG format name {fmt!r}")


def read(path: str | os.PathLike[str]) -> EcgRecord:
    """Read any supported ECG file into an :class:`EcgRecord` (mV, 12 standard leads).

    The format is detected from the content (see :func:`detect_format`). Raises
    :class:`~ecgmodel.errors.EcgReadError` subclasses with one sentence naming the file and the problem.
    """
    fmt = detect_format(path)
    record = _reader_for(fmt)(path)
    if fmt == "wfdb" and (record.patient.age is None or record.patient.sex is None):
        from ..datasets import add_ptbxl_context  # PTB-XL keeps demographics in a table, not the header

        add_ptbxl_context(record, path)
    return record
