"""The ECG Lens main window, and :func:`run_viewer` (what ``ecglens view FILE`` calls).

The window keeps its display preferences in a :class:`~app.state.ViewState`, draws on an
:class:`~app.ecg_paper.EcgPaperWidget`, and hands reading + analysis to an
:class:`~app.worker.AnalysisRunner` (background thread). Traces appear as soon as the file is read;
results appear when the analysis finishes; a newer file makes older jobs stale.
"""

from __future__ import annotations

import datetime as _dt
import html
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np
from PySide6 import QtCore, QtGui, QtWidgets

from ecgmodel.types import Analysis, Diagnosis, EcgRecord

from . import DISCLAIMER
from .dialogs import AboutAnalysisDialog, DisclaimerBanner, show_error
from .ecg_paper import CaliperMeasurement, CursorReadout, EcgPaperWidget, hottest_interval
from .panels import ContextPanel, DiagnosesPanel, ScorePanel, sex_text
from .state import (
    FILTER_PRESETS,
    GAINS_MM_PER_MV,
    LAYOUTS,
    PAGE_STEP_S,
    SPEEDS_MM_PER_S,
    ViewState,
    neighbour_file,
)
from .worker import AnalysisRunner

SETTINGS_ORG = "ECG Lens"
SETTINGS_APP = "ECG Lens"
#: Environment variable naming an INI file to use instead of the user's settings (tests, benchmarks).
SETTINGS_ENV = "ECGLENS_SETTINGS"

_disclaimer_shown_this_session = False


def supported_extensions() -> tuple[str, ...]:
    """File extensions the readers accept (for the open dialog and Page Up / Page Down)."""
    from ecgmodel.io import SUPPORTED_EXTENSIONS

    return tuple(SUPPORTED_EXTENSIONS)


def open_dialog_filter() -> str:
    patterns = " ".join(f"*{ext}" for ext in supported_extensions())
    return f"ECG files ({patterns});;All files (*)"


def default_settings() -> QtCore.QSettings:
    """The user's settings, or the INI file named by ``$ECGLENS_SETTINGS``."""
    path = os.environ.get(SETTINGS_ENV)
    if path:
        return QtCore.QSettings(path, QtCore.QSettings.Format.IniFormat)
    return QtCore.QSettings(SETTINGS_ORG, SETTINGS_APP)


def display_filtered(record: EcgRecord, preset: str) -> tuple[np.ndarray, str | None]:
    """The record's signal filtered with a display preset, and a problem message (or None)."""
    if preset == "none":
        return record.signal, None
    try:
        from ecgmodel.signal import apply_preset

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            filtered = apply_preset(record.signal, record.fs, preset)
        return np.asarray(filtered, dtype=np.float32), None
    except Exception as error:  # noqa: BLE001 - display falls back to the raw signal
        return record.signal, f"display filter unavailable ({type(error).__name__}); showing raw signal"


def header_html(record: EcgRecord | None, state: ViewState) -> str:
    """One line about the open record: file, patient, acquisition, duration, rate, format, scale."""
    if record is None:
        return "<b>No ECG open</b> &nbsp; File ▸ Open (Ctrl+O), or drop a file here."
    src = record.source
    name = Path(src.path).name if src.path else "(unnamed)"
    age = f"{record.patient.age:.0f} y" if record.patient.age is not None else "age unknown"
    sex = sex_text(record.patient.sex)
    sex = "sex unknown" if sex == "unknown" else sex
    acquired = record.acquired.strftime("%Y-%m-%d %H:%M") if isinstance(record.acquired, _dt.datetime) \
        else "acquired: unknown"
    chest = f", V1–V6 {state.chest_gain_mm_per_mv():g} mm/mV" if state.chest_half_scale else ""
    parts = [
        f"<b>{html.escape(name)}</b>",
        f"Patient: {age}, {sex}",
        html.escape(acquired),
        f"{record.duration_s:.1f} s",
        f"{record.fs:g} Hz",
        html.escape(src.format),
        f"{state.speed_mm_per_s:g} mm/s, {state.gain_mm_per_mv:g} mm/mV{chest}",
        f"filter: {html.escape(FILTER_PRESETS.get(state.filter_preset, state.filter_preset))}",
    ]
    return " &nbsp;·&nbsp; ".join(parts)


