"""Ground-truth localization boxes on ECGs, stored so that an annotator never loses work.

- :class:`Box` / :class:`AnnotationSet`: immutable, validated dataclasses (times in seconds on the
  record's own time axis, standard lead names or ``"all"``).
- Storage: one versioned JSON sidecar per ECG file (``<ecg file name>.annotations.json``, next to the
  ECG or in a project folder when the ECG folder is read-only). :func:`save` is atomic and keeps the
  previous version as ``<sidecar>.bak``; :func:`load` refuses damaged, foreign and too-new sidecars with
  an :class:`AnnotationError` naming the file and what to do, and :func:`save` never replaces a sidecar
  it could not read unless forced.
- :func:`record_sha256`: identity of the ECG file (for WFDB: the header then its signal files).
- :func:`export_table` / :func:`import_table` (CSV, or Parquet with pyarrow), :func:`export_wfdb` /
  :func:`import_wfdb` (WFDB annotation file, extension ``ecglens``).
- :class:`AnnotationHistory`: undo/redo of add, move, resize, relabel and delete for the annotation mode.

The format is specified in ``docs/annotations.md``.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as _dt
import hashlib
import io
import json
import math
import os
import tempfile
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

from .errors import EcgLensError, EcgReadError
from .types import STANDARD_LEADS

#: Version of the sidecar layout this code writes; older versions are migrated on load.
SCHEMA_VERSION = 2
#: Value of the ``"format"`` key that marks a JSON file as an ECG Lens annotation sidecar.
FORMAT_ID = "ecglens-annotations"
#: Appended to the ECG file name to name its sidecar: ``00001_hr.hea`` -> ``00001_hr.hea.annotations.json``.
SIDECAR_SUFFIX = ".annotations.json"
#: Appended to a sidecar's name for the previous version kept by :func:`save`.
BACKUP_SUFFIX = ".bak"
#: Pseudo-lead meaning "every lead".
ALL_LEADS = "all"
#: WFDB annotation file extension written by :func:`export_wfdb`.
WFDB_EXTENSION = "ecglens"

TABLE_COLUMNS: tuple[str, ...] = (
    "record_file", "record_sha256", "record_name", "annotator", "box_id", "label", "leads",
    "t_start", "t_end", "note", "author", "created", "modified", "set_created", "set_modified",
    "app_version",
)

_MIGRATED_ID_NAMESPACE = uuid.UUID("6f1d2c34-8a4e-4e0b-9a55-2f7c0e1b9d10")


# ---------------------------------------------------------------------------------------------- errors


class AnnotationError(EcgLensError):
    """An annotation or sidecar problem. ``str(err)`` names the file (if any) and what to do."""

    def __init__(self, message: str, path: object = None):
        self.path = str(path) if path is not None else None
        super().__init__(f"{self.path}: {message}" if self.path else message)


class SidecarUnreadableError(AnnotationError):
    """A sidecar exists but is refused (damaged, for another ECG, or from a newer app); it is left as is."""


class SidecarDamagedError(SidecarUnreadableError):
    """The sidecar is not valid JSON or not a valid annotation set."""


class SidecarTooNewError(SidecarUnreadableError):
    """The sidecar was written by a newer ECG Lens (higher schema version)."""


class SidecarMismatchError(SidecarUnreadableError):
    """The sidecar belongs to a different ECG file (record hash mismatch)."""


class SaveRefusedError(AnnotationError):
    """:func:`save` did not replace an existing sidecar it could not read (use ``force=True``)."""


# ---------------------------------------------------------------------------------------------- types


def utc_now_iso() -> str:
    """Current time as ISO-8601 UTC with milliseconds, e.g. ``2024-05-01T12:34:56.789Z``."""
    now = _dt.datetime.now(_dt.UTC)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"


def _parse_timestamp(text: object, what: str) -> _dt.datetime:
    if not isinstance(text, str):
        raise AnnotationError(f"{what} must be an ISO-8601 UTC timestamp string, got {text!r}")
    try:
        moment = _dt.datetime.fromisoformat(text)
    except ValueError:
        raise AnnotationError(f"{what} is not an ISO-8601 timestamp: {text!r}") from None
    if moment.tzinfo is None:
        raise AnnotationError(f"{what} has no time zone (expected UTC, e.g. ...Z): {text!r}")
    return moment


def _as_seconds(value: object, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise AnnotationError(f"{what} must be a number of seconds, got {value!r}")
    seconds = float(value)
    if not math.isfinite(seconds):
        raise AnnotationError(f"{what} must be finite, got {value!r}")
    return seconds


def normalize_leads(leads: Iterable[str] | str) -> tuple[str, ...]:
    """Leads as a tuple in canonical order; accepts any case (``"AVR"``) and ``"all"`` alone.

    Raises :class:`AnnotationError` for an empty set, an unknown name or ``"all"`` mixed with leads.
    """
    names = [leads] if isinstance(leads, str) else list(leads)
    by_lower = {name.lower(): name for name in STANDARD_LEADS}
    chosen: set[str] = set()
    for name in names:
        if not isinstance(name, str):
            raise AnnotationError(f"lead names must be strings, got {name!r}")
        key = name.strip().lower()
        if key == ALL_LEADS:
            chosen.add(ALL_LEADS)
        elif key in by_lower:
            chosen.add(by_lower[key])
        else:
            raise AnnotationError(f"unknown lead {name!r}; use {', '.join(STANDARD_LEADS)} or 'all'")
    if not chosen:
        raise AnnotationError("a box needs at least one lead (or 'all')")
    if ALL_LEADS in chosen:
        if len(chosen) > 1:
            raise AnnotationError("'all' cannot be combined with individual leads")
        return (ALL_LEADS,)
    return tuple(name for name in STANDARD_LEADS if name in chosen)


@dataclass(frozen=True)
class Box:
    """One localization mark: a time span (``t_start == t_end`` for a point mark) on some leads.

    ``leads`` are standard names in canonical order, or ``("all",)``; times are seconds from the start
    of the record; ``label`` is a taxonomy code or ``"other: <free text>"``; ``created``/``modified``
    are ISO-8601 UTC; ``id`` a UUID that stays with the box through edits, exports and imports.
    Use :func:`make_box` to create one with a fresh id and timestamps.
    """

    leads: tuple[str, ...]
    t_start: float
    t_end: float
    label: str
    author: str
    created: str
    modified: str
    id: str
    note: str = ""

    def __post_init__(self) -> None:
        t_start = _as_seconds(self.t_start, "t_start")
        t_end = _as_seconds(self.t_end, "t_end")
        if t_start < 0:
            raise AnnotationError(f"t_start must be >= 0 s, got {t_start}")
        if t_end < t_start:
            raise AnnotationError(f"t_end ({t_end} s) must be >= t_start ({t_start} s)")
        if not isinstance(self.label, str) or not self.label.strip():
            raise AnnotationError("a box needs a non-empty label")
        for name in ("author", "note"):
            if not isinstance(getattr(self, name), str):
                raise AnnotationError(f"{name} must be a string, got {getattr(self, name)!r}")
        leads = tuple(self.leads) if not isinstance(self.leads, str) else (self.leads,)
        if normalize_leads(leads) != leads:
            raise AnnotationError(
                f"leads {leads!r} must be distinct standard names in canonical order or ('all',); "
                "use normalize_leads()"
            )
        _parse_timestamp(self.created, "created")
        _parse_timestamp(self.modified, "modified")
        try:
            uuid.UUID(str(self.id))
        except ValueError:
            raise AnnotationError(f"box id must be a UUID, got {self.id!r}") from None
        object.__setattr__(self, "t_start", t_start)
        object.__setattr__(self, "t_end", t_end)
        object.__setattr__(self, "leads", leads)

    @property
    def is_point(self) -> bool:
        """True for a point mark (``t_start == t_end``)."""
        return self.t_start == self.t_end

    @property
    def duration_s(self) -> float:
        return self.t_end - self.t_start


def make_box(
    leads: Iterable[str] | str, t_start: float, t_end: float, label: str, author: str, note: str = ""
) -> Box:
    """A new validated box with a fresh uuid4 and ``created == modified == now``; leads normalized."""
    now = utc_now_iso()
    label = label.strip() if isinstance(label, str) else label
    return Box(
        leads=normalize_leads(leads), t_start=t_start, t_end=t_end, label=label, author=author,
        created=now, modified=now, id=str(uuid.uuid4()), note=note,
    )


def _app_version() -> str:
    from . import __version__

    return __version__


@dataclass(frozen=True)
class AnnotationSet:
    """All boxes of one ECG file: identity of the file (sha256, name), owner, boxes, provenance.

    Immutable: edit with :func:`with_box_added`, :func:`with_box_changed`, :func:`without_box` (or an
    :class:`AnnotationHistory`). ``schema_version`` is always :data:`SCHEMA_VERSION` in memory.
    """

    record_sha256: str
    record_name: str
    annotator: str
    boxes: tuple[Box, ...] = ()
    schema_version: int = SCHEMA_VERSION
    created: str = field(default_factory=utc_now_iso)
    modified: str = ""
    app_version: str = field(default_factory=_app_version)

    def __post_init__(self) -> None:
        sha = self.record_sha256
        if not (isinstance(sha, str) and len(sha) == 64 and all(c in "0123456789abcdef" for c in sha)):
            raise AnnotationError(f"record_sha256 must be 64 lower-case hex digits, got {sha!r}")
        for name in ("record_name", "annotator", "app_version"):
            if not isinstance(getattr(self, name), str):
                raise AnnotationError(f"{name} must be a string, got {getattr(self, name)!r}")
        if self.schema_version != SCHEMA_VERSION:
            raise AnnotationError(
                f"an in-memory annotation set has schema {SCHEMA_VERSION}, got {self.schema_version}"
            )
        boxes = tuple(self.boxes)
        if any(not isinstance(box, Box) for box in boxes):
            raise AnnotationError("boxes must be Box instances")
        ids = [box.id for box in boxes]
        if len(set(ids)) != len(ids):
            raise AnnotationError("two boxes share the same id")
        _parse_timestamp(self.created, "created")
        if not self.modified:
            object.__setattr__(self, "modified", self.created)
        _parse_timestamp(self.modified, "modified")
        object.__setattr__(self, "boxes", boxes)

    def box(self, box_id: str) -> Box:
        """The box with this id; :class:`AnnotationError` if absent."""
        for box in self.boxes:
            if box.id == box_id:
                return box
        raise AnnotationError(f"no box with id {box_id} in the annotations of {self.record_name}")


def with_box_added(aset: AnnotationSet, box: Box) -> AnnotationSet:
    """A copy of ``aset`` with ``box`` appended (its id must be new) and ``modified`` = now."""
    return dataclasses.replace(aset, boxes=aset.boxes + (box,), modified=utc_now_iso())


def with_box_changed(aset: AnnotationSet, box_id: str, **changes: Any) -> AnnotationSet:
    """A copy with one box's fields replaced (leads normalized, box and set ``modified`` = now)."""
    old = aset.box(box_id)
    if "leads" in changes:
        changes["leads"] = normalize_leads(changes["leads"])
    forbidden = set(changes) & {"id", "created", "modified"}
    if forbidden:
        raise AnnotationError(f"cannot change {', '.join(sorted(forbidden))} of a box")
    now = utc_now_iso()
    new = dataclasses.replace(old, modified=now, **changes)
    boxes = tuple(new if box.id == box_id else box for box in aset.boxes)
    return dataclasses.replace(aset, boxes=boxes, modified=now)


