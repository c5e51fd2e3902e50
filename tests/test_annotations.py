"""Annotation boxes, sidecar storage that never loses work, tables, WFDB export, undo/redo, taxonomy."""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import wfdb

import ecgmodel.annotations as ann  # not `from ecgmodel import annotations`: __future__ name clash
from ecgmodel.annotations import (
    AnnotationError,
    AnnotationHistory,
    AnnotationSet,
    SaveRefusedError,
    SidecarDamagedError,
    SidecarMismatchError,
    SidecarTooNewError,
    make_box,
)
from ecgmodel.errors import EcgLensError, EcgReadError
from ecgmodel.taxonomy import (
    BUILTIN_LABELS,
    Label,
    TaxonomyError,
    default_labels,
    is_known_label,
    load_taxonomy,
    other_label,
    save_taxonomy,
)

REPO = Path(__file__).resolve().parents[1]
SHA_A = "a" * 64


def copy_record(ptbxl_dir: Path, ecg_id: int, dest: Path) -> Path:
    """Copy one real PTB-XL 500 Hz record (.hea + .dat) into ``dest``; returns the .hea path."""
    dest.mkdir(parents=True, exist_ok=True)
    for ext in (".hea", ".dat"):
        shutil.copy(ptbxl_dir / "records500" / "00000" / f"{ecg_id:05d}_hr{ext}", dest)
    return dest / f"{ecg_id:05d}_hr.hea"


@pytest.fixture
def record(ptbxl_dir: Path, tmp_path: Path) -> Path:
    return copy_record(ptbxl_dir, 1, tmp_path / "ecgs")


def sample_set(sha: str = SHA_A, name: str = "00001_hr", annotator: str = "dr.a") -> AnnotationSet:
    boxes = (
        make_box(["V2", "V1"], 1.25, 1.5, "PVC", annotator),
        make_box("all", 3.0, 3.0, "PACING_SPIKE", annotator),  # point mark
        make_box(["aVR"], 0.0, 9.998, other_label("fusion | beat? (ü)"), annotator, note="check, later\nok"),
    )
    return AnnotationSet(record_sha256=sha, record_name=name, annotator=annotator, boxes=boxes)


# -------------------------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("leads", "t_start", "t_end", "label", "fragment"),
    [
        (["I"], 2.0, 1.0, "PVC", "t_end"),
        (["I"], -0.1, 1.0, "PVC", ">= 0"),
        (["I"], float("nan"), 1.0, "PVC", "finite"),
        (["V7"], 0.0, 1.0, "PVC", "unknown lead 'V7'"),
        (["all", "I"], 0.0, 1.0, "PVC", "'all' cannot be combined"),
        ([], 0.0, 1.0, "PVC", "at least one lead"),
        (["I"], 0.0, 1.0, "  ", "non-empty label"),
    ],
)
def test_invalid_boxes_are_rejected_with_a_clear_error(leads, t_start, t_end, label, fragment):
    with pytest.raises(AnnotationError, match=fragment.replace("(", r"\(").replace("?", r"\?")):
        make_box(leads, t_start, t_end, label, "dr.a")


def test_leads_are_normalized_to_canonical_order_and_errors_are_ecglens_errors():
    box = make_box(["v6", "AVR", "I"], 0.5, 0.5, "NOISE", "dr.a")
    assert box.leads == ("I", "aVR", "V6") and box.is_point
    with pytest.raises(AnnotationError, match="canonical order"):
        dataclasses.replace(box, leads=("V6", "I"))
    assert issubclass(AnnotationError, EcgLensError)


def test_annotation_set_rejects_duplicate_box_ids_and_bad_hash():
    box = make_box(["I"], 0.0, 1.0, "PVC", "dr.a")
    with pytest.raises(AnnotationError, match="same id"):
        AnnotationSet(record_sha256=SHA_A, record_name="x", annotator="a", boxes=(box, box))
    with pytest.raises(AnnotationError, match="64 lower-case hex"):
        AnnotationSet(record_sha256="abc", record_name="x", annotator="a")


# ------------------------------------------------------------------------------------------ record hash


