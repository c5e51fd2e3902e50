"""ECG Lens viewer: a thin, responsive Qt shell over :mod:`ecgmodel`'s public API.

Nothing here computes a medical result; the viewer shows what :func:`ecgmodel.read` and
:func:`ecgmodel.analyze` return. Entry point: :func:`app.main_window.run_viewer`.
"""

from __future__ import annotations

import ctypes
import sys

__all__ = ["DISCLAIMER", "guard_bool_refcounts"]

#: Shown once per session in the window, and on every exported report.
DISCLAIMER = (
    "Decision support only: ECG Lens does not make a diagnosis. "
    "A qualified clinician must review the ECG and every result shown."
)

_BOOL_GUARD_REFS = 1 << 40


def guard_bool_refcounts() -> bool:
    """Work around PySide6 6.12 on CPython 3.11; returns whether the guard was applied.

    PySide6 6.12.0 returns ``None`` / ``True`` / ``False`` without taking a reference (correct only
    where they are immortal, i.e. CPython >= 3.12): every void Qt call (``setText``, ...), every
    ``processEvents()``, ``Signal.emit()`` and ``Signal.disconnect()`` drops one reference, and after
    a few hundred calls CPython 3.11 aborts with "Fatal Python error: none_dealloc / bool_dealloc".
    Measured here: 1000 ``QLabel.setText`` + ``setVisible`` calls drop 2000 references to None.
    We give the three singletons a huge reference count, as CPython 3.12 does, once per process.
    Nothing is needed (or done) from CPython 3.12 on. Must run before PySide6 is used.
    """
    if sys.version_info >= (3, 12):
        return False
    for singleton in (None, True, False):
        refcount = ctypes.c_ssize_t.from_address(id(singleton))
        if refcount.value < _BOOL_GUARD_REFS // 2:
            refcount.value += _BOOL_GUARD_REFS
    return True


guard_bool_refcounts()