def without_box(aset: AnnotationSet, box_id: str) -> AnnotationSet:
    """A copy without the box ``box_id`` and ``modified`` = now."""
    aset.box(box_id)
    boxes = tuple(box for box in aset.boxes if box.id != box_id)
    return dataclasses.replace(aset, boxes=boxes, modified=utc_now_iso())


# ---------------------------------------------------------------------------------------- record identity


def ecg_file(ecg_path: str | os.PathLike[str]) -> Path:
    """The file that names an ECG: a WFDB record given as ``x``, ``x.dat`` or ``x.hea`` -> ``x.hea``."""
    path = Path(ecg_path)
    if path.suffix.lower() == ".hea":
        return path
    header = path.with_suffix(".hea") if path.suffix.lower() == ".dat" else Path(f"{path}.hea")
    if header.is_file() and (path.suffix.lower() == ".dat" or not path.is_file()):
        return header
    return path


def record_name_of(ecg_path: str | os.PathLike[str]) -> str:
    """Display name of a record: file name without extension (``00001_hr``, ``muse-sinus``)."""
    return ecg_file(ecg_path).stem


def _header_lines(text: str) -> Iterator[list[str]]:
    for line in text.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            yield stripped.split()


def wfdb_files(header_path: str | os.PathLike[str]) -> list[Path]:
    """The files of a WFDB record in hashing order: header, then its signal files in header order.

    A multi-segment record lists its header, then each segment's files (same rule) in segment order.
    """
    header = Path(header_path)
    try:
        text = header.read_text(encoding="latin-1")
    except OSError as exc:
        raise EcgReadError(header, f"cannot read WFDB header ({exc.strerror or exc})") from exc
    lines = list(_header_lines(text))
    if not lines:
        raise EcgReadError(header, "WFDB header has no record line")
    record_line, rest = lines[0], lines[1:]
    files = [header]
    if "/" in record_line[0]:
        n_segments = int(record_line[0].split("/", 1)[1])
        for tokens in rest[:n_segments]:
            if tokens[0] != "~":
                files += wfdb_files(header.parent / f"{tokens[0]}.hea")
        return files
    n_signals = int(record_line[1]) if len(record_line) > 1 else 0
    seen: set[str] = set()
    for tokens in rest[:n_signals]:
        if tokens[0] not in seen:
            seen.add(tokens[0])
            signal_file = header.parent / tokens[0]
            if not signal_file.is_file():
                raise EcgReadError(header, f"signal file {tokens[0]!r} named in the header is missing")
            files.append(signal_file)
    return files


