"""The viewer window driven for real (pytest-qt, offscreen) on PTB-XL files.

Most tests use a fast stand-in ``analyze`` (given to the window's worker, so results travel the real
thread + signal path); :func:`test_real_analysis_populates_the_window` runs ``ecgmodel.analyze``.
Settings go to a temporary INI file, never the user's.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pyqtgraph")

from PySide6 import QtCore, QtGui, QtWidgets  # noqa: E402

import ecgmodel  # noqa: E402
from app.main_window import SETTINGS_ENV, MainWindow, run_viewer  # noqa: E402
from app.report import ecg_origin_mm, render_report_image, report_layout  # noqa: E402
from app.worker import AnalysisRunner  # noqa: E402
from ecgmodel.types import Analysis, Diagnosis, EcgRecord, ModelInfo  # noqa: E402

WAIT_MS = 20000


def ptbxl_record_path(ptbxl_dir: Path, ecg_id: int) -> Path:
    return ptbxl_dir / "records500" / "00000" / f"{ecg_id:05d}_hr.hea"


def fake_analysis(record: EcgRecord, diagnoses: bool = True, hot_s: float = 6.0) -> Analysis:
    """A hand-made Analysis with one clearly unusual stretch around ``hot_s`` in every lead."""
    n = record.n_samples
    t = np.arange(n) / record.fs
    amap = np.tile((5.0 * np.exp(-((t - hot_s) / 0.15) ** 2)).astype(np.float32), (12, 1))
    dx = [Diagnosis("IMI", "inferior myocardial infarction", 0.81, True, "diagnostic"),
          Diagnosis("NORM", "normal ECG", 0.22, False, "diagnostic")] if diagnoses else []
    return Analysis(
        anomaly_score=2.41, anomaly_percentile=97.0, anomaly_map=amap, diagnoses=dx,
        predicted={"age": 61.0, "sex_female_probability": 0.2, "hr_bpm": 64.0, "qrs_ms": 96.0},
        measured={"hr_bpm": 63.0, "pr_ms": 158.0, "qrs_ms": 94.0, "qt_ms": 386.0, "qtc_bazett_ms": 396.0,
                  "qtc_fridericia_ms": 392.0, "axis_deg": 45.0},
        lead_quality={"V5": "noisy"},
        models=[ModelInfo("ecglens-anomaly", "0.1.0", "ab" * 32, "resources/models/anomaly.md")],
        timings_ms={"anomaly": 12.0}, warnings=[f"test analysis of {Path(record.source.path).name}"],
    )


@pytest.fixture(autouse=True)
def temporary_settings(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Keep every QSettings write of these tests out of the user's settings."""
    folder = tmp_path_factory.mktemp("settings")
    monkeypatch.setenv(SETTINGS_ENV, str(folder / "ecglens.ini"))
    for fmt in (QtCore.QSettings.Format.NativeFormat, QtCore.QSettings.Format.IniFormat):
        QtCore.QSettings.setPath(fmt, QtCore.QSettings.Scope.UserScope, str(folder))
    return folder / "ecglens.ini"


def make_window(qtbot, settings_path: Path, analyze=fake_analysis) -> MainWindow:
    settings = QtCore.QSettings(str(settings_path), QtCore.QSettings.Format.IniFormat)
    window = MainWindow(settings=settings, runner=AnalysisRunner(analyze_fn=analyze))
    qtbot.addWidget(window)
    window.resize(1500, 950)
    window.show()
    qtbot.waitExposed(window)
    return window


@pytest.fixture
def window(qtbot, temporary_settings: Path):
    win = make_window(qtbot, temporary_settings)
    yield win
    win.runner.cancel()
    win.runner.wait_idle(10000)


def open_and_wait(qtbot, window: MainWindow, path: Path) -> None:
    window.open_path(str(path))
    qtbot.waitUntil(window.is_settled, timeout=WAIT_MS)


