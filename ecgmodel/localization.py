"""Anomaly-localization benchmark with point-level ground truth (issue "Anomaly localization").

Real PTB-XL normals (NORM-only records of the test folds 9-10, 500 Hz raw) get one injected abnormality
each (:mod:`ecgmodel.abnormalities`) at known leads and samples; an anomaly map (12, n) is then scored
against that mask sample by sample.

Build it (written to a folder of your choice; nothing of it is committed)::

    python -m ecgmodel.localization build --ptbxl ../shared/data/ptbxl --out /tmp/locbench --seed 0
    python -m ecgmodel.localization build --ptbxl ../shared/data/ptbxl --out /tmp/locbench_tune --seed 1
    python -m ecgmodel.localization evaluate --bench /tmp/locbench --tune /tmp/locbench_tune

The threshold for Dice is chosen on the SEPARATE seed's benchmark (``--tune``), never on the one scored.
Each case is a WFDB record (fmt 16, 1 uV) + ``<case>.json`` (events, exact mask as per-lead sample runs,
source ecg_id, seeds) and ``index.csv`` lists all cases.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .abnormalities import ABNORMALITY_KINDS, ARTIFACT_KINDS, InjectedEvent, inject, median_beat_timing
from .types import STANDARD_LEADS, EcgRecord, Patient, Source

__all__ = [
    "BenchmarkCase", "boxes_to_mask", "build_benchmark", "choose_threshold", "dice", "evaluate",
    "events_to_mask", "load_benchmark", "make_case", "mask_from_runs", "mask_to_runs", "point_auroc",
    "rank_auroc",
]

#: Half-width (s) of the region a point mark (t_start == t_end) covers.
POINT_MARK_HALF_WIDTH_S = 0.040
INDEX_CSV = "index.csv"
BENCHMARK_VERSION = 1

Box = tuple[Sequence[str], float, float, str]


@dataclass
class BenchmarkCase:
    """One benchmark ECG: the record with its injected abnormality, the exact mask (12, n) and events."""

    case_id: str
    kind: str
    record: EcgRecord
    mask: np.ndarray
    events: list[InjectedEvent]
    source_ecg_id: int | None = None
    seed: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def is_artifact(self) -> bool:
        """True for the artefact class (noise bursts), which must not count as disease."""
        return self.kind in ARTIFACT_KINDS


# ------------------------------------------------------------------------------------------ metrics

def rank_auroc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Area under the ROC curve by the Mann-Whitney U statistic on average ranks (ties count 1/2).

    ``scores``: any real values (higher = more abnormal); ``labels``: bool. NaN when a class is empty.
    """
    s = np.asarray(scores, dtype=np.float64).ravel()
    y = np.asarray(labels, dtype=bool).ravel()
    n_pos = int(y.sum())
    n_neg = y.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(s, kind="mergesort")
    sorted_s = s[order]
    starts = np.flatnonzero(np.r_[True, sorted_s[1:] != sorted_s[:-1]])
    ends = np.r_[starts[1:], s.size]
    avg_rank = (starts + ends + 1) / 2.0  # 1-based average rank of each tie group
    ranks = np.empty(s.size)
    ranks[order] = np.repeat(avg_rank, ends - starts)
    u = ranks[y].sum() - n_pos * (n_pos + 1) / 2.0
    return float(u / (n_pos * n_neg))


def _valid(score_map: np.ndarray) -> np.ndarray:
    return np.isfinite(np.asarray(score_map, dtype=np.float64))


def point_auroc(score_map: np.ndarray, mask: np.ndarray) -> float:
    """Point-level AUROC of an anomaly map (leads x samples) against a ground-truth mask of the same shape.

    NaN scores (missing leads) are left out. 1 = every masked sample scores above every other sample.
    """
    score_map = np.asarray(score_map)
    mask = np.asarray(mask, dtype=bool)
    if score_map.shape != mask.shape:
        raise ValueError(f"map shape {score_map.shape} differs from mask shape {mask.shape}")
    ok = _valid(score_map)
    return rank_auroc(score_map[ok], mask[ok])


