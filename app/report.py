"""Exports: the true-scale PDF report (A4 landscape) drawn with QPainter in millimetres.

The ECG is always printed at 25 mm/s and 10 mm/mV in the 3 × 4 + rhythm layout, whatever the screen
shows, so a ruler on the printout measures the same as calipers on paper. :func:`paint_report` draws
on any QPainter whose unit is 1 mm (PDF via :func:`write_pdf_report`, image via
:func:`render_report_image`, which the tests use to check the scale).
"""

from __future__ import annotations

import datetime as _dt
import math
from pathlib import Path

import numpy as np
from PySide6 import QtCore, QtGui

from ecgmodel.types import Analysis, EcgRecord

from . import DISCLAIMER
from .ecg_paper import (
    MAJOR_GRID_COLOR,
    MINOR_GRID_COLOR,
    PAPER_COLOR,
    PaperLayout,
    calibration_pulse,
    compute_layout,
    overlay_rgba,
)
from .panels import INTERVAL_ROWS, LEGEND_CAPTION, _first, _fmt, percentile_sentence, sex_text
from .state import FILTER_PRESETS

PAGE_W_MM, PAGE_H_MM = 297.0, 210.0
MARGIN_MM = 10.0
REPORT_SPEED = 25.0
REPORT_GAIN = 10.0
REPORT_ROW_MM = 25.0
ECG_TOP_MM = 27.0
OVERLAY_OPACITY = 0.55


def report_layout(record: EcgRecord) -> PaperLayout:
    """The paper geometry the report uses (3 × 4 + rhythm, 25 mm/s, 10 mm/mV, 25 mm rows)."""
    return compute_layout("3x4", record.n_samples, record.fs, REPORT_SPEED, REPORT_GAIN, REPORT_GAIN,
                          tuple(record.leads), row_height_mm=REPORT_ROW_MM)


def ecg_origin_mm(layout: PaperLayout) -> tuple[float, float]:
    """Page position (mm from the top-left corner) of paper point x = 0, y = 0."""
    total = layout.width_mm + layout.margin_mm
    return (PAGE_W_MM - total) / 2.0 + layout.margin_mm, ECG_TOP_MM


def _text(painter: QtGui.QPainter, x_mm: float, y_mm: float, text: str, size_mm: float = 2.6,
          bold: bool = False, color: QtGui.QColor | None = None, width_mm: float | None = None) -> float:
    """Draw text with its top-left at (x, y) mm; returns the height used (mm). Wraps within ``width_mm``."""
    painter.save()
    painter.translate(x_mm, y_mm)
    painter.scale(0.1, 0.1)  # work in 0.1 mm so pixel-sized fonts keep sub-millimetre sizes
    font = QtGui.QFont("Helvetica")
    font.setPixelSize(max(1, int(round(size_mm * 10))))
    font.setBold(bold)
    painter.setFont(font)
    painter.setPen(color or QtGui.QColor(20, 20, 20))
    if width_mm is None:
        painter.drawText(QtCore.QPointF(0, painter.fontMetrics().ascent()), text)
        used = painter.fontMetrics().height()
    else:
        rect = QtCore.QRectF(0, 0, width_mm * 10, 2000)
        flags = int(QtCore.Qt.TextFlag.TextWordWrap) | int(QtCore.Qt.AlignmentFlag.AlignLeft)
        bounds = painter.boundingRect(rect, flags, text)
        painter.drawText(rect, flags, text)
        used = bounds.height()
    painter.restore()
    return used / 10.0


def _pen(color: tuple[int, ...], width_mm: float) -> QtGui.QPen:
    pen = QtGui.QPen(QtGui.QColor(*color))
    pen.setWidthF(width_mm)
    pen.setCosmetic(False)
    return pen


