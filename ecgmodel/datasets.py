"""PTB-XL loaders reading the official release layout (works unchanged on all 21,837 records).

Layout expected under ``root``::

    ptbxl_database.csv   scp_statements.csv   records100/...   records500/...

Uses only the standard library ``csv`` + ``ast.literal_eval`` (pandas is optional in ECG Lens).
Cite PTB-XL (Wagner et al., Sci Data 2020; PhysioNet doi:10.13026/kfzx-aw45) wherever used.
"""

from __future__ import annotations

import ast
import csv
import datetime as _dt
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import EcgReadError
from .types import STANDARD_LEADS, EcgRecord

DATABASE_CSV = "ptbxl_database.csv"
STATEMENTS_CSV = "scp_statements.csv"
#: PTB-XL's diagnostic superclasses.
SUPERCLASSES: tuple[str, ...] = ("NORM", "MI", "STTC", "CD", "HYP")
#: PTB-XL v1.0.x codes ages above 89 as 300 (de-identification); we report them as 90 years.
_AGE_OVER_89_CODE = 300.0


@dataclass(frozen=True)
class ScpStatement:
    """One row of ``scp_statements.csv``: an SCP-ECG code and what kind of statement it is."""

    code: str
    description: str
    diagnostic: bool
    form: bool
    rhythm: bool
    diagnostic_class: str | None
    diagnostic_subclass: str | None


@dataclass
class PtbxlRow:
    """One PTB-XL record's labels and demographics.

    ``age`` in years (ages > 89 reported as 90), ``sex`` "M"/"F" (PTB-XL: 0 = male, 1 = female),
    ``scp_codes`` code -> likelihood (0..100), ``superclasses`` the diagnostic superclasses of the
    codes (every listed code, whatever its likelihood, as in PTB-XL's own example), ``strat_fold`` 1..10,
    ``filename_lr``/``filename_hr`` record paths (no extension) relative to the dataset root.
    ``columns`` keeps every raw CSV field as text.
    """

    ecg_id: int
    patient_id: int | None
    age: float | None
    sex: str | None
    scp_codes: dict[str, float]
    superclasses: frozenset[str]
    strat_fold: int | None
    filename_lr: str
    filename_hr: str
    recording_date: _dt.datetime | None = None
    columns: dict[str, str] = field(default_factory=dict, repr=False)


@dataclass
class PtbxlExtra:
    """``ptbxl_extra``: band-passed (0.5-40 Hz), per-lead z-scored PTB-XL records at 250 Hz.

    ``signals`` float32 (N, 12, n_samples) in **standard deviations, not millivolts** (amplitude is
    gone), rows in :data:`STANDARD_LEADS` order; ``ecg_ids`` (N,); ``rows`` the PtbxlRow of each id
    (same order); ``fs`` in Hz.
    """

    ecg_ids: np.ndarray
    signals: np.ndarray
    fs: float
    leads: tuple[str, ...]
    rows: list[PtbxlRow]


def _flag(text: str | None) -> bool:
    return bool(text) and float(text) == 1.0


def _open_csv(path: Path) -> list[dict[str, str]]:
    if not path.is_file():
        raise EcgReadError(path, "this PTB-XL table does not exist; check the dataset folder.")
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def load_scp_statements(root: str | os.PathLike[str]) -> dict[str, ScpStatement]:
    """``scp_statements.csv`` under ``root`` (or that CSV's own path) as ``{code: ScpStatement}``."""
    path = Path(root)
    if path.is_dir():
        path = path / STATEMENTS_CSV
    statements = {}
    for raw in _open_csv(path):
        code = raw.get("") or raw.get("Unnamed: 0") or next(iter(raw.values()))
        statements[code] = ScpStatement(
            code=code,
            description=raw.get("description", ""),
            diagnostic=_flag(raw.get("diagnostic")),
            form=_flag(raw.get("form")),
            rhythm=_flag(raw.get("rhythm")),
            diagnostic_class=raw.get("diagnostic_class") or None,
            diagnostic_subclass=raw.get("diagnostic_subclass") or None,
        )
    return statements


def diagnostic_superclasses(scp_codes: Iterable[str], statements: dict[str, ScpStatement]) -> frozenset[str]:
    """Diagnostic superclasses (NORM, MI, STTC, CD, HYP) of a set of SCP codes."""
    return frozenset(
        statements[code].diagnostic_class
        for code in scp_codes
        if code in statements and statements[code].diagnostic and statements[code].diagnostic_class
    )


