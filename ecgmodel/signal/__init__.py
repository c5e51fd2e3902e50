"""Signal layer: filters, resampling, R peaks, beats, intervals and lead quality.

Every function takes ``signal`` as a float array (n_leads, n_samples) in mV (all-NaN rows = missing
leads) and ``fs`` in Hz (100-1000). Bad input never raises; problems are reported as
:class:`SignalWarning` (``warnings.warn``) and results hold NaN / empty arrays.
"""

from __future__ import annotations

from .beats import beat_windows, median_beat
from .filters import (
    MODEL_FS,
    PRESETS,
    SignalWarning,
    apply_preset,
    bandpass,
    map_to_record,
    model_input,
    notch,
    remove_baseline,
    resample,
    resample_to_length,
    zscore,
)
from .intervals import INTERVAL_KEYS, delineate, measure
from .quality import LeadQuality, QualityReport, assess, lead_quality
from .rpeaks import detect_r_peaks

__all__ = [
    "INTERVAL_KEYS", "MODEL_FS", "PRESETS", "LeadQuality", "QualityReport", "SignalWarning", "apply_preset",
    "assess", "bandpass", "beat_windows", "delineate", "detect_r_peaks", "lead_quality", "map_to_record",
    "measure", "median_beat", "model_input", "notch", "remove_baseline", "resample", "resample_to_length",
    "zscore",
]