def dice(prediction: np.ndarray, mask: np.ndarray) -> float:
    """Dice overlap 2|P & G| / (|P| + |G|) of two bool arrays; 1.0 when both are empty."""
    p = np.asarray(prediction, dtype=bool)
    g = np.asarray(mask, dtype=bool)
    total = int(p.sum()) + int(g.sum())
    return 1.0 if total == 0 else 2.0 * int((p & g).sum()) / total


def choose_threshold(maps: Iterable[np.ndarray], masks: Iterable[np.ndarray]) -> float:
    """The threshold ``thr`` maximising pooled Dice of ``map > thr`` against the masks (exact search).

    Use maps of a benchmark built with a DIFFERENT seed from the one you report on. The returned value
    lies halfway between the lowest score kept and the highest score left out.
    """
    scores, labels = [], []
    for m, g in zip(maps, masks):
        m = np.asarray(m, dtype=np.float64)
        ok = np.isfinite(m)
        scores.append(m[ok])
        labels.append(np.asarray(g, dtype=bool)[ok])
    s = np.concatenate(scores)
    y = np.concatenate(labels)
    if s.size == 0 or not y.any():
        raise ValueError("threshold choice needs maps with at least one masked (positive) sample")
    order = np.argsort(-s, kind="mergesort")
    s_desc, y_desc = s[order], y[order]
    tp = np.cumsum(y_desc)
    n_pred = np.arange(1, s.size + 1)
    last_of_tie = np.r_[s_desc[1:] != s_desc[:-1], True]
    score = np.where(last_of_tie, 2.0 * tp / (n_pred + y.sum()), -1.0)
    best = int(np.argmax(score))
    if best + 1 < s.size:
        return float((s_desc[best] + s_desc[best + 1]) / 2.0)
    return float(np.nextafter(s_desc[best], -np.inf))


# ----------------------------------------------------------------------------------- ground-truth masks

def boxes_to_mask(boxes: Iterable[Box], leads: Sequence[str], fs: float, n_samples: int) -> np.ndarray:
    """Ground-truth mask (len(leads), n_samples) from annotator boxes ``(lead names, t_start_s, t_end_s,
    label)``. A box covers samples with t_start <= t < t_end; a point mark (t_start == t_end) covers
    +-40 ms around it. Lead names not in ``leads`` raise ValueError.
    """
    mask = np.zeros((len(leads), n_samples), dtype=bool)
    index = {name: i for i, name in enumerate(leads)}
    for box in boxes:
        names, t0, t1 = box[0], float(box[1]), float(box[2])
        t0, t1 = min(t0, t1), max(t0, t1)
        if t1 == t0:
            t0, t1 = t0 - POINT_MARK_HALF_WIDTH_S, t1 + POINT_MARK_HALF_WIDTH_S
        a = int(np.clip(np.ceil(t0 * fs - 1e-9), 0, n_samples))
        b = int(np.clip(np.ceil(t1 * fs - 1e-9), 0, n_samples))
        for name in names:
            if name not in index:
                raise ValueError(f"box names lead {name!r}, which is not one of {list(leads)}")
            mask[index[name], a:b] = True
    return mask


def events_to_mask(events: Iterable[InjectedEvent], fs: float, n_samples: int,
                   leads: Sequence[str] = STANDARD_LEADS) -> np.ndarray:
    """The box-level mask of injected events (coarser than the exact injection mask: whole time span)."""
    return boxes_to_mask(((e.leads, e.t_start_s, e.t_end_s, e.kind) for e in events), leads, fs, n_samples)


def mask_to_runs(mask: np.ndarray, leads: Sequence[str] = STANDARD_LEADS) -> dict[str, list[list[int]]]:
    """A bool mask (12, n) as ``{lead: [[start, stop), ...]}`` sample runs (compact, exact, JSON-able)."""
    runs: dict[str, list[list[int]]] = {}
    for name, row in zip(leads, np.asarray(mask, dtype=bool)):
        edges = np.flatnonzero(np.diff(np.r_[0, row.astype(np.int8), 0]))
        if edges.size:
            runs[name] = edges.reshape(-1, 2).tolist()
    return runs


def mask_from_runs(runs: dict[str, list[list[int]]], n_samples: int,
                   leads: Sequence[str] = STANDARD_LEADS) -> np.ndarray:
    """Inverse of :func:`mask_to_runs`."""
    mask = np.zeros((len(leads), n_samples), dtype=bool)
    for name, pairs in runs.items():
        for a, b in pairs:
            mask[list(leads).index(name), int(a):int(b)] = True
    return mask