def _optional_float(text: str | None) -> float | None:
    return float(text) if text not in (None, "", "nan", "NaN") else None


def _parse_row(raw: dict[str, str], statements: dict[str, ScpStatement], source: Path) -> PtbxlRow:
    try:
        scp_codes = {str(k): float(v) for k, v in ast.literal_eval(raw["scp_codes"] or "{}").items()}
    except (ValueError, SyntaxError) as err:
        raise EcgReadError(source, f"scp_codes of ecg_id {raw.get('ecg_id')} is not a valid dict.") from err
    age = _optional_float(raw.get("age"))
    if age is not None and age >= _AGE_OVER_89_CODE:
        age = 90.0
    sex_code = _optional_float(raw.get("sex"))
    patient_id = _optional_float(raw.get("patient_id"))
    fold = _optional_float(raw.get("strat_fold"))
    date_text = raw.get("recording_date") or ""
    try:
        recorded = _dt.datetime.fromisoformat(date_text) if date_text else None
    except ValueError:
        recorded = None
    return PtbxlRow(
        ecg_id=int(float(raw["ecg_id"])),
        patient_id=int(patient_id) if patient_id is not None else None,
        age=age,
        sex={0.0: "M", 1.0: "F"}.get(sex_code) if sex_code is not None else None,
        scp_codes=scp_codes,
        superclasses=diagnostic_superclasses(scp_codes, statements),
        strat_fold=int(fold) if fold is not None else None,
        filename_lr=raw.get("filename_lr", ""),
        filename_hr=raw.get("filename_hr", ""),
        recording_date=recorded,
        columns=dict(raw),
    )


def load_ptbxl_table(
    root: str | os.PathLike[str],
    *,
    database_csv: str = DATABASE_CSV,
    statements: dict[str, ScpStatement] | None = None,
) -> list[PtbxlRow]:
    """All rows of ``root/ptbxl_database.csv`` as :class:`PtbxlRow`, in file order.

    ``statements`` defaults to ``root/scp_statements.csv``; pass it for a folder without one
    (e.g. ``ptbxl_meta`` with ``database_csv="ptbxl_database_full.csv"``).
    """
    root_path = Path(root)
    statements = statements if statements is not None else load_scp_statements(root_path)
    source = root_path / database_csv
    return [_parse_row(raw, statements, source) for raw in _open_csv(source)]


def superclasses(row: PtbxlRow) -> frozenset[str]:
    """The record's diagnostic superclasses (subset of NORM, MI, STTC, CD, HYP; may be empty)."""
    return row.superclasses


def is_normal(row: PtbxlRow) -> bool:
    """True when the record's diagnostic superclass set is exactly {"NORM"}."""
    return row.superclasses == frozenset({"NORM"})


def read_ptbxl_record(root: str | os.PathLike[str], row: PtbxlRow, fs: int = 500) -> EcgRecord:
    """The raw PTB-XL record of ``row`` at ``fs`` = 500 or 100 Hz as an EcgRecord (mV).

    Patient age/sex and acquisition time come from the table; labels go to
    ``metadata["scp_codes"]``, ``metadata["superclasses"]``, ``metadata["ecg_id"]``,
    ``metadata["strat_fold"]``.
    """
    from .io.wfdb_reader import read_wfdb

    if fs not in (100, 500):
        raise ValueError(f"PTB-XL records exist at 100 or 500 Hz, not {fs} Hz")
    relative = row.filename_hr if fs == 500 else row.filename_lr
    record = read_wfdb(Path(root) / f"{relative}.hea")
    record.source.format = "wfdb"
    record.patient.age = row.age
    record.patient.sex = row.sex
    record.acquired = row.recording_date
    record.metadata.update(
        ecg_id=row.ecg_id, scp_codes=dict(row.scp_codes), superclasses=sorted(row.superclasses),
        strat_fold=row.strat_fold, dataset="PTB-XL",
    )
    return record


def _default_statements(root: Path) -> dict[str, ScpStatement]:
    for candidate in (root / STATEMENTS_CSV, root.parent / "ptbxl" / STATEMENTS_CSV):
        if candidate.is_file():
            return load_scp_statements(candidate)
    raise EcgReadError(root / STATEMENTS_CSV, "scp_statements.csv was not found beside ptbxl_extra; pass it.")