def record_sha256(ecg_path: str | os.PathLike[str]) -> str:
    """SHA-256 (hex) identifying an ECG file's content.

    One file (XML, DICOM, ...): the hash of its bytes, as ``sha256sum file``. WFDB (``x``, ``x.hea``
    or ``x.dat``): the hash of the header bytes followed by each signal file's bytes in header order,
    as ``cat x.hea x.dat | sha256sum``.
    """
    path = ecg_file(ecg_path)
    files = wfdb_files(path) if path.suffix.lower() == ".hea" else [path]
    digest = hashlib.sha256()
    for file in files:
        try:
            with open(file, "rb") as stream:
                for chunk in iter(lambda stream=stream: stream.read(1 << 20), b""):
                    digest.update(chunk)
        except OSError as exc:
            raise EcgReadError(file, f"cannot read ECG file to identify it ({exc.strerror or exc})") from exc
    return digest.hexdigest()


def new_annotation_set(ecg_path: str | os.PathLike[str], annotator: str) -> AnnotationSet:
    """An empty annotation set for an ECG file (hash computed from the file)."""
    return AnnotationSet(
        record_sha256=record_sha256(ecg_path), record_name=record_name_of(ecg_path), annotator=annotator
    )


# ---------------------------------------------------------------------------------------------- location


@dataclass(frozen=True)
class SidecarLocation:
    """Where a record's sidecar lives and why: ``next_to_ecg`` False means the project folder."""

    path: Path
    next_to_ecg: bool
    reason: str


def _can_write_in(folder: Path) -> bool:
    """True if a file can really be created in ``folder`` (probe file, then removed)."""
    try:
        handle, probe = tempfile.mkstemp(prefix=".ecglens-probe-", dir=folder)
    except OSError:
        return False
    os.close(handle)
    try:
        os.unlink(probe)
    except OSError:
        pass
    return True