def _paint_ecg(painter: QtGui.QPainter, record: EcgRecord, signal: np.ndarray, analysis: Analysis | None,
               layout: PaperLayout) -> None:
    ox, oy = ecg_origin_mm(layout)

    def page(x: float, y: float) -> QtCore.QPointF:
        return QtCore.QPointF(ox + x, oy - y)

    left, right = -layout.margin_mm, layout.width_mm
    painter.fillRect(QtCore.QRectF(ox + left, oy, right - left, layout.height_mm), QtGui.QColor(*PAPER_COLOR))
    # Overlay strips behind the grid lines and traces.
    if analysis is not None and getattr(analysis, "anomaly_map", None) is not None:
        amap = np.asarray(analysis.anomaly_map)
        if amap.ndim == 2 and amap.shape[0] == len(record.leads):
            painter.setPen(QtCore.Qt.PenStyle.NoPen)
            for cell in layout.cells:
                n_bins = max(1, int(round(cell.width_mm / 0.5)))
                rgba = overlay_rgba(amap[cell.lead_index, cell.start_sample:cell.stop_sample], n_bins)
                bin_w = cell.width_mm / n_bins
                for k in np.nonzero(rgba[:, 3])[0]:
                    r, g, b, a = (int(v) for v in rgba[k])
                    painter.setBrush(QtGui.QColor(r, g, b, int(a * OVERLAY_OPACITY)))
                    top = page(cell.x0_mm + k * bin_w, cell.top_mm)
                    painter.drawRect(QtCore.QRectF(top.x(), top.y(), bin_w + 0.01, cell.height_mm))
    # Grid: 1 mm minor, 5 mm major.
    for major in (False, True):
        painter.setPen(_pen(MAJOR_GRID_COLOR if major else MINOR_GRID_COLOR, 0.2 if major else 0.08))
        lines = []
        x = math.floor(left)
        while x <= right + 1e-9:
            if (abs(x % 5) < 1e-9) == major:
                lines.append(QtCore.QLineF(page(x, 0), page(x, -layout.height_mm)))
            x += 1.0
        y = 0.0
        while y <= layout.height_mm + 1e-9:
            if (abs(y % 5) < 1e-9) == major:
                lines.append(QtCore.QLineF(page(left, -y), page(right, -y)))
            y += 1.0
        painter.drawLines(lines)
    trace_pen = _pen((0, 0, 0), 0.25)
    trace_pen.setJoinStyle(QtCore.Qt.PenJoinStyle.RoundJoin)
    painter.setPen(trace_pen)
    painter.setBrush(QtCore.Qt.BrushStyle.NoBrush)
    for baseline, gain in zip(layout.row_baselines_mm, layout.row_cal_gain_mm_per_mv):
        xs, ys = calibration_pulse(-layout.margin_mm + 1.0, baseline, gain, layout.speed_mm_per_s)
        painter.drawPolyline(QtGui.QPolygonF([page(a, b) for a, b in zip(xs, ys)]))
    missing = set(record.missing_leads)
    quality = dict(analysis.lead_quality) if analysis is not None else {}
    for cell in layout.cells:
        samples = np.asarray(signal[cell.lead_index, cell.start_sample:cell.stop_sample], dtype=np.float64)
        xs = cell.x0_mm + np.arange(samples.size) / layout.fs * layout.speed_mm_per_s
        ys = cell.baseline_mm + samples * cell.gain_mm_per_mv
        finite = np.isfinite(ys)
        bad = str(quality.get(cell.lead_name, "ok")).lower() not in ("ok", "good", "", "none")
        painter.setPen(_pen((150, 150, 150), 0.2) if bad else trace_pen)
        # Split at NaN gaps so a missing stretch is not bridged.
        breaks = np.nonzero(np.diff(finite.astype(np.int8)))[0] + 1
        for segment in np.split(np.arange(samples.size), breaks):
            if segment.size > 1 and finite[segment[0]]:
                painter.drawPolyline(QtGui.QPolygonF([page(xs[i], ys[i]) for i in segment]))
        if cell.col > 0:
            painter.setPen(trace_pen)
            painter.drawLine(page(cell.x0_mm, cell.baseline_mm - 3), page(cell.x0_mm, cell.baseline_mm + 3))
        label = cell.lead_name
        if cell.lead_name in missing or not finite.any():
            label += " missing"
        elif bad:
            label += f" ({quality[cell.lead_name]})"
        pos = page(cell.x0_mm + 1.0, cell.top_mm - 0.8)
        _text(painter, pos.x(), pos.y(), label, 3.0, bold=True)