def test_record_sha256_of_wfdb_is_header_then_signal_file_whatever_path_names_it(record: Path):
    expected = hashlib.sha256(record.read_bytes() + record.with_suffix(".dat").read_bytes()).hexdigest()
    assert ann.record_sha256(record) == expected
    assert ann.record_sha256(record.with_suffix(".dat")) == expected
    assert ann.record_sha256(record.with_suffix("")) == expected
    with open(record.with_suffix(".dat"), "r+b") as stream:  # one changed sample -> another record
        stream.seek(5000)
        byte = stream.read(1)
        stream.seek(5000)
        stream.write(bytes([byte[0] ^ 1]))
    assert ann.record_sha256(record) != expected


def test_record_sha256_of_a_single_file_matches_the_published_checksum(shared_data: Path):
    sums = dict(
        reversed(line.split(None, 1)) for line in (shared_data / "SHA256SUMS.txt").read_text().splitlines()
    )
    name = next(n for n in sums if n.startswith("./formats/philips_sierra/") and n.lower().endswith(".xml"))
    assert ann.record_sha256(shared_data / name[2:]) == sums[name]


def test_record_sha256_of_a_multi_segment_record_covers_every_segment(ptbxl_dir: Path, tmp_path: Path):
    folder = tmp_path / "multi"
    parts = [copy_record(ptbxl_dir, ecg_id, folder) for ecg_id in (1, 2)]
    master = folder / "multi.hea"
    master.write_text("multi/2 12 500 10000\n00001_hr 5000\n00002_hr 5000\n")
    files = [master] + [f for header in parts for f in (header, header.with_suffix(".dat"))]
    assert ann.wfdb_files(master) == files
    assert ann.record_sha256(master) == hashlib.sha256(b"".join(f.read_bytes() for f in files)).hexdigest()


def test_record_sha256_names_a_missing_signal_file(record: Path):
    record.with_suffix(".dat").unlink()
    with pytest.raises(EcgReadError, match="00001_hr.dat"):
        ann.record_sha256(record)


# -------------------------------------------------------------------------------------------- save/load


def test_sidecar_sits_next_to_the_header_and_round_trips_exactly(record: Path):
    opened = ann.open_for_record(record, "dr.a")
    assert not opened.existed and opened.location.next_to_ecg
    assert opened.location.path == record.parent / "00001_hr.hea.annotations.json"
    assert ann.sidecar_path(record.with_suffix(".dat")) == opened.location.path
    empty = opened.annotations
    aset = dataclasses.replace(sample_set(sha=empty.record_sha256), created=empty.created)
    ann.save(aset, opened.location.path)
    reopened = ann.open_for_record(record, "someone else")
    assert reopened.existed and reopened.annotations == aset
    doc = json.loads(opened.location.path.read_text(encoding="utf-8"))
    assert doc["format"] == "ecglens-annotations" and doc["schema_version"] == ann.SCHEMA_VERSION


def test_bak_keeps_the_previous_version(tmp_path: Path):
    path = tmp_path / "x.hea.annotations.json"
    first = sample_set()
    second = ann.with_box_added(first, make_box(["II"], 5.0, 6.0, "PAC", "dr.a"))
    ann.save(first, path)
    assert not ann.backup_path(path).exists()
    ann.save(second, path)
    assert ann.load(path) == second
    assert ann.load(ann.backup_path(path)) == first


def test_failed_final_rename_leaves_the_previous_sidecar_intact(tmp_path, monkeypatch):
    path = tmp_path / "x.hea.annotations.json"
    first = sample_set()
    ann.save(first, path)
    before = path.read_bytes()
    real_replace = os.replace

    def replace_failing_on_sidecar(src, dst):
        if Path(dst) == path:
            raise OSError(28, "No space left on device")
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace_failing_on_sidecar)
    with pytest.raises(AnnotationError, match="previous sidecar is unchanged"):
        ann.save(ann.with_box_added(first, make_box(["I"], 1, 2, "PVC", "dr.a")), path)
    assert path.read_bytes() == before
    assert ann.load(path) == first
    assert not list(tmp_path.glob("*.tmp")), "temp file of the failed save must be removed"


def test_failed_fsync_leaves_the_previous_sidecar_intact(tmp_path, monkeypatch):
    path = tmp_path / "x.hea.annotations.json"
    first = sample_set()
    ann.save(first, path)
    before = path.read_bytes()

    def broken_fsync(fd):
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    with pytest.raises(AnnotationError):
        ann.save(ann.with_box_added(first, make_box(["I"], 1, 2, "PVC", "dr.a")), path)
    assert path.read_bytes() == before