# ---------------------------------------------------------------------------------------------- cases

def _detect_r_peaks(signal: np.ndarray, fs: float) -> np.ndarray:
    try:  # the project's one R-peak detector
        from .signal import detect_r_peaks
    except ImportError:  # the signal package before its __init__ re-exports it
        from .signal.rpeaks import detect_r_peaks
    return detect_r_peaks(signal, fs)


def case_seed(seed: int, ecg_id: int, kind: str) -> int:
    """Per-case seed from the benchmark seed, the source record and the abnormality type."""
    kind_index = ABNORMALITY_KINDS.index(kind) if kind in ABNORMALITY_KINDS else len(ABNORMALITY_KINDS)
    return int(np.random.SeedSequence([int(seed), int(ecg_id), kind_index]).generate_state(1)[0])


def make_case(record: EcgRecord, kind: str, seed: int, *, case_id: str = "case",
              r_peaks: np.ndarray | None = None, source_ecg_id: int | None = None) -> BenchmarkCase:
    """Inject ``kind`` into a (normal) record; R peaks from the project's detector unless given."""
    x = record.signal.astype(np.float64)
    r = _detect_r_peaks(x, record.fs) if r_peaks is None else np.asarray(r_peaks)
    timing = median_beat_timing(x, record.fs, r)
    new, mask, events = inject(kind, x, record.fs, r, seed, timing=timing)
    out = EcgRecord(signal=new.astype(np.float32), fs=record.fs, leads=STANDARD_LEADS,
                    patient=Patient(age=record.patient.age, sex=record.patient.sex),
                    source=Source(path=None, format="benchmark"),
                    metadata={"benchmark_kind": kind, "source_ecg_id": source_ecg_id, "case_seed": seed})
    return BenchmarkCase(case_id, kind, out, mask, events, source_ecg_id, seed)


def _norm_only_rows(ptbxl_root: str | os.PathLike[str], folds: Sequence[int]) -> list[Any]:
    from .datasets import is_normal, load_ptbxl_table

    return [row for row in load_ptbxl_table(ptbxl_root) if is_normal(row) and row.strat_fold in set(folds)]


def build_benchmark(ptbxl_root: str | os.PathLike[str], out_dir: str | os.PathLike[str], seed: int = 0,
                    n_per_type: int = 70, folds: Sequence[int] = (9, 10),
                    kinds: Sequence[str] = ABNORMALITY_KINDS,
                    log: Callable[[str], None] | None = print) -> Path:
    """Write the benchmark to ``out_dir``: for each abnormality type, ``n_per_type`` NORM-only records of
    ``folds`` (all of them when fewer; 70 in folds 9-10 of the shared subset) with that abnormality.

    Returns the path of ``index.csv``. Same inputs and seed -> identical files.
    """
    from .datasets import read_ptbxl_record

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rows = sorted(_norm_only_rows(ptbxl_root, folds), key=lambda row: row.ecg_id)
    if not rows:
        raise ValueError(f"no NORM-only record of folds {tuple(folds)} under {ptbxl_root}")
    picker = np.random.default_rng(seed)
    chosen = {kind: sorted(picker.choice(len(rows), size=min(n_per_type, len(rows)), replace=False).tolist())
              for kind in kinds}
    needed = sorted({i for picks in chosen.values() for i in picks})
    index_rows = []
    for done, i in enumerate(needed):
        row = rows[i]
        record = read_ptbxl_record(ptbxl_root, row)
        r_peaks = _detect_r_peaks(record.signal.astype(np.float64), record.fs)
        for kind in kinds:
            if i not in chosen[kind]:
                continue
            case_id = f"{kind}_{row.ecg_id:05d}"
            case = None
            for attempt in range(3):
                cseed = case_seed(seed + 7919 * attempt, row.ecg_id, kind)
                try:
                    case = make_case(record, kind, cseed, case_id=case_id, r_peaks=r_peaks,
                                     source_ecg_id=row.ecg_id)
                    break
                except ValueError as err:
                    if log:
                        log(f"ecg_id {row.ecg_id} {kind}: {err} (attempt {attempt + 1})")
            if case is None:
                continue
            _write_case(out, case, benchmark_seed=seed)
            index_rows.append({
                "case_id": case_id, "kind": kind, "is_artifact": int(case.is_artifact),
                "source_ecg_id": row.ecg_id, "strat_fold": row.strat_fold, "case_seed": case.seed,
                "event_kinds": ";".join(e.kind for e in case.events), "record": case_id,
            })
        if log and (done + 1) % 10 == 0:
            log(f"{done + 1}/{len(needed)} source records done")
    index = out / INDEX_CSV
    with open(index, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(index_rows[0]))
        writer.writeheader()
        writer.writerows(index_rows)
    return index


