"""Which ECG format a file is in, decided from its content (magic bytes, XML root, WFDB header text)."""

from __future__ import annotations

import os
import re
from pathlib import Path

from ..errors import UnsupportedFormatError
from .common import check_readable_file

WFDB = "wfdb"
PHILIPS_XML = "philips-xml"
HL7_AECG = "hl7-aecg"
GE_MUSE_XML = "ge-muse-xml"
DICOM = "dicom"

#: XML root element (lower case, namespace stripped) -> format name.
_XML_ROOTS = {"restingecgdata": PHILIPS_XML, "annotatedecg": HL7_AECG, "restingecg": GE_MUSE_XML}
_SNIFF_BYTES = 64 * 1024
# First line of a WFDB header: record name [/segments] n_signals [fs ...]
_WFDB_RECORD_LINE = re.compile(r"^[\w\-.~]+(/\d+)?\s+\d+(\s+[\d.eE+\-/():]+)*\s*$")


def _first_xml_element(head: bytes) -> str | None:
    """Local name of the first element of an XML document (skips prolog, comments, DOCTYPE), or None."""
    text = head.decode("utf-8", errors="replace") if not head.startswith((b"\xff\xfe", b"\xfe\xff")) \
        else head.decode("utf-16", errors="replace")
    text = text.lstrip("\ufeff \t\r\n")
    if not text.startswith("<"):
        return None
    text = re.sub(r"<\?.*?\?>", "", text, flags=re.DOTALL)
    text = re.sub(r"<!--.*?-->", "", text, flags=re.DOTALL)
    text = re.sub(r"<!DOCTYPE[^\[>]*(\[.*?\])?\s*>", "", text, flags=re.DOTALL)
    match = re.search(r"<\s*([A-Za-z_][\w.\-]*:)?([A-Za-z_][\w.\-]*)", text)
    return match.group(2) if match else None


def _looks_like_wfdb_header(head: bytes) -> bool:
    try:
        text = head.decode("ascii")
    except UnicodeDecodeError:
        return False
    for line in text.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            return bool(_WFDB_RECORD_LINE.match(line.strip()))
    return False


def detect_format(path: str | os.PathLike[str]) -> str:
    """Format name of an ECG file from its content: "wfdb", "philips-xml", "hl7-aecg", "ge-muse-xml", "dicom".

    A WFDB signal file (``.dat``/``.mat``) counts as "wfdb" when its ``.hea`` header lies beside it.
    Raises :class:`UnsupportedFormatError` (one sentence naming the file) for anything else.
    """
    file_path = Path(path)
    if file_path.suffix.lower() in (".dat", ".mat", ".xyz") and file_path.with_suffix(".hea").is_file():
        return WFDB
    if not file_path.suffix and file_path.with_suffix(".hea").is_file():
        return WFDB
    check_readable_file(file_path)
    with open(file_path, "rb") as handle:
        head = handle.read(_SNIFF_BYTES)
    if head[128:132] == b"DICM":
        return DICOM
    root = _first_xml_element(head)
    if root is not None:
        fmt = _XML_ROOTS.get(root.lower())
        if fmt is None:
            raise UnsupportedFormatError(
                file_path, f"this XML document (root element <{root}>) is not an ECG format ECG Lens reads."
            )
        return fmt
    if _looks_like_wfdb_header(head):
        return WFDB
    if head[16:22] == b"SCPECG":
        raise UnsupportedFormatError(
            file_path, "this is an SCP-ECG file, a format ECG Lens does not read yet."
        )
    raise UnsupportedFormatError(
        file_path,
        "the content is not a recognised ECG format (WFDB, GE MUSE XML, Philips XML, HL7 aECG or DICOM).",
    )