CRASHING_SAVE = textwrap.dedent(
    """
    import os, signal, sys
    import ecgmodel.annotations as ann  # not `from ecgmodel import annotations`: __future__ name clash
    path = sys.argv[1]
    base = ann.load(path)
    boxes = tuple(ann.make_box(["II"], i * 0.001, i * 0.001 + 0.5, "PVC", "dr.a", note="n" * 200)
                  for i in range(20000))
    big = ann.AnnotationSet(base.record_sha256, base.record_name, base.annotator, base.boxes + boxes)
    real_write, calls = os.write, []
    def write_then_die(fd, data):
        calls.append(len(data))
        if len(calls) == 3:  # .bak copy done, 1 MiB of the new sidecar written: power cut
            os.kill(os.getpid(), signal.SIGKILL)
        return real_write(fd, data)
    os.write = write_then_die
    ann.save(big, path)
    """
)


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_process_killed_in_the_middle_of_saving_a_large_set_loses_nothing(tmp_path: Path):
    path = tmp_path / "x.hea.annotations.json"
    first = sample_set()
    ann.save(first, path)
    before = path.read_bytes()
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    child = subprocess.run([sys.executable, "-c", CRASHING_SAVE, str(path)], env=env, capture_output=True)
    assert child.returncode == -signal.SIGKILL, child.stderr.decode()
    leftovers = list(tmp_path.glob(".x.hea.annotations.json.*.tmp"))
    assert len(leftovers) == 1 and leftovers[0].stat().st_size >= 1 << 20  # it really died mid-write
    assert path.read_bytes() == before and ann.load(path) == first
    assert ann.find_sidecars(tmp_path) == [path]
    second = ann.with_box_added(first, make_box(["I"], 1, 2, "PAC", "dr.a"))
    ann.save(second, path)
    assert ann.load(path) == second


# ----------------------------------------------------------------------------------- refused sidecars


