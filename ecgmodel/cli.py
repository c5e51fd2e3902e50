"""Headless command line of ECG Lens (``ecglens``); the viewer adds ``ecglens view`` in ``app.cli``.

Every command prints a clear one-line error naming the file and the problem (exit code 2) instead of a
traceback when the input is bad.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np

from .errors import EcgLensError

DISCLAIMER = "Decision support only: ECG Lens does not make a diagnosis; a clinician must review every ECG."


def _info(args: argparse.Namespace) -> int:
    from .io import describe, read

    print(describe(read(args.file)))
    return 0


def analysis_to_dict(record, analysis) -> dict:
    """JSON-ready summary of an Analysis (the map is summarised per lead, not dumped)."""
    return {
        "file": record.source.path,
        "format": record.source.format,
        "disclaimer": DISCLAIMER,
        "anomaly_score": analysis.anomaly_score,
        "anomaly_score_meaning": (
            "sum of two parts, each in SD of normal reference ECGs (0 = a typical normal ECG): the mean "
            "calibrated restoration error and the latent distance to normal ECGs"
        ),
        "anomaly_percentile_among_normals": analysis.anomaly_percentile,
        "lead_scores": analysis.lead_scores,
        "lead_quality": analysis.lead_quality,
        "stated": {"age": record.patient.age, "sex": record.patient.sex},
        "predicted": analysis.predicted,
        "measured": analysis.measured,
        "device_measurements": record.metadata.get("device_measurements", {}),
        "diagnoses": [
            {"code": d.code, "name": d.name, "probability": d.probability, "likely": d.likely}
            for d in analysis.diagnoses
        ],
        "models": [m.__dict__ for m in analysis.models],
        "warnings": analysis.warnings,
        "timings_ms": analysis.timings_ms,
    }


def _analyze(args: argparse.Namespace) -> int:
    from . import analyze, read

    record = read(args.file)
    analysis = analyze(record, threads=args.threads)
    summary = analysis_to_dict(record, analysis)
    if args.json:
        print(json.dumps(summary, indent=2, default=float))
        return 0
    print(f"{record.source.path}  ({record.source.format}, {record.fs:g} Hz, {record.duration_s:.1f} s)")
    print(
        f"Anomaly score: {analysis.anomaly_score:.2f} (0 = typical normal ECG; restoration error + latent "
        f"distance, in SD of normal ECGs); higher than "
        f"{analysis.anomaly_percentile:.0f}% of normal reference ECGs"
    )
    top = sorted(analysis.lead_scores.items(), key=lambda kv: -kv[1])[:3]
    print("Most unusual leads: " + ", ".join(f"{lead} ({v:.2f} SD)" for lead, v in top))
    p = analysis.predicted
    stated_age = "unknown" if record.patient.age is None else f"{record.patient.age:g}"
    print(
        f"Age: stated {stated_age}, predicted from the ECG {p.get('age', float('nan')):.0f} years; "
        f"sex: stated {record.patient.sex or 'unknown'}, predicted female probability "
        f"{p.get('sex_female_probability', float('nan')):.2f}"
    )
    m = analysis.measured
    print("Measured: " + ", ".join(f"{k} {v:.0f}" for k, v in m.items() if np.isfinite(v)))
    if analysis.diagnoses:
        print("Ranked diagnoses (calibrated probability):")
        for d in analysis.diagnoses[:8]:
            print(f"  {d.probability:6.1%}  {'likely  ' if d.likely else 'possible'}  {d.name} ({d.code})")
    for w in analysis.warnings:
        print(f"Warning: {w}")
    for model in analysis.models:
        print(f"Model: {model.name} {model.version} (sha256 {model.weights_sha256[:12]})")
    print(DISCLAIMER)
    return 0


def _train_anomaly(args: argparse.Namespace) -> int:
    from .training.anomaly_main import train_anomaly_command

    return train_anomaly_command(args)


def _evaluate_anomaly(args: argparse.Namespace) -> int:
    from .training.anomaly_main import evaluate_anomaly_command

    return evaluate_anomaly_command(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ecglens", description="ECG Lens: 12-lead ECG anomaly analysis. " + DISCLAIMER
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("info", help="print what a file holds: format, rate, leads, patient, signal sanity")
    p.add_argument("file")
    p.set_defaults(func=_info)

    p = sub.add_parser("analyze", help="run the bundled models on one ECG file")
    p.add_argument("file")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.add_argument("--threads", type=int, default=None, help="CPU threads for the model (default: torch's)")
    p.set_defaults(func=_analyze)

    p = sub.add_parser("train-anomaly", help="train the self-supervised anomaly model on normal ECGs")
    p.add_argument("--data", required=True, help="PTB-XL root (official layout; the full release works too)")
    p.add_argument(
        "--extra", default=None, help="optional ptbxl_extra folder (band-passed, z-scored records)"
    )
    p.add_argument("--folder", default=None, help="a folder of ECG files of any supported format ...")
    p.add_argument("--labels", default=None, help="... with a CSV of file,is_normal[,fold] rows")
    p.add_argument("--out", default="runs/anomaly", help="run directory (config, metrics, checkpoints)")
    p.add_argument("--cache", default=None, help="cache of preprocessed arrays (.npz; default in --out)")
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-minutes", type=float, default=None, help="stop after this long (resume later)")
    p.add_argument(
        "--install",
        action="store_true",
        help="write the trained bundle to resources/models and record its sha256 in the manifest",
    )
    p.add_argument("--version", default="dev", help="version string stored in the bundle")
    p.set_defaults(func=_train_anomaly)

    p = sub.add_parser("evaluate-anomaly", help="detection AUROC on the protocol split (+ 5-fold CV)")
    p.add_argument("--data", required=True)
    p.add_argument("--extra", default=None)
    p.add_argument("--model", default=None, help="bundle to evaluate (default: the bundled model)")
    p.add_argument("--cache", default=None)
    p.add_argument("--cv", action="store_true", help="also run 5-fold CV (trains 4 more models: slow)")
    p.add_argument("--epochs", type=int, default=None, help="epochs of the CV models")
    p.add_argument("--out", default="runs/evaluate-anomaly")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_evaluate_anomaly)
    from .training.diagnosis_main import (
        add_evaluate_arguments,
        add_train_arguments,
        evaluate_diagnosis_command,
        train_diagnosis_command,
    )

    p = sub.add_parser("train-diagnosis", help="fine-tune the anomaly encoders for multi-label diagnosis")
    add_train_arguments(p)
    p.set_defaults(func=train_diagnosis_command)
    p = sub.add_parser("evaluate-diagnosis", help="macro AUROC by frequency bucket, fairness, three inits")
    add_evaluate_arguments(p)
    p.set_defaults(func=evaluate_diagnosis_command)
    return parser


def register(sub_name: str, parser: argparse.ArgumentParser) -> None:  # pragma: no cover - hook for app.cli
    del sub_name, parser


def main(argv: list[str] | None = None, parser: argparse.ArgumentParser | None = None) -> int:
    parser = parser or build_parser()
    args = parser.parse_args(argv)
    started = time.perf_counter()
    try:
        return int(args.func(args) or 0)
    except EcgLensError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except FileNotFoundError as err:
        print(f"error: {err.filename}: no such file.", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"interrupted after {time.perf_counter() - started:.0f} s", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
