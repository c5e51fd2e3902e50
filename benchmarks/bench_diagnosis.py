"""Added latency of the diagnosis model on top of the anomaly analysis (prints numbers; not a CI test).

Usage: ``python benchmarks/bench_diagnosis.py [--threads 1 2] [--repeats 20] [--record PATH]
[--anomaly BUNDLE] [--diagnosis BUNDLE]``

For each thread count: median wall time of ``analyze(record, with_diagnosis=False)`` and of
``analyze(record)`` (with diagnosis), their difference, and the diagnosis stage alone as timed inside
``analyze`` (``timings_ms["diagnosis"]``: one forward pass of the classifier per 10 s window) and of
``model.predict`` called directly, next to the anomaly network's own batched forward passes on one
10 s window. Run on an otherwise idle machine; one warm-up call first.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import time
import warnings
from pathlib import Path

import numpy as np
import torch

import ecgmodel
from ecgmodel.analysis import load_anomaly_detector, load_diagnosis_model
from ecgmodel.anomaly_scoring import restoration_errors
from ecgmodel.models.anomaly import count_parameters
from ecgmodel.signal import detect_r_peaks, model_input

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
DEFAULT_RECORD = SHARED / "ptbxl/records500/00000/00010_hr.hea"


def median_ms(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(1000 * (time.perf_counter() - t))
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--record", default=str(DEFAULT_RECORD))
    parser.add_argument("--anomaly", default=None, help="anomaly bundle (default: the bundled one)")
    parser.add_argument("--diagnosis", default=None, help="diagnosis bundle (default: the bundled one)")
    args = parser.parse_args()

    record = ecgmodel.read(args.record)
    model = load_diagnosis_model(args.diagnosis)
    if model is None:
        raise SystemExit("no diagnosis model bundled: train one (ecglens train-diagnosis --install) first")
    print(f"record: {Path(args.record).name} {record.fs:g} Hz {record.duration_s:.1f} s")
    print(f"diagnosis model: {model.info.name} {model.info.version}; "
          f"parameters {count_parameters(model.net):,}; {model.config.n_labels} labels; "
          f"beats {'on' if model.config.use_beats else 'off'}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        z, fs = model_input(np.nan_to_num(record.signal), record.fs)
        peaks = detect_r_peaks(z, fs)
    valid = np.ones(z.shape[0], bool)

    def run(with_diagnosis: bool):
        return ecgmodel.analyze(record, anomaly_model=args.anomaly, diagnosis_model=args.diagnosis,
                                with_diagnosis=with_diagnosis)

    detector = load_anomaly_detector(args.anomaly)
    windows = z[None, :, : detector.config.n_samples].astype(np.float32)

    def anomaly_forward() -> None:  # the anomaly network's batched masked passes on one 10 s window
        restoration_errors(detector.net, windows, [peaks[peaks < windows.shape[-1]]])

    print(f"{'threads':>7} {'anomaly net':>12} {'predict()':>10} {'analyze w/o diag':>17} "
          f"{'analyze with':>13} {'added':>8} {'diag stage':>11}  (ms, medians of {args.repeats})")
    for threads in args.threads:
        torch.set_num_threads(threads)
        anomaly = median_ms(anomaly_forward, args.repeats)
        predict = median_ms(lambda: model.predict(z, peaks, valid), args.repeats)
        try:
            without = median_ms(lambda: run(False), args.repeats)
            stage: list[float] = []

            def with_diagnosis(stage: list[float] = stage) -> None:
                stage.append(run(True).timings_ms["diagnosis"])

            with_diag = median_ms(with_diagnosis, args.repeats)
            full = (f"{without:>17.1f} {with_diag:>13.1f} {with_diag - without:>8.1f} "
                    f"{statistics.median(stage):>11.1f}")
        except Exception as err:  # analyze() itself failing is reported, the model timings still stand
            full = f"analyze() failed: {type(err).__name__}: {err}"
        print(f"{threads:>7} {anomaly:>12.1f} {predict:>10.1f} {full}")
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak resident memory of this process: {peak_mb:.0f} MB")


if __name__ == "__main__":
    main()