class MainWindow(QtWidgets.QMainWindow):
    """The viewer window. ``settings``: where preferences persist (None: the user's or $ECGLENS_SETTINGS);
    ``persist=False`` reads defaults and writes nothing (screenshot mode)."""

    record_shown = QtCore.Signal(object)  # EcgRecord
    analysis_shown = QtCore.Signal(object)  # Analysis
    open_failed = QtCore.Signal(str)
    analysis_failed = QtCore.Signal(str)

    def __init__(self, settings: QtCore.QSettings | None = None, runner: AnalysisRunner | None = None,
                 persist: bool = True, show_disclaimer: bool = True) -> None:
        super().__init__()
        self.setWindowTitle("ECG Lens")
        self.setAcceptDrops(True)
        self.persist = persist
        self.settings = settings if settings is not None else (default_settings() if persist else None)
        self.state = self._load_state()
        self.runner = runner or AnalysisRunner(parent=self)
        self.runner.wait_for_display = True
        self.record: EcgRecord | None = None
        self.analysis: Analysis | None = None
        self.display_signal: np.ndarray | None = None
        self.job_id = 0
        self.job_phase = "idle"  # idle | reading | analysing | done | failed
        self.last_error: str | None = None
        self.last_message_box: QtWidgets.QMessageBox | None = None
        self.timings: dict[str, float] = {}
        self._open_started = 0.0

        self._build_widgets(show_disclaimer)
        self._build_actions()
        self._connect()
        self._sync_controls()
        self._restore_geometry()

    # ------------------------------------------------------------------ construction
    def _load_state(self) -> ViewState:
        if self.settings is None:
            return ViewState()
        values = {key: self.settings.value(f"view/{key}") for key in ViewState._PERSISTED}
        state = ViewState.from_settings(values)
        recent = self.settings.value("recent_files", [])
        if isinstance(recent, str):
            recent = [recent]
        state.recent_files = [str(p) for p in (recent or [])][:10]
        return state

    def _build_widgets(self, show_disclaimer: bool) -> None:
        global _disclaimer_shown_this_session
        central = QtWidgets.QWidget()
        outer = QtWidgets.QVBoxLayout(central)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.setSpacing(0)
        self.banner = DisclaimerBanner()
        outer.addWidget(self.banner)
        self.banner.setVisible(show_disclaimer and not _disclaimer_shown_this_session)
        if show_disclaimer:
            _disclaimer_shown_this_session = True

        self.header_label = QtWidgets.QLabel()
        self.header_label.setObjectName("recordHeader")
        self.header_label.setTextFormat(QtCore.Qt.TextFormat.RichText)
        self.header_label.setStyleSheet("#recordHeader { padding: 5px 10px; background: #f4f4f6;"
                                        " border-bottom: 1px solid #ddd; }")
        outer.addWidget(self.header_label)

        self.splitter = QtWidgets.QSplitter(QtCore.Qt.Orientation.Horizontal)
        self.ecg_area = QtWidgets.QWidget()
        ecg_layout = QtWidgets.QVBoxLayout(self.ecg_area)
        ecg_layout.setContentsMargins(0, 0, 0, 0)
        self.paper = EcgPaperWidget()
        self.paper.setAcceptDrops(False)
        ecg_layout.addWidget(self.paper)
        self.splitter.addWidget(self.ecg_area)

        side = QtWidgets.QWidget()
        side_layout = QtWidgets.QVBoxLayout(side)
        side_layout.setContentsMargins(6, 6, 6, 6)
        self.score_panel = ScorePanel()
        self.diagnoses_panel = DiagnosesPanel()
        self.context_panel = ContextPanel()
        side_layout.addWidget(self.score_panel)
        side_layout.addWidget(self.diagnoses_panel, 1)
        side_layout.addWidget(self.context_panel)
        scroll = QtWidgets.QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(side)
        scroll.setMinimumWidth(340)
        self.splitter.addWidget(scroll)
        self.splitter.setStretchFactor(0, 1)
        self.splitter.setStretchFactor(1, 0)
        self.splitter.setSizes([1200, 400])
        outer.addWidget(self.splitter, 1)
        self.setCentralWidget(central)

        status = self.statusBar()
        self.cursor_label = QtWidgets.QLabel("")
        self.caliper_label = QtWidgets.QLabel("")
        self.caliper_label.setStyleSheet("color: #1450c8; font-weight: bold;")
        self.busy_bar = QtWidgets.QProgressBar()
        self.busy_bar.setRange(0, 0)
        self.busy_bar.setMaximumWidth(120)
        self.busy_bar.setMaximumHeight(14)
        self.busy_bar.setVisible(False)
        self.busy_label = QtWidgets.QLabel("")
        status.addWidget(self.cursor_label, 1)
        status.addPermanentWidget(self.caliper_label)
        status.addPermanentWidget(self.busy_label)
        status.addPermanentWidget(self.busy_bar)
        self._update_header()

    def _action(self, text: str, slot, shortcut: str | QtGui.QKeySequence | None = None,
                checkable: bool = False, tip: str | None = None) -> QtGui.QAction:
        action = QtGui.QAction(text, self)
        if shortcut is not None:
            action.setShortcut(QtGui.QKeySequence(shortcut))
        action.setCheckable(checkable)
        if tip:
            action.setToolTip(tip)
            action.setStatusTip(tip)
        action.triggered.connect(slot)
        self.addAction(action)
        return action

    def _build_actions(self) -> None:
        Key = QtGui.QKeySequence.StandardKey
        self.open_action = self._action("&Open…", self.choose_file, Key.Open, tip="Open an ECG file (Ctrl+O)")
        self.next_action = self._action("&Next file in folder", self.next_file, "PgDown")
        self.prev_action = self._action("&Previous file in folder", self.previous_file, "PgUp")
        self.export_png_action = self._action("Export view as &PNG…", self.choose_png, "Ctrl+E")
        self.export_pdf_action = self._action("Export &PDF report…", self.choose_pdf, "Ctrl+P")
        self.quit_action = self._action("&Quit", self.close, Key.Quit)
        self.fit_action = self._action("&Fit page", self.paper.fit, "F", tip="Show the whole page (F)")
        self.zoom_in_action = self._action("Zoom &in", lambda: self.paper.zoom(0.8), Key.ZoomIn)
        self.zoom_out_action = self._action("Zoom &out", lambda: self.paper.zoom(1.25), Key.ZoomOut)
        self.overlay_action = self._action("Anomaly &overlay", self.set_overlay_visible, "H", checkable=True,
                                           tip="Show / hide the anomaly map (H)")
        self.caliper_action = self._action("&Calipers", self.set_caliper_mode, "C", checkable=True,
                                           tip="Drag to measure time and amplitude (C; Shift+drag any time)")
        self.clear_caliper_action = self._action("Clear caliper", self._clear_caliper, "Esc")
        self.chest_action = self._action("Half-scale &chest leads", self.set_chest_half_scale, "V",
                                         checkable=True)
        self.gain_cycle_action = self._action("Cycle &gain", self._cycle_gain, "G")
        self.speed_cycle_action = self._action("Toggle &speed", self._cycle_speed, "S")
        self.page_next_action = self._action("Next 10 s page", lambda: self.shift_page(+1), "Right")
        self.page_prev_action = self._action("Previous 10 s page", lambda: self.shift_page(-1), "Left")
        self.about_action = self._action("&About this analysis…", self.show_about, "Ctrl+I")
        self.disclaimer_action = self._action("Decision-support &disclaimer", self._show_disclaimer)
        self.layout_actions: dict[str, QtGui.QAction] = {}
        layout_group = QtGui.QActionGroup(self)
        for number, (key, text) in enumerate(LAYOUTS.items(), start=1):
            action = self._action(text, lambda _=False, k=key: self.set_layout(k), str(number),
                                  checkable=True)
            layout_group.addAction(action)
            self.layout_actions[key] = action

        menu = self.menuBar()
        file_menu = menu.addMenu("&File")
        file_menu.addAction(self.open_action)
        self.recent_menu = file_menu.addMenu("Open &Recent")
        file_menu.addAction(self.prev_action)
        file_menu.addAction(self.next_action)
        file_menu.addSeparator()
        file_menu.addAction(self.export_png_action)
        file_menu.addAction(self.export_pdf_action)
        file_menu.addSeparator()
        file_menu.addAction(self.quit_action)
        view_menu = menu.addMenu("&View")
        for action in self.layout_actions.values():
            view_menu.addAction(action)
        view_menu.addSeparator()
        for action in (self.gain_cycle_action, self.speed_cycle_action, self.chest_action,
                       self.overlay_action, self.caliper_action, self.clear_caliper_action):
            view_menu.addAction(action)
        view_menu.addSeparator()
        for action in (self.fit_action, self.zoom_in_action, self.zoom_out_action, self.page_prev_action,
                       self.page_next_action):
            view_menu.addAction(action)
        help_menu = menu.addMenu("&Help")
        help_menu.addAction(self.about_action)
        help_menu.addAction(self.disclaimer_action)
        self._rebuild_recent_menu()

        bar = self.addToolBar("View")
        bar.setObjectName("viewToolbar")
        bar.setMovable(False)
        bar.addAction(self.open_action)
        bar.addSeparator()
        self.layout_combo = self._combo(bar, "Layout", LAYOUTS)
        self.gain_combo = self._combo(bar, "Gain", {g: f"{g:g} mm/mV" for g in GAINS_MM_PER_MV})
        self.speed_combo = self._combo(bar, "Speed", {s: f"{s:g} mm/s" for s in SPEEDS_MM_PER_S})
        self.filter_combo = self._combo(bar, "Filter", FILTER_PRESETS)
        self.chest_check = QtWidgets.QCheckBox("½ chest")
        self.chest_check.setToolTip("Half-scale chest leads V1–V6 (V)")
        bar.addWidget(self.chest_check)
        bar.addSeparator()
        bar.addAction(self.caliper_action)
        bar.addAction(self.fit_action)
        bar.addAction(self.overlay_action)
        bar.addSeparator()
        bar.addAction(self.export_pdf_action)
        bar.addAction(self.about_action)

    def _combo(self, bar: QtWidgets.QToolBar, label: str, options: dict) -> QtWidgets.QComboBox:
        bar.addWidget(QtWidgets.QLabel(f" {label} "))
        combo = QtWidgets.QComboBox()
        for key, text in options.items():
            combo.addItem(text, key)
        bar.addWidget(combo)
        return combo

    def _connect(self) -> None:
        self.runner.record_ready.connect(self.on_record_ready)
        self.runner.analysis_ready.connect(self.on_analysis_ready)
        self.runner.failed.connect(self.on_job_failed)
        self.runner.progress.connect(self.on_job_progress)
        self.layout_combo.activated.connect(lambda i: self.set_layout(self.layout_combo.itemData(i)))
        self.gain_combo.activated.connect(lambda i: self.set_gain(self.gain_combo.itemData(i)))
        self.speed_combo.activated.connect(lambda i: self.set_speed(self.speed_combo.itemData(i)))
        self.filter_combo.activated.connect(lambda i: self.set_filter(self.filter_combo.itemData(i)))
        self.chest_check.toggled.connect(self.set_chest_half_scale)
        self.score_panel.overlay_toggled.connect(self.set_overlay_visible)
        self.score_panel.opacity_changed.connect(self.set_overlay_opacity)
        self.diagnoses_panel.diagnosis_selected.connect(self.on_diagnosis_selected)
        self.paper.caliper_changed.connect(self._on_caliper)
        self.paper.cursor_moved.connect(self._on_cursor)

    def _sync_controls(self) -> None:
        """Make every control show what :attr:`state` says (without re-triggering handlers)."""
        st = self.state
        widgets = (self.layout_combo, self.gain_combo, self.speed_combo, self.filter_combo, self.chest_check)
        for widget in widgets:
            widget.blockSignals(True)
        self.layout_combo.setCurrentIndex(self.layout_combo.findData(st.layout))
        self.gain_combo.setCurrentIndex(self.gain_combo.findData(st.gain_mm_per_mv))
        self.speed_combo.setCurrentIndex(self.speed_combo.findData(st.speed_mm_per_s))
        self.filter_combo.setCurrentIndex(self.filter_combo.findData(st.filter_preset))
        self.chest_check.setChecked(st.chest_half_scale)
        for widget in widgets:
            widget.blockSignals(False)
        for key, action in self.layout_actions.items():
            action.setChecked(key == st.layout)
        self.overlay_action.setChecked(st.overlay_visible)
        self.caliper_action.setChecked(st.caliper_mode)
        self.chest_action.setChecked(st.chest_half_scale)
        self.score_panel.set_overlay_controls(st.overlay_visible, st.overlay_opacity)
        self.paper.state = st
        self._update_header()

    def _restore_geometry(self) -> None:
        if self.settings is None:
            return
        geometry = self.settings.value("window/geometry")
        if isinstance(geometry, (QtCore.QByteArray, bytes)):
            self.restoreGeometry(geometry)
        splitter = self.settings.value("window/splitter")
        if isinstance(splitter, (QtCore.QByteArray, bytes)):
            self.splitter.restoreState(splitter)

    def save_settings(self) -> None:
        """Write preferences, recent files and window geometry (no-op when not persisting)."""
        if not self.persist or self.settings is None:
            return
        for key, value in self.state.to_settings().items():
            self.settings.setValue(f"view/{key}", value)
        self.settings.setValue("recent_files", list(self.state.recent_files))
        self.settings.setValue("window/geometry", self.saveGeometry())
        self.settings.setValue("window/splitter", self.splitter.saveState())
        self.settings.sync()

    # ------------------------------------------------------------------ opening files
    def choose_file(self) -> None:
        start = str(Path(self.state.current_path).parent) if self.state.current_path else ""
        path, _ = QtWidgets.QFileDialog.getOpenFileName(self, "Open ECG", start, open_dialog_filter())
        if path:
            self.open_path(path)

    def open_path(self, path: str | os.PathLike[str]) -> int:
        """Open a file: read + analyse on the worker; older jobs become stale. Returns the job id."""
        path = str(path)
        self._open_started = time.perf_counter()
        self.timings = {}
        self.state.current_path = path
        self.state.selected_diagnosis = None
        self.state.page_start_s = 0.0
        self.analysis = None
        self.last_error = None
        self.job_phase = "reading"
        self._set_busy("Reading file…")
        self.job_id = self.runner.submit(path)
        self.setWindowTitle(f"ECG Lens — {Path(path).name}")
        return self.job_id

    def open_record(self, record: EcgRecord) -> int:
        """Show an already read record and analyse it (used by tests and embedding code)."""
        self._open_started = time.perf_counter()
        self.timings = {}
        self.state.current_path = record.source.path
        self.state.page_start_s = 0.0
        self.job_id = self.runner.submit(record=record)
        self.on_record_ready(self.job_id, record)
        return self.job_id

    @QtCore.Slot(int, object)
    def on_record_ready(self, job_id: int, record: EcgRecord) -> None:
        """Worker slot: the file is read; draw its traces at once and wait for the analysis."""
        if job_id != self.job_id:
            return
        self.record = record
        self.analysis = None
        self.display_signal, problem = display_filtered(record, self.state.filter_preset)
        self.paper.state = self.state
        self.paper.set_record(record, self.display_signal)
        self.timings["first_traces_s"] = time.perf_counter() - self._open_started
        if record.source.path:
            self.state.remember_file(record.source.path)
            self._rebuild_recent_menu()
        self.job_phase = "analysing"
        self._set_busy("Analysing…")
        self.score_panel.set_busy()
        self.diagnoses_panel.clear("Analysing…")
        self.context_panel.set_record(record)
        self._update_header()
        if problem:
            self.statusBar().showMessage(problem, 8000)
        self.record_shown.emit(record)
        self.runner.notify_displayed(job_id)

    @QtCore.Slot(int, object)
    def on_analysis_ready(self, job_id: int, analysis: Analysis) -> None:
        """Worker slot: show score, overlay, diagnoses and context. Stale results are ignored."""
        if job_id != self.job_id or self.record is None:
            return
        self.analysis = analysis
        self.job_phase = "done"
        self._set_busy(None)
        self.paper.set_analysis(analysis)
        self.score_panel.set_analysis(analysis, self.record)
        self.diagnoses_panel.set_diagnoses(analysis.diagnoses)
        self.context_panel.set_analysis(analysis)
        self.timings["results_s"] = time.perf_counter() - self._open_started
        bad = [lead for lead, flag in analysis.lead_quality.items()
               if str(flag).lower() not in ("ok", "good", "", "none")]
        if bad:
            self.statusBar().showMessage(f"Leads with quality problems: {', '.join(bad)}", 10000)
        self.analysis_shown.emit(analysis)

    @QtCore.Slot(int, str, str)
    def on_job_failed(self, job_id: int, stage: str, message: str) -> None:
        """Worker slot: a failure becomes a message box and a status message, never a traceback."""
        if job_id != self.job_id:
            return
        self.job_phase = "failed"
        self.last_error = message
        self._set_busy(None)
        if stage == "open":
            self.statusBar().showMessage(f"Could not open the file: {message}", 15000)
            self.last_message_box = show_error(self, "Could not open ECG", message)
            if self.record is None:
                self.score_panel.clear()
                self.diagnoses_panel.clear()
            self.open_failed.emit(message)
        else:
            self.statusBar().showMessage(f"Analysis failed: {message}", 15000)
            self.score_panel.set_failed(message)
            self.diagnoses_panel.clear("Analysis failed; the ECG is shown without results.")
            self.last_message_box = show_error(self, "Analysis failed", message)
            self.analysis_failed.emit(message)

    @QtCore.Slot(int, str)
    def on_job_progress(self, job_id: int, text: str) -> None:
        if job_id == self.job_id and self.job_phase in ("reading", "analysing"):
            self._set_busy(text)

    def is_settled(self) -> bool:
        """True when nothing is pending for the current file (results shown, or it failed)."""
        return self.job_phase in ("idle", "done", "failed")

    def wait_until_settled(self, timeout_s: float = 300.0) -> bool:
        """Run the event loop until :meth:`is_settled` (screenshot mode); False on timeout."""
        deadline = time.monotonic() + timeout_s
        app = QtWidgets.QApplication.instance()
        while not self.is_settled() and time.monotonic() < deadline:
            app.processEvents(QtCore.QEventLoop.ProcessEventsFlag.AllEvents, 50)
            time.sleep(0.01)
        app.processEvents()
        return self.is_settled()

    def _set_busy(self, text: str | None) -> None:
        self.busy_bar.setVisible(text is not None)
        self.busy_label.setText(text or "")

    def step_file(self, step: int) -> Path | None:
        """Open the next (+1) / previous (-1) ECG file of the current file's folder."""
        if not self.state.current_path:
            return None
        target = neighbour_file(self.state.current_path, supported_extensions(), step)
        if target is None:
            self.statusBar().showMessage("No more ECG files in this folder.", 4000)
            return None
        self.open_path(str(target))
        return target

    def next_file(self) -> Path | None:
        return self.step_file(+1)

    def previous_file(self) -> Path | None:
        return self.step_file(-1)

    def _rebuild_recent_menu(self) -> None:
        self.recent_menu.clear()
        for path in self.state.recent_files:
            action = self.recent_menu.addAction(Path(path).name)
            action.setToolTip(path)
            action.triggered.connect(lambda _=False, p=path: self.open_path(p))
        self.recent_menu.setEnabled(bool(self.state.recent_files))

    # drag and drop
    def dragEnterEvent(self, event: QtGui.QDragEnterEvent) -> None:  # noqa: N802
        if event.mimeData().hasUrls() and any(u.isLocalFile() for u in event.mimeData().urls()):
            event.acceptProposedAction()
        else:
            event.ignore()

    def dropEvent(self, event: QtGui.QDropEvent) -> None:  # noqa: N802
        files = [u.toLocalFile() for u in event.mimeData().urls() if u.isLocalFile()]
        if files:
            event.acceptProposedAction()
            self.open_path(files[0])

    # ------------------------------------------------------------------ view controls
    def _redraw(self, fit: bool = True) -> None:
        self._sync_controls()
        self.paper.apply_state(self.state, fit=fit)
        if self.analysis is not None:
            self.paper.set_analysis(self.analysis)
        self._apply_highlight()

    def set_layout(self, layout: str) -> None:
        if layout in LAYOUTS and layout != self.state.layout:
            self.state.layout = layout
            self._redraw()

    def set_gain(self, gain_mm_per_mv: float) -> None:
        if float(gain_mm_per_mv) in GAINS_MM_PER_MV:
            self.state.gain_mm_per_mv = float(gain_mm_per_mv)
            self._redraw()

    def set_speed(self, speed_mm_per_s: float) -> None:
        if float(speed_mm_per_s) in SPEEDS_MM_PER_S:
            self.state.speed_mm_per_s = float(speed_mm_per_s)
            self._redraw()

    def set_chest_half_scale(self, enabled: bool) -> None:
        self.state.chest_half_scale = bool(enabled)
        self._redraw()

    def set_filter(self, preset: str) -> None:
        if preset not in FILTER_PRESETS:
            return
        self.state.filter_preset = preset
        if self.record is not None:
            self.display_signal, problem = display_filtered(self.record, preset)
            self.paper.set_display_signal(self.display_signal)
            if problem:
                self.statusBar().showMessage(problem, 8000)
        self._sync_controls()

    def set_overlay_visible(self, visible: bool) -> None:
        self.state.overlay_visible = bool(visible)
        self.paper.set_overlay(self.state.overlay_visible, self.state.overlay_opacity)
        self._sync_controls()

    def set_overlay_opacity(self, opacity: float) -> None:
        self.state.overlay_opacity = min(1.0, max(0.0, float(opacity)))
        self.paper.set_overlay(self.state.overlay_visible, self.state.overlay_opacity)
        self._sync_controls()

    def set_caliper_mode(self, enabled: bool) -> None:
        self.state.caliper_mode = bool(enabled)
        self.paper.set_caliper_mode(self.state.caliper_mode)
        self._sync_controls()
        if enabled:
            self.statusBar().showMessage("Calipers: drag on the ECG to measure an interval and an amplitude.",
                                         5000)

    def shift_page(self, step: int) -> None:
        """Show the next / previous 10 s of a longer record (3 × 4 and 6 × 2 layouts)."""
        if self.record is None or self.state.layout == "12x1":
            return
        last_start = max(0.0, self.record.duration_s - PAGE_STEP_S)
        new_start = min(max(0.0, self.state.page_start_s + step * PAGE_STEP_S), last_start)
        if new_start != self.state.page_start_s:
            self.state.page_start_s = new_start
            self._redraw()

    def _cycle_gain(self) -> None:
        gains = list(GAINS_MM_PER_MV)
        self.set_gain(gains[(gains.index(self.state.gain_mm_per_mv) + 1) % len(gains)])

    def _cycle_speed(self) -> None:
        speeds = list(SPEEDS_MM_PER_S)
        self.set_speed(speeds[(speeds.index(self.state.speed_mm_per_s) + 1) % len(speeds)])

    def _clear_caliper(self) -> None:
        self.paper.clear_caliper()
        self.caliper_label.setText("")

    def _on_caliper(self, measurement: CaliperMeasurement | None) -> None:
        self.caliper_label.setText(measurement.text() if measurement else "")

    def _on_cursor(self, readout: CursorReadout | None) -> None:
        self.cursor_label.setText(readout.text() if readout else "")

    def on_diagnosis_selected(self, diagnosis: Diagnosis | None) -> None:
        self.state.selected_diagnosis = diagnosis.code if diagnosis else None
        self._apply_highlight()
        if diagnosis is not None and self.paper.highlight_interval_s is not None:
            t0, t1 = self.paper.highlight_interval_s
            self.statusBar().showMessage(
                f"{diagnosis.name}: marked {t0:.2f}–{t1:.2f} s, where the anomaly map is highest "
                "(the map is not specific to one statement).", 10000)

    def _apply_highlight(self) -> None:
        if self.state.selected_diagnosis and self.analysis is not None and self.record is not None:
            self.paper.set_highlight(hottest_interval(self.analysis.anomaly_map, self.record.fs))
        else:
            self.paper.set_highlight(None)

    def _update_header(self) -> None:
        self.header_label.setText(header_html(self.record, self.state))

    # ------------------------------------------------------------------ export, dialogs
    def choose_png(self) -> None:
        path, _ = QtWidgets.QFileDialog.getSaveFileName(self, "Export view as PNG", self._export_name(".png"),
                                                        "PNG image (*.png)")
        if path:
            self.export_png(path)

    def choose_pdf(self) -> None:
        if self.record is None:
            self.statusBar().showMessage("Open an ECG first.", 4000)
            return
        path, _ = QtWidgets.QFileDialog.getSaveFileName(self, "Export PDF report", self._export_name(".pdf"),
                                                        "PDF document (*.pdf)")
        if path:
            self.export_pdf(path)

    def _export_name(self, suffix: str) -> str:
        if self.state.current_path:
            return str(Path(self.state.current_path).with_suffix("")) + "_ecglens" + suffix
        return "ecglens" + suffix

    def export_png(self, path: str) -> bool:
        """Save the ECG view (header + paper) as shown, to a PNG."""
        ok = self.ecg_area.grab().save(str(path), "PNG") if self.record is not None else \
            self.centralWidget().grab().save(str(path), "PNG")
        self.statusBar().showMessage(f"Saved {path}" if ok else f"Could not save {path}", 6000)
        return bool(ok)

    def export_pdf(self, path: str) -> bool:
        """Write the true-scale PDF report (25 mm/s, 10 mm/mV, 3 × 4 + rhythm)."""
        from .report import write_pdf_report

        if self.record is None:
            return False
        try:
            write_pdf_report(path, self.record, self.analysis, filter_preset=self.state.filter_preset,
                             display_signal=self.display_signal)
        except Exception as error:  # noqa: BLE001
            self.last_message_box = show_error(self, "Could not write the PDF report", str(error))
            return False
        self.statusBar().showMessage(f"Saved {path}", 6000)
        return True

    def show_about(self) -> AboutAnalysisDialog:
        dialog = AboutAnalysisDialog(self.analysis, self.record, self)
        dialog.setAttribute(QtCore.Qt.WidgetAttribute.WA_DeleteOnClose, True)
        dialog.open()
        return dialog

    def _show_disclaimer(self) -> None:
        self.banner.setVisible(True)
        self.statusBar().showMessage(DISCLAIMER, 10000)

    def closeEvent(self, event: QtGui.QCloseEvent) -> None:  # noqa: N802
        self.save_settings()
        self.runner.cancel()
        super().closeEvent(event)


