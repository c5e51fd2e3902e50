"""Viewer state and paper geometry: plain Python, no window needed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from app.ecg_paper import (
    binned_max,
    compute_layout,
    grid_segments,
    hottest_interval,
    measure_caliper,
    overlay_lut,
    overlay_rgba,
)
from app.state import MAX_RECENT_FILES, ViewState, neighbour_file, sibling_ecg_files


def test_view_state_round_trips_and_validates() -> None:
    state = ViewState(layout="6x2", gain_mm_per_mv=20.0, speed_mm_per_s=50.0, chest_half_scale=True,
                      filter_preset="notch50", overlay_visible=False, overlay_opacity=0.3)
    stored = {k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in state.to_settings().items()}
    back = ViewState.from_settings(stored)  # QSettings (INI) gives strings back
    assert back.to_settings() == state.to_settings()
    assert back.chest_gain_mm_per_mv() == 10.0
    bad = ViewState.from_settings({"layout": "7x7", "gain_mm_per_mv": "13", "overlay_opacity": "4",
                                   "filter_preset": "bogus", "speed_mm_per_s": "nan?"})
    assert (bad.layout, bad.gain_mm_per_mv, bad.filter_preset, bad.speed_mm_per_s) == \
        ("3x4", 10.0, "diagnostic", 25.0)
    assert bad.overlay_opacity == 1.0


def test_recent_files_are_unique_and_bounded() -> None:
    state = ViewState()
    for i in range(MAX_RECENT_FILES + 5):
        state.remember_file(f"/x/{i}.hea")
    state.remember_file("/x/3.hea")
    assert state.recent_files[0] == "/x/3.hea"
    assert len(state.recent_files) == MAX_RECENT_FILES
    assert len(set(state.recent_files)) == MAX_RECENT_FILES


def test_sibling_files_list_wfdb_records_once(tmp_path: Path) -> None:
    for name in ("a10.hea", "a10.dat", "a2.hea", "a2.dat", "b.xml", "notes.txt", "lone.dat"):
        (tmp_path / name).write_text("x")
    files = [p.name for p in sibling_ecg_files(tmp_path / "a2.hea", (".hea", ".dat", ".xml"))]
    assert files == ["a2.hea", "a10.hea", "b.xml", "lone.dat"]
    assert neighbour_file(tmp_path / "a2.hea", (".hea", ".dat", ".xml"), +1).name == "a10.hea"
    assert neighbour_file(tmp_path / "a2.hea", (".hea", ".dat", ".xml"), -1) is None


@pytest.mark.parametrize("layout, n_cells, n_rows", [("3x4", 13, 4), ("6x2", 12, 6), ("12x1", 12, 12)])
def test_layout_geometry_is_true_scale(layout: str, n_cells: int, n_rows: int) -> None:
    geo = compute_layout(layout, 5000, 500.0, speed_mm_per_s=25.0, gain_mm_per_mv=10.0)
    assert len(geo.cells) == n_cells and geo.n_rows == n_rows
    assert geo.width_mm == pytest.approx(250.0)  # 10 s at 25 mm/s
    assert geo.row_height_mm % 5 == 0
    assert sorted({c.lead_name for c in geo.cells}) == sorted(
        ["I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6"])
    for cell in geo.cells:
        # x of a cell's first sample is its time times the speed
        assert cell.x0_mm == pytest.approx(cell.start_sample / 500.0 * 25.0)
        assert cell.baseline_mm % 5 == pytest.approx(0.0)
    fast = compute_layout(layout, 5000, 500.0, speed_mm_per_s=50.0, gain_mm_per_mv=20.0)
    assert fast.width_mm == pytest.approx(500.0)
    assert fast.row_height_mm >= geo.row_height_mm


def test_3x4_columns_and_rhythm_strip() -> None:
    geo = compute_layout("3x4", 5000, 500.0)
    by_name = {(c.lead_name, c.is_rhythm): c for c in geo.cells}
    assert by_name[("V1", False)].start_sample == 2500 and by_name[("V1", False)].stop_sample == 3750
    rhythm = by_name[("II", True)]
    assert (rhythm.start_sample, rhythm.stop_sample, rhythm.row) == (0, 5000, 3)
    half = compute_layout("3x4", 5000, 500.0, gain_mm_per_mv=10.0, chest_gain_mm_per_mv=5.0)
    assert {c.gain_mm_per_mv for c in half.cells if c.lead_name.startswith("V")} == {5.0}
    assert {c.gain_mm_per_mv for c in half.cells if not c.lead_name.startswith("V")} == {10.0}
    # a long record is shown 10 s at a time
    page2 = compute_layout("3x4", 20000, 500.0, window_start_s=10.0)
    assert page2.cells[0].start_sample == 5000 and page2.time_of_x(0.0) == pytest.approx(10.0)


def test_caliper_converts_mm_to_ms_and_mv() -> None:
    geo = compute_layout("3x4", 5000, 500.0, speed_mm_per_s=25.0, gain_mm_per_mv=10.0)
    cell = next(c for c in geo.cells if c.lead_name == "II" and not c.is_rhythm)
    m = measure_caliper(geo, (10.0, cell.baseline_mm), (30.0, cell.baseline_mm + 15.0))
    assert m.dt_ms == pytest.approx(800.0) and m.dv_mv == pytest.approx(1.5)
    assert m.rate_bpm == pytest.approx(75.0) and m.lead_name == "II"
    fast = compute_layout("3x4", 5000, 500.0, speed_mm_per_s=50.0, gain_mm_per_mv=20.0)
    cell = next(c for c in fast.cells if c.lead_name == "II" and not c.is_rhythm)
    m = measure_caliper(fast, (10.0, cell.baseline_mm), (30.0, cell.baseline_mm + 15.0))
    assert m.dt_ms == pytest.approx(400.0) and m.dv_mv == pytest.approx(0.75)


def test_grid_segments_have_1_and_5_mm_spacing() -> None:
    px, py = grid_segments(0.0, 20.0, -10.0, 0.0, major=True)
    vertical_x = sorted(set(px[: 2 * 5][::2]))
    assert vertical_x == [0.0, 5.0, 10.0, 15.0, 20.0]
    px, _ = grid_segments(0.0, 20.0, -10.0, 0.0, major=False)
    assert 1.0 in px and 5.0 not in px[: 2 * 16]


def test_overlay_colours_fixed_scale() -> None:
    lut = overlay_lut()
    assert lut.shape == (256, 4) and lut.dtype == np.uint8
    assert lut[0, 3] == 0  # 0 SD: transparent
    assert lut[-1, 3] > 200  # 6 SD: strong
    strip = overlay_rgba(np.array([0.0] * 10 + [10.0] * 10, dtype=np.float32), 2)
    assert strip[0, 3] == 0 and tuple(strip[1]) == tuple(lut[-1])
    assert np.allclose(binned_max(np.array([1, 5, 2, 0, np.nan, 3.0]), 3), [5, 2, 3])


def test_hottest_interval_finds_the_peak() -> None:
    amap = np.zeros((12, 5000), dtype=np.float32)
    amap[:, 3000:3100] = 5.0
    t0, t1 = hottest_interval(amap, 500.0, width_s=0.2)
    assert t0 <= 6.0 <= t1 and t1 - t0 == pytest.approx(0.2)


def test_importing_app_guards_pyside_refcounts() -> None:
    """Thousands of void Qt calls and signal emits must not abort CPython 3.11 (PySide6 6.12 bug)."""
    code = (
        "import app\n"
        "from PySide6 import QtCore, QtWidgets\n"
        "qapp = QtWidgets.QApplication([])\n"
        "class A(QtCore.QObject):\n"
        "    sig = QtCore.Signal(object)\n"
        "a, label = A(), QtWidgets.QLabel()\n"
        "f = lambda x: None\n"
        "for _ in range(3000):\n"
        "    label.setText('x'); a.sig.connect(f); a.sig.emit(1); a.sig.disconnect(f)\n"
        "    qapp.processEvents()\n"
        "print('ok')\n"
    )
    env = {"QT_QPA_PLATFORM": "offscreen", "PATH": "/usr/bin:/bin"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          cwd=str(Path(__file__).resolve().parents[1]), env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "ok"
