"""PTB-XL loaders on the shared subset (official layout) and the preprocessed ptbxl_extra set."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
import wfdb

from ecgmodel import STANDARD_LEADS
from ecgmodel.datasets import (
    PtbxlRow,
    is_normal,
    load_ptbxl_extra,
    load_ptbxl_table,
    load_scp_statements,
    read_ptbxl_record,
    superclasses,
)


@pytest.fixture(scope="module")
def rows(ptbxl_dir) -> list[PtbxlRow]:
    return load_ptbxl_table(ptbxl_dir)


def test_table_has_every_record_with_demographics(rows):
    assert len(rows) == 500
    assert [row.ecg_id for row in rows] == list(range(1, 501))
    sexes = Counter(row.sex for row in rows)
    assert sexes == {"F": 251, "M": 249}
    ages = [row.age for row in rows if row.age is not None]
    assert min(ages) == 17 and max(ages) == 91
    first = rows[0]
    assert first.patient_id == 15709 and first.sex == "F" and first.age == 56
    assert first.scp_codes == {"NORM": 100.0, "LVOLT": 0.0, "SR": 0.0}
    assert first.filename_hr == "records500/00000/00001_hr"
    assert first.recording_date.year == 1984


def test_normal_only_counts_per_fold_match_the_data_readme(rows):
    normals = [row for row in rows if is_normal(row)]
    assert len(normals) == 290
    per_fold = Counter(row.strat_fold for row in normals)
    assert [per_fold[fold] for fold in range(1, 11)] == [31, 35, 21, 29, 26, 22, 30, 26, 36, 34]


def test_superclasses_come_from_scp_statements(rows):
    combos = Counter(superclasses(row) for row in rows)
    assert combos[frozenset({"STTC"})] == 51
    assert combos[frozenset({"CD"})] == 37
    assert combos[frozenset({"MI"})] == 31
    assert combos[frozenset({"CD", "MI"})] == 13
    assert combos[frozenset()] == 12
    assert not is_normal(next(row for row in rows if superclasses(row) == {"NORM", "CD"}))


def test_scp_statements_flags(ptbxl_dir):
    statements = load_scp_statements(ptbxl_dir)
    assert len(statements) == 71
    assert statements["NORM"].diagnostic and statements["NORM"].diagnostic_class == "NORM"
    assert statements["SR"].rhythm and not statements["SR"].diagnostic
    assert statements["IMI"].diagnostic_class == "MI"


@pytest.mark.parametrize("fs", [500, 100])
def test_read_record_matches_wfdb_and_carries_table_demographics(ptbxl_dir, rows, fs):
    row = rows[1]
    record = read_ptbxl_record(ptbxl_dir, row, fs=fs)
    assert record.fs == fs and record.signal.shape == (12, 10 * fs)
    assert record.patient.age == row.age and record.patient.sex == row.sex
    assert record.metadata["ecg_id"] == 2 and record.metadata["superclasses"] == ["NORM"]
    relative = row.filename_hr if fs == 500 else row.filename_lr
    expected, _ = wfdb.rdsamp(str(ptbxl_dir / relative))
    np.testing.assert_allclose(record.signal, expected.T, atol=1e-6)


def test_full_release_metadata_loads_unchanged(shared_data, ptbxl_dir):
    full = load_ptbxl_table(
        shared_data / "ptbxl_meta", database_csv="ptbxl_database_full.csv",
        statements=load_scp_statements(ptbxl_dir),
    )
    assert len(full) == 21835
    assert {row.strat_fold for row in full} == set(range(1, 11))
    assert all(row.sex in ("M", "F") for row in full)


def test_ptbxl_extra_is_zscored_standard_order_with_rows(shared_data):
    extra = load_ptbxl_extra(shared_data / "ptbxl_extra")
    assert extra.signals.shape == (1785, 12, 2500) and extra.signals.dtype == np.float32
    assert extra.fs == 250 and extra.leads == STANDARD_LEADS
    assert [row.ecg_id for row in extra.rows] == extra.ecg_ids.tolist()
    std = extra.signals[:50].std(axis=2)
    assert np.allclose(std, 1.0, atol=0.01)  # z-scored per lead: not millivolts
    normals = [row for row in extra.rows if is_normal(row)]
    assert len(normals) == 916
    per_fold = Counter(row.strat_fold for row in normals)
    assert [per_fold[fold] for fold in range(1, 11)] == [76, 97, 101, 98, 84, 91, 99, 90, 99, 81]


def test_reading_a_ptbxl_file_fills_demographics_from_the_table(ptbxl_dir, tmp_path):
    """PTB-XL headers carry no age/sex; read() takes them from ptbxl_database.csv of the same tree."""
    import shutil

    from ecgmodel import read

    record = read(ptbxl_dir / "records500" / "00000" / "00162_hr.hea")
    assert (record.patient.age, record.patient.sex) == (85.0, "F")
    assert record.acquired is not None and record.metadata["ecg_id"] == 162
    assert read(ptbxl_dir / "records100" / "00000" / "00162_lr.dat").patient.age == 85.0
    for suffix in (".hea", ".dat"):  # the same file outside a PTB-XL tree stays without demographics
        shutil.copy(ptbxl_dir / "records500" / "00000" / f"00162_hr{suffix}", tmp_path)
    alone = read(tmp_path / "00162_hr.hea")
    assert alone.patient.age is None and alone.patient.sex is None