def paint_report(painter: QtGui.QPainter, record: EcgRecord, analysis: Analysis | None,
                 filter_preset: str = "diagnostic", display_signal: np.ndarray | None = None,
                 created: _dt.datetime | None = None) -> None:
    """Draw the whole one-page report; the painter's unit must be 1 mm, origin at the page's top-left."""
    signal = record.signal if display_signal is None else display_signal
    layout = report_layout(record)
    painter.fillRect(QtCore.QRectF(0, 0, PAGE_W_MM, PAGE_H_MM), QtGui.QColor(255, 255, 255))
    created = created or _dt.datetime.now()
    # Header.
    src = record.source
    name = Path(src.path).name if src.path else "(unnamed record)"
    _text(painter, MARGIN_MM, 8.0, f"ECG Lens report — {name}", 4.2, bold=True)
    age = f"{record.patient.age:.0f} y" if record.patient.age is not None else "age unknown"
    acquired = record.acquired.strftime("%Y-%m-%d %H:%M") if isinstance(record.acquired, _dt.datetime) \
        else "unknown"
    line = (f"Patient: {age}, {sex_text(record.patient.sex)}   ·   Acquired: {acquired}   ·   "
            f"{record.duration_s:.1f} s at {record.fs:g} Hz   ·   Format: {src.format}   ·   "
            f"25 mm/s, 10 mm/mV   ·   Display filter: {FILTER_PRESETS.get(filter_preset, filter_preset)}")
    _text(painter, MARGIN_MM, 14.5, line, 2.7)
    _text(painter, MARGIN_MM, 19.5, f"Report created {created:%Y-%m-%d %H:%M}. Shaded background: "
          f"anomaly map ({LEGEND_CAPTION}; 0 = normal-like, ≥ 3 clearly unusual).", 2.4,
          color=QtGui.QColor(90, 90, 90))
    _paint_ecg(painter, record, signal, analysis, layout)

    y0 = ECG_TOP_MM + layout.height_mm + 5.0
    col_w = (PAGE_W_MM - 2 * MARGIN_MM - 10.0) / 3.0
    # Column 1: anomaly score + legend.
    x = MARGIN_MM
    y = y0 + _text(painter, x, y0, "Anomaly score", 3.2, bold=True) + 1.0
    if analysis is None:
        _text(painter, x, y, "No analysis available for this ECG.", 2.7, width_mm=col_w)
    else:
        y += _text(painter, x, y, f"{analysis.anomaly_score:.2f}", 6.0, bold=True)
        y += _text(painter, x, y, percentile_sentence(analysis.anomaly_percentile), 2.7, width_mm=col_w) + 2
        bar_w, bar_h = 60.0, 3.0
        rgba = overlay_rgba(np.linspace(0, 6, 120), 120)
        painter.setPen(QtCore.Qt.PenStyle.NoPen)
        painter.fillRect(QtCore.QRectF(x, y, bar_w, bar_h), QtGui.QColor(*PAPER_COLOR))
        for k in range(120):
            r, g, b, a = (int(v) for v in rgba[k])
            painter.fillRect(QtCore.QRectF(x + k * bar_w / 120, y, bar_w / 120 + 0.01, bar_h),
                             QtGui.QColor(r, g, b, int(a * OVERLAY_OPACITY)))
        for sd in range(7):
            _text(painter, x + sd * bar_w / 6 - 0.6, y + bar_h + 0.3, str(sd), 2.2)
        y += bar_h + 3.5
        y += _text(painter, x, y, f"Colour: {LEGEND_CAPTION}", 2.3, width_mm=col_w)
        for warning in list(record.warnings) + list(analysis.warnings):
            y += _text(painter, x, y + 1, f"⚠ {warning}", 2.3, color=QtGui.QColor(160, 80, 0), width_mm=col_w)
    # Column 2: diagnoses.
    x = MARGIN_MM + col_w + 5.0
    y = y0 + _text(painter, x, y0, "Diagnoses (ranked)", 3.2, bold=True) + 1.0
    if analysis is None or not analysis.diagnoses:
        _text(painter, x, y, "No diagnosis model loaded." if analysis is not None else "—", 2.7)
    else:
        for dx in analysis.diagnoses[:9]:
            verdict = "likely" if dx.likely else "possible"
            y += _text(painter, x, y, f"{dx.probability * 100:3.0f}% probability  {verdict:8s} {dx.name}",
                       2.6, bold=dx.likely, width_mm=col_w) + 0.4
    # Column 3: context.
    x = MARGIN_MM + 2 * (col_w + 5.0)
    y = y0 + _text(painter, x, y0, "Context and intervals", 3.2, bold=True) + 1.0
    predicted = analysis.predicted if analysis is not None else {}
    measured = analysis.measured if analysis is not None else {}
    device = record.metadata.get("device_measurements") or {}
    female = predicted.get("sex_female_probability")
    sex_pred = "—" if female is None else (f"female ({female * 100:.0f}%)" if female >= 0.5
                                           else f"male ({(1 - female) * 100:.0f}%)")
    y += _text(painter, x, y, f"Age: stated {_fmt(record.patient.age, ' y')}, predicted "
               f"{_fmt(predicted.get('age'), ' y')}", 2.6) + 0.3
    y += _text(painter, x, y, f"Sex: stated {sex_text(record.patient.sex)}, predicted {sex_pred}", 2.6) + 1.0
    cols = (x, x + 27.0, x + 45.0, x + 63.0)
    for cx, head in zip(cols, ("", "Measured", "Predicted", "Device")):
        _text(painter, cx, y, head, 2.4, bold=True)
    y += 3.4
    for label, mkey, pkey, dkeys, unit in INTERVAL_ROWS:
        values = (label, _fmt(measured.get(mkey), unit), _fmt(predicted.get(pkey), unit) if pkey else "—",
                  _fmt(_first(device, dkeys), unit) if isinstance(device, dict) else "—")
        for cx, value in zip(cols, values):
            _text(painter, cx, y, value, 2.4)
        y += 3.2
    # Footer: model identity + disclaimer.
    fy = PAGE_H_MM - MARGIN_MM - 6.5
    models = "; ".join(f"{m.name} {m.version} (sha256 {m.weights_sha256[:16]}…)"
                       for m in (analysis.models if analysis is not None else [])) or "no model identity"
    _text(painter, MARGIN_MM, fy, f"Models: {models}", 2.3, color=QtGui.QColor(70, 70, 70))
    _text(painter, MARGIN_MM, fy + 3.3, DISCLAIMER, 2.6, bold=True, color=QtGui.QColor(150, 30, 30))


