"""Latency, memory and size of ``ecgmodel.analyze`` on one 10 s 12-lead 500 Hz ECG (prints numbers).

Usage: ``python benchmarks/bench_analyze.py [--threads 1 2] [--repeats 30] [--record PATH]``
Run on an otherwise idle machine; numbers are medians over repeats after one warm-up call.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import time
from pathlib import Path

import numpy as np
import torch

import ecgmodel
from ecgmodel.analysis import load_anomaly_detector
from ecgmodel.models.anomaly import count_parameters, inference_masks

DEFAULT_RECORD = (
    Path(__file__).resolve().parents[1].parent / "shared/data/ptbxl/records500/00000/00010_hr.hea"
)


def forward_flops(detector) -> float:
    """FLOPs of one analyze() forward pass (all mask sets of one 10 s window), counted by torch."""
    from torch.utils.flop_counter import FlopCounterMode

    config = detector.config
    masks, beat_masks = inference_masks(config)
    k = masks.shape[0]
    n_beats = 12
    signal = torch.zeros(k, 12, config.n_samples)
    beats = torch.zeros(k, n_beats, 12, config.beat_len)
    beat_mask = beat_masks.unsqueeze(1).expand(-1, n_beats, -1)
    counter = FlopCounterMode(display=False)
    with counter, torch.inference_mode():
        detector.net(signal, masks, beats, beat_mask)
    return float(counter.get_total_flops())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--record", default=str(DEFAULT_RECORD))
    args = parser.parse_args()

    record = ecgmodel.read(args.record)
    detector = load_anomaly_detector()
    print(f"record: {Path(args.record).name} {record.fs:g} Hz {record.duration_s:.1f} s")
    print(
        f"model: {detector.name} {detector.version}; parameters {count_parameters(detector.net):,}; "
        f"forward FLOPs per ECG {forward_flops(detector) / 1e9:.2f} GFLOP "
        f"({detector.config.n_mask_sets} mask sets in one batch)"
    )
    for threads in args.threads:
        ecgmodel.analyze(record, threads=threads)  # warm-up
        totals, stages = [], {}
        for _ in range(args.repeats):
            t = time.perf_counter()
            result = ecgmodel.analyze(record, threads=threads)
            totals.append(1000 * (time.perf_counter() - t))
            for name, ms in result.timings_ms.items():
                stages.setdefault(name, []).append(ms)
        stage_text = ", ".join(f"{k} {statistics.median(v):.1f}" for k, v in stages.items())
        print(
            f"threads={threads}: analyze() median {statistics.median(totals):.1f} ms, "
            f"p90 {np.percentile(totals, 90):.1f} ms; stages (median ms): {stage_text}"
        )
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS of this process: {peak_mb:.0f} MB")


if __name__ == "__main__":
    main()