def run_viewer(path: str | None = None, screenshot: str | None = None,
               size: tuple[int, int] = (1600, 1000)) -> int:
    """Start the viewer on ``path``; with ``screenshot``, wait for the analysis, save the window as a PNG
    and return (no event loop, no persisted settings). Returns the process exit code."""
    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication(sys.argv[:1])
    app.setOrganizationName(SETTINGS_ORG)
    app.setApplicationName(SETTINGS_APP)
    window = MainWindow(persist=screenshot is None)
    if screenshot is not None or window.settings is None or window.settings.value("window/geometry") is None:
        window.resize(*size)
    window.show()
    if path:
        window.open_path(path)
    if screenshot is None:
        return int(app.exec())
    settled = window.wait_until_settled()
    for _ in range(5):  # let the overlay and layouts paint
        app.processEvents()
        time.sleep(0.02)
    ok = window.grab().save(str(screenshot), "PNG")
    failure = window.last_error
    window.runner.cancel()
    window.close()
    if not ok:
        print(f"ecglens: could not write {screenshot}", file=sys.stderr)
        return 1
    if failure:
        print(f"ecglens: {failure}", file=sys.stderr)
        return 1
    if not settled:
        print("ecglens: the analysis did not finish in time; the screenshot shows traces only",
              file=sys.stderr)
        return 1
    return 0
