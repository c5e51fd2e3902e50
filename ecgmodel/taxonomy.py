"""Label taxonomy for annotation boxes: built-in localization labels, PTB-XL statements, free text.

A box's ``label`` is a :class:`Label` ``code`` from the active taxonomy or free text written as
``"other: <text>"`` (:func:`other_label`). The built-in list needs no data files; the 71 SCP-ECG
statements of PTB-XL are added from its ``scp_statements.csv`` when a path is given. A team's own
taxonomy is a JSON file (:func:`save_taxonomy` / :func:`load_taxonomy`).
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from .errors import EcgLensError

#: Prefix of free-text labels: ``"other: fusion beat?"``.
OTHER_PREFIX = "other: "
#: ``"format"`` value of a taxonomy JSON file.
TAXONOMY_FORMAT = "ecglens-taxonomy"
TAXONOMY_VERSION = 1

LOCALIZATION = "localization"
SCP_GROUPS = ("scp-diagnostic", "scp-form", "scp-rhythm")


class TaxonomyError(EcgLensError):
    """A taxonomy file or statements table cannot be used; the message names the file."""


@dataclass(frozen=True)
class Label:
    """One annotation label: short stable ``code`` (stored in boxes), English ``name``, ``group``."""

    code: str
    name: str
    group: str

    def __post_init__(self) -> None:
        for key in ("code", "name", "group"):
            value = getattr(self, key)
            if not isinstance(value, str) or not value.strip():
                raise TaxonomyError(f"a label needs a non-empty {key}, got {value!r}")
        if self.code.lower().startswith(OTHER_PREFIX.strip()):
            raise TaxonomyError(f"label code {self.code!r} is reserved for free text ('other: ...')")


#: The most useful localization labels; codes shared with SCP-ECG (PVC, PAC) mean the same thing.
BUILTIN_LABELS: tuple[Label, ...] = (
    Label("PVC", "premature ventricular complex", LOCALIZATION),
    Label("PAC", "premature atrial complex", LOCALIZATION),
    Label("ST_ELEV", "ST elevation", LOCALIZATION),
    Label("ST_DEPR", "ST depression", LOCALIZATION),
    Label("T_INV", "T-wave inversion", LOCALIZATION),
    Label("WIDE_QRS", "wide QRS complex", LOCALIZATION),
    Label("PATH_Q", "pathological Q wave", LOCALIZATION),
    Label("AF_SEGMENT", "atrial fibrillation segment", LOCALIZATION),
    Label("NOISE", "noise / artefact", LOCALIZATION),
    Label("PACING_SPIKE", "pacing spike", LOCALIZATION),
)


def other_label(text: str) -> str:
    """The free-text label for ``text``: ``"other: <text>"`` (whitespace trimmed; must not be empty)."""
    body = text.strip()
    if body.lower().startswith(OTHER_PREFIX.strip()):
        body = body[len(OTHER_PREFIX.strip()):].strip()
    if not body:
        raise TaxonomyError("a free-text label needs some text after 'other:'")
    return OTHER_PREFIX + body


def is_other_label(label: str) -> bool:
    """True for a free-text label (``"other: ..."``)."""
    return label.lower().startswith(OTHER_PREFIX.strip()) and bool(label[len(OTHER_PREFIX.strip()):].strip())


def find_label(code: str, labels: Iterable[Label]) -> Label | None:
    """The label with this code, or None (free-text labels are not in any taxonomy)."""
    return next((label for label in labels if label.code == code), None)


def is_known_label(label: str, labels: Iterable[Label]) -> bool:
    """True if ``label`` is a code of ``labels`` or a free-text ``"other: ..."`` label."""
    return is_other_label(label) or find_label(label, labels) is not None


def _flag(value: str | None) -> bool:
    try:
        return float(value or 0) == 1.0
    except ValueError:
        return False


def scp_labels(scp_statements_csv: str | os.PathLike[str]) -> list[Label]:
    """The statements of PTB-XL's ``scp_statements.csv`` (code, English description, kind), file order.

    ``group`` is ``scp-diagnostic``, ``scp-form`` or ``scp-rhythm`` (first flag set, in that order).
    """
    path = Path(scp_statements_csv)
    try:
        with open(path, encoding="utf-8", newline="") as stream:
            rows = list(csv.DictReader(stream))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise TaxonomyError(f"{path}: cannot read SCP statements table ({exc})") from exc
    if not rows or "description" not in rows[0] or "" not in rows[0]:
        raise TaxonomyError(f"{path}: not PTB-XL's scp_statements.csv (needs an index and 'description')")
    labels = []
    for row in rows:
        flags = (row.get("diagnostic"), row.get("form"), row.get("rhythm"))
        kinds = [group for group, flag in zip(SCP_GROUPS, flags) if _flag(flag)]
        if row[""].strip() and (row["description"] or "").strip():
            labels.append(Label(row[""].strip(), row["description"].strip(), kinds[0] if kinds else "scp"))
    return labels


def default_labels(scp_statements_csv: str | os.PathLike[str] | None = None) -> list[Label]:
    """Built-in localization labels, then (if a path is given) the PTB-XL statements not already listed."""
    labels = list(BUILTIN_LABELS)
    if scp_statements_csv is not None:
        known = {label.code for label in labels}
        labels += [label for label in scp_labels(scp_statements_csv) if label.code not in known]
    return labels


def _check_unique(labels: list[Label], where: object) -> None:
    codes = [label.code for label in labels]
    duplicates = sorted({code for code in codes if codes.count(code) > 1})
    if duplicates:
        raise TaxonomyError(f"{where}: label codes must be unique; repeated: {', '.join(duplicates)}")


def save_taxonomy(path: str | os.PathLike[str], labels: Iterable[Label]) -> Path:
    """Write a taxonomy JSON file atomically; returns its path."""
    from .annotations import atomic_write_bytes

    path = Path(path)
    labels = list(labels)
    _check_unique(labels, path)
    doc = {
        "format": TAXONOMY_FORMAT, "version": TAXONOMY_VERSION,
        "labels": [{"code": label.code, "name": label.name, "group": label.group} for label in labels],
    }
    atomic_write_bytes(path, (json.dumps(doc, indent=1, ensure_ascii=False) + "\n").encode("utf-8"))
    return path


def load_taxonomy(path: str | os.PathLike[str]) -> list[Label]:
    """Read a taxonomy JSON file written by :func:`save_taxonomy` (or by hand in the same layout)."""
    path = Path(path)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise TaxonomyError(f"{path}: cannot read taxonomy ({exc})") from exc
    if not isinstance(doc, dict) or doc.get("format") != TAXONOMY_FORMAT:
        raise TaxonomyError(f"{path}: not an ECG Lens taxonomy (no \"format\": \"{TAXONOMY_FORMAT}\")")
    version = doc.get("version")
    if not isinstance(version, int) or version > TAXONOMY_VERSION:
        raise TaxonomyError(f"{path}: taxonomy version {version!r} is newer than this app; update the app")
    try:
        labels = [Label(str(item["code"]), str(item["name"]), str(item["group"])) for item in doc["labels"]]
    except (KeyError, TypeError) as exc:
        raise TaxonomyError(f"{path}: malformed label entry ({exc})") from None
    _check_unique(labels, path)
    return labels
