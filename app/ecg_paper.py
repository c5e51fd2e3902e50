"""The multi-lead ECG paper: every lead drawn in ONE pyqtgraph PlotItem in paper millimetres.

Coordinates: ``x`` mm = (t - window start) · speed, ``y`` mm = mV · gain + row baseline (rows go
down from y = 0). The view's aspect ratio is locked 1:1, so 1 mm of time is 1 mm of voltage on
screen, zoom and pan are synchronized across leads by construction, and calipers convert mm back
to ms / mV with the paper scale alone.

The geometry (:func:`compute_layout`, :func:`measure_caliper`, :func:`overlay_lut`) is plain numpy
and shared with the PDF report; :class:`EcgPaperWidget` is the Qt view.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore, QtGui, QtWidgets

from ecgmodel.types import STANDARD_LEADS, Analysis, EcgRecord

from .state import OVERLAY_RANGE_SD, ViewState

CHEST_LEADS: tuple[str, ...] = ("V1", "V2", "V3", "V4", "V5", "V6")
#: Standard 3 × 4 arrangement: columns of leads, each column a quarter of the 10 s window.
GRID_3X4: tuple[tuple[str, ...], ...] = (
    ("I", "II", "III"), ("aVR", "aVL", "aVF"), ("V1", "V2", "V3"), ("V4", "V5", "V6"),
)
GRID_6X2: tuple[tuple[str, ...], ...] = (("I", "II", "III", "aVR", "aVL", "aVF"), CHEST_LEADS)
RHYTHM_LEAD = "II"
#: Length of the 3 × 4 / 6 × 2 page (seconds), as on a printed 12-lead ECG.
PAGE_SECONDS = 10.0
#: Calibration pulse: 1 mV high, 200 ms wide.
CAL_PULSE_S = 0.2

PAPER_COLOR = (255, 250, 248)
MINOR_GRID_COLOR = (246, 196, 204)
MAJOR_GRID_COLOR = (226, 128, 146)
TRACE_COLOR = (10, 10, 10)
BAD_TRACE_COLOR = (165, 165, 165)
CALIPER_COLOR = (20, 90, 220)
HIGHLIGHT_COLOR = (40, 110, 255, 55)


# ------------------------------------------------------------------------------------------ geometry
@dataclass(frozen=True)
class Cell:
    """One lead drawn on the paper: which samples, where, at which gain."""

    lead_index: int
    lead_name: str
    row: int
    col: int
    start_sample: int
    stop_sample: int
    x0_mm: float
    width_mm: float
    top_mm: float
    height_mm: float
    baseline_mm: float
    gain_mm_per_mv: float
    is_rhythm: bool = False

    def contains(self, x_mm: float, y_mm: float) -> bool:
        return (self.x0_mm <= x_mm <= self.x0_mm + self.width_mm
                and self.top_mm - self.height_mm <= y_mm <= self.top_mm)


@dataclass
class PaperLayout:
    """Where every lead goes for one record and one view state."""

    cells: list[Cell]
    n_rows: int
    row_height_mm: float
    width_mm: float
    height_mm: float
    margin_mm: float
    speed_mm_per_s: float
    window_start_s: float
    fs: float
    row_baselines_mm: list[float] = field(default_factory=list)
    row_cal_gain_mm_per_mv: list[float] = field(default_factory=list)

    def cell_at(self, x_mm: float, y_mm: float) -> Cell | None:
        """The lead cell under a paper point, or None (margin, outside the paper)."""
        for cell in self.cells:
            if cell.contains(x_mm, y_mm):
                return cell
        return None

    def time_of_x(self, x_mm: float) -> float:
        """Record time (s) at paper x (mm)."""
        return self.window_start_s + x_mm / self.speed_mm_per_s

    def x_of_time(self, t_s: float) -> float:
        return (t_s - self.window_start_s) * self.speed_mm_per_s


def _round_up(value: float, step: float) -> float:
    return math.ceil(value / step - 1e-9) * step


def compute_layout(layout: str, n_samples: int, fs: float, speed_mm_per_s: float = 25.0,
                   gain_mm_per_mv: float = 10.0, chest_gain_mm_per_mv: float | None = None,
                   leads: tuple[str, ...] = STANDARD_LEADS, window_start_s: float = 0.0,
                   row_height_mm: float | None = None) -> PaperLayout:
    """Paper geometry of ``layout`` ("3x4", "6x2", "12x1") for a record of ``n_samples`` at ``fs``.

    3 × 4 and 6 × 2 show a 10 s page (columns in sequence, so x is simply time · speed), 3 × 4 adds
    a rhythm strip of lead II over the whole page; 12 × 1 shows the whole record. Row heights are
    whole 5 mm squares so baselines sit on major grid lines.
    """
    chest_gain = gain_mm_per_mv if chest_gain_mm_per_mv is None else chest_gain_mm_per_mv
    duration = n_samples / float(fs)
    start = min(max(0.0, window_start_s), max(0.0, duration - 1.0 / fs))
    if layout == "12x1":
        page_s = duration - start
        columns: tuple[tuple[str, ...], ...] = (STANDARD_LEADS,)
        rhythm = False
        row_mv = 2.0
    elif layout == "6x2":
        page_s = min(PAGE_SECONDS, duration - start)
        columns, rhythm, row_mv = GRID_6X2, False, 2.5
    else:
        page_s = min(PAGE_SECONDS, duration - start)
        columns, rhythm, row_mv = GRID_3X4, True, 3.0
    n_rows = len(columns[0]) + (1 if rhythm else 0)
    if row_height_mm is None:
        row_height_mm = max(15.0, _round_up(row_mv * gain_mm_per_mv, 5.0))
    baseline_offset = max(5.0, round(row_height_mm * 0.55 / 5.0) * 5.0)
    col_s = page_s / len(columns)
    start_sample = int(round(start * fs))
    cells: list[Cell] = []
    baselines = [-(r * row_height_mm) - baseline_offset for r in range(n_rows)]
    cal_gains = [gain_mm_per_mv] * n_rows

    def sample_at(t_rel: float) -> int:
        return min(n_samples, start_sample + int(round(t_rel * fs)))

    for c, column in enumerate(columns):
        for r, name in enumerate(column):
            gain = chest_gain if name in CHEST_LEADS else gain_mm_per_mv
            cells.append(Cell(
                lead_index=leads.index(name), lead_name=name, row=r, col=c,
                start_sample=sample_at(c * col_s), stop_sample=sample_at((c + 1) * col_s),
                x0_mm=c * col_s * speed_mm_per_s, width_mm=col_s * speed_mm_per_s,
                top_mm=-r * row_height_mm, height_mm=row_height_mm, baseline_mm=baselines[r],
                gain_mm_per_mv=gain,
            ))
    if layout == "12x1":
        cal_gains = [chest_gain if name in CHEST_LEADS else gain_mm_per_mv for name in STANDARD_LEADS]
    if rhythm:
        r = n_rows - 1
        cells.append(Cell(
            lead_index=leads.index(RHYTHM_LEAD), lead_name=RHYTHM_LEAD, row=r, col=0,
            start_sample=sample_at(0.0), stop_sample=sample_at(page_s), x0_mm=0.0,
            width_mm=page_s * speed_mm_per_s, top_mm=-r * row_height_mm, height_mm=row_height_mm,
            baseline_mm=baselines[r], gain_mm_per_mv=gain_mm_per_mv, is_rhythm=True,
        ))
    margin = _round_up(CAL_PULSE_S * speed_mm_per_s + 5.0, 5.0)
    return PaperLayout(
        cells=cells, n_rows=n_rows, row_height_mm=row_height_mm,
        width_mm=_round_up(page_s * speed_mm_per_s, 5.0), height_mm=n_rows * row_height_mm,
        margin_mm=margin, speed_mm_per_s=speed_mm_per_s, window_start_s=start, fs=float(fs),
        row_baselines_mm=baselines, row_cal_gain_mm_per_mv=cal_gains,
    )


def calibration_pulse(x_start_mm: float, baseline_mm: float, gain_mm_per_mv: float,
                      speed_mm_per_s: float) -> tuple[np.ndarray, np.ndarray]:
    """Polyline of a 1 mV × 200 ms calibration pulse starting at ``x_start_mm`` (2 mm lead-in)."""
    width = CAL_PULSE_S * speed_mm_per_s
    x0 = x_start_mm + 2.0
    xs = np.array([x_start_mm, x0, x0, x0 + width, x0 + width, x0 + width + 2.0])
    top = baseline_mm + gain_mm_per_mv
    ys = np.array([baseline_mm, baseline_mm, top, top, baseline_mm, baseline_mm])
    return xs, ys


def grid_segments(x_min: float, x_max: float, y_min: float, y_max: float,
                  major: bool) -> tuple[np.ndarray, np.ndarray]:
    """Pairs of points (for ``connect="pairs"``) of the 1 mm minor or 5 mm major grid lines."""
    xs = np.arange(math.floor(x_min), math.ceil(x_max) + 1e-9, 1.0)
    ys = np.arange(math.floor(y_min), math.ceil(y_max) + 1e-9, 1.0)
    on_major_x = np.isclose(np.mod(xs, 5.0), 0.0) | np.isclose(np.mod(xs, 5.0), 5.0)
    on_major_y = np.isclose(np.mod(ys, 5.0), 0.0) | np.isclose(np.mod(ys, 5.0), 5.0)
    xs = xs[on_major_x] if major else xs[~on_major_x]
    ys = ys[on_major_y] if major else ys[~on_major_y]
    px = np.concatenate([np.repeat(xs, 2), np.tile([x_min, x_max], len(ys))])
    py = np.concatenate([np.tile([y_min, y_max], len(xs)), np.repeat(ys, 2)])
    return px, py


@dataclass(frozen=True)
class CaliperMeasurement:
    """An interval measured on the paper: time in ms, amplitude in mV (of the lead where it began)."""

    dt_ms: float
    dv_mv: float
    lead_name: str | None
    rate_bpm: float | None

    def text(self) -> str:
        rate = f" ({self.rate_bpm:.0f} bpm)" if self.rate_bpm else ""
        lead = f" in {self.lead_name}" if self.lead_name else ""
        return f"Δt {self.dt_ms:.0f} ms{rate}   ΔV {self.dv_mv:+.2f} mV{lead}"


def measure_caliper(layout: PaperLayout, start: tuple[float, float], end: tuple[float, float],
                    default_gain_mm_per_mv: float = 10.0) -> CaliperMeasurement:
    """Convert a caliper drawn from ``start`` to ``end`` (paper mm) into ms and mV."""
    cell = layout.cell_at(*start)
    gain = cell.gain_mm_per_mv if cell else default_gain_mm_per_mv
    dt_ms = abs(end[0] - start[0]) / layout.speed_mm_per_s * 1000.0
    dv_mv = (end[1] - start[1]) / gain
    rate = 60000.0 / dt_ms if dt_ms >= 150.0 else None
    return CaliperMeasurement(dt_ms=dt_ms, dv_mv=dv_mv, lead_name=cell.lead_name if cell else None,
                              rate_bpm=rate)


def overlay_lut(n: int = 256) -> np.ndarray:
    """RGBA uint8 lookup table (n, 4) over the fixed overlay range 0..6 SD.

    Below 1 SD is transparent (normal-like); then yellow (2 SD), orange (3), red (4.5), dark
    magenta-red (6 SD and above), opacity rising with the value.
    """
    lo, hi = OVERLAY_RANGE_SD
    values = np.linspace(lo, hi, n)
    stops = np.array([0.0, 1.0, 2.0, 3.0, 4.5, 6.0])
    colours = np.array([
        [255, 255, 200, 0], [255, 240, 120, 0], [255, 215, 0, 120], [255, 140, 0, 175],
        [230, 30, 30, 215], [140, 0, 90, 240],
    ], dtype=float)
    lut = np.stack([np.interp(values, stops, colours[:, k]) for k in range(4)], axis=1)
    return np.clip(np.round(lut), 0, 255).astype(np.ubyte)


def binned_max(values: np.ndarray, n_bins: int) -> np.ndarray:
    """Maximum of ``values`` in ``n_bins`` equal bins (NaN-safe; empty bins give 0)."""
    values = np.nan_to_num(np.asarray(values, dtype=np.float32), nan=0.0)
    if values.size == 0 or n_bins <= 0:
        return np.zeros(max(n_bins, 0), dtype=np.float32)
    edges = np.linspace(0, values.size, n_bins + 1).astype(int)
    edges[-1] = values.size
    starts = np.minimum(edges[:-1], values.size - 1)
    return np.maximum.reduceat(values, starts).astype(np.float32)


def overlay_rgba(values: np.ndarray, n_bins: int) -> np.ndarray:
    """Colour strip (n_bins, 4) uint8 of map ``values`` on the fixed 0..6 SD scale."""
    lo, hi = OVERLAY_RANGE_SD
    lut = overlay_lut()
    binned = binned_max(values, n_bins)
    index = np.clip((binned - lo) / (hi - lo) * (len(lut) - 1), 0, len(lut) - 1).astype(int)
    return lut[index]


def hottest_interval(anomaly_map: np.ndarray, fs: float, width_s: float = 0.4) -> tuple[float, float] | None:
    """Where the map (mean over leads) is highest: the ``width_s`` window with the largest mean."""
    if anomaly_map is None or anomaly_map.size == 0:
        return None
    profile = np.nanmean(np.nan_to_num(anomaly_map, nan=0.0), axis=0)
    n = max(1, int(round(width_s * fs)))
    if profile.size <= n:
        return 0.0, profile.size / fs
    window = np.convolve(profile, np.ones(n) / n, mode="valid")
    start = int(np.argmax(window))
    return start / fs, (start + n) / fs


# ----------------------------------------------------------------------------------------- the widget
class PaperViewBox(pg.ViewBox):
    """ViewBox that turns left-drags into caliper drags in caliper mode (or with Shift held)."""

    sigCaliper = QtCore.Signal(object, object, bool)  # start QPointF, end QPointF (mm), finished

    def __init__(self) -> None:
        super().__init__(lockAspect=True, enableMenu=False, defaultPadding=0.01)
        self.caliper_mode = False

    def mouseDragEvent(self, ev, axis=None) -> None:  # noqa: N802 (Qt name)
        shift = bool(ev.modifiers() & QtCore.Qt.KeyboardModifier.ShiftModifier)
        if ev.button() == QtCore.Qt.MouseButton.LeftButton and (self.caliper_mode or shift):
            ev.accept()
            start = self.mapSceneToView(ev.buttonDownScenePos())
            end = self.mapSceneToView(ev.scenePos())
            self.sigCaliper.emit(start, end, bool(ev.isFinish()))
            return
        super().mouseDragEvent(ev, axis)


@dataclass
class CursorReadout:
    """What is under the mouse: lead, time, the cursor's voltage and the trace's value there."""

    lead_name: str
    time_s: float
    cursor_mv: float
    signal_mv: float | None

    def text(self) -> str:
        sig = "missing" if self.signal_mv is None else f"{self.signal_mv:+.2f} mV"
        return f"{self.lead_name}   t = {self.time_s:.3f} s   cursor {self.cursor_mv:+.2f} mV   trace {sig}"


class EcgPaperWidget(pg.PlotWidget):
    """Twelve leads on true-scale ECG paper, with anomaly overlay, calipers and crosshair.

    Feed it with :meth:`set_record` (display signal already filtered), :meth:`apply_state`,
    :meth:`set_analysis`; it emits :attr:`caliper_changed` and :attr:`cursor_moved`.
    """

    caliper_changed = QtCore.Signal(object)  # CaliperMeasurement | None
    cursor_moved = QtCore.Signal(object)  # CursorReadout | None
    traces_drawn = QtCore.Signal()

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        self.view_box = PaperViewBox()
        super().__init__(parent=parent, viewBox=self.view_box, background=PAPER_COLOR)
        self.plot_item: pg.PlotItem = self.getPlotItem()
        for axis in ("left", "bottom", "right", "top"):
            self.plot_item.hideAxis(axis)
        self.plot_item.setMenuEnabled(False)
        self.plot_item.hideButtons()
        self.setAntialiasing(True)
        self.view_box.setAspectLocked(True, ratio=1.0)
        self.view_box.sigCaliper.connect(self._on_caliper_drag)
        self.scene().sigMouseMoved.connect(self._on_mouse_moved)
        self.setMinimumSize(400, 300)

        self.record: EcgRecord | None = None
        self.display_signal: np.ndarray | None = None
        self.analysis: Analysis | None = None
        self.state = ViewState()
        self.layout_geometry: PaperLayout | None = None
        self.lead_quality: dict[str, str] = {}
        self.highlight_interval_s: tuple[float, float] | None = None
        self.last_caliper: CaliperMeasurement | None = None

        self._create_static_items()
        self._highlight_items: list[QtWidgets.QGraphicsItem] = []
        self._caliper_items: list[QtWidgets.QGraphicsItem] = []
        self._cross_v = pg.InfiniteLine(angle=90, pen=pg.mkPen((90, 90, 90, 120), width=1))
        self._cross_h = pg.InfiniteLine(angle=0, pen=pg.mkPen((90, 90, 90, 120), width=1))
        for line in (self._cross_v, self._cross_h):
            line.setZValue(50)
            line.setVisible(False)
            self.plot_item.addItem(line, ignoreBounds=True)
        self._draw_empty_paper()

    # ------------------------------------------------------------------ public API
    def set_record(self, record: EcgRecord | None, display_signal: np.ndarray | None = None) -> None:
        """Show a new record (``display_signal`` = the filtered signal to draw; default: raw)."""
        self.record = record
        if record is not None and display_signal is None:
            display_signal = record.signal
        self.display_signal = display_signal
        self.analysis = None
        self.lead_quality = {}
        self.highlight_interval_s = None
        self.clear_caliper()
        self.rebuild(fit=True)

    def set_display_signal(self, display_signal: np.ndarray) -> None:
        """Replace the drawn samples (filter preset changed) without touching the rest."""
        self.display_signal = display_signal
        self._update_traces()

    def apply_state(self, state: ViewState, fit: bool = True) -> None:
        """Adopt layout / gain / speed / overlay settings from ``state`` and redraw."""
        self.state = state
        self.view_box.caliper_mode = state.caliper_mode
        self.rebuild(fit=fit)

    def set_analysis(self, analysis: Analysis | None) -> None:
        """Show an analysis' anomaly map and lead quality flags."""
        self.analysis = analysis
        self.lead_quality = dict(analysis.lead_quality) if analysis is not None else {}
        self._update_traces()
        self._build_overlay()
        self._build_labels()
        self._build_highlight()

    def set_overlay(self, visible: bool, opacity: float) -> None:
        self.state.overlay_visible = visible
        self.state.overlay_opacity = opacity
        for item in self.overlay_items:
            item.setOpacity(opacity)
        self._activate(self._n_active)

    def set_highlight(self, interval_s: tuple[float, float] | None) -> None:
        """Mark a time interval (s) with a vertical band on every lead that shows it."""
        self.highlight_interval_s = interval_s
        self._build_highlight()

    def set_caliper_mode(self, enabled: bool) -> None:
        self.state.caliper_mode = enabled
        self.view_box.caliper_mode = enabled
        self.setCursor(QtCore.Qt.CursorShape.CrossCursor if enabled else QtCore.Qt.CursorShape.ArrowCursor)

    def fit(self) -> None:
        """Show the whole page."""
        geo = self.layout_geometry
        if geo is None:
            self.view_box.setRange(QtCore.QRectF(-15, -130, 280, 130), padding=0.01)
            return
        self.view_box.setRange(QtCore.QRectF(-geo.margin_mm, -geo.height_mm, geo.width_mm + geo.margin_mm,
                                             geo.height_mm), padding=0.01)

    def zoom(self, factor: float) -> None:
        """Zoom about the centre of the view (factor < 1 zooms in)."""
        self.view_box.scaleBy((factor, factor))

    def paper_to_widget(self, x_mm: float, y_mm: float) -> QtCore.QPoint:
        """Widget pixel of a paper point (tests and calipers use it)."""
        scene = self.view_box.mapViewToScene(QtCore.QPointF(x_mm, y_mm))
        return self.mapFromScene(scene)

    def pixels_per_mm(self) -> tuple[float, float]:
        a = self.paper_to_widget(0.0, 0.0)
        b = self.paper_to_widget(10.0, 10.0)
        return (b.x() - a.x()) / 10.0, (a.y() - b.y()) / 10.0

    def clear_caliper(self) -> None:
        for item in self._caliper_items:
            self.plot_item.removeItem(item)
        self._caliper_items = []
        self.last_caliper = None

    # ------------------------------------------------------------------ building
    # Items are created once and reused (pools): re-adding / removing pyqtgraph items on every
    # redraw is what makes a redraw slow, so a layout / gain / file change only updates data.
    @property
    def trace_items(self) -> list[pg.PlotDataItem]:
        """The trace item of each cell of the current layout (same order as its cells)."""
        return self._trace_pool[: self._n_active]

    @property
    def label_items(self) -> list[pg.TextItem]:
        return self._label_pool[: self._n_active]

    @property
    def overlay_items(self) -> list[pg.ImageItem]:
        """The overlay strip of each cell, or [] while there is no analysis."""
        return self._overlay_pool[: self._n_active] if self._overlay_shown else []

    def _remove(self, items: list) -> None:
        for item in items:
            self.plot_item.removeItem(item)
        items.clear()

    def _grow(self, pool: list, n: int, factory) -> None:
        while len(pool) < n:
            item = factory()
            self.plot_item.addItem(item, ignoreBounds=isinstance(item, pg.TextItem))
            pool.append(item)

    def _new_trace(self) -> pg.PlotDataItem:
        item = pg.PlotDataItem(connect="finite", antialias=True)
        item.setDownsampling(auto=True, method="peak")
        item.setClipToView(True)
        item.setZValue(20)
        return item

    def _new_label(self) -> pg.TextItem:
        label = pg.TextItem("", anchor=(0, 0))
        font = QtGui.QFont()
        font.setBold(True)
        font.setPointSize(9)
        label.setFont(font)
        label.setZValue(30)
        return label

    def _new_overlay(self) -> pg.ImageItem:
        image = pg.ImageItem(axisOrder="col-major")
        image.setZValue(-10)
        return image

    def _create_static_items(self) -> None:
        self._n_active = 0
        self._overlay_shown = False
        self._trace_pool: list[pg.PlotDataItem] = []
        self._label_pool: list[pg.TextItem] = []
        self._overlay_pool: list[pg.ImageItem] = []
        self._grid_items: list[pg.PlotCurveItem] = []
        for major in (False, True):
            colour = MAJOR_GRID_COLOR if major else MINOR_GRID_COLOR
            item = pg.PlotCurveItem(connect="pairs", pen=pg.mkPen(colour, width=1.2 if major else 0.7),
                                    antialias=False)
            item.setZValue(-19 if major else -20)
            self.plot_item.addItem(item)
            self._grid_items.append(item)
        pen = pg.mkPen(TRACE_COLOR, width=1.3)
        self._calibration_item = pg.PlotCurveItem(connect="finite", pen=pen)
        self._separator_item = pg.PlotCurveItem(connect="pairs", pen=pen)
        for item in (self._calibration_item, self._separator_item):
            item.setZValue(20)
            self.plot_item.addItem(item)

    def _draw_empty_paper(self) -> None:
        self._set_grid(-15.0, 265.0, -130.0, 0.0)
        self._calibration_item.setData([], [])
        self._separator_item.setData([], [])
        self._activate(0)
        self.fit()

    def _activate(self, n: int) -> None:
        """Show the first ``n`` items of each pool, hide the rest."""
        self._n_active = n
        for pool in (self._trace_pool, self._label_pool, self._overlay_pool):
            for k, item in enumerate(pool):
                item.setVisible(k < n and (pool is not self._overlay_pool
                                           or (self._overlay_shown and self.state.overlay_visible)))

    def rebuild(self, fit: bool = True) -> None:
        """Recompute the layout and redraw everything (record, layout, gain, speed or page changed)."""
        self._remove(self._highlight_items)
        self.clear_caliper()
        if self.record is None:
            self.layout_geometry = None
            self._overlay_shown = False
            self._draw_empty_paper()
            return
        st = self.state
        geo = compute_layout(st.layout, self.record.n_samples, self.record.fs, st.speed_mm_per_s,
                             st.gain_mm_per_mv, st.chest_gain_mm_per_mv(), tuple(self.record.leads),
                             window_start_s=st.page_start_s)
        self.layout_geometry = geo
        n = len(geo.cells)
        self._grow(self._trace_pool, n, self._new_trace)
        self._grow(self._label_pool, n, self._new_label)
        self._set_grid(-geo.margin_mm, geo.width_mm, -geo.height_mm, 0.0)
        self._set_calibration_and_separators(geo)
        self._update_traces()
        self._build_labels()
        self._build_overlay()
        self._activate(n)
        self._build_highlight()
        if fit:
            self.fit()
        self.traces_drawn.emit()

    def _set_grid(self, x0: float, x1: float, y0: float, y1: float) -> None:
        for major, item in zip((False, True), self._grid_items):
            px, py = grid_segments(x0, x1, y0, y1, major)
            item.setData(px, py)

    def _set_calibration_and_separators(self, geo: PaperLayout) -> None:
        xs_all, ys_all = [], []
        for baseline, gain in zip(geo.row_baselines_mm, geo.row_cal_gain_mm_per_mv):
            xs, ys = calibration_pulse(-geo.margin_mm + 1.0, baseline, gain, geo.speed_mm_per_s)
            xs_all += [*xs, np.nan]
            ys_all += [*ys, np.nan]
        self._calibration_item.setData(np.array(xs_all), np.array(ys_all))
        # Short vertical bars where one column of leads ends and the next begins.
        sep_x, sep_y = [], []
        for cell in geo.cells:
            if cell.col > 0:
                sep_x += [cell.x0_mm, cell.x0_mm]
                sep_y += [cell.baseline_mm - 4.0, cell.baseline_mm + 4.0]
        self._separator_item.setData(np.array(sep_x, dtype=float), np.array(sep_y, dtype=float))

    def _quality_of(self, lead: str) -> str | None:
        """A quality flag that means "do not trust this lead", or None when it is fine."""
        flag = self.lead_quality.get(lead)
        if flag is None or str(flag).lower() in ("ok", "good", "", "none"):
            return None
        return str(flag)

    def _update_traces(self) -> None:
        geo = self.layout_geometry
        if geo is None or self.display_signal is None:
            return
        for cell, item in zip(geo.cells, self._trace_pool):
            samples = self.display_signal[cell.lead_index, cell.start_sample:cell.stop_sample]
            xs = cell.x0_mm + np.arange(samples.size, dtype=np.float64) / geo.fs * geo.speed_mm_per_s
            ys = cell.baseline_mm + samples.astype(np.float64) * cell.gain_mm_per_mv
            bad = self._quality_of(cell.lead_name) is not None
            # 1 px: antialiased lines wider than one pixel take Qt's slow path (~8x the paint time).
            item.setPen(pg.mkPen(BAD_TRACE_COLOR if bad else TRACE_COLOR, width=1.0))
            item.setData(xs, ys)

    def _build_labels(self) -> None:
        geo = self.layout_geometry
        if geo is None or self.record is None:
            return
        missing = set(self.record.missing_leads)
        derived = set(self.record.derived_leads)
        for cell, label in zip(geo.cells, self._label_pool):
            text = cell.lead_name
            colour = (0, 0, 0)
            if cell.lead_name in missing or not np.isfinite(self.record.signal[cell.lead_index]).any():
                text += " missing"
                colour = (200, 0, 0)
            else:
                flag = self._quality_of(cell.lead_name)
                if flag:
                    text += f" ({flag})"
                    colour = (120, 120, 120)
                elif cell.lead_name in derived:
                    text += "*"
            if cell.gain_mm_per_mv != self.state.gain_mm_per_mv:
                text += f"  {cell.gain_mm_per_mv:g} mm/mV"
            label.setText(text, color=colour)
            label.setPos(cell.x0_mm + 1.0, cell.top_mm - 0.5)

    def _build_overlay(self) -> None:
        geo = self.layout_geometry
        analysis = self.analysis
        self._overlay_shown = False
        if geo is None or analysis is None or analysis.anomaly_map is None:
            self._activate(self._n_active)
            return
        amap = np.asarray(analysis.anomaly_map)
        if amap.ndim != 2 or amap.shape[0] <= max(c.lead_index for c in geo.cells):
            self._activate(self._n_active)
            return
        self._grow(self._overlay_pool, len(geo.cells), self._new_overlay)
        for cell, image in zip(geo.cells, self._overlay_pool):
            values = amap[cell.lead_index, cell.start_sample:cell.stop_sample]
            n_bins = max(1, int(round(cell.width_mm / 0.5)))
            image.setImage(overlay_rgba(values, n_bins)[:, None, :], autoLevels=False)
            image.setRect(QtCore.QRectF(cell.x0_mm, cell.top_mm - cell.height_mm, cell.width_mm,
                                        cell.height_mm))
            image.setOpacity(self.state.overlay_opacity)
        self._overlay_shown = True
        self._activate(len(geo.cells))

    def _build_highlight(self) -> None:
        self._remove(self._highlight_items)
        geo = self.layout_geometry
        if geo is None or self.highlight_interval_s is None:
            return
        t0, t1 = self.highlight_interval_s
        x0, x1 = geo.x_of_time(t0), geo.x_of_time(t1)
        for cell in geo.cells:
            a, b = max(x0, cell.x0_mm), min(x1, cell.x0_mm + cell.width_mm)
            if b <= a:
                continue
            rect = QtWidgets.QGraphicsRectItem(a, cell.top_mm - cell.height_mm, b - a, cell.height_mm)
            rect.setBrush(pg.mkBrush(HIGHLIGHT_COLOR))
            rect.setPen(pg.mkPen((40, 110, 255, 160), width=1))
            rect.setZValue(-5)
            self.plot_item.addItem(rect, ignoreBounds=True)
            self._highlight_items.append(rect)

    # ------------------------------------------------------------------ interaction
    def _on_caliper_drag(self, start: QtCore.QPointF, end: QtCore.QPointF, finished: bool) -> None:
        geo = self.layout_geometry
        self.clear_caliper()
        if geo is None:
            return
        measurement = measure_caliper(geo, (start.x(), start.y()), (end.x(), end.y()),
                                      self.state.gain_mm_per_mv)
        pen = pg.mkPen(CALIPER_COLOR, width=1.5, style=QtCore.Qt.PenStyle.DashLine)
        for x in (start.x(), end.x()):
            line = pg.InfiniteLine(pos=x, angle=90, pen=pen)
            self._caliper_items.append(line)
        xs = np.array([start.x() - 3, end.x() + 3, start.x() - 3, end.x() + 3])
        ys = np.array([start.y(), start.y(), end.y(), end.y()])
        self._caliper_items.append(pg.PlotCurveItem(xs, ys, connect="pairs", pen=pen))
        label = pg.TextItem(measurement.text(), color=CALIPER_COLOR, fill=pg.mkBrush(255, 255, 255, 220),
                            anchor=(0, 1))
        label.setPos(max(start.x(), end.x()) + 1.0, max(start.y(), end.y()) + 1.0)
        self._caliper_items.append(label)
        for item in self._caliper_items:
            item.setZValue(60)
            self.plot_item.addItem(item, ignoreBounds=True)
        self.last_caliper = measurement
        self.caliper_changed.emit(measurement)

    def _on_mouse_moved(self, scene_pos: QtCore.QPointF) -> None:
        geo = self.layout_geometry
        if geo is None or self.record is None:
            return
        point = self.view_box.mapSceneToView(scene_pos)
        cell = geo.cell_at(point.x(), point.y())
        visible = cell is not None
        self._cross_v.setVisible(visible)
        self._cross_h.setVisible(visible)
        if cell is None:
            self.cursor_moved.emit(None)
            return
        self._cross_v.setPos(point.x())
        self._cross_h.setPos(point.y())
        t = geo.time_of_x(point.x())
        index = int(round(t * geo.fs))
        value = None
        if self.display_signal is not None and 0 <= index < self.display_signal.shape[1]:
            v = float(self.display_signal[cell.lead_index, index])
            value = v if math.isfinite(v) else None
        cursor_mv = (point.y() - cell.baseline_mm) / cell.gain_mm_per_mv
        readout = CursorReadout(cell.lead_name, t, cursor_mv, value)
        self.cursor_moved.emit(readout)