def test_damaged_sidecar_is_refused_names_the_backup_and_is_never_overwritten(tmp_path: Path):
    path = tmp_path / "x.hea.annotations.json"
    first = sample_set()
    ann.save(first, path)
    ann.save(ann.with_box_added(first, make_box(["I"], 1, 2, "PAC", "dr.a")), path)
    damaged = path.read_bytes()[: len(path.read_bytes()) // 2]  # a torn write by some other tool
    path.write_bytes(damaged)
    with pytest.raises(SidecarDamagedError) as err:
        ann.load(path)
    message = str(err.value)
    assert str(path) in message and "is damaged" in message and f"{path}.bak" in message
    with pytest.raises(SaveRefusedError, match="not overwritten"):
        ann.save(first, path)
    assert path.read_bytes() == damaged
    assert ann.load(ann.backup_path(path)) == first  # the last good version is still there


def test_forced_save_over_a_damaged_sidecar_keeps_a_copy_and_the_good_backup(tmp_path: Path):
    path = tmp_path / "x.hea.annotations.json"
    first = sample_set()
    ann.save(first, path)
    ann.save(first, path)
    path.write_text("{not json", encoding="utf-8")
    ann.save(first, path, force=True)
    assert ann.load(path) == first
    refused = list(tmp_path.glob("x.hea.annotations.json.refused-*"))
    assert len(refused) == 1 and refused[0].read_text(encoding="utf-8") == "{not json"
    assert ann.load(ann.backup_path(path)) == first


def test_sidecar_with_an_invalid_box_is_damaged_and_says_which_box(tmp_path: Path):
    path = tmp_path / "x.hea.annotations.json"
    doc = ann.to_json_dict(sample_set())
    doc["boxes"][1]["t_end"] = -1.0
    path.write_text(json.dumps(doc), encoding="utf-8")
    with pytest.raises(SidecarDamagedError, match=r"box 1: t_end .* no previous version"):
        ann.load(path)


def test_sidecar_of_another_ecg_is_refused_and_not_overwritten(tmp_path: Path):
    path = tmp_path / "x.hea.annotations.json"
    ann.save(sample_set(sha=SHA_A), path)
    before = path.read_bytes()
    with pytest.raises(SidecarMismatchError, match="belongs to a different ECG file \\(hash mismatch"):
        ann.load(path, expected_sha256="b" * 64)
    with pytest.raises(SaveRefusedError, match="different ECG file"):
        ann.save(sample_set(sha="b" * 64), path)
    assert path.read_bytes() == before


def test_sidecar_from_a_newer_app_is_refused_and_not_overwritten(tmp_path: Path):
    path = tmp_path / "x.hea.annotations.json"
    doc = {**ann.to_json_dict(sample_set()), "schema_version": 3, "new_field": [1, 2]}
    path.write_text(json.dumps(doc), encoding="utf-8")
    before = path.read_bytes()
    with pytest.raises(SidecarTooNewError, match=r"newer ECG Lens \(schema 3.*update the app"):
        ann.load(path)
    with pytest.raises(SaveRefusedError, match="newer ECG Lens"):
        ann.save(sample_set(), path)
    assert path.read_bytes() == before


def test_schema_1_sidecar_is_migrated_with_stable_box_ids(tmp_path: Path):
    path = tmp_path / "x.hea.annotations.json"
    v1 = {
        "format": "ecglens-annotations", "schema_version": 1, "record_sha256": SHA_A, "record_name": "x",
        "annotator": "dr.a", "created": "2024-01-02T03:04:05Z",
        "boxes": [{"leads": ["V1"], "t_start": 1, "t_end": 2, "label": "PVC", "author": "dr.a",
                   "created": "2024-01-02T03:04:06Z"}],
    }
    path.write_text(json.dumps(v1), encoding="utf-8")
    first, again = ann.load(path), ann.load(path)
    assert first == again and first.schema_version == ann.SCHEMA_VERSION
    (box,) = first.boxes
    assert (box.leads, box.t_start, box.t_end, box.modified) == (("V1",), 1.0, 2.0, "2024-01-02T03:04:06Z")
    ann.save(first, path)  # upgrading keeps the schema-1 original as .bak
    assert json.loads(ann.backup_path(path).read_text())["schema_version"] == 1
    assert ann.load(path) == first


# ------------------------------------------------------------------------------------ read-only folders


def test_read_only_ecg_folder_falls_back_to_the_project_folder(record: Path, tmp_path: Path, monkeypatch):
    project = tmp_path / "project"
    project.mkdir()
    ecg_folder = record.parent
    ecg_folder.chmod(0o555)
    try:
        if getattr(os, "geteuid", lambda: 1)() == 0:  # root can write anywhere: emulate the read-only mount
            monkeypatch.setattr(ann, "_can_write_in", lambda folder: Path(folder) != ecg_folder)
        with pytest.raises(AnnotationError, match="read-only.*choose a project folder"):
            ann.locate_sidecar(record)
        opened = ann.open_for_record(record, "dr.a", project_dir=project)
        assert opened.location.path == project / "00001_hr.hea.annotations.json"
        assert not opened.location.next_to_ecg and "read-only" in opened.location.reason
        edited = ann.with_box_added(opened.annotations, make_box("I", 1, 2, "PVC", "dr.a"))
        ann.save(edited, opened.location.path)
        assert sorted(p.name for p in ecg_folder.iterdir()) == ["00001_hr.dat", "00001_hr.hea"]
    finally:
        ecg_folder.chmod(0o755)
    monkeypatch.undo()
    # once written there, the project copy stays the one in use even if the folder becomes writable
    reopened = ann.open_for_record(record, "dr.a", project_dir=project)
    assert reopened.existed and reopened.location.path == project / "00001_hr.hea.annotations.json"
    assert [b.label for b in reopened.annotations.boxes] == ["PVC"]


# ------------------------------------------------------------------------------------------------ tables


@pytest.fixture
def annotated_folder(ptbxl_dir: Path, tmp_path: Path) -> tuple[Path, dict[Path, AnnotationSet]]:
    """Three real PTB-XL records (two in a sub-folder) with saved sidecars."""
    folder = tmp_path / "study"
    sets: dict[Path, AnnotationSet] = {}
    for ecg_id, sub in ((1, "a"), (2, "b"), (3, "b")):
        header = copy_record(ptbxl_dir, ecg_id, folder / sub)
        base = ann.new_annotation_set(header, f"annotator{ecg_id}")
        aset = dataclasses.replace(sample_set(base.record_sha256, base.record_name, base.annotator),
                                   created=base.created)
        sets[ann.save(aset, ann.sidecar_path(header))] = aset
    return folder, sets


def test_csv_export_import_round_trip_on_real_records(annotated_folder, tmp_path: Path):
    folder, sets = annotated_folder
    out = tmp_path / "boxes.csv"
    assert ann.export_table(folder, out) == 9
    with open(out, encoding="utf-8", newline="") as stream:
        rows = list(csv.DictReader(stream))
    assert tuple(rows[0]) == ann.TABLE_COLUMNS
    assert {r["record_file"] for r in rows} == {"a/00001_hr.hea", "b/00002_hr.hea", "b/00003_hr.hea"}
    assert rows[0]["leads"] == "V1;V2" and rows[0]["annotator"] == "annotator1"
    for sidecar in sets:
        sidecar.unlink()
    summary = ann.import_table(out, folder)
    assert summary.boxes_added == 9 and len(summary.sidecars) == 3
    for sidecar, aset in sets.items():
        restored = ann.load(sidecar, expected_sha256=aset.record_sha256)
        assert restored.boxes == aset.boxes
        assert (restored.record_name, restored.annotator, restored.created) == (
            aset.record_name, aset.annotator, aset.created)


def test_import_merges_by_box_id_keeping_the_newer_edit(annotated_folder, tmp_path: Path):
    folder, sets = annotated_folder
    out = tmp_path / "boxes.csv"
    ann.export_table(folder, out)
    sidecar, aset = next(iter(sets.items()))
    pvc = aset.boxes[0]
    local = ann.with_box_changed(without_second_box(aset), pvc.id, label="PAC")  # newer local edit of box 0
    local = ann.with_box_added(local, make_box(["V5"], 7, 8, "T_INV", "dr.local"))
    ann.save(local, sidecar)
    summary = ann.import_table(out, folder)
    merged = ann.load(sidecar)
    assert summary.boxes_added == 1 and summary.boxes_updated == 0 and summary.sidecars == (sidecar,)
    assert merged.box(pvc.id).label == "PAC"  # the table's older version did not win
    assert merged.box(aset.boxes[1].id) == aset.boxes[1]  # deleted locally only, restored from table
    assert {b.label for b in merged.boxes} >= {"PAC", "T_INV", "PACING_SPIKE"}


def without_second_box(aset: AnnotationSet) -> AnnotationSet:
    return ann.without_box(aset, aset.boxes[1].id)


def test_import_refuses_rows_made_on_a_different_ecg_file_and_writes_nothing(annotated_folder, tmp_path):
    folder, sets = annotated_folder
    out = tmp_path / "boxes.csv"
    ann.export_table(folder, out)
    for sidecar in sets:
        sidecar.unlink()
    dat = folder / "b" / "00003_hr.dat"
    dat.write_bytes(dat.read_bytes()[::-1])
    with pytest.raises(AnnotationError, match="b/00003_hr.hea .*hash mismatch"):
        ann.import_table(out, folder)
    assert ann.find_sidecars(folder) == []


def test_parquet_needs_pyarrow_or_round_trips(annotated_folder, tmp_path: Path):
    folder, sets = annotated_folder
    out = tmp_path / "boxes.parquet"
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        with pytest.raises(AnnotationError, match="pyarrow.*install"):
            ann.export_table(folder, out)
        assert not out.exists()
        return
    assert ann.export_table(folder, out) == 9
    for sidecar in sets:
        sidecar.unlink()
    ann.import_table(out, folder)
    assert all(ann.load(s).boxes == a.boxes for s, a in sets.items())


# -------------------------------------------------------------------------------------------------- WFDB


def test_wfdb_annotation_round_trip(record: Path):
    base = ann.new_annotation_set(record, "dr.a")
    aset = dataclasses.replace(sample_set(base.record_sha256), record_name=base.record_name)
    out = ann.export_wfdb(aset, record, fs=500)
    assert out == record.parent / "00001_hr.ecglens"
    raw = wfdb.rdann(str(record.with_suffix("")), "ecglens")  # plain WFDB tools can read it
    assert list(raw.symbol) == ["(", "(", ")", "(", ")"]  # aVR 0-9.998, PVC 1.25-1.5, spike 3.0
    assert list(raw.sample) == [0, 625, 750, 1500, 4999]
    back = ann.import_wfdb(record, annotator="dr.a")
    assert back.record_sha256 == aset.record_sha256
    key = lambda b: (b.id, b.leads, b.t_start, b.t_end, b.label)  # noqa: E731
    assert sorted(map(key, back.boxes)) == sorted(map(key, aset.boxes))


def test_wfdb_import_of_missing_file_is_a_clear_error(record: Path):
    with pytest.raises(AnnotationError, match="00001_hr.ecglens"):
        ann.import_wfdb(record)


# ----------------------------------------------------------------------------------------------- history


def test_undo_redo_through_every_command_with_autosave(tmp_path: Path):
    path = tmp_path / "x.hea.annotations.json"
    start = AnnotationSet(record_sha256=SHA_A, record_name="x", annotator="dr.a")
    history = AnnotationHistory(start)
    box = make_box(["II"], 1.0, 1.2, "PVC", "dr.a")
    steps = [
        lambda: history.add(box),
        lambda: history.move(box.id, 0.5, leads=["II", "III"]),
        lambda: history.resize(box.id, 1.4, 2.0),
        lambda: history.relabel(box.id, "WIDE_QRS", note="broad"),
        lambda: history.delete(box.id),
    ]
    snapshots = [start]
    for step in steps:
        snapshots.append(step())
        ann.save(history.current, path)  # autosave after every change
        assert ann.load(path) == history.current
    moved = snapshots[2].box(box.id)
    assert (moved.t_start, moved.t_end, moved.leads) == (1.5, 1.7, ("II", "III"))
    assert snapshots[4].box(box.id).label == "WIDE_QRS" and snapshots[5].boxes == ()
    assert history.undo_text == "delete WIDE_QRS"
    for expected in reversed(snapshots[:-1]):
        assert history.undo() == expected
    assert not history.can_undo and history.current == start
    for expected in snapshots[1:]:
        assert history.redo() == expected
    with pytest.raises(AnnotationError, match="nothing to redo"):
        history.redo()


def test_failed_command_changes_nothing_and_new_command_clears_redo():
    box = make_box(["V1"], 0.2, 0.4, "PAC", "dr.a")
    history = AnnotationHistory(AnnotationSet(record_sha256=SHA_A, record_name="x", annotator="dr.a"))
    history.add(box)
    history.mark_saved()
    before = history.current
    with pytest.raises(AnnotationError, match="t_start must be >= 0"):
        history.move(box.id, -1.0)
    with pytest.raises(AnnotationError, match="t_end"):
        history.resize(box.id, 0.4, 0.3)
    assert history.current is before and not history.is_dirty and history.undo_text == "add PAC"
    history.relabel(box.id, "PVC")
    assert history.is_dirty
    history.undo()
    assert history.can_redo
    history.resize(box.id, 0.1, 0.5)
    assert not history.can_redo and history.current.box(box.id).label == "PAC"


# ---------------------------------------------------------------------------------------------- taxonomy


def test_builtin_taxonomy_needs_no_data_and_accepts_free_text():
    labels = default_labels()
    assert labels == list(BUILTIN_LABELS) and len(labels) == 10
    assert {"PVC", "PAC", "ST_ELEV", "ST_DEPR", "T_INV", "WIDE_QRS", "PATH_Q", "AF_SEGMENT", "NOISE",
            "PACING_SPIKE"} == {label.code for label in labels}
    assert other_label("  fusion beat ") == "other: fusion beat"
    assert is_known_label("other: fusion beat", labels) and not is_known_label("fusion", labels)
    with pytest.raises(TaxonomyError):
        other_label("other:  ")


def test_taxonomy_with_ptbxl_statements_has_all_71_and_round_trips(ptbxl_dir: Path, tmp_path: Path):
    labels = default_labels(ptbxl_dir / "scp_statements.csv")
    codes = [label.code for label in labels]
    with open(ptbxl_dir / "scp_statements.csv", encoding="utf-8", newline="") as stream:
        scp_codes = {row[""] for row in csv.DictReader(stream)}
    assert len(scp_codes) == 71 and scp_codes <= set(codes) and len(codes) == len(set(codes)) == 79
    assert Label("IMI", "inferior myocardial infarction", "scp-diagnostic") in labels
    assert Label("AFIB", "atrial fibrillation", "scp-rhythm") in labels
    path = save_taxonomy(tmp_path / "taxonomy.json", labels)
    assert load_taxonomy(path) == labels


def test_bad_taxonomy_files_are_clear_errors(tmp_path: Path):
    path = tmp_path / "taxonomy.json"
    path.write_text(json.dumps({"format": "ecglens-taxonomy", "version": 1, "labels": [
        {"code": "A", "name": "a", "group": "g"}, {"code": "A", "name": "b", "group": "g"}]}))
    with pytest.raises(TaxonomyError, match="repeated: A"):
        load_taxonomy(path)
    path.write_text("[]")
    with pytest.raises(TaxonomyError, match="not an ECG Lens taxonomy"):
        load_taxonomy(path)