def _write_case(out: Path, case: BenchmarkCase, benchmark_seed: int) -> None:
    from .synthetic import write_wfdb_record

    rec = case.record
    write_wfdb_record(out / case.case_id, rec.signal, rec.fs, rec.patient,
                      comments=[f"ECG Lens localization benchmark case {case.case_id}: {case.kind} injected "
                                f"into PTB-XL ecg_id {case.source_ecg_id} (CC BY 4.0)"])
    sidecar = {
        "version": BENCHMARK_VERSION, "case_id": case.case_id, "kind": case.kind,
        "is_artifact": case.is_artifact, "source": "PTB-XL 500 Hz", "source_ecg_id": case.source_ecg_id,
        "benchmark_seed": benchmark_seed, "case_seed": case.seed, "fs": rec.fs, "n_samples": rec.n_samples,
        "leads": list(STANDARD_LEADS), "events": [e.to_dict() for e in case.events],
        "mask_runs": mask_to_runs(case.mask),
    }
    (out / f"{case.case_id}.json").write_text(json.dumps(sidecar, indent=1))


def load_benchmark(out_dir: str | os.PathLike[str]) -> list[BenchmarkCase]:
    """All cases of a benchmark folder written by :func:`build_benchmark` (records read with
    :func:`ecgmodel.read`)."""
    from . import read

    root = Path(out_dir)
    cases = []
    with open(root / INDEX_CSV, newline="") as handle:
        for row in csv.DictReader(handle):
            meta = json.loads((root / f"{row['case_id']}.json").read_text())
            record = read(root / f"{row['record']}.hea")
            mask = mask_from_runs(meta["mask_runs"], record.n_samples)
            events = [InjectedEvent.from_dict(e) for e in meta["events"]]
            cases.append(BenchmarkCase(meta["case_id"], meta["kind"], record, mask, events,
                                       meta.get("source_ecg_id"), meta.get("case_seed")))
    return cases


# ------------------------------------------------------------------------------------------ evaluation

def _map_of(result: Any) -> np.ndarray:
    return np.asarray(getattr(result, "anomaly_map", result), dtype=np.float32)


def _nanmean(values: list[float]) -> float:
    finite = [v for v in values if np.isfinite(v)]
    return float(np.mean(finite)) if finite else float("nan")


