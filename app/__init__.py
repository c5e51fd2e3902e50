"""ECG Lens viewer: a thin, responsive Qt shell over :mod:`ecgmodel`'s public API.

Nothing here computes a medical result; the viewer shows what :func:`ecgmodel.read` and
:func:`ecgmodel.analyze` return. Entry point: :func:`app.main_window.run_viewer`.
"""

from __future__ import annotations

__all__ = ["DISCLAIMER"]

#: Shown once per session in the window, and on every exported report.
DISCLAIMER = (
    "Decision support only: ECG Lens does not make a diagnosis. "
    "A qualified clinician must review the ECG and every result shown."
)
