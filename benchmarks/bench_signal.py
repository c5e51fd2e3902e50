"""Benchmark of the signal layer: R-peak agreement, interval agreement with devices, runtime.

Run by hand (not a test)::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_signal.py [--data ../shared/data] [--quick]

Prints:
1. R-peak F1 (+-50 ms) over the PTB-XL records (500 Hz and their 100 Hz copies) against wfdb's XQRS
   on lead II, and against the consensus of XQRS and neurokit2 (beats both place within 50 ms of each
   other, records where they agree on >= 90 % of beats) when neurokit2 is installed (benchmark-only
   dependency). Beats within 0.5 s of either end are not scored (both references skip edge beats).
2. Mean absolute differences between :func:`ecgmodel.signal.measure` and the device measurements of
   the GE MUSE and Philips XML files, and HR against the RR of the reference beats on PTB-XL.
3. The single-thread runtime of the whole pipeline on one 10 s 12-lead 500 Hz ECG.
"""

from __future__ import annotations

import argparse
import math
import time
import warnings
from pathlib import Path

import numpy as np
import wfdb
from wfdb import processing

from ecgmodel.signal import (
    apply_preset,
    assess,
    detect_r_peaks,
    measure,
    median_beat,
    model_input,
)

EDGE_S = 0.5
TOLERANCE_S = 0.05
STANDARD = ["I", "II", "III", "AVR", "AVL", "AVF", "V1", "V2", "V3", "V4", "V5", "V6"]


def _read_ptbxl(ptbxl: Path, ecg_id: int, fs: int) -> np.ndarray:
    folder, suffix = ("records500", "hr") if fs == 500 else ("records100", "lr")
    x, _ = wfdb.rdsamp(str(ptbxl / folder / f"{(ecg_id - 1) // 1000 * 1000:05d}" / f"{ecg_id:05d}_{suffix}"))
    return x.T


def _counts(found: np.ndarray, reference: np.ndarray, tolerance: float) -> tuple[int, int, int]:
    """(true positives, false positives, false negatives) with one-to-one matching."""
    if found.size == 0 or reference.size == 0:
        return 0, int(found.size), int(reference.size)
    distance = np.abs(found[:, None] - reference[None, :])
    used_ref: set[int] = set()
    tp = 0
    for i in np.argsort(distance.min(axis=1)):
        j = int(np.argmin(distance[i]))
        if distance[i, j] <= tolerance and j not in used_ref:
            used_ref.add(j)
            tp += 1
    return tp, int(found.size) - tp, int(reference.size) - tp


def _inner(peaks: np.ndarray, n: int, margin: int) -> np.ndarray:
    return peaks[(peaks >= margin) & (peaks < n - margin)]