def send_mouse(widget: QtWidgets.QWidget, kind: QtCore.QEvent.Type, pos: QtCore.QPoint,
               buttons: QtCore.Qt.MouseButton, button: QtCore.Qt.MouseButton) -> None:
    local = QtCore.QPointF(pos)
    event = QtGui.QMouseEvent(kind, local, QtCore.QPointF(widget.mapToGlobal(pos)), button, buttons,
                              QtCore.Qt.KeyboardModifier.NoModifier)
    QtWidgets.QApplication.sendEvent(widget, event)


def drag(qtbot, paper, start_mm: tuple[float, float], end_mm: tuple[float, float]) -> None:
    """A real mouse drag on the paper's viewport between two paper points (mm)."""
    viewport = paper.viewport()
    a = paper.paper_to_widget(*start_mm)
    b = paper.paper_to_widget(*end_mm)
    left = QtCore.Qt.MouseButton.LeftButton
    none = QtCore.Qt.MouseButton.NoButton
    send_mouse(viewport, QtCore.QEvent.Type.MouseButtonPress, a, left, left)
    for k in range(1, 6):
        p = QtCore.QPoint(a.x() + (b.x() - a.x()) * k // 5, a.y() + (b.y() - a.y()) * k // 5)
        send_mouse(viewport, QtCore.QEvent.Type.MouseMove, p, left, none)
        qtbot.wait(5)
    send_mouse(viewport, QtCore.QEvent.Type.MouseButtonRelease, b, none, left)
    qtbot.wait(20)


# ------------------------------------------------------------------------------------------------ tests
def test_open_shows_traces_then_results(qtbot, window: MainWindow, ptbxl_dir: Path) -> None:
    with qtbot.waitSignal(window.record_shown, timeout=WAIT_MS):
        window.open_path(str(ptbxl_record_path(ptbxl_dir, 1)))
    assert len(window.paper.trace_items) == 13  # 3 x 4 + rhythm strip
    x, y = window.paper.trace_items[0].getData()
    assert x.size == 1250 and np.isfinite(y).all()
    assert "00001_hr.hea" in window.header_label.text() and "500 Hz" in window.header_label.text()
    qtbot.waitUntil(lambda: window.analysis is not None, timeout=WAIT_MS)
    assert window.score_panel.score_label.text() == "2.41"
    assert window.score_panel.percentile_label.text() == "Higher than 97% of normal reference ECGs"
    assert window.diagnoses_panel.table.rowCount() == 2
    assert window.diagnoses_panel.table.item(0, 1).text() == "81% probability"
    assert window.diagnoses_panel.table.item(0, 2).text() == "likely"
    assert window.diagnoses_panel.table.item(1, 2).text() == "possible"
    assert len(window.paper.overlay_items) == 13 and all(i.isVisible() for i in window.paper.overlay_items)
    assert window.context_panel.demographics.item(0, 2).text() == "61 y"
    assert "male" in window.context_panel.demographics.item(1, 2).text()
    assert window.context_panel.intervals.item(2, 1).text() == "94 ms"
    assert not window.busy_bar.isVisible()
    assert window.timings["first_traces_s"] <= window.timings["results_s"]
    # the noisy lead is greyed and says so
    labels = [item.textItem.toPlainText() for item in window.paper.label_items]
    assert "V5 (noisy)" in labels


def test_injected_analysis_uses_the_worker_slot_and_ignores_stale_jobs(qtbot, window, ptbxl_dir) -> None:
    open_and_wait(qtbot, window, ptbxl_record_path(ptbxl_dir, 2))
    empty = fake_analysis(window.record, diagnoses=False)
    window.on_analysis_ready(window.job_id - 1, fake_analysis(window.record))  # stale: ignored
    assert window.analysis.warnings == [f"test analysis of {Path(window.record.source.path).name}"]
    window.on_analysis_ready(window.job_id, empty)
    assert window.analysis is empty
    assert window.diagnoses_panel.status_label.text() == "No diagnosis model loaded."
    assert window.diagnoses_panel.table.rowCount() == 0


def test_overlay_toggle_opacity_and_diagnosis_highlight(qtbot, window, ptbxl_dir) -> None:
    open_and_wait(qtbot, window, ptbxl_record_path(ptbxl_dir, 1))
    window.overlay_action.trigger()
    assert not window.state.overlay_visible and not any(i.isVisible() for i in window.paper.overlay_items)
    assert not window.score_panel.overlay_check.isChecked()
    window.score_panel.overlay_check.setChecked(True)
    window.score_panel.opacity_slider.setValue(30)
    assert window.state.overlay_opacity == pytest.approx(0.30)
    assert all(i.opacity() == pytest.approx(0.30) for i in window.paper.overlay_items)
    window.diagnoses_panel.select_row(0)
    t0, t1 = window.paper.highlight_interval_s
    assert t0 <= 6.0 <= t1
    assert len(window.paper._highlight_items) == 4  # V1, V2, V3 (the column showing 5-7.5 s) + rhythm II


def test_layouts_gain_speed_and_filters(qtbot, window, ptbxl_dir) -> None:
    open_and_wait(qtbot, window, ptbxl_record_path(ptbxl_dir, 1))

    def lead_i_span() -> float:
        _, ys = window.paper.trace_items[0].getData()
        return float(np.nanmax(ys) - np.nanmin(ys))

    span10 = lead_i_span()
    for key, cells in (("6x2", 12), ("12x1", 12), ("3x4", 13)):
        window.layout_actions[key].trigger()
        assert window.state.layout == key and len(window.paper.trace_items) == cells
        assert window.layout_combo.currentData() == key
        assert len(window.paper.overlay_items) == cells  # the overlay follows the layout
    window.gain_combo.setCurrentIndex(window.gain_combo.findData(20.0))
    window.gain_combo.activated.emit(window.gain_combo.currentIndex())
    assert window.state.gain_mm_per_mv == 20.0
    assert lead_i_span() == pytest.approx(2 * span10, rel=1e-6)
    window.set_gain(5.0)
    assert lead_i_span() == pytest.approx(span10 / 2, rel=1e-6)
    window.set_gain(10.0)
    window.chest_check.setChecked(True)
    v1 = next(c for c in window.paper.layout_geometry.cells if c.lead_name == "V1")
    assert v1.gain_mm_per_mv == 5.0
    assert "V1 " in " ".join(i.textItem.toPlainText() for i in window.paper.label_items)
    window.chest_check.setChecked(False)
    window.set_speed(50.0)
    xs, _ = window.paper.trace_items[0].getData()
    assert xs[-1] - xs[0] == pytest.approx((1250 - 1) / 500.0 * 50.0)
    assert window.paper.layout_geometry.width_mm == pytest.approx(500.0)
    window.set_speed(25.0)
    raw = window.record.signal[0]
    for preset in ("monitoring", "notch50", "notch60", "none", "diagnostic"):
        window.filter_combo.setCurrentIndex(window.filter_combo.findData(preset))
        window.filter_combo.activated.emit(window.filter_combo.currentIndex())
        assert window.state.filter_preset == preset
    window.set_filter("monitoring")
    assert not np.allclose(window.display_signal[0], raw)  # display only:
    assert window.record.signal[0] is raw or np.array_equal(window.record.signal[0], raw)
    window.set_filter("none")
    assert np.allclose(window.display_signal[0], raw)


def test_calipers_measure_ms_and_mv_on_the_paper_scale(qtbot, window, ptbxl_dir) -> None:
    open_and_wait(qtbot, window, ptbxl_record_path(ptbxl_dir, 1))
    window.caliper_action.trigger()
    assert window.state.caliper_mode
    geo = window.paper.layout_geometry
    lead_ii = next(c for c in geo.cells if c.lead_name == "II" and not c.is_rhythm)
    px_per_mm = window.paper.pixels_per_mm()
    assert px_per_mm[0] == pytest.approx(px_per_mm[1], rel=0.02)  # 1 mm time == 1 mm voltage
    tolerance_mm = 1.5 / px_per_mm[0]
    drag(qtbot, window.paper, (20.0, lead_ii.baseline_mm), (40.0, lead_ii.baseline_mm + 10.0))
    m = window.paper.last_caliper
    assert m is not None and m.lead_name == "II"
    assert m.dt_ms == pytest.approx(800.0, abs=tolerance_mm / 25.0 * 1000)  # 20 mm at 25 mm/s
    assert m.dv_mv == pytest.approx(1.0, abs=tolerance_mm / 10.0)  # 10 mm at 10 mm/mV
    assert "Δt 8" in window.caliper_label.text() and "bpm" in window.caliper_label.text()
    # at 50 mm/s and 20 mm/mV the same paper distance is half the time and half the voltage
    window.set_speed(50.0)
    window.set_gain(20.0)
    geo = window.paper.layout_geometry
    lead_ii = next(c for c in geo.cells if c.lead_name == "II" and not c.is_rhythm)
    tolerance_mm = 1.5 / window.paper.pixels_per_mm()[0]
    drag(qtbot, window.paper, (20.0, lead_ii.baseline_mm), (40.0, lead_ii.baseline_mm + 10.0))
    m = window.paper.last_caliper
    assert m.dt_ms == pytest.approx(400.0, abs=tolerance_mm / 50.0 * 1000)
    assert m.dv_mv == pytest.approx(0.5, abs=tolerance_mm / 20.0)
    window.clear_caliper_action.trigger()
    assert window.paper.last_caliper is None and window.caliper_label.text() == ""
    # without caliper mode a drag pans the view instead
    window.caliper_action.trigger()
    before = window.paper.view_box.viewRange()
    drag(qtbot, window.paper, (60.0, -20.0), (80.0, -20.0))
    assert window.paper.last_caliper is None
    assert window.paper.view_box.viewRange()[0] != before[0]


def test_crosshair_readout_names_lead_time_and_amplitude(qtbot, window, ptbxl_dir) -> None:
    open_and_wait(qtbot, window, ptbxl_record_path(ptbxl_dir, 1))
    geo = window.paper.layout_geometry
    v2 = next(c for c in geo.cells if c.lead_name == "V2")
    point = window.paper.paper_to_widget(v2.x0_mm + 12.5, v2.baseline_mm + 5.0)  # 0.5 s in, +0.5 mV
    none = QtCore.Qt.MouseButton.NoButton
    send_mouse(window.paper.viewport(), QtCore.QEvent.Type.MouseMove, point, none, none)
    qtbot.waitUntil(lambda: window.cursor_label.text().startswith("V2"), timeout=2000)
    text = window.cursor_label.text()
    t_expected = v2.start_sample / 500.0 + 0.5
    t_shown = float(text.split("t = ")[1].split(" s")[0])
    assert t_shown == pytest.approx(t_expected, abs=0.02)
    cursor_mv = float(text.split("cursor ")[1].split(" mV")[0])
    assert cursor_mv == pytest.approx(0.5, abs=0.05)


def test_corrupt_file_shows_a_message_not_a_crash(qtbot, window, tmp_path: Path, ptbxl_dir) -> None:
    bad = tmp_path / "broken.hea"
    bad.write_bytes(b"\x00\xff garbage \x13\x37" * 50)
    with qtbot.waitSignal(window.open_failed, timeout=WAIT_MS) as blocker:
        window.open_path(str(bad))
    assert blocker.args[0]
    assert window.job_phase == "failed"
    box = window.last_message_box
    assert box is not None and box.isVisible() and "Traceback" not in box.text()
    assert "Could not open" in window.statusBar().currentMessage()
    box.close()
    open_and_wait(qtbot, window, ptbxl_record_path(ptbxl_dir, 3))  # the window still works
    assert window.analysis is not None


def test_analysis_failure_keeps_the_traces_and_says_so(qtbot, temporary_settings, ptbxl_dir) -> None:
    def broken(record):
        raise RuntimeError("model exploded")

    window = make_window(qtbot, temporary_settings, analyze=broken)
    with qtbot.waitSignal(window.analysis_failed, timeout=WAIT_MS):
        window.open_path(str(ptbxl_record_path(ptbxl_dir, 1)))
    assert len(window.paper.trace_items) == 13
    assert "Analysis failed" in window.score_panel.percentile_label.text()
    assert "model exploded" in window.last_message_box.text()
    window.last_message_box.close()


def test_newer_file_supersedes_a_running_analysis(qtbot, temporary_settings, ptbxl_dir) -> None:
    def slow(record):
        time.sleep(0.4)
        return fake_analysis(record)

    window = make_window(qtbot, temporary_settings, analyze=slow)
    shown: list[str] = []
    window.analysis_shown.connect(lambda a: shown.append(a.warnings[0]))
    window.open_path(str(ptbxl_record_path(ptbxl_dir, 1)))
    qtbot.waitUntil(lambda: window.job_phase == "analysing", timeout=WAIT_MS)
    window.open_path(str(ptbxl_record_path(ptbxl_dir, 2)))
    qtbot.waitUntil(window.is_settled, timeout=WAIT_MS)
    qtbot.waitUntil(lambda: not window.runner.is_busy(), timeout=WAIT_MS)
    qtbot.wait(50)
    assert shown == ["test analysis of 00002_hr.hea"]
    assert window.record.source.path.endswith("00002_hr.hea")


def test_page_down_and_up_browse_the_folder(qtbot, window, ptbxl_dir) -> None:
    open_and_wait(qtbot, window, ptbxl_record_path(ptbxl_dir, 1))
    window.activateWindow()
    window.paper.setFocus()
    qtbot.keyClick(window.paper, QtCore.Qt.Key.Key_PageDown)
    if window.state.current_path.endswith("00001_hr.hea"):  # no focus in this platform: use the action
        window.next_action.trigger()
    qtbot.waitUntil(window.is_settled, timeout=WAIT_MS)
    assert window.state.current_path.endswith("00002_hr.hea")
    assert window.record.source.path.endswith("00002_hr.hea")
    window.prev_action.trigger()
    qtbot.waitUntil(lambda: window.record.source.path.endswith("00001_hr.hea"), timeout=WAIT_MS)
    assert window.previous_file() is None  # 00001 is the first file of the folder
    assert window.state.recent_files[:2] == [str(ptbxl_record_path(ptbxl_dir, 1)),
                                             str(ptbxl_record_path(ptbxl_dir, 2))]


def test_drop_a_file_opens_it(qtbot, window, ptbxl_dir) -> None:
    mime = QtCore.QMimeData()
    mime.setUrls([QtCore.QUrl.fromLocalFile(str(ptbxl_record_path(ptbxl_dir, 4)))])
    pos = QtCore.QPointF(200, 200)
    enter = QtGui.QDragEnterEvent(pos, QtCore.Qt.DropAction.CopyAction, mime,
                                  QtCore.Qt.MouseButton.LeftButton, QtCore.Qt.KeyboardModifier.NoModifier)
    window.dragEnterEvent(enter)
    assert enter.isAccepted()
    drop = QtGui.QDropEvent(pos, QtCore.Qt.DropAction.CopyAction, mime, QtCore.Qt.MouseButton.LeftButton,
                            QtCore.Qt.KeyboardModifier.NoModifier)
    window.dropEvent(drop)
    qtbot.waitUntil(window.is_settled, timeout=WAIT_MS)
    assert window.record.source.path.endswith("00004_hr.hea")


def test_missing_lead_says_missing(qtbot, window, ptbxl_dir) -> None:
    record = ecgmodel.read(ptbxl_record_path(ptbxl_dir, 1))
    record.signal = record.signal.copy()
    record.signal[8] = np.nan  # V3
    record.missing_leads = ("V3",)
    window.open_record(record)
    qtbot.waitUntil(window.is_settled, timeout=WAIT_MS)
    labels = [i.textItem.toPlainText() for i in window.paper.label_items]
    assert "V3 missing" in labels


def test_preferences_and_geometry_persist(qtbot, temporary_settings, ptbxl_dir) -> None:
    window = make_window(qtbot, temporary_settings)
    window.set_layout("6x2")
    window.set_gain(20.0)
    window.set_filter("notch50")
    window.set_overlay_opacity(0.4)
    window.resize(1234, 876)
    window.open_path(str(ptbxl_record_path(ptbxl_dir, 5)))
    qtbot.waitUntil(window.is_settled, timeout=WAIT_MS)
    window.close()
    again = make_window(qtbot, temporary_settings)
    state = again.state
    assert (state.layout, state.gain_mm_per_mv, state.filter_preset) == ("6x2", 20.0, "notch50")
    assert again.state.overlay_opacity == pytest.approx(0.4)
    assert again.state.recent_files[0].endswith("00005_hr.hea")
    assert [a.text() for a in again.recent_menu.actions()][0] == "00005_hr.hea"
    assert again.layout_combo.currentData() == "6x2"


def test_about_dialog_and_exports(qtbot, window, ptbxl_dir, tmp_path: Path) -> None:
    open_and_wait(qtbot, window, ptbxl_record_path(ptbxl_dir, 1))
    dialog = window.show_about()
    text = dialog.text.toPlainText()
    assert "ecglens-anomaly" in text and "ab" * 32 in text and "anomaly: 12 ms" in text
    assert "Decision support only" in text
    dialog.close()
    png = tmp_path / "view.png"
    assert window.export_png(str(png))
    assert QtGui.QImage(str(png)).width() > 500
    pdf = tmp_path / "report.pdf"
    assert window.export_pdf(str(pdf))
    data = pdf.read_bytes()
    assert data.startswith(b"%PDF") and len(data) > 20000
    assert b"/MediaBox [0 0 841" in data or b"/MediaBox [0 0 842" in data  # A4 landscape, in points


def test_report_prints_at_true_scale(qtbot, ptbxl_dir) -> None:
    record = ecgmodel.read(ptbxl_record_path(ptbxl_dir, 1))
    px_per_mm = 10.0
    image = render_report_image(record, fake_analysis(record), px_per_mm=px_per_mm)
    assert (image.width(), image.height()) == (2970, 2100)
    layout = report_layout(record)
    ox, oy = ecg_origin_mm(layout)
    y = int((oy + 0.5) * px_per_mm)  # just below the top edge of the paper, above any trace
    def redness(x_mm: float) -> int:
        c = QtGui.QColor(image.pixel(int(round((ox + x_mm) * px_per_mm)), y))
        return c.red() - c.green()
    # 5 mm major lines are clearly pink/red, the paper between minor lines is not
    for x_mm in (50.0, 55.0, 100.0, 125.0):
        assert redness(x_mm) > redness(x_mm + 0.5) + 40


def test_disclaimer_banner_is_non_blocking(qtbot, window) -> None:
    assert window.isVisible()
    assert not any(isinstance(w, QtWidgets.QMessageBox) and w.isVisible()
                   for w in QtWidgets.QApplication.topLevelWidgets())


def test_run_viewer_screenshot(qtbot, tmp_path: Path, ptbxl_dir, monkeypatch) -> None:
    monkeypatch.setattr(ecgmodel, "analyze", fake_analysis)
    out = tmp_path / "shot.png"
    code = run_viewer(str(ptbxl_record_path(ptbxl_dir, 1)), screenshot=str(out), size=(1200, 800))
    assert code == 0
    image = QtGui.QImage(str(out))
    assert (image.width(), image.height()) == (1200, 800)


def test_real_analysis_populates_the_window(qtbot, temporary_settings, ptbxl_dir) -> None:
    try:
        ecgmodel.analyze(ecgmodel.read(ptbxl_record_path(ptbxl_dir, 1)))
    except (ImportError, ecgmodel.ModelLoadError) as error:
        pytest.skip(f"ecgmodel.analyze cannot run yet ({error})")
    window = make_window(qtbot, temporary_settings, analyze=ecgmodel.analyze)
    window.open_path(str(ptbxl_record_path(ptbxl_dir, 1)))
    qtbot.waitUntil(window.is_settled, timeout=180000)
    assert window.last_error is None, window.last_error
    analysis = window.analysis
    assert analysis.anomaly_map.shape == window.record.signal.shape
    assert window.score_panel.score_label.text() not in ("—", "…")
    assert "normal reference ECGs" in window.score_panel.percentile_label.text()
    assert len(window.paper.overlay_items) == 13
    if analysis.diagnoses:
        assert window.diagnoses_panel.table.rowCount() == len(analysis.diagnoses)
    else:
        assert window.diagnoses_panel.status_label.text() == "No diagnosis model loaded."