def write_pdf_report(path: str | Path, record: EcgRecord, analysis: Analysis | None,
                     filter_preset: str = "diagnostic", display_signal: np.ndarray | None = None,
                     resolution_dpi: int = 600) -> Path:
    """Write the one-page A4 landscape PDF report at true scale; returns the path."""
    path = Path(path)
    writer = QtGui.QPdfWriter(str(path))
    writer.setPageSize(QtGui.QPageSize(QtGui.QPageSize.PageSizeId.A4))
    writer.setPageOrientation(QtGui.QPageLayout.Orientation.Landscape)
    writer.setPageMargins(QtCore.QMarginsF(0, 0, 0, 0), QtGui.QPageLayout.Unit.Millimeter)
    writer.setResolution(resolution_dpi)
    writer.setTitle(f"ECG Lens report — {Path(record.source.path or 'record').name}")
    writer.setCreator("ECG Lens")
    painter = QtGui.QPainter()
    if not painter.begin(writer):
        raise OSError(f"cannot write {path}")
    try:
        painter.setRenderHint(QtGui.QPainter.RenderHint.Antialiasing, True)
        scale = resolution_dpi / 25.4
        painter.scale(scale, scale)
        paint_report(painter, record, analysis, filter_preset, display_signal)
    finally:
        painter.end()
    return path


def render_report_image(record: EcgRecord, analysis: Analysis | None, px_per_mm: float = 4.0,
                        filter_preset: str = "diagnostic",
                        display_signal: np.ndarray | None = None) -> QtGui.QImage:
    """The same report as an image (``px_per_mm`` pixels per millimetre), for previews and tests."""
    image = QtGui.QImage(int(round(PAGE_W_MM * px_per_mm)), int(round(PAGE_H_MM * px_per_mm)),
                         QtGui.QImage.Format.Format_RGB32)
    image.fill(QtGui.QColor(255, 255, 255))
    painter = QtGui.QPainter(image)
    painter.setRenderHint(QtGui.QPainter.RenderHint.Antialiasing, True)
    painter.scale(px_per_mm, px_per_mm)
    paint_report(painter, record, analysis, filter_preset, display_signal)
    painter.end()
    return image
