"""Viewer state kept apart from the Qt widgets (plain Python, no Qt import).

:class:`ViewState` holds every display preference and what is open; the window reads it to draw
and writes to it when the user changes a control. Preferences round-trip through
:meth:`ViewState.to_settings` / :meth:`ViewState.from_settings` (a flat ``dict`` the window stores
in QSettings).
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

#: Layout names, in menu order, with the text shown to the user.
LAYOUTS: dict[str, str] = {
    "3x4": "3 × 4 + rhythm (II)",
    "6x2": "6 × 2",
    "12x1": "12 × 1",
}
#: Gains offered (mm per mV); 10 is the standard.
GAINS_MM_PER_MV: tuple[float, ...] = (5.0, 10.0, 20.0)
#: Paper speeds offered (mm per second); 25 is the standard.
SPEEDS_MM_PER_S: tuple[float, ...] = (25.0, 50.0)
#: Display filter presets (passed to ``ecgmodel.signal.apply_preset``), with their menu text.
FILTER_PRESETS: dict[str, str] = {
    "diagnostic": "Diagnostic (0.05–150 Hz)",
    "monitoring": "Monitoring (0.5–40 Hz)",
    "notch50": "50 Hz notch",
    "notch60": "60 Hz notch",
    "none": "No filter (raw)",
}
#: Fixed colour scale of the anomaly overlay, in map units (SD above the normal-ECG error).
OVERLAY_RANGE_SD: tuple[float, float] = (0.0, 6.0)
#: How far Left / Right move the 10 s page of a longer record (seconds).
PAGE_STEP_S = 10.0
#: How many recent files the File menu remembers.
MAX_RECENT_FILES = 10


@dataclass
class ViewState:
    """Everything the viewer displays, as plain values.

    Persisted (preferences): layout, gain, speed, half-scale chest leads, filter preset, overlay
    visibility and opacity. Not persisted: the open file and the selected diagnosis.
    """

    layout: str = "3x4"
    gain_mm_per_mv: float = 10.0
    speed_mm_per_s: float = 25.0
    chest_half_scale: bool = False
    filter_preset: str = "diagnostic"
    overlay_visible: bool = True
    overlay_opacity: float = 0.55
    caliper_mode: bool = False
    page_start_s: float = 0.0
    current_path: str | None = None
    selected_diagnosis: str | None = None
    recent_files: list[str] = field(default_factory=list)

    _PERSISTED = (
        "layout", "gain_mm_per_mv", "speed_mm_per_s", "chest_half_scale", "filter_preset",
        "overlay_visible", "overlay_opacity",
    )

    def chest_gain_mm_per_mv(self) -> float:
        """Gain applied to V1–V6 (half of the limb gain when half-scale chest leads are on)."""
        return self.gain_mm_per_mv / 2.0 if self.chest_half_scale else self.gain_mm_per_mv

    def to_settings(self) -> dict[str, Any]:
        """The preferences as a flat dict of plain values."""
        values = asdict(self)
        return {name: values[name] for name in self._PERSISTED}

    @classmethod
    def from_settings(cls, values: dict[str, Any]) -> ViewState:
        """Preferences read back from storage; unknown or invalid values fall back to the defaults."""
        state = cls()
        types = {f.name: f.type for f in fields(cls)}
        for name in cls._PERSISTED:
            if name not in values or values[name] is None:
                continue
            raw = values[name]
            try:
                if types[name] in ("bool", bool):
                    value: Any = raw if isinstance(raw, bool) else str(raw).lower() in ("1", "true", "yes")
                elif types[name] in ("float", float):
                    value = float(raw)
                else:
                    value = str(raw)
            except (TypeError, ValueError):
                continue
            setattr(state, name, value)
        state.validate()
        return state

    def validate(self) -> None:
        """Clamp every preference into its allowed set."""
        default = ViewState()
        if self.layout not in LAYOUTS:
            self.layout = default.layout
        if self.gain_mm_per_mv not in GAINS_MM_PER_MV:
            self.gain_mm_per_mv = default.gain_mm_per_mv
        if self.speed_mm_per_s not in SPEEDS_MM_PER_S:
            self.speed_mm_per_s = default.speed_mm_per_s
        if self.filter_preset not in FILTER_PRESETS:
            self.filter_preset = default.filter_preset
        self.overlay_opacity = min(1.0, max(0.0, float(self.overlay_opacity)))

    def remember_file(self, path: str) -> None:
        """Put ``path`` first in the recent-files list (no duplicates, at most MAX_RECENT_FILES)."""
        path = str(path)
        self.recent_files = [path] + [p for p in self.recent_files if p != path]
        del self.recent_files[MAX_RECENT_FILES:]


def _natural_key(name: str) -> list[Any]:
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", name)]


def sibling_ecg_files(path: str | Path, extensions: tuple[str, ...] | list[str]) -> list[Path]:
    """The ECG files in ``path``'s folder (``path`` included), in natural name order.

    A WFDB record is listed once, by its ``.hea`` header (its ``.dat`` is skipped).
    """
    path = Path(path)
    folder = path.parent
    wanted = {ext.lower() if ext.startswith(".") else "." + ext.lower() for ext in extensions}
    try:
        candidates = [p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in wanted]
    except OSError:
        return [path]
    headers = {p.stem for p in candidates if p.suffix.lower() == ".hea"}
    files = [p for p in candidates if not (p.suffix.lower() == ".dat" and p.stem in headers)]
    if path.exists() and path not in files:
        files.append(path)
    return sorted(files, key=lambda p: _natural_key(p.name))


def neighbour_file(path: str | Path, extensions: tuple[str, ...] | list[str], step: int) -> Path | None:
    """The ECG file ``step`` places after (``+1``) or before (``-1``) ``path`` in its folder, or None."""
    path = Path(path)
    files = sibling_ecg_files(path, extensions)
    try:
        index = files.index(path)
    except ValueError:
        return None
    target = index + step
    if 0 <= target < len(files):
        return files[target]
    return None