def locate_sidecar(
    ecg_path: str | os.PathLike[str], project_dir: str | os.PathLike[str] | None = None
) -> SidecarLocation:
    """Decide where the sidecar of an ECG is read from and saved to.

    Order: an existing sidecar next to the ECG; an existing one in ``project_dir``; next to the ECG if
    its folder is writable; else ``project_dir``. Raises :class:`AnnotationError` when the ECG folder
    is read-only and no project folder was given.
    """
    ecg = ecg_file(ecg_path)
    name = ecg.name + SIDECAR_SUFFIX
    beside = ecg.parent / name
    in_project = Path(project_dir) / name if project_dir is not None else None
    if beside.exists():
        return SidecarLocation(beside, True, "existing sidecar next to the ECG")
    if in_project is not None and in_project.exists():
        return SidecarLocation(in_project, False, "existing sidecar in the project folder")
    if _can_write_in(ecg.parent):
        return SidecarLocation(beside, True, "next to the ECG")
    if in_project is None:
        raise AnnotationError(
            "the ECG folder is read-only, so annotations cannot be stored next to it; choose a project "
            "folder for annotations", ecg.parent,
        )
    return SidecarLocation(in_project, False, f"the ECG folder {ecg.parent} is read-only")


def sidecar_path(ecg_path: str | os.PathLike[str], project_dir: str | os.PathLike[str] | None = None) -> Path:
    """Path of the sidecar of an ECG (see :func:`locate_sidecar` for the fallback rule)."""
    return locate_sidecar(ecg_path, project_dir).path


def backup_path(sidecar: str | os.PathLike[str]) -> Path:
    """``<sidecar>.bak``: the previous version kept by :func:`save`."""
    return Path(f"{sidecar}{BACKUP_SUFFIX}")


# ------------------------------------------------------------------------------------------- (de)serialize


def _box_to_json(box: Box) -> dict[str, Any]:
    return {
        "id": box.id, "leads": list(box.leads), "t_start": box.t_start, "t_end": box.t_end,
        "label": box.label, "note": box.note, "author": box.author, "created": box.created,
        "modified": box.modified,
    }


def to_json_dict(aset: AnnotationSet) -> dict[str, Any]:
    """The sidecar document (schema :data:`SCHEMA_VERSION`) of an annotation set."""
    return {
        "format": FORMAT_ID, "schema_version": SCHEMA_VERSION, "record_sha256": aset.record_sha256,
        "record_name": aset.record_name, "annotator": aset.annotator, "created": aset.created,
        "modified": aset.modified, "app_version": aset.app_version,
        "boxes": [_box_to_json(box) for box in aset.boxes],
    }


def _migrate_1_to_2(doc: dict[str, Any]) -> dict[str, Any]:
    """Schema 1 (architecture-card draft): boxes without id/modified/note, set without modified."""
    boxes = []
    for index, old in enumerate(doc.get("boxes", [])):
        if not isinstance(old, dict):
            raise AnnotationError(f"box {index} is not an object")
        seed = "|".join(str(part) for part in (
            doc.get("record_sha256"), index, old.get("label"), old.get("t_start"), old.get("t_end")))
        boxes.append({
            **old, "id": str(uuid.uuid5(_MIGRATED_ID_NAMESPACE, seed)), "note": old.get("note", ""),
            "modified": old.get("created"),
        })
    return {**doc, "schema_version": 2, "boxes": boxes, "modified": doc.get("modified", doc.get("created")),
            "app_version": doc.get("app_version", "unknown")}


#: ``{n: function turning a schema-n document into schema n+1}``.
_MIGRATIONS: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {1: _migrate_1_to_2}