def _reference_beats(x500: np.ndarray) -> dict[str, np.ndarray]:
    refs = {"xqrs": np.asarray(processing.xqrs_detect(x500[1], 500, verbose=False), dtype=np.int64)}
    try:
        import neurokit2 as nk
    except ImportError:
        return refs
    try:
        cleaned = nk.ecg_clean(x500[1], sampling_rate=500)
        _, info = nk.ecg_peaks(cleaned, sampling_rate=500)
        nk_peaks = np.asarray(info["ECG_R_Peaks"], dtype=np.int64)
    except Exception:  # noqa: BLE001 - a reference failing on one record is not our result
        nk_peaks = np.zeros(0, np.int64)
    refs["neurokit2"] = nk_peaks
    xq = refs["xqrs"]
    if xq.size and nk_peaks.size:
        distance = np.abs(nk_peaks[:, None] - xq[None, :])
        close = distance.min(axis=1) <= int(TOLERANCE_S * 500)
        if close.sum() >= 0.9 * max(xq.size, nk_peaks.size):
            partner = xq[distance.argmin(axis=1)]
            refs["consensus"] = ((nk_peaks + partner) // 2)[close]
    return refs


def bench_rpeaks(ptbxl: Path, ids: list[int]) -> dict[int, dict[str, np.ndarray]]:
    print(f"\n== R peaks: F1 at +-{TOLERANCE_S * 1000:.0f} ms over {len(ids)} PTB-XL records "
          f"(edges {EDGE_S} s excluded) ==")
    totals: dict[tuple[str, int], np.ndarray] = {}
    references: dict[int, dict[str, np.ndarray]] = {}
    worst: list[tuple[int, int]] = []
    for ecg_id in ids:
        x500 = _read_ptbxl(ptbxl, ecg_id, 500)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            refs = _reference_beats(x500)
        references[ecg_id] = refs
        for fs in (500, 100):
            x = x500 if fs == 500 else _read_ptbxl(ptbxl, ecg_id, 100)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                found = _inner(detect_r_peaks(x, fs), x.shape[1], int(EDGE_S * fs))
            for name, ref in refs.items():
                ref_fs = _inner(np.round(ref * fs / 500).astype(np.int64), x.shape[1], int(EDGE_S * fs))
                counts = np.array(_counts(found, ref_fs, TOLERANCE_S * fs))
                totals[(name, fs)] = totals.get((name, fs), np.zeros(4, int)) + np.append(counts, 1)
                if name == "consensus" and fs == 500 and counts[1] + counts[2] > 0:
                    worst.append((int(counts[1] + counts[2]), ecg_id))
    print(f"{'reference':<28}{'fs':>5}{'records':>9}{'TP':>7}{'FP':>6}{'FN':>6}{'Se':>8}{'PPV':>8}{'F1':>8}")
    for (name, fs), (tp, fp, fn, n_rec) in sorted(totals.items()):
        se, ppv = tp / max(tp + fn, 1), tp / max(tp + fp, 1)
        f1 = 2 * tp / max(2 * tp + fp + fn, 1)
        label = {"xqrs": "XQRS lead II", "neurokit2": "neurokit2 lead II",
                 "consensus": "XQRS & neurokit2 consensus"}[name]
        print(f"{label:<28}{fs:>5}{n_rec:>9}{tp:>7}{fp:>6}{fn:>6}{se:>8.4f}{ppv:>8.4f}{f1:>8.4f}")
    worst.sort(reverse=True)
    print("largest disagreements with the consensus (errors, ecg_id):", worst[:8])
    return references


def _muse_device(shared: Path) -> tuple[np.ndarray, dict[str, float]] | None:
    xml = shared / "formats" / "ge_muse" / "muse-sinus.xml"
    try:
        import ecgmodel

        record = ecgmodel.read(xml)
        device = dict(record.metadata.get("device_measurements", {}))
        device["axis_deg"] = device.get("axis_qrs_deg", math.nan)
        return np.asarray(record.signal, dtype=np.float64), device
    except Exception:  # noqa: BLE001 - reader not ready: WFDB copy + the XML's measurements
        from defusedxml import ElementTree

        root = ElementTree.parse(xml).getroot().find("RestingECGMeasurements")
        get = {"hr_bpm": "VentricularRate", "pr_ms": "PRInterval", "qrs_ms": "QRSDuration",
               "qt_ms": "QTInterval", "qtc_ms": "QTCorrected", "axis_deg": "RAxis"}
        device = {key: float(root.findtext(tag)) for key, tag in get.items()}
        x, fields = wfdb.rdsamp(str(shared / "formats" / "ge_muse" / "muse-sinus"))
        names = [s.upper() for s in fields["sig_name"]]
        return x.T[[names.index(n) for n in STANDARD]], device


def _philips_devices(shared: Path) -> list[tuple[str, np.ndarray, float, dict[str, float]]]:
    """Philips files the project reader can open, with their global measurements."""
    out = []
    try:
        from defusedxml import ElementTree

        import ecgmodel
    except ImportError:
        return out
    for path in sorted((shared / "formats" / "philips_sierra").glob("*.[xX][mM][lL]")):
        if path.name.startswith("invalid"):
            continue
        try:
            record = ecgmodel.read(path)
        except Exception as err:  # noqa: BLE001
            print(f"  (Philips {path.name}: not readable yet: {type(err).__name__})")
            continue
        root = ElementTree.parse(path).getroot()
        glob = next((el for el in root.iter() if el.tag.split("}")[-1] == "globalmeasurements"), None)
        if glob is None:
            continue

        def value(tag: str, node=glob) -> float:
            el = next((e for e in node if e.tag.split("}")[-1] == tag), None)
            try:
                return float(el.text)
            except (TypeError, ValueError, AttributeError):
                return math.nan

        device = {"hr_bpm": value("meanventrate"), "pr_ms": value("meanprint"), "qrs_ms": value("meanqrsdur"),
                  "qt_ms": value("meanqtint"), "qtc_ms": value("meanqtc"), "axis_deg": value("qrsfrontaxis")}
        out.append((path.name, np.asarray(record.signal, dtype=np.float64), float(record.fs), device))
    return out


def bench_intervals(shared: Path, references: dict[int, dict[str, np.ndarray]]) -> None:
    print("\n== Intervals vs device measurements ==")
    keys = ("hr_bpm", "pr_ms", "qrs_ms", "qt_ms", "qtc_ms", "axis_deg")
    rows = []
    muse = _muse_device(shared)
    if muse is not None:
        rows.append(("GE MUSE muse-sinus", muse[0], 500.0, muse[1]))
    rows += _philips_devices(shared)
    diffs: dict[str, list[float]] = {k: [] for k in keys}
    print(f"{'file':<36}" + "".join(f"{k:>18}" for k in keys))
    for name, x, fs, device in rows:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ours = measure(x, fs)
        ours["qtc_ms"] = ours["qtc_bazett_ms"]
        cells = []
        for k in keys:
            d = ours[k] - device.get(k, math.nan)
            if k == "axis_deg":
                d = (d + 180) % 360 - 180
            if np.isfinite(d):
                diffs[k].append(abs(d))
            cells.append(f"{ours[k]:7.1f} / {device.get(k, math.nan):6.1f}")
        print(f"{name:<36}" + "".join(f"{c:>18}" for c in cells))
    print(f"{'mean |ours - device|':<36}" + "".join(
        f"{(np.mean(v) if v else math.nan):>18.1f}" for v in diffs.values()))
    print("  (cells: ours / device; QTc is Bazett; units bpm, ms, degrees)")

    # PTB-XL: HR vs the reference RR, and the distribution of measured intervals
    ptbxl = shared / "ptbxl"
    hr_diff, values = [], []
    analysable = 0
    for ecg_id, refs in references.items():
        x = _read_ptbxl(ptbxl, ecg_id, 500)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            m = measure(x, 500)
            analysable += assess(x, 500).analysable
        ref = refs.get("consensus", refs["xqrs"])
        if ref.size >= 2:
            hr_diff.append(abs(m["hr_bpm"] - 60 * 500 / np.diff(ref).mean()))
        values.append([m[k] for k in ("pr_ms", "qrs_ms", "qt_ms", "qtc_bazett_ms", "axis_deg")])
    v = np.array(values)
    print(f"\nPTB-XL ({len(values)} records): |HR - 60/mean RR(reference)| "
          f"mean {np.nanmean(hr_diff):.2f} bpm, "
          f"median {np.nanmedian(hr_diff):.2f} bpm; analysable {analysable}/{len(values)}")
    print(f"{'':<10}{'PR':>8}{'QRS':>8}{'QT':>8}{'QTcB':>8}{'axis':>8}")
    stats = {"p5": np.nanpercentile(v, 5, axis=0), "median": np.nanmedian(v, axis=0),
             "p95": np.nanpercentile(v, 95, axis=0), "NaN %": 100 * np.isnan(v).mean(axis=0)}
    for label, stat in stats.items():
        print(f"{label:<10}" + "".join(f"{s:>8.1f}" for s in stat))
    print("  (population norms for adults: PR 120-200, QRS 70-110, QT 350-450 ms, axis -30..+90 deg)")


def bench_runtime(ptbxl: Path, repeats: int = 50) -> None:
    print(f"\n== Runtime, one 10 s 12-lead 500 Hz ECG, single thread, median of {repeats} ==")
    x = _read_ptbxl(ptbxl, 1, 500)
    steps = {
        "filter preset (diagnostic)": lambda: apply_preset(x, 500, "diagnostic"),
        "model_input (250 Hz z-score)": lambda: model_input(x, 500),
        "detect_r_peaks": lambda: detect_r_peaks(x, 500),
        "median_beat": lambda: median_beat(x, peaks, 500),
        "measure (given R peaks)": lambda: measure(x, 500, peaks),
        "assess (quality)": lambda: assess(x, 500),
    }
    peaks = detect_r_peaks(x, 500)

    def pipeline(with_model_input: bool):
        apply_preset(x, 500, "diagnostic")
        if with_model_input:
            model_input(x, 500)
        r = detect_r_peaks(x, 500)
        median_beat(x, r, 500)
        measure(x, 500, r)
        assess(x, 500)

    steps["pipeline (filters..quality)"] = lambda: pipeline(False)
    steps["pipeline + model_input"] = lambda: pipeline(True)
    steps["measure (detects R peaks itself)"] = lambda: measure(x, 500)
    for name, fn in steps.items():
        fn()
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        print(f"{name:<36}{np.median(times) * 1000:8.2f} ms (min {np.min(times) * 1000:.2f})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default_data = Path(__file__).resolve().parents[1].parent / "shared" / "data"
    parser.add_argument("--data", type=Path, default=default_data)
    parser.add_argument("--quick", action="store_true", help="first 100 PTB-XL records only")
    args = parser.parse_args()
    ids = list(range(1, 101 if args.quick else 501))
    references = bench_rpeaks(args.data / "ptbxl", ids)
    bench_intervals(args.data, references)
    bench_runtime(args.data / "ptbxl")


if __name__ == "__main__":
    main()