def load_ptbxl_extra(
    root: str | os.PathLike[str],
    *,
    statements: dict[str, ScpStatement] | None = None,
    npz_name: str = "signals_250hz_zscore.npz",
) -> PtbxlExtra:
    """The preprocessed ``ptbxl_extra`` set: z-scored signals (N, 12, 2500) float32 at 250 Hz + rows.

    The signals are band-passed 0.5-40 Hz and z-scored per lead: unit-less standard deviations,
    **not millivolts**. Stored int16 (N, 2500, 12) are transposed and multiplied by the stored scale.
    ``statements`` defaults to ``root/scp_statements.csv`` or ``root/../ptbxl/scp_statements.csv``.
    """
    root_path = Path(root)
    statements = statements if statements is not None else _default_statements(root_path)
    npz_path = root_path / npz_name
    if not npz_path.is_file():
        raise EcgReadError(npz_path, "the ptbxl_extra signal archive does not exist.")
    with np.load(npz_path, allow_pickle=False) as archive:
        ecg_ids = np.asarray(archive["ecg_id"], dtype=np.int64)
        scale = np.float32(archive["scale"])
        fs = float(archive["fs"])
        leads = tuple(str(name) for name in archive["leads"])
        stored = archive["signal"]
    if leads != STANDARD_LEADS:
        raise EcgReadError(npz_path, f"lead order {leads} is not the standard 12-lead order.")
    signals = np.empty((stored.shape[0], stored.shape[2], stored.shape[1]), dtype=np.float32)
    np.multiply(stored.transpose(0, 2, 1), scale, out=signals, casting="unsafe")
    by_id = {row.ecg_id: row for row in load_ptbxl_table(root_path, statements=statements)}
    missing = [int(i) for i in ecg_ids if int(i) not in by_id]
    if missing:
        raise EcgReadError(
            root_path / DATABASE_CSV, f"{len(missing)} ecg_ids of the signal archive have no row."
        )
    return PtbxlExtra(
        ecg_ids=ecg_ids, signals=signals, fs=fs, leads=leads, rows=[by_id[int(i)] for i in ecg_ids]
    )


_table_cache: dict[str, dict[str, PtbxlRow]] = {}


def ptbxl_row_for_file(path: str | os.PathLike[str], max_levels: int = 4) -> PtbxlRow | None:
    """The PTB-XL table row of a record file inside a PTB-XL tree, or None when it is not in one.

    Looks for ``ptbxl_database.csv`` in up to ``max_levels`` parent folders and matches the file's
    relative path (e.g. ``records500/00000/00162_hr``) against ``filename_hr`` / ``filename_lr``.
    """
    file = Path(path).resolve().with_suffix("")
    for root in list(file.parents)[:max_levels]:
        csv_path = root / DATABASE_CSV
        if not csv_path.is_file():
            continue
        key = str(csv_path)
        if key not in _table_cache:
            try:
                rows = load_ptbxl_table(root)
            except (EcgReadError, OSError, ValueError, KeyError):
                return None
            index: dict[str, PtbxlRow] = {}
            for row in rows:
                index[row.filename_hr] = row
                index[row.filename_lr] = row
            _table_cache[key] = index
        return _table_cache[key].get(file.relative_to(root).as_posix())
    return None


def add_ptbxl_context(record: EcgRecord, path: str | os.PathLike[str]) -> bool:
    """Fill a PTB-XL record's missing age, sex and acquisition time from its dataset table.

    PTB-XL's WFDB headers carry no demographics; the table beside them does. Returns True when a row
    was found. Labels are stored in ``record.metadata`` (``scp_codes``, ``ecg_id``) for reference only.
    """
    row = ptbxl_row_for_file(path)
    if row is None:
        return False
    if record.patient.age is None:
        record.patient.age = row.age
    if record.patient.sex is None:
        record.patient.sex = row.sex
    if record.acquired is None:
        record.acquired = row.recording_date
    record.metadata.setdefault("ecg_id", row.ecg_id)
    record.metadata.setdefault("scp_codes", dict(row.scp_codes))
    record.metadata.setdefault("dataset", "PTB-XL")
    return True