def from_json_dict(doc: Any, expected_sha256: str | None = None, path: object = None) -> AnnotationSet:
    """An :class:`AnnotationSet` from a sidecar document of any known schema (migrating older ones)."""
    where = Path(str(path)) if path is not None else None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT_ID:
        raise _damaged(where, f"not an ECG Lens annotation file (no \"format\": \"{FORMAT_ID}\")")
    version = doc.get("schema_version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise _damaged(where, f"invalid schema_version {version!r}")
    if version > SCHEMA_VERSION:
        raise SidecarTooNewError(
            f"made by a newer ECG Lens (schema {version}; this app reads schema {SCHEMA_VERSION} and "
            "older); update the app to open it. The file was left untouched.", where,
        )
    try:
        while version < SCHEMA_VERSION:
            doc = _MIGRATIONS[version](doc)
            version = doc["schema_version"]
        sha = doc["record_sha256"]
        if expected_sha256 is not None and sha != expected_sha256:
            raise SidecarMismatchError(
                f"belongs to a different ECG file (hash mismatch: sidecar is for {str(sha)[:12]}..., "
                f"this ECG is {expected_sha256[:12]}...); the ECG changed or the sidecar was put next to "
                "the wrong file. It was left untouched; move it away to annotate this ECG.", where,
            )
        raw_boxes = doc["boxes"]
        if not isinstance(raw_boxes, list):
            raise AnnotationError("'boxes' is not a list")
        boxes = []
        for index, raw in enumerate(raw_boxes):
            try:
                boxes.append(Box(
                    leads=tuple(raw["leads"]), t_start=raw["t_start"], t_end=raw["t_end"],
                    label=raw["label"], author=raw["author"], created=raw["created"],
                    modified=raw["modified"], id=raw["id"], note=raw.get("note", ""),
                ))
            except (KeyError, TypeError) as exc:
                raise AnnotationError(f"box {index}: missing or malformed field {exc}") from None
            except AnnotationError as exc:
                raise AnnotationError(f"box {index}: {exc}") from None
        return AnnotationSet(
            record_sha256=sha, record_name=doc["record_name"], annotator=doc["annotator"],
            boxes=tuple(boxes), created=doc["created"], modified=doc["modified"],
            app_version=doc["app_version"],
        )
    except SidecarUnreadableError:
        raise
    except KeyError as exc:
        raise _damaged(where, f"missing field {exc}") from None
    except (AnnotationError, TypeError, ValueError) as exc:
        raise _damaged(where, str(exc)) from None


def _damaged(path: Path | None, detail: str) -> SidecarDamagedError:
    if path is None:
        return SidecarDamagedError(f"annotation data is damaged ({detail})")
    backup = backup_path(path)
    if backup.exists():
        advice = (f"the previous version is at {backup}; rename it to {path.name} to restore it "
                  "(the damaged file was left untouched)")
    else:
        advice = "no previous version (.bak) exists; the damaged file was left untouched for repair"
    return SidecarDamagedError(f"is damaged ({detail}); {advice}", path)


def load(path: str | os.PathLike[str], expected_sha256: str | None = None) -> AnnotationSet:
    """Read a sidecar; older schemas are migrated in memory (the file is only rewritten by a save).

    Refuses with a :class:`SidecarUnreadableError` subclass (naming the file and what to do) a damaged
    file, one from a newer schema, or one whose ``record_sha256`` differs from ``expected_sha256``.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise AnnotationError("no annotation sidecar here", path) from None
    except OSError as exc:
        raise AnnotationError(f"cannot read annotation sidecar ({exc.strerror or exc})", path) from exc
    try:
        doc = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _damaged(path, f"not valid JSON: {exc}") from None
    return from_json_dict(doc, expected_sha256, path)


# ------------------------------------------------------------------------------------------------- saving


def _fsync_folder(folder: Path) -> None:
    if os.name == "nt":
        return
    try:
        handle = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(handle)
    except OSError:
        pass
    finally:
        os.close(handle)


def _replace(source: Path | str, target: Path) -> None:
    """``os.replace`` with a few retries on Windows, where a reader (antivirus) can briefly lock files."""
    for attempt in range(5):
        try:
            os.replace(source, target)
            return
        except PermissionError:
            if os.name != "nt" or attempt == 4:
                raise
            time.sleep(0.05 * (attempt + 1))


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` so that ``path`` holds either its old or its new content, never a mix.

    A temp file in the same folder is written, flushed and fsynced, then renamed over ``path``
    (``os.replace``); the temp file is removed on any failure.
    """
    path = Path(path)
    handle, temp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        try:
            view = memoryview(data)
            while view:
                written = os.write(handle, view[: 1 << 20])
                view = view[written:]
            os.fsync(handle)
        finally:
            os.close(handle)
        _replace(temp_name, path)
    except BaseException:
        try:
            os.unlink(temp_name)
        except OSError:
            pass
        raise
    _fsync_folder(path.parent)


def serialize(aset: AnnotationSet) -> bytes:
    """The sidecar bytes (UTF-8 JSON, one-space indent, trailing newline)."""
    text = json.dumps(to_json_dict(aset), indent=1, ensure_ascii=False, allow_nan=False)
    return (text + "\n").encode("utf-8")


def save(aset: AnnotationSet, path: str | os.PathLike[str], *, force: bool = False) -> Path:
    """Atomically write ``aset`` to the sidecar ``path``; the previous version becomes ``<path>.bak``.

    An existing sidecar that cannot be read as an annotation set of the same ECG (damaged, newer
    schema, other record hash) is not replaced: :class:`SaveRefusedError`. With ``force=True`` it is
    replaced, after a copy of it is kept as ``<path>.refused-<UTC time>`` (``.bak`` is left alone, so the
    last good version survives). Returns ``path``. Any failure leaves the old sidecar intact.
    """
    path = Path(path)
    data = serialize(aset)
    aside: Path | None = None
    if path.exists():
        try:
            load(path, expected_sha256=aset.record_sha256)
        except SidecarUnreadableError as exc:
            stamp = _dt.datetime.now(_dt.UTC).strftime("%Y%m%dT%H%M%SZ")
            aside = Path(f"{path}.refused-{stamp}")
            if not force:
                reason = str(exc).removeprefix(f"{path}: ")
                raise SaveRefusedError(
                    f"not saved, so this existing sidecar is not overwritten; it {reason} "
                    f"To replace it anyway, save with force=True (a copy is kept as {aside.name}).", path,
                ) from exc
    try:
        if path.exists():
            previous = path.read_bytes()
            atomic_write_bytes(aside if aside is not None else backup_path(path), previous)
        atomic_write_bytes(path, data)
    except OSError as exc:
        raise AnnotationError(
            f"could not save annotations ({exc.strerror or exc}); the previous sidecar is unchanged", path
        ) from exc
    return path


@dataclass(frozen=True)
class OpenedAnnotations:
    """What :func:`open_for_record` found: the set, where it is saved, and whether it existed."""

    annotations: AnnotationSet
    location: SidecarLocation
    existed: bool


def open_for_record(
    ecg_path: str | os.PathLike[str], annotator: str, project_dir: str | os.PathLike[str] | None = None
) -> OpenedAnnotations:
    """Load the ECG's sidecar (checked against the file's hash) or start an empty set for it."""
    location = locate_sidecar(ecg_path, project_dir)
    sha = record_sha256(ecg_path)
    if location.path.exists():
        return OpenedAnnotations(load(location.path, expected_sha256=sha), location, True)
    empty = AnnotationSet(record_sha256=sha, record_name=record_name_of(ecg_path), annotator=annotator)
    return OpenedAnnotations(empty, location, False)


# ------------------------------------------------------------------------------------------------- tables


def find_sidecars(folder: str | os.PathLike[str]) -> list[Path]:
    """All sidecars under ``folder`` (recursive), sorted."""
    return sorted(p for p in Path(folder).rglob(f"*{SIDECAR_SUFFIX}") if p.is_file())


def table_rows(folder: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """One dict per box over every sidecar under ``folder`` (columns :data:`TABLE_COLUMNS`).

    ``record_file`` is the ECG file's path relative to ``folder`` (sidecar path minus the suffix, POSIX
    separators). A sidecar that cannot be read raises its :class:`AnnotationError`.
    """
    root = Path(folder)
    rows: list[dict[str, Any]] = []
    for sidecar in find_sidecars(root):
        aset = load(sidecar)
        record_file = sidecar.relative_to(root).as_posix()[: -len(SIDECAR_SUFFIX)]
        for box in aset.boxes:
            rows.append({
                "record_file": record_file, "record_sha256": aset.record_sha256,
                "record_name": aset.record_name, "annotator": aset.annotator, "box_id": box.id,
                "label": box.label, "leads": ";".join(box.leads), "t_start": box.t_start,
                "t_end": box.t_end, "note": box.note, "author": box.author, "created": box.created,
                "modified": box.modified, "set_created": aset.created, "set_modified": aset.modified,
                "app_version": aset.app_version,
            })
    return rows


def _import_pyarrow(path: Path):
    try:
        import pyarrow
        import pyarrow.parquet
    except ImportError:
        raise AnnotationError(
            "Parquet needs the 'pyarrow' package, which is not installed; install it (pip install "
            "pyarrow) or use a .csv path", path,
        ) from None
    return pyarrow, pyarrow.parquet


def export_table(folder: str | os.PathLike[str], out_path: str | os.PathLike[str]) -> int:
    """Write one row per box of every sidecar under ``folder`` to ``out_path``; returns the row count.

    CSV (UTF-8, header row, exact float text) unless ``out_path`` ends with ``.parquet`` (needs pyarrow).
    """
    out = Path(out_path)
    rows = table_rows(folder)
    if out.suffix.lower() == ".parquet":
        pyarrow, parquet = _import_pyarrow(out)
        columns = {name: [row[name] for row in rows] for name in TABLE_COLUMNS}
        table = pyarrow.table(columns)
        sink = io.BytesIO()
        parquet.write_table(table, sink)
        atomic_write_bytes(out, sink.getvalue())
        return len(rows)
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=TABLE_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({key: repr(val) if isinstance(val, float) else val for key, val in row.items()})
    atomic_write_bytes(out, text.getvalue().encode("utf-8"))
    return len(rows)


def _read_table(path: Path) -> list[dict[str, Any]]:
    if path.suffix.lower() == ".parquet":
        _, parquet = _import_pyarrow(path)
        return parquet.read_table(path).to_pylist()
    try:
        with open(path, encoding="utf-8", newline="") as stream:
            return list(csv.DictReader(stream))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise AnnotationError(f"cannot read annotation table ({exc})", path) from exc


@dataclass(frozen=True)
class ImportSummary:
    """What :func:`import_table` did: sidecars written, boxes added and boxes replaced by newer ones."""

    sidecars: tuple[Path, ...]
    boxes_added: int
    boxes_updated: int


def _later(a: str, b: str) -> bool:
    return _parse_timestamp(a, "modified") > _parse_timestamp(b, "modified")


def merge_boxes(existing: Iterable[Box], incoming: Iterable[Box]) -> tuple[tuple[Box, ...], int, int]:
    """Merge by box id: new ids are appended; a known id is replaced only by a later ``modified``.

    Returns ``(boxes, n_added, n_updated)``.
    """
    merged = {box.id: box for box in existing}
    added = updated = 0
    for box in incoming:
        old = merged.get(box.id)
        if old is None:
            added += 1
            merged[box.id] = box
        elif box != old and _later(box.modified, old.modified):
            updated += 1
            merged[box.id] = box
    return tuple(merged.values()), added, updated


def import_table(table_path: str | os.PathLike[str], folder: str | os.PathLike[str]) -> ImportSummary:
    """Recreate sidecars under ``folder`` from a table written by :func:`export_table`.

    Rows are grouped by ``record_file``; each group is merged by box id into the existing sidecar
    (which must be readable and for the same hash) or written as a new one. Where the ECG file itself
    is in ``folder``, its hash must match the table's. Everything is checked before anything is written.
    """
    table = Path(table_path)
    root = Path(folder)
    rows = _read_table(table)
    if rows:
        missing = set(TABLE_COLUMNS) - set(rows[0]) - {"app_version", "note", "set_created", "set_modified"}
        if missing:
            raise AnnotationError(f"not an ECG Lens annotation table (missing {sorted(missing)})", table)
    groups: dict[str, list[tuple[int, dict[str, Any]]]] = {}
    for number, row in enumerate(rows, start=2):
        groups.setdefault(str(row["record_file"]), []).append((number, row))
    plans: list[tuple[Path, AnnotationSet, int, int]] = []
    for record_file, group in groups.items():
        target = (root / f"{record_file}{SIDECAR_SUFFIX}").resolve()
        if Path(record_file).is_absolute() or root.resolve() not in target.parents:
            raise AnnotationError(f"row {group[0][0]}: record_file {record_file!r} leaves the folder", table)
        shas = {str(row["record_sha256"]) for _, row in group}
        if len(shas) != 1:
            raise AnnotationError(f"rows of {record_file} carry different record hashes", table)
        sha = shas.pop()
        ecg = root / record_file
        if ecg.is_file() and record_sha256(ecg) != sha:
            raise AnnotationError(
                f"{record_file} in {root} is not the ECG these rows were made on (hash mismatch); nothing "
                "was imported", table,
            )
        boxes = [_box_from_row(number, row, table) for number, row in group]
        first = group[0][1]
        if target.exists():
            base = load(target, expected_sha256=sha)
        else:
            base = AnnotationSet(
                record_sha256=sha, record_name=str(first["record_name"]), annotator=str(first["annotator"]),
                created=str(first.get("set_created") or utc_now_iso()),
            )
        merged, added, updated = merge_boxes(base.boxes, boxes)
        if added or updated or not target.exists():
            new_set = dataclasses.replace(base, boxes=merged, modified=utc_now_iso())
            plans.append((target, new_set, added, updated))
    for target, new_set, _, _ in plans:
        target.parent.mkdir(parents=True, exist_ok=True)
        save(new_set, target)
    return ImportSummary(
        sidecars=tuple(plan[0] for plan in plans), boxes_added=sum(plan[2] for plan in plans),
        boxes_updated=sum(plan[3] for plan in plans),
    )


def _box_from_row(number: int, row: dict[str, Any], table: Path) -> Box:
    try:
        leads = str(row["leads"]).split(";")
        return Box(
            leads=normalize_leads(leads), t_start=float(row["t_start"]), t_end=float(row["t_end"]),
            label=str(row["label"]), author=str(row["author"] or ""), created=str(row["created"]),
            modified=str(row["modified"]), id=str(row["box_id"]), note=str(row.get("note") or ""),
        )
    except (AnnotationError, KeyError, TypeError, ValueError) as exc:
        raise AnnotationError(f"row {number}: {exc}", table) from None


# --------------------------------------------------------------------------------------------------- WFDB

_AUX_SAFE = " :;,.-_()/+=*'!?[]<>@&~#$"


def _aux_for(box: Box) -> str:
    label = quote(box.label, safe=_AUX_SAFE.replace("=", ""))
    aux = f"{label}|{';'.join(box.leads)}|start={box.t_start!r}|end={box.t_end!r}|id={box.id}"
    if len(aux) > 255:
        raise AnnotationError(f"label of box {box.id} is too long for a WFDB annotation (255 bytes max)")
    return aux


def export_wfdb(
    aset: AnnotationSet, record_path: str | os.PathLike[str], fs: float,
    write_dir: str | os.PathLike[str] | None = None,
) -> Path:
    """Write the boxes as a WFDB annotation file ``<record>.ecglens``; returns its path.

    Each box gives a ``(`` annotation at its start sample with aux_note
    ``"<label>|<leads ;-joined>|start=<s>|end=<s>|id=<uuid>"`` (label percent-encoded, exact times in
    seconds) and, unless it is a point mark, a ``)`` annotation at its end sample with aux ``id=<uuid>``.
    Written next to the record unless ``write_dir`` is given.
    """
    import numpy as np
    import wfdb

    if not (isinstance(fs, int | float) and fs > 0):
        raise AnnotationError(f"sampling rate must be > 0 Hz, got {fs!r}")
    record = ecg_file(record_path)
    folder = Path(write_dir) if write_dir is not None else record.parent
    name = record.stem if record.suffix.lower() == ".hea" else record.name
    marks: list[tuple[int, int, str, str]] = []
    for order, box in enumerate(aset.boxes):
        marks.append((round(box.t_start * fs), 2 * order, "(", _aux_for(box)))
        if not box.is_point:
            marks.append((round(box.t_end * fs), 2 * order + 1, ")", f"id={box.id}"))
    out = folder / f"{name}.{WFDB_EXTENSION}"
    if not marks:
        raise AnnotationError("no boxes to export (WFDB annotation files cannot be empty)", out)
    marks.sort()
    with tempfile.TemporaryDirectory(prefix=".ecglens-wfdb-", dir=folder) as scratch:
        wfdb.wrann(
            name, WFDB_EXTENSION, sample=np.array([m[0] for m in marks], dtype=np.int64),
            symbol=[m[2] for m in marks], aux_note=[m[3] for m in marks], fs=fs, write_dir=scratch,
        )
        _replace(Path(scratch) / out.name, out)
    return out


def import_wfdb(
    record_path: str | os.PathLike[str], annotator: str = "", ann_dir: str | os.PathLike[str] | None = None,
    author: str = "", expected_sha256: str | None = None,
) -> AnnotationSet:
    """Read ``<record>.ecglens`` (written by :func:`export_wfdb`) back into an :class:`AnnotationSet`.

    Box ids, labels, leads and exact times come from the aux notes; a ``(`` whose aux note lacks
    ``start=``/``end=`` uses its sample / the matching ``)``. The record hash is computed from the
    record's files unless ``expected_sha256`` is given. Imported boxes get ``author`` and time now.
    """
    import wfdb

    record = ecg_file(record_path)
    folder = Path(ann_dir) if ann_dir is not None else record.parent
    name = record.stem if record.suffix.lower() == ".hea" else record.name
    ann_file = folder / f"{name}.{WFDB_EXTENSION}"
    try:
        ann = wfdb.rdann(str(folder / name), WFDB_EXTENSION)
    except FileNotFoundError:
        raise AnnotationError("no WFDB annotation file here", ann_file) from None
    except Exception as exc:  # wfdb raises assorted types on malformed files
        raise AnnotationError(f"cannot read WFDB annotation file ({exc})", ann_file) from exc
    fs = float(ann.fs) if ann.fs else None
    aux_notes = ann.aux_note or [""] * len(ann.sample)
    ends: dict[str, int] = {}
    for sample, symbol, aux in zip(ann.sample, ann.symbol, aux_notes):
        if symbol == ")" and aux.startswith("id="):
            ends[aux[3:]] = int(sample)
    now = utc_now_iso()
    boxes = []
    for sample, symbol, aux in zip(ann.sample, ann.symbol, aux_notes):
        if symbol != "(":
            continue
        parts = aux.split("|")
        if len(parts) < 2:
            raise AnnotationError(f"onset at sample {sample} has no 'label|leads' aux note", ann_file)
        fields = dict(part.split("=", 1) for part in parts[2:] if "=" in part)
        box_id = fields.get("id") or str(uuid.uuid4())
        try:
            t_start = float(fields["start"]) if "start" in fields else _seconds(int(sample), fs)
            end_sample = ends.get(box_id, int(sample))
            t_end = float(fields["end"]) if "end" in fields else _seconds(end_sample, fs)
            boxes.append(Box(
                leads=normalize_leads(parts[1].split(";")), t_start=t_start, t_end=t_end,
                label=unquote(parts[0]), author=author, created=now, modified=now, id=box_id,
            ))
        except (AnnotationError, ValueError) as exc:
            raise AnnotationError(f"onset at sample {sample}: {exc}", ann_file) from None
    sha = expected_sha256 if expected_sha256 is not None else record_sha256(record)
    return AnnotationSet(
        record_sha256=sha, record_name=record_name_of(record), annotator=annotator, boxes=tuple(boxes)
    )


def _seconds(sample: int, fs: float | None) -> float:
    if fs is None:
        raise AnnotationError("the annotation file has no sampling rate, so samples cannot become seconds")
    return sample / fs


# ------------------------------------------------------------------------------------------------ history


class AnnotationHistory:
    """Undo/redo over immutable :class:`AnnotationSet` snapshots, driven by the annotation mode.

    Every command (add, move, resize, relabel, set_leads, delete) validates first and leaves the history
    unchanged on error; a new command clears the redo stack. The UI saves :attr:`current` after every
    command, undo and redo (autosave); :meth:`mark_saved` / :attr:`is_dirty` track the saved snapshot.
    """

    def __init__(self, initial: AnnotationSet, limit: int = 1000):
        self._current = initial
        self._saved: AnnotationSet | None = initial
        self._undo: list[tuple[str, AnnotationSet]] = []
        self._redo: list[tuple[str, AnnotationSet]] = []
        self.limit = limit

    @property
    def current(self) -> AnnotationSet:
        return self._current

    @property
    def can_undo(self) -> bool:
        return bool(self._undo)

    @property
    def can_redo(self) -> bool:
        return bool(self._redo)

    @property
    def undo_text(self) -> str:
        """What undo would revert (e.g. ``"move PVC"``), for the Edit menu; "" if nothing."""
        return self._undo[-1][0] if self._undo else ""

    @property
    def redo_text(self) -> str:
        return self._redo[-1][0] if self._redo else ""

    @property
    def is_dirty(self) -> bool:
        """True when :attr:`current` is not the snapshot last passed to :meth:`mark_saved`."""
        return self._current is not self._saved

    def mark_saved(self) -> None:
        self._saved = self._current

    def _push(self, description: str, new: AnnotationSet) -> AnnotationSet:
        self._undo.append((description, self._current))
        del self._undo[: max(0, len(self._undo) - self.limit)]
        self._redo.clear()
        self._current = new
        return new

    def add(self, box: Box) -> AnnotationSet:
        """Add a box (see :func:`make_box`)."""
        return self._push(f"add {box.label}", with_box_added(self._current, box))

    def move(self, box_id: str, dt: float, leads: Iterable[str] | None = None) -> AnnotationSet:
        """Shift a box by ``dt`` seconds (duration kept), optionally onto other leads."""
        old = self._current.box(box_id)
        changes: dict[str, Any] = {"t_start": old.t_start + dt, "t_end": old.t_end + dt}
        if leads is not None:
            changes["leads"] = leads
        return self._push(f"move {old.label}", with_box_changed(self._current, box_id, **changes))

    def resize(self, box_id: str, t_start: float, t_end: float) -> AnnotationSet:
        """Set a box's start and end (seconds)."""
        old = self._current.box(box_id)
        new = with_box_changed(self._current, box_id, t_start=t_start, t_end=t_end)
        return self._push(f"resize {old.label}", new)

    def relabel(self, box_id: str, label: str, note: str | None = None) -> AnnotationSet:
        """Change a box's label (and note if given)."""
        changes: dict[str, Any] = {"label": label}
        if note is not None:
            changes["note"] = note
        return self._push(f"relabel to {label}", with_box_changed(self._current, box_id, **changes))

    def set_leads(self, box_id: str, leads: Iterable[str] | str) -> AnnotationSet:
        """Change the leads a box covers."""
        old = self._current.box(box_id)
        new = with_box_changed(self._current, box_id, leads=leads)
        return self._push(f"change leads of {old.label}", new)

    def delete(self, box_id: str) -> AnnotationSet:
        old = self._current.box(box_id)
        return self._push(f"delete {old.label}", without_box(self._current, box_id))

    def undo(self) -> AnnotationSet:
        """Go back one command; :class:`AnnotationError` if there is nothing to undo."""
        if not self._undo:
            raise AnnotationError("nothing to undo")
        description, previous = self._undo.pop()
        self._redo.append((description, self._current))
        self._current = previous
        return previous

    def redo(self) -> AnnotationSet:
        """Re-apply the last undone command; :class:`AnnotationError` if there is none."""
        if not self._redo:
            raise AnnotationError("nothing to redo")
        description, following = self._redo.pop()
        self._undo.append((description, self._current))
        self._current = following
        return following
