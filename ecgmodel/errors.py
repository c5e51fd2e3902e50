"""Errors ECG Lens raises on bad input: one sentence naming the file and what is wrong."""

from __future__ import annotations


class EcgLensError(Exception):
    """Base class of every error ECG Lens raises on purpose."""


class EcgReadError(EcgLensError):
    """A file could not be read as an ECG. ``str(err)`` names the file and the problem."""

    def __init__(self, path: object, problem: str):
        self.path = str(path) if path is not None else None
        self.problem = problem
        where = f"{self.path}: " if self.path else ""
        super().__init__(f"{where}{problem}")


class UnsupportedFormatError(EcgReadError):
    """The file is not in any format ECG Lens can read."""


class CorruptFileError(EcgReadError):
    """The file is in a known format but damaged (truncated, bad encoding, broken XML)."""


class SignalTooShortError(EcgReadError):
    """The record is shorter than ECG Lens can analyse."""


class ModelLoadError(EcgLensError):
    """A bundled model's weights are missing, corrupted or do not match the code."""


class AnalysisError(EcgLensError):
    """A record could not be analysed (e.g. too short, no usable lead)."""
