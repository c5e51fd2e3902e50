"""Side panels: anomaly score + overlay legend, ranked diagnoses, demographic / interval context.

Each panel shows what it is given (an :class:`~ecgmodel.types.Analysis`, an
:class:`~ecgmodel.types.EcgRecord`); none computes a medical result.
"""

from __future__ import annotations

import math

from PySide6 import QtCore, QtGui, QtWidgets

from ecgmodel.types import Analysis, Diagnosis, EcgRecord

from .ecg_paper import PAPER_COLOR, overlay_lut
from .state import OVERLAY_RANGE_SD

LEGEND_CAPTION = "restoration error vs normal ECGs, in SD"


def _fmt(value: float | None, unit: str = "", digits: int = 0) -> str:
    if value is None:
        return "—"
    try:
        value = float(value)
    except (TypeError, ValueError):
        return "—"
    if not math.isfinite(value):
        return "—"
    return f"{value:.{digits}f}{unit}"


def percentile_sentence(percentile: float | None) -> str:
    """"higher than 97% of normal reference ECGs" (the score's place among normals)."""
    if percentile is None or not math.isfinite(float(percentile)):
        return "percentile among normal reference ECGs unavailable"
    return f"higher than {float(percentile):.0f}% of normal reference ECGs"


class OverlayLegend(QtWidgets.QWidget):
    """The overlay colour scale (0..6 SD) over paper colour, with ticks at their true positions."""

    BAR_HEIGHT = 14

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.setMinimumHeight(self.BAR_HEIGHT + self.fontMetrics().height() + 6)
        self.setSizePolicy(QtWidgets.QSizePolicy.Policy.Expanding, QtWidgets.QSizePolicy.Policy.Fixed)
        self.opacity = 1.0

    def paintEvent(self, event: QtGui.QPaintEvent) -> None:  # noqa: N802
        painter = QtGui.QPainter(self)
        margin = 8
        width = max(10, self.width() - 2 * margin)
        lut = overlay_lut(width)
        painter.fillRect(margin, 0, width, self.BAR_HEIGHT, QtGui.QColor(*PAPER_COLOR))
        for x in range(width):
            r, g, b, a = (int(v) for v in lut[x])
            painter.setPen(QtGui.QColor(r, g, b, int(a * self.opacity)))
            painter.drawLine(margin + x, 0, margin + x, self.BAR_HEIGHT)
        painter.setPen(QtGui.QColor(120, 120, 120))
        painter.drawRect(margin, 0, width - 1, self.BAR_HEIGHT)
        lo, hi = OVERLAY_RANGE_SD
        metrics = painter.fontMetrics()
        for value in range(int(lo), int(hi) + 1):
            x = margin + int(round((value - lo) / (hi - lo) * (width - 1)))
            painter.drawLine(x, self.BAR_HEIGHT, x, self.BAR_HEIGHT + 3)
            text = f"{value}" + (" SD" if value == int(hi) else "")
            tw = metrics.horizontalAdvance(text)
            tx = min(max(0, x - tw // 2), self.width() - tw)
            painter.drawText(tx, self.BAR_HEIGHT + 3 + metrics.ascent(), text)
        painter.end()


class ScorePanel(QtWidgets.QGroupBox):
    """Overall anomaly score, its percentile, the overlay controls and the colour legend."""

    overlay_toggled = QtCore.Signal(bool)
    opacity_changed = QtCore.Signal(float)

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__("Anomaly score", parent)
        layout = QtWidgets.QVBoxLayout(self)
        self.score_label = QtWidgets.QLabel("—")
        font = self.score_label.font()
        font.setPointSize(20)
        font.setBold(True)
        self.score_label.setFont(font)
        self.percentile_label = QtWidgets.QLabel("Open an ECG to analyse it.")
        self.percentile_label.setWordWrap(True)
        layout.addWidget(self.score_label)
        layout.addWidget(self.percentile_label)

        row = QtWidgets.QHBoxLayout()
        self.overlay_check = QtWidgets.QCheckBox("Overlay")
        self.overlay_check.setToolTip("Show the anomaly map on every lead (H)")
        self.overlay_check.setChecked(True)
        self.opacity_slider = QtWidgets.QSlider(QtCore.Qt.Orientation.Horizontal)
        self.opacity_slider.setRange(0, 100)
        self.opacity_slider.setValue(55)
        self.opacity_slider.setToolTip("Overlay opacity")
        row.addWidget(self.overlay_check)
        row.addWidget(QtWidgets.QLabel("opacity"))
        row.addWidget(self.opacity_slider, 1)
        layout.addLayout(row)

        self.legend = OverlayLegend()
        layout.addWidget(self.legend)
        caption = QtWidgets.QLabel(f"Overlay colour = {LEGEND_CAPTION}: 0 = like normal ECGs, "
                                   "≥ 3 clearly unusual.")
        caption.setWordWrap(True)
        caption.setStyleSheet("color: #555;")
        self.legend_caption = caption
        layout.addWidget(caption)
        self.warnings_label = QtWidgets.QLabel("")
        self.warnings_label.setWordWrap(True)
        self.warnings_label.setStyleSheet("color: #a05000;")
        layout.addWidget(self.warnings_label)

        self.overlay_check.toggled.connect(self.overlay_toggled)
        self.opacity_slider.valueChanged.connect(lambda v: self.opacity_changed.emit(v / 100.0))

    def set_overlay_controls(self, visible: bool, opacity: float) -> None:
        for widget in (self.overlay_check, self.opacity_slider):
            widget.blockSignals(True)
        self.overlay_check.setChecked(visible)
        self.opacity_slider.setValue(int(round(opacity * 100)))
        for widget in (self.overlay_check, self.opacity_slider):
            widget.blockSignals(False)

    def set_busy(self) -> None:
        self.score_label.setText("…")
        self.percentile_label.setText("Analysing…")
        self.warnings_label.setText("")

    def set_failed(self, message: str) -> None:
        self.score_label.setText("—")
        self.percentile_label.setText(f"Analysis failed: {message}")

    def clear(self) -> None:
        self.score_label.setText("—")
        self.percentile_label.setText("Open an ECG to analyse it.")
        self.warnings_label.setText("")

    def set_analysis(self, analysis: Analysis, record: EcgRecord | None = None) -> None:
        self.score_label.setText(_fmt(analysis.anomaly_score, digits=2))
        sentence = percentile_sentence(analysis.anomaly_percentile)
        self.percentile_label.setText(sentence[0].upper() + sentence[1:])
        notes = list(record.warnings if record is not None else []) + list(analysis.warnings)
        self.warnings_label.setText("\n".join(f"⚠ {w}" for w in dict.fromkeys(notes)))


class DiagnosesPanel(QtWidgets.QGroupBox):
    """Ranked diagnoses: name, probability (%), likely / possible. Emits the selected one."""

    diagnosis_selected = QtCore.Signal(object)  # Diagnosis | None

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__("Diagnoses (ranked)", parent)
        layout = QtWidgets.QVBoxLayout(self)
        self.status_label = QtWidgets.QLabel("Open an ECG to analyse it.")
        self.status_label.setWordWrap(True)
        self.table = QtWidgets.QTableWidget(0, 3)
        self.table.setHorizontalHeaderLabels(["Statement", "Probability", ""])
        self.table.verticalHeader().setVisible(False)
        self.table.setSelectionBehavior(QtWidgets.QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QtWidgets.QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QtWidgets.QAbstractItemView.EditTrigger.NoEditTriggers)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QtWidgets.QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(1, QtWidgets.QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(2, QtWidgets.QHeaderView.ResizeMode.ResizeToContents)
        self.hint_label = QtWidgets.QLabel("Select a statement to mark where the anomaly map is highest.")
        self.hint_label.setWordWrap(True)
        self.hint_label.setStyleSheet("color: #555;")
        layout.addWidget(self.status_label)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.hint_label)
        self.diagnoses: list[Diagnosis] = []
        self.table.itemSelectionChanged.connect(self._on_selection)

    def clear(self, message: str = "Open an ECG to analyse it.") -> None:
        self.diagnoses = []
        self.table.setRowCount(0)
        self.status_label.setText(message)
        self.status_label.setVisible(True)

    def set_diagnoses(self, diagnoses: list[Diagnosis]) -> None:
        self.diagnoses = list(diagnoses)
        self.table.blockSignals(True)
        self.table.setRowCount(0)
        if not self.diagnoses:
            self.status_label.setText("No diagnosis model loaded.")
            self.status_label.setVisible(True)
            self.table.blockSignals(False)
            return
        self.status_label.setText("Probabilities from the diagnosis model; decision support only.")
        self.table.setRowCount(len(self.diagnoses))
        for row, dx in enumerate(self.diagnoses):
            name = QtWidgets.QTableWidgetItem(f"{dx.name} ({dx.code})" if dx.code else dx.name)
            name.setToolTip(f"{dx.code}: {dx.name} [{dx.kind or 'statement'}]")
            prob = QtWidgets.QTableWidgetItem(f"{dx.probability * 100:.0f}% probability")
            prob.setTextAlignment(QtCore.Qt.AlignmentFlag.AlignRight | QtCore.Qt.AlignmentFlag.AlignVCenter)
            verdict = QtWidgets.QTableWidgetItem("likely" if dx.likely else "possible")
            if dx.likely:
                bold = name.font()
                bold.setBold(True)
                for item in (name, prob, verdict):
                    item.setFont(bold)
                verdict.setForeground(QtGui.QColor(170, 20, 20))
            else:
                verdict.setForeground(QtGui.QColor(110, 110, 110))
            self.table.setItem(row, 0, name)
            self.table.setItem(row, 1, prob)
            self.table.setItem(row, 2, verdict)
        self.table.blockSignals(False)

    def select_row(self, row: int) -> None:
        self.table.selectRow(row)

    def _on_selection(self) -> None:
        rows = self.table.selectionModel().selectedRows()
        if rows and rows[0].row() < len(self.diagnoses):
            self.diagnosis_selected.emit(self.diagnoses[rows[0].row()])
        else:
            self.diagnosis_selected.emit(None)


#: Interval rows: label, measured key, predicted key, device keys (first present wins), unit.
INTERVAL_ROWS: tuple[tuple[str, str, str | None, tuple[str, ...], str], ...] = (
    ("Heart rate", "hr_bpm", "hr_bpm", ("hr_bpm", "ventricular_rate_bpm", "hr"), " bpm"),
    ("PR", "pr_ms", "pr_ms", ("pr_ms", "pr"), " ms"),
    ("QRS", "qrs_ms", "qrs_ms", ("qrs_ms", "qrs"), " ms"),
    ("QT", "qt_ms", "qt_ms", ("qt_ms", "qt"), " ms"),
    ("QTc (Bazett)", "qtc_bazett_ms", "qtc_ms", ("qtc_bazett_ms", "qtc_ms", "qtc"), " ms"),
    ("QTc (Fridericia)", "qtc_fridericia_ms", None, ("qtc_fridericia_ms",), " ms"),
    ("Axis (QRS)", "axis_deg", None, ("axis_deg", "qrs_axis_deg", "r_axis_deg"), "°"),
)


def _first(mapping: dict, keys: tuple[str, ...]) -> float | None:
    for key in keys:
        if key in mapping and mapping[key] is not None:
            return mapping[key]
    return None


def sex_text(sex: str | None) -> str:
    return {"M": "male", "F": "female"}.get(sex or "", "unknown")


class ContextPanel(QtWidgets.QGroupBox):
    """Stated vs predicted age / sex, and our measured intervals beside the device's own."""

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__("Demographic context and intervals", parent)
        layout = QtWidgets.QVBoxLayout(self)
        self.demographics = QtWidgets.QTableWidget(2, 3)
        self.demographics.setHorizontalHeaderLabels(["", "Stated in file", "Predicted (model)"])
        self.intervals = QtWidgets.QTableWidget(len(INTERVAL_ROWS), 4)
        self.intervals.setHorizontalHeaderLabels(["", "Measured", "Predicted", "Device"])
        for table in (self.demographics, self.intervals):
            table.verticalHeader().setVisible(False)
            table.setEditTriggers(QtWidgets.QAbstractItemView.EditTrigger.NoEditTriggers)
            table.setSelectionMode(QtWidgets.QAbstractItemView.SelectionMode.NoSelection)
            header = table.horizontalHeader()
            header.setSectionResizeMode(QtWidgets.QHeaderView.ResizeMode.Stretch)
            header.setSectionResizeMode(0, QtWidgets.QHeaderView.ResizeMode.ResizeToContents)
            table.setVerticalScrollBarPolicy(QtCore.Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
            table.setHorizontalScrollBarPolicy(QtCore.Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
            table.setWordWrap(False)
        note = QtWidgets.QLabel("Predicted = estimated by the model from the ECG alone (ECG-age, ECG-sex, "
                                "intervals); Measured = ECG Lens signal pipeline; Device = the recorder's "
                                "own measurements.")
        note.setWordWrap(True)
        note.setStyleSheet("color: #555;")
        layout.addWidget(self.demographics)
        layout.addWidget(self.intervals)
        layout.addWidget(note)
        self.clear()
        for table in (self.demographics, self.intervals):
            table.resizeRowsToContents()
            height = table.horizontalHeader().sizeHint().height() + 2 * table.frameWidth()
            height += sum(table.rowHeight(r) for r in range(table.rowCount()))
            table.setFixedHeight(height)

    def _set(self, table: QtWidgets.QTableWidget, row: int, col: int, text: str) -> None:
        item = QtWidgets.QTableWidgetItem(text)
        if col > 0:
            item.setTextAlignment(QtCore.Qt.AlignmentFlag.AlignCenter)
        table.setItem(row, col, item)

    def clear(self) -> None:
        for row, name in enumerate(("Age", "Sex")):
            self._set(self.demographics, row, 0, name)
            self._set(self.demographics, row, 1, "—")
            self._set(self.demographics, row, 2, "—")
        for row, (label, *_rest) in enumerate(INTERVAL_ROWS):
            self._set(self.intervals, row, 0, label)
            for col in (1, 2, 3):
                self._set(self.intervals, row, col, "—")

    def set_record(self, record: EcgRecord) -> None:
        self.clear()
        age = record.patient.age
        self._set(self.demographics, 0, 1, _fmt(age, " y"))
        self._set(self.demographics, 1, 1, sex_text(record.patient.sex))
        device = record.metadata.get("device_measurements") or {}
        if isinstance(device, dict):
            for row, (_label, _m, _p, device_keys, unit) in enumerate(INTERVAL_ROWS):
                self._set(self.intervals, row, 3, _fmt(_first(device, device_keys), unit))

    def set_analysis(self, analysis: Analysis) -> None:
        predicted = analysis.predicted or {}
        self._set(self.demographics, 0, 2, _fmt(predicted.get("age"), " y"))
        female = predicted.get("sex_female_probability")
        if female is not None and math.isfinite(float(female)):
            female = float(female)
            text = (f"female ({female * 100:.0f}%)" if female >= 0.5
                    else f"male ({(1 - female) * 100:.0f}%)")
        else:
            text = "—"
        self._set(self.demographics, 1, 2, text)
        measured = analysis.measured or {}
        for row, (_label, mkey, pkey, _device_keys, unit) in enumerate(INTERVAL_ROWS):
            self._set(self.intervals, row, 1, _fmt(measured.get(mkey), unit))
            self._set(self.intervals, row, 2, _fmt(predicted.get(pkey), unit) if pkey else "—")
