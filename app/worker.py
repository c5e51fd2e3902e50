"""Background work for the viewer: read a file, then analyse it, off the UI thread.

One :class:`AnalysisRunner` per window owns a one-thread ``QThreadPool``. :meth:`AnalysisRunner.submit`
starts a job and returns its id; submitting again makes every older job stale: a stale job that has
not started yet is skipped, one that is running finishes in the background and its results are
dropped (``analyze`` cannot be interrupted half-way). Results come back as Qt signals, delivered on
the UI thread (queued connection), tagged with the job id so the window can ignore stale ones too.
"""

from __future__ import annotations

import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass

from PySide6 import QtCore

import ecgmodel
from ecgmodel.errors import EcgLensError
from ecgmodel.types import Analysis, EcgRecord

ReadFn = Callable[[str], EcgRecord]
AnalyzeFn = Callable[[EcgRecord], Analysis]


def user_message(error: BaseException, stage: str) -> str:
    """One readable sentence for an error (no traceback ever reaches the user)."""
    if isinstance(error, EcgLensError):
        return str(error)
    if isinstance(error, FileNotFoundError):
        return f"File not found: {error.filename or error}"
    if isinstance(error, MemoryError):
        return f"Not enough memory to {stage} this ECG."
    text = str(error).strip() or type(error).__name__
    return f"Could not {stage} this ECG ({type(error).__name__}: {text})."


@dataclass
class JobTimes:
    """Wall-clock milestones (perf_counter seconds) of one job."""

    submitted: float
    read_done: float | None = None
    analysis_done: float | None = None


class _JobSignals(QtCore.QObject):
    """Signals of the runner; the object lives on the UI thread so deliveries are queued there."""

    record_ready = QtCore.Signal(int, object)  # job id, EcgRecord
    analysis_ready = QtCore.Signal(int, object)  # job id, Analysis
    failed = QtCore.Signal(int, str, str)  # job id, stage ("open" | "analyse"), message
    progress = QtCore.Signal(int, str)  # job id, what is happening now


class _Job(QtCore.QRunnable):
    def __init__(self, runner: AnalysisRunner, job_id: int, path: str | None, record: EcgRecord | None,
                 analyse: bool) -> None:
        super().__init__()
        self.setAutoDelete(True)
        self.runner = runner
        self.job_id = job_id
        self.path = path
        self.record = record
        self.analyse = analyse

    def run(self) -> None:  # worker thread
        runner, job_id = self.runner, self.job_id
        signals = runner.signals
        try:
            if not runner.is_current(job_id):
                return
            record = self.record
            if record is None:
                signals.progress.emit(job_id, "Reading file…")
                try:
                    record = runner.read_fn(str(self.path))
                except BaseException as error:  # noqa: BLE001 - every failure becomes a message
                    runner.last_traceback = traceback.format_exc()
                    signals.failed.emit(job_id, "open", user_message(error, "open"))
                    return
                runner.times[job_id].read_done = time.perf_counter()
                if not runner.is_current(job_id):
                    return
                signals.record_ready.emit(job_id, record)
                if runner.wait_for_display:
                    # Let the UI draw the traces before the model competes with it for the GIL.
                    displayed = runner._displayed.get(job_id)
                    if displayed is not None:
                        displayed.wait(runner.display_timeout_s)
            if not self.analyse or not runner.is_current(job_id):
                return
            signals.progress.emit(job_id, "Analysing…")
            try:
                analysis = runner.analyze_fn(record)
            except BaseException as error:  # noqa: BLE001
                runner.last_traceback = traceback.format_exc()
                signals.failed.emit(job_id, "analyse", user_message(error, "analyse"))
                return
            runner.times[job_id].analysis_done = time.perf_counter()
            if runner.is_current(job_id):
                signals.analysis_ready.emit(job_id, analysis)
        finally:
            runner._job_finished()


class AnalysisRunner(QtCore.QObject):
    """Runs read + analyse jobs one at a time on a background thread; newer jobs supersede older ones."""

    def __init__(self, read_fn: ReadFn | None = None, analyze_fn: AnalyzeFn | None = None,
                 parent: QtCore.QObject | None = None) -> None:
        super().__init__(parent)
        self.read_fn: ReadFn = read_fn or ecgmodel.read
        self.analyze_fn: AnalyzeFn = analyze_fn or ecgmodel.analyze
        self.signals = _JobSignals(self)
        self.pool = QtCore.QThreadPool(self)
        self.pool.setMaxThreadCount(1)
        self._lock = threading.Lock()
        self._current = 0
        self._running = 0
        self.times: dict[int, JobTimes] = {}
        self.last_traceback: str | None = None
        #: When True, a job waits (at most ``display_timeout_s``) after reading until
        #: :meth:`notify_displayed` says the traces are drawn, then starts the analysis.
        self.wait_for_display = False
        self.display_timeout_s = 0.5
        self._displayed: dict[int, threading.Event] = {}

    # The four signals, re-exported for readability: runner.record_ready.connect(...)
    @property
    def record_ready(self) -> QtCore.SignalInstance:
        return self.signals.record_ready

    @property
    def analysis_ready(self) -> QtCore.SignalInstance:
        return self.signals.analysis_ready

    @property
    def failed(self) -> QtCore.SignalInstance:
        return self.signals.failed

    @property
    def progress(self) -> QtCore.SignalInstance:
        return self.signals.progress

    def submit(self, path: str | None = None, record: EcgRecord | None = None, analyse: bool = True) -> int:
        """Start a job on ``path`` (or on an already read ``record``); returns its id. Older jobs go stale."""
        with self._lock:
            self._current += 1
            job_id = self._current
            self._running += 1
            for event in self._displayed.values():  # stale jobs must not wait any longer
                event.set()
            self._displayed = {job_id: threading.Event()}
        self.times = {k: v for k, v in self.times.items() if k > job_id - 8}
        self.times[job_id] = JobTimes(submitted=time.perf_counter())
        self.pool.start(_Job(self, job_id, path, record, analyse))
        return job_id

    def notify_displayed(self, job_id: int) -> None:
        """The UI has drawn the record of ``job_id``: its analysis may start."""
        with self._lock:
            event = self._displayed.get(job_id)
        if event is not None:
            event.set()

    def cancel(self) -> None:
        """Make every job stale (its results, if any, are dropped)."""
        with self._lock:
            self._current += 1
            for event in self._displayed.values():  # a job waiting for the display must not hang on
                event.set()

    def is_current(self, job_id: int) -> bool:
        with self._lock:
            return job_id == self._current

    @property
    def current_job(self) -> int:
        return self._current

    def is_busy(self) -> bool:
        """Whether any job (current or stale) is still queued or running."""
        with self._lock:
            return self._running > 0

    def _job_finished(self) -> None:
        with self._lock:
            self._running -= 1

    def wait_idle(self, timeout_ms: int = -1) -> bool:
        """Block until every job has finished (for shutdown and tests)."""
        return self.pool.waitForDone(timeout_ms)