def evaluate(cases: Iterable[BenchmarkCase], analyze_fn: Callable[[EcgRecord], Any],
             threshold: float | None = None) -> dict[str, Any]:
    """Score anomaly maps against the injected ground truth.

    ``analyze_fn(record)`` returns the anomaly map (12, n) on the record's own samples (or an object with
    an ``anomaly_map``). Returns a dict with, for the disease types pooled and per type: point-level
    AUROC (all samples of all cases of the type pooled), mean per-case AUROC, Dice of ``map > threshold``;
    for the artefact class: the fraction of artefact samples above the threshold and the mean map inside
    artefacts vs inside disease regions vs in normal samples (an artefact should look like normal).
    ``threshold`` should come from :func:`choose_threshold` on a benchmark of another seed; when None it
    is chosen here, in-sample, and ``threshold_source`` says so (optimistic).
    """
    scored = []
    for case in cases:
        amap = _map_of(analyze_fn(case.record))
        if amap.shape != case.mask.shape:
            raise ValueError(f"{case.case_id}: map shape {amap.shape} differs from record {case.mask.shape}")
        scored.append((case, amap))
    disease = [(c, m) for c, m in scored if not c.is_artifact]
    artefact = [(c, m) for c, m in scored if c.is_artifact]
    source = "given"
    if threshold is None:
        threshold = choose_threshold([m for _, m in disease], [c.mask for c, _ in disease])
        source = "in-sample (optimistic: choose it on another seed's benchmark)"

    def summary(group: list[tuple[BenchmarkCase, np.ndarray]]) -> dict[str, Any]:
        maps = np.concatenate([m.ravel() for _, m in group])
        masks = np.concatenate([c.mask.ravel() for c, _ in group])
        ok = np.isfinite(maps)
        return {
            "n_cases": len(group),
            "point_auroc": rank_auroc(maps[ok], masks[ok]),
            "mean_case_auroc": _nanmean([point_auroc(m, c.mask) for c, m in group]),
            "dice": dice(maps[ok] > threshold, masks[ok]),
            "dice_if_all_flagged": dice(np.ones(int(ok.sum()), bool), masks[ok]),  # trivial reference
            "mean_case_dice": _nanmean([dice(np.nan_to_num(m, nan=-np.inf) > threshold, c.mask)
                                        for c, m in group]),
            "mean_map_inside": float(np.mean(maps[ok & masks])) if (ok & masks).any() else float("nan"),
            "mean_map_outside": float(np.mean(maps[ok & ~masks])) if (ok & ~masks).any() else float("nan"),
        }

    result: dict[str, Any] = {"threshold": float(threshold), "threshold_source": source,
                              "n_cases": len(scored)}
    if disease:
        result["disease"] = summary(disease)
        result["per_type"] = {kind: summary([(c, m) for c, m in disease if c.kind == kind])
                              for kind in sorted({c.kind for c, _ in disease})}
    if artefact:
        art = summary(artefact)
        maps = np.concatenate([m.ravel() for _, m in artefact])
        masks = np.concatenate([c.mask.ravel() for c, _ in artefact])
        ok = np.isfinite(maps) & masks
        result["artifact"] = {
            "n_cases": len(artefact),
            "fraction_above_threshold": float(np.mean(maps[ok] > threshold)) if ok.any() else float("nan"),
            "mean_map_in_artifact": art["mean_map_inside"],
            "mean_map_outside_artifact": art["mean_map_outside"],
            "mean_map_in_disease": result.get("disease", {}).get("mean_map_inside", float("nan")),
            "point_auroc_artifact_vs_rest": art["point_auroc"],
        }
    return result


# ------------------------------------------------------------------------------------------------ CLI

def _model_map(record: EcgRecord) -> np.ndarray:
    from . import analyze

    return analyze(record).anomaly_map


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ecgmodel.localization",
                                     description="Anomaly-localization benchmark: build it, or score maps.")
    sub = parser.add_subparsers(dest="command", required=True)
    build = sub.add_parser("build", help="write the benchmark (WFDB + JSON sidecars + index.csv)")
    build.add_argument("--ptbxl", required=True, help="PTB-XL root (e.g. ../shared/data/ptbxl)")
    build.add_argument("--out", required=True, help="output folder (not inside the repository)")
    build.add_argument("--seed", type=int, default=0)
    build.add_argument("--n-per-type", type=int, default=70)
    build.add_argument("--folds", type=int, nargs="+", default=[9, 10])
    ev = sub.add_parser("evaluate", help="score ecgmodel.analyze's anomaly maps on a built benchmark")
    ev.add_argument("--bench", required=True, help="benchmark folder to report on")
    ev.add_argument("--tune", help="benchmark of ANOTHER seed to choose the Dice threshold on")
    ev.add_argument("--json", help="write the result here as JSON")
    args = parser.parse_args(argv)
    if args.command == "build":
        index = build_benchmark(args.ptbxl, args.out, seed=args.seed, n_per_type=args.n_per_type,
                                folds=tuple(args.folds))
        print(f"wrote {index}")
        return 0
    threshold = None
    if args.tune:
        tune = [c for c in load_benchmark(args.tune) if not c.is_artifact]
        threshold = choose_threshold([_model_map(c.record) for c in tune], [c.mask for c in tune])
    result = evaluate(load_benchmark(args.bench), _model_map, threshold=threshold)
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        Path(args.json).write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
