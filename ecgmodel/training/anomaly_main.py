"""``ecglens train-anomaly`` and ``ecglens evaluate-anomaly``: argument handling around the protocol."""

from __future__ import annotations

import argparse
import csv
import json
import time
from pathlib import Path

import numpy as np

from ..analysis import ANOMALY_MODEL_FILE, detector_from_bundle
from ..errors import EcgReadError
from ..models.anomaly import AnomalyConfig, count_parameters
from ..models.bundle import record_in_manifest, save_bundle
from ..resources import models_dir
from .anomaly_protocol import (
    detector_extras,
    evaluate_split,
    fit_detector,
    run_protocol,
    split_indices,
)
from .data import EcgArrays, _finish, fit_window, load_ptbxl_arrays

MODEL_NAME = "ecglens-anomaly"


def load_folder_arrays(folder: str | Path, labels_csv: str | Path) -> EcgArrays:
    """ECG files of any supported format listed in a CSV (``file,is_normal[,fold]``) as model arrays."""
    import warnings

    from .. import read
    from ..datasets import PtbxlRow
    from ..signal import model_input

    signals, ids, rows = [], [], []
    with open(labels_csv, newline="") as f:
        for i, entry in enumerate(csv.DictReader(f)):
            path = Path(folder) / entry["file"]
            record = read(path)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                z, _ = model_input(np.nan_to_num(record.signal), record.fs)
            normal = entry.get("is_normal", "").strip().lower() in ("1", "true", "yes")
            signals.append(fit_window(z))
            ids.append(i)
            rows.append(
                PtbxlRow(
                    ecg_id=i,
                    patient_id=None,
                    age=record.patient.age,
                    sex=record.patient.sex,
                    scp_codes={},
                    superclasses=frozenset({"NORM"} if normal else {"OTHER"}),
                    strat_fold=int(entry.get("fold") or 1),
                    filename_lr="",
                    filename_hr=str(path),
                )
            )
    if not rows:
        raise EcgReadError(labels_csv, "the label list names no ECG file.")
    return _finish(ids, ["folder"] * len(ids), signals, rows, progress=True)


def _arrays(args: argparse.Namespace) -> EcgArrays:
    if getattr(args, "folder", None):
        if not args.labels:
            raise EcgReadError(args.folder, "--folder needs --labels CSV with file,is_normal[,fold] columns.")
        return load_folder_arrays(args.folder, args.labels)
    cache = args.cache or str(Path(args.out) / "arrays_cache.npz")
    return load_ptbxl_arrays(args.data, args.extra, cache=cache)


def _config(args: argparse.Namespace) -> AnomalyConfig:
    config = AnomalyConfig(seed=getattr(args, "seed", 0))
    if getattr(args, "epochs", None):
        config.epochs = args.epochs
    if getattr(args, "batch_size", None):
        config.batch_size = args.batch_size
    return config


def train_anomaly_command(args: argparse.Namespace) -> int:
    """Train on the primary split's normals (folds 1-7 fit, fold 8 calibrates) and save the bundle."""
    arrays = _arrays(args)
    sources = tuple(sorted(set(arrays.source.tolist())))
    train, calib, test = split_indices(arrays, (9, 10), sources)
    if len(train) == 0 or len(calib) == 0:
        # a plain folder without folds: hold out every 8th normal for calibration
        normals = np.flatnonzero(arrays.is_normal)
        calib, train = normals[::8], np.setdiff1d(normals, normals[::8])
    config = _config(args)
    print(f"training on {len(train)} normal ECGs, calibrating on {len(calib)}; run directory {args.out}")
    started = time.monotonic()
    detector = fit_detector(arrays, train, calib, config, args.out, max_minutes=args.max_minutes)
    minutes = (time.monotonic() - started) / 60
    bundle = Path(args.out) / ANOMALY_MODEL_FILE
    info = {
        "n_train": int(len(train)),
        "n_calibration": int(len(calib)),
        "sources": list(sources),
        "train_minutes": round(minutes, 1),
        "parameters": count_parameters(detector.net),
    }
    sha = save_bundle(
        bundle,
        name=MODEL_NAME,
        version=args.version,
        kind="anomaly",
        config=config.to_dict(),
        state_dict=detector.net.state_dict(),
        extras=detector_extras(detector),
    )
    print(json.dumps({"bundle": str(bundle), "sha256": sha, **info}))
    if len(test):
        report = evaluate_split(detector, arrays, test)["report"]
        (Path(args.out) / "primary_split.json").write_text(json.dumps(report, indent=2, default=float))
        print(
            f"primary split (folds 9-10) AUROC {report['auroc']:.3f} "
            f"[{report['ci95'][0]:.3f}-{report['ci95'][1]:.3f}]"
        )
    if args.install:
        target = models_dir() / ANOMALY_MODEL_FILE
        target.write_bytes(bundle.read_bytes())
        record_in_manifest(target, sha, name=MODEL_NAME, version=args.version, **info)
        print(f"installed {target}")
    return 0


def evaluate_anomaly_command(args: argparse.Namespace) -> int:
    """Evaluate a bundle on the primary split; with ``--cv`` also run the 5-fold CV protocol."""
    arrays = _arrays(args)
    out: dict = {}
    bundle = Path(args.model) if args.model else models_dir() / ANOMALY_MODEL_FILE
    detector = detector_from_bundle(bundle)
    _, _, test = split_indices(arrays, (9, 10), tuple(sorted(set(arrays.source.tolist()))))
    evaluation = evaluate_split(detector, arrays, test)
    from .anomaly_protocol import detection_report

    raw = arrays.source[test] == "raw"
    out["primary_split"] = {
        "raw": detection_report(evaluation["labels"][raw], evaluation["scores"][raw], arrays, test[raw]),
        "all": evaluation["report"],
    }
    if args.cv:
        config = AnomalyConfig.from_dict(detector.config.to_dict())
        if args.epochs:
            config.epochs = args.epochs
        results = run_protocol(
            arrays,
            config,
            args.out,
            tuple(sorted(set(arrays.source.tolist()))),
            cv=True,
            trained={(9, 10): detector},
        )
        out["cv_pooled"] = results["cv_pooled"]
    Path(args.out).mkdir(parents=True, exist_ok=True)
    (Path(args.out) / "evaluation.json").write_text(json.dumps(out, indent=2, default=float))
    if args.json:
        print(json.dumps(out, indent=2, default=float))
    else:
        print(format_report(out))
    return 0


def format_report(out: dict) -> str:
    """Human-readable table of the evaluation."""
    lines = []
    for section, by_source in out.items():
        for source, r in by_source.items():
            lines.append(
                f"{section} [{source}]: AUROC {r['auroc']:.3f} (95% CI {r['ci95'][0]:.3f}-"
                f"{r['ci95'][1]:.3f}; {r['n_normal']} normal / {r['n_abnormal']} abnormal)"
            )
            lines.append(
                "  per class vs normals: "
                + ", ".join(f"{k} {v['auroc']:.3f} (n={v['n']})" for k, v in r["per_class"].items())
            )
            lines.append(
                "  per sex: "
                + ", ".join(f"{k or '?'} {v:.3f}" for k, v in r["per_sex"].items())
                + f"; gap {r['sex_gap']:.3f}"
            )
            lines.append(
                "  per age band: "
                + ", ".join(f"{k} {v:.3f}" for k, v in r["per_age_band"].items())
                + f"; gap {r['age_gap']:.3f}"
            )
    return "\n".join(lines)
