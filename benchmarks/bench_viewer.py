"""Viewer responsiveness: open → first traces, open → results, UI stalls during analysis, memory.

Run by hand (not part of CI pass/fail)::

    QT_QPA_PLATFORM=offscreen OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_viewer.py \\
        --data ../shared/data/ptbxl/records500/00000 --runs 10 --memory-files 50

Targets (issue "The ECG Lens viewer"): first traces <= 200 ms, results <= 1 s, longest UI-thread
stall while analysis runs <= 50 ms (QTimer heartbeat every 5 ms), RSS after 50 ECGs reported.
``--stub-analysis SECONDS`` replaces ``ecgmodel.analyze`` by CPU work of that length (torch matmuls
plus Python loops) where the real model cannot run (e.g. weights not trained yet); the report says
which was used.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
from PySide6 import QtCore, QtWidgets  # noqa: E402

import app  # noqa: E402,F401  (applies the PySide6 refcount guard before Qt is used)
import ecgmodel  # noqa: E402
from app.main_window import SETTINGS_ENV, MainWindow  # noqa: E402
from app.worker import AnalysisRunner  # noqa: E402
from ecgmodel.types import Analysis, EcgRecord  # noqa: E402


def rss_mb() -> float:
    """Resident set size of this process (MB), from /proc (Linux) or resource (max RSS) elsewhere."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def stub_analyze(seconds: float):
    """A stand-in ``analyze`` that keeps a CPU busy for ``seconds`` like a model would."""
    import torch

    def analyze(record: EcgRecord) -> Analysis:
        end = time.perf_counter() + seconds
        a = torch.randn(256, 256)
        while time.perf_counter() < end:
            a = torch.tanh(a @ a / 16.0)  # releases the GIL, as torch inference does
            _ = sum(i * i for i in range(2000))  # and some pure-Python work that holds it
        amap = np.abs(np.random.default_rng(0).normal(0, 1, record.signal.shape)).astype(np.float32)
        return Analysis(anomaly_score=1.0, anomaly_percentile=80.0, anomaly_map=amap)

    return analyze


class Heartbeat(QtCore.QObject):
    """Ticks every ``interval_ms`` on the UI thread; the largest gap minus the interval is the stall."""

    def __init__(self, interval_ms: int = 5) -> None:
        super().__init__()
        self.interval_ms = interval_ms
        self.timer = QtCore.QTimer(self)
        self.timer.setTimerType(QtCore.Qt.TimerType.PreciseTimer)
        self.timer.setInterval(interval_ms)
        self.timer.timeout.connect(self._tick)
        self.last = 0.0
        self.gaps: list[float] = []

    def start(self) -> None:
        self.gaps = []
        self.last = time.perf_counter()
        self.timer.start()

    def stop(self) -> float:
        self.timer.stop()
        return max(self.gaps, default=0.0) * 1000.0 - self.interval_ms

    def _tick(self) -> None:
        now = time.perf_counter()
        self.gaps.append(now - self.last)
        self.last = now


def wait(window: MainWindow, timeout_s: float = 300.0) -> None:
    qapp = QtWidgets.QApplication.instance()
    deadline = time.monotonic() + timeout_s
    while not window.is_settled() and time.monotonic() < deadline:
        qapp.processEvents(QtCore.QEventLoop.ProcessEventsFlag.AllEvents, 5)
    qapp.processEvents()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=str(REPO.parent / "shared/data/ptbxl/records500/00000"))
    parser.add_argument("--runs", type=int, default=10, help="timed opens")
    parser.add_argument("--memory-files", type=int, default=50,
                        help="ECGs opened in a row for the RSS figure")
    parser.add_argument("--stub-analysis", type=float, default=None, metavar="SECONDS",
                        help="use a CPU-bound stand-in for ecgmodel.analyze")
    parser.add_argument("--json", default=None, help="also write the results here")
    args = parser.parse_args()

    files = sorted(Path(args.data).glob("*.hea"))
    if len(files) < 2:
        print(f"no WFDB records under {args.data}", file=sys.stderr)
        return 2
    settings_dir = tempfile.mkdtemp(prefix="ecglens-bench-")
    os.environ[SETTINGS_ENV] = str(Path(settings_dir) / "settings.ini")

    mode = "ecgmodel.analyze"
    analyze_fn = ecgmodel.analyze
    if args.stub_analysis is None:
        try:
            ecgmodel.analyze(ecgmodel.read(files[0]))
        except Exception as error:  # noqa: BLE001
            print(f"real analysis unavailable ({error}); using a 0.6 s CPU stand-in", file=sys.stderr)
            args.stub_analysis = 0.6
    if args.stub_analysis is not None:
        mode = f"stub ({args.stub_analysis:.2f} s of CPU work)"
        analyze_fn = stub_analyze(args.stub_analysis)

    qapp = QtWidgets.QApplication.instance() or QtWidgets.QApplication([])
    qapp.setApplicationName("ECG Lens benchmark")
    window = MainWindow(runner=AnalysisRunner(analyze_fn=analyze_fn), show_disclaimer=False)
    window.resize(1600, 1000)
    window.show()
    first_paint: dict[str, float] = {}

    def painted(_record) -> None:
        window.paper.repaint()  # synchronous paint: the traces are on screen when this returns
        first_paint["t"] = time.perf_counter()

    window.record_shown.connect(painted)
    heartbeat = Heartbeat(5)

    # warm-up (imports, first model load, first layout)
    window.open_path(str(files[0]))
    wait(window)

    first_ms, results_ms, stalls_ms = [], [], []
    for k in range(args.runs):
        path = files[1 + k % (len(files) - 1)]
        first_paint.clear()
        heartbeat.start()
        t0 = time.perf_counter()
        window.open_path(str(path))
        wait(window)
        t_done = time.perf_counter()
        stalls_ms.append(heartbeat.stop())
        if window.last_error:
            print(f"{path.name}: {window.last_error}", file=sys.stderr)
            continue
        first_ms.append((first_paint.get("t", t_done) - t0) * 1000.0)
        results_ms.append((t_done - t0) * 1000.0)

    rss_before = rss_mb()
    t_mem = time.perf_counter()
    for k in range(args.memory_files):
        window.open_path(str(files[k % len(files)]))
        wait(window)
    rss_after = rss_mb()
    mem_seconds = time.perf_counter() - t_mem

    def summary(values: list[float]) -> dict[str, float]:
        if not values:
            return {}
        return {"median": round(statistics.median(values), 1), "max": round(max(values), 1),
                "min": round(min(values), 1)}

    report = {
        "analysis": mode,
        "runs": len(results_ms),
        "open_to_first_traces_ms": summary(first_ms),
        "open_to_results_ms": summary(results_ms),
        "longest_ui_stall_during_analysis_ms": summary(stalls_ms),
        "rss_mb_before_memory_run": round(rss_before, 1),
        f"rss_mb_after_{args.memory_files}_ecgs": round(rss_after, 1),
        "memory_run_seconds": round(mem_seconds, 1),
        "targets": {"first_traces_ms": 200, "results_ms": 1000, "ui_stall_ms": 50},
    }
    text = json.dumps(report, indent=2)
    print(text)
    if args.json:
        Path(args.json).write_text(text + "\n")
    window.runner.cancel()
    window.runner.wait_idle(30000)
    window.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
