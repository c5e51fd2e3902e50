"""ecgmodel: everything in ECG Lens that is not UI.

Headless use::

    import ecgmodel
    record = ecgmodel.read("00001_hr.hea")      # -> EcgRecord (mV, 12 standard leads)
    result = ecgmodel.analyze(record)           # -> Analysis (score, map, diagnoses, ...)

Decision support only: results are not a diagnosis.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .errors import (
    AnalysisError,
    CorruptFileError,
    EcgLensError,
    EcgReadError,
    ModelLoadError,
    SignalTooShortError,
    UnsupportedFormatError,
)
from .types import STANDARD_LEADS, Analysis, Diagnosis, EcgRecord, ModelInfo, Patient, Source

if TYPE_CHECKING:
    from os import PathLike

__version__ = "0.1.0"

__all__ = [
    "STANDARD_LEADS",
    "Analysis",
    "AnalysisError",
    "CorruptFileError",
    "Diagnosis",
    "EcgLensError",
    "EcgReadError",
    "EcgRecord",
    "ModelInfo",
    "ModelLoadError",
    "Patient",
    "SignalTooShortError",
    "Source",
    "UnsupportedFormatError",
    "analyze",
    "read",
]


def read(path: str | PathLike[str]) -> EcgRecord:
    """Read an ECG file of any supported format (detected from content) into an :class:`EcgRecord`."""
    from .io import read as _read

    return _read(path)


def analyze(record: EcgRecord, **kwargs) -> Analysis:
    """Run the bundled models on one record; see :func:`ecgmodel.analysis.analyze`."""
    from .analysis import analyze as _analyze

    return _analyze(record, **kwargs)


del annotations  # the __future__ flag must not shadow the ecgmodel.annotations module
