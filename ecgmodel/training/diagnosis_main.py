"""``ecglens train-diagnosis`` and ``ecglens evaluate-diagnosis``: argument handling around the protocol.

Split (PTB-XL benchmark): folds 1-8 train, fold 9 validation (epoch selection, temperature, thresholds),
fold 10 test (reported, never tuned on). Data: raw PTB-XL records + ``ptbxl_extra``, labels from their
tables; frequency buckets from the full release's labels (``--meta``).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from ..datasets import SUPERCLASSES, ScpStatement, load_ptbxl_table, load_scp_statements
from ..diagnosis import KIND, MODEL_NAME, DiagnosisConfig, label_names, load_diagnosis_model, window_logits
from ..models.anomaly import AnomalyConfig, count_parameters
from ..models.bundle import record_in_manifest, save_bundle, sha256_file
from ..resources import models_dir, resources_dir
from .data import EcgArrays, load_ptbxl_arrays
from .evaluate_diagnosis import (
    BUCKET_CUTOFFS,
    evaluate_predictions,
    format_report,
    frequency_bucket,
    full_release_counts,
    paired_difference,
)
from .train_diagnosis import (
    fit_calibration,
    fit_thresholds,
    macro_auroc,
    read_anomaly_weights,
    scp_codes_by_id,
    select_labels,
    split_by_fold,
    target_matrix,
    train_diagnosis,
)

DIAGNOSIS_FILE = f"{MODEL_NAME}.pt"
TAXONOMY_FILE = "scp_statements.json"


def _arrays(args: argparse.Namespace) -> EcgArrays:
    cache = args.cache or str(Path(args.out) / "arrays_cache.npz")
    return load_ptbxl_arrays(args.data, args.extra, cache=cache)


def _full_counts(args: argparse.Namespace, statements: dict[str, ScpStatement]):
    meta = Path(args.meta) if args.meta else Path(args.data).parent / "ptbxl_meta"
    rows = load_ptbxl_table(meta, database_csv="ptbxl_database_full.csv", statements=statements)
    return full_release_counts(rows)


def write_taxonomy(
    path: str | Path,
    statements: dict[str, ScpStatement],
    labels: list[str],
    train_counts: dict[str, int],
    full_counts,
    min_positives: int,
) -> Path:
    """The label taxonomy of the shipped model: every SCP statement (code, English description, kind,
    superclass) with ``trained`` = whether the model outputs it, plus the 5 superclasses."""
    from .train_diagnosis import statement_kind

    trained = set(labels)
    entries = [
        {
            "code": code,
            "description": s.description,
            "kind": statement_kind(s),
            "superclass": s.diagnostic_class,
            "subclass": s.diagnostic_subclass,
            "trained": code in trained,
            "train_positives": int(train_counts.get(code, 0)),
            "full_release_train_positives": int(full_counts.get(code, 0)),
            "bucket": frequency_bucket(int(full_counts.get(code, 0))),
        }
        for code, s in statements.items()
    ]
    from ..diagnosis import SUPERCLASS_NAMES

    doc = {
        "format": "ecglens-scp-statements",
        "version": 1,
        "source": "PTB-XL v1.0.3 scp_statements.csv (Wagner et al. 2020, CC BY 4.0)",
        "trained_on": "ECG Lens diagnosis model: PTB-XL raw ecg_id 1-500 + ptbxl_extra, folds 1-8",
        "min_positives": min_positives,
        "bucket_cutoffs_full_release_folds_1_8": {k: list(v) for k, v in BUCKET_CUTOFFS.items()},
        "superclasses": [
            {"code": c, "description": SUPERCLASS_NAMES[c], "kind": "superclass", "trained": c in trained}
            for c in SUPERCLASSES
        ],
        "statements": entries,
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=1) + "\n")
    return path


def _config(args: argparse.Namespace, anomaly: AnomalyConfig, labels, kinds) -> DiagnosisConfig:
    return DiagnosisConfig.from_anomaly(
        anomaly,
        labels=labels,
        kinds=kinds,
        init=str(args.init),
        freeze_encoder=bool(args.freeze_encoder),
        use_beats=bool(args.use_beats),
        min_positives=args.min_positives,
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        gamma_pos=args.gamma_pos,
        seed=args.seed,
    )


def train_diagnosis_command(args: argparse.Namespace) -> int:
    """Train, select the epoch and calibrate on fold 9, save the bundle, report fold 10; ``--install``
    copies the bundle into resources/models (manifest entry) and writes the taxonomy."""
    if args.threads:
        torch.set_num_threads(args.threads)
    statements = load_scp_statements(args.data)
    arrays = _arrays(args)
    codes = scp_codes_by_id(args.data, args.extra, statements)
    train, val, test = split_by_fold(arrays)
    labels, kinds, train_counts = select_labels([codes.get(int(arrays.ecg_id[i]), {}) for i in train],
                                                statements, args.min_positives)
    targets = target_matrix(arrays, codes, labels, kinds)
    init_arg = args.init or str(models_dir() / "ecglens-anomaly.pt")
    init = None if init_arg.lower() == "none" else Path(init_arg)
    args.init = str(init) if init is not None else "none"
    anomaly = read_anomaly_weights(init)[0] if init is not None else AnomalyConfig()
    config = _config(args, anomaly, labels, kinds)
    print(f"{len(labels)} labels; train {len(train)}, validation {len(val)}, test {len(test)}; "
          f"init {args.init}"
          f"{' (frozen encoder)' if config.freeze_encoder else ''}; run directory {args.out}")
    started = time.monotonic()
    net = train_diagnosis(arrays, targets, train, val, config, args.out, init=init,
                          max_minutes=args.max_minutes, max_steps=args.max_steps)
    if torch.distributed.is_initialized() and torch.distributed.get_rank() != 0:
        return 0  # under torchrun only rank 0 calibrates, saves and reports
    minutes = (time.monotonic() - started) / 60
    metrics = Path(args.out) / "metrics.jsonl"
    if metrics.is_file():  # whole training time, also when this call only resumed a finished run
        minutes = sum(json.loads(line)["seconds"] for line in metrics.read_text().splitlines()) / 60

    val_logits = window_logits(net, arrays.signal[val], [arrays.r_peaks[i] for i in val])
    temperature, bias = fit_calibration(val_logits, targets[val])
    val_probs = 1.0 / (1.0 + np.exp(-(val_logits / temperature + bias)))
    thresholds = fit_thresholds(val_probs, targets[val])
    names = label_names(labels, kinds, {c: s.description for c, s in statements.items()})
    info = {
        "n_train": int(len(train)),
        "n_validation": int(len(val)),
        "n_labels": len(labels),
        "init": args.init,
        "init_sha256": sha256_file(init) if init is not None else None,
        "freeze_encoder": config.freeze_encoder,
        "train_minutes": round(minutes, 1),
        "parameters": count_parameters(net),
        "val_macro_auroc": round(macro_auroc(targets[val], val_logits), 4),
        "temperature": round(temperature, 4),
        "bias": round(bias, 4),
    }
    bundle = Path(args.out) / DIAGNOSIS_FILE
    sha = save_bundle(
        bundle,
        name=MODEL_NAME,
        version=args.version,
        kind=KIND,
        config=config.to_dict(),
        state_dict=net.state_dict(),
        extras={
            "temperature": torch.full((len(labels),), temperature, dtype=torch.float64),
            "bias": torch.full((len(labels),), bias, dtype=torch.float64),
            "thresholds": torch.tensor(thresholds, dtype=torch.float64),
            "names": names,
            "train_positives": [int(train_counts.get(c, 0)) for c in labels],
        },
    )
    print(json.dumps({"bundle": str(bundle), "sha256": sha, **info}))
    if len(test) and not args.no_test:
        model = load_diagnosis_model(bundle)
        probs = model.probabilities(arrays.signal[test], [arrays.r_peaks[i] for i in test])
        report = evaluate_predictions(targets[test], probs, labels, kinds, model.thresholds,
                                      _full_counts(args, statements), arrays.age[test], arrays.sex[test])
        (Path(args.out) / "test_report.json").write_text(json.dumps(report, indent=2, default=float))
        print(format_report("fold 10", report))
    if args.install:
        target = models_dir() / DIAGNOSIS_FILE
        target.write_bytes(bundle.read_bytes())
        record_in_manifest(target, sha, name=MODEL_NAME, version=args.version, **info)
        taxonomy = write_taxonomy(resources_dir() / "taxonomy" / TAXONOMY_FILE, statements, labels,
                                  train_counts, _full_counts(args, statements), args.min_positives)
        print(f"installed {target} and {taxonomy}")
    return 0


def untrained_positives(arrays: EcgArrays, codes: dict[int, dict[str, float]], index: np.ndarray,
                        labels: list[str]) -> dict[str, int]:
    """Statements with positives among ``index`` that the model does not output (it cannot score them)."""
    counts: dict[str, int] = {}
    for i in index:
        for code in codes.get(int(arrays.ecg_id[i]), {}):
            if code not in labels:
                counts[code] = counts.get(code, 0) + 1
    return dict(sorted(counts.items(), key=lambda kv: -kv[1]))


def evaluate_diagnosis_command(args: argparse.Namespace) -> int:
    """Evaluate one or more bundles on fold 10 (all records and raw-only), side by side."""
    if args.threads:
        torch.set_num_threads(args.threads)
    statements = load_scp_statements(args.data)
    arrays = _arrays(args)
    codes = scp_codes_by_id(args.data, args.extra, statements)
    full_counts = _full_counts(args, statements)
    _, _, test = split_by_fold(arrays)
    models = args.model or [str(models_dir() / DIAGNOSIS_FILE)]
    out: dict = {}
    first: tuple | None = None
    for path in models:
        model = load_diagnosis_model(path)
        c = model.config
        targets = target_matrix(arrays, codes, c.labels, c.kinds)
        probs = model.probabilities(arrays.signal[test], [arrays.r_peaks[i] for i in test])
        name = args.names[models.index(path)] if args.names else Path(path).parent.name or Path(path).stem
        out[name] = {"bundle": str(path), "sha256": model.info.weights_sha256, "init": c.init,
                     "freeze_encoder": c.freeze_encoder,
                     "untrained_with_test_positives": untrained_positives(arrays, codes, test, c.labels)}
        for subset, sel in (("all", np.ones(len(test), bool)), ("raw", arrays.source[test] == "raw")):
            idx = test[sel]
            out[name][subset] = evaluate_predictions(
                targets[idx], probs[sel], c.labels, c.kinds, model.thresholds, full_counts,
                arrays.age[idx], arrays.sex[idx], n_boot=args.n_boot,
            )
            print(format_report(f"{name} [{subset}]", out[name][subset]))
        if first is None:
            first = (name, c.labels, probs)
        elif first[1] == c.labels:
            diff = paired_difference(targets[test], first[2], probs, c.labels, c.kinds, full_counts,
                                     n_boot=args.n_boot)
            out[name][f"{first[0]}_minus_this"] = diff
            print(f"  {first[0]} - {name} (paired bootstrap, all records): " + "; ".join(
                f"{k} {v['difference']:+.3f} [{v['ci95'][0]:+.3f}, {v['ci95'][1]:+.3f}]"
                for k, v in diff.items()))
    Path(args.out).mkdir(parents=True, exist_ok=True)
    (Path(args.out) / "evaluation.json").write_text(json.dumps(out, indent=2, default=float))
    if args.json:
        print(json.dumps(out, indent=2, default=float))
    return 0


def add_train_arguments(p: argparse.ArgumentParser) -> None:
    """Arguments of ``ecglens train-diagnosis``."""
    p.add_argument("--data", required=True, help="PTB-XL root (raw records + tables + scp_statements.csv)")
    p.add_argument("--extra", default=None, help="ptbxl_extra folder (preprocessed records, more data)")
    p.add_argument("--meta", default=None, help="ptbxl_meta folder (full-release labels, for buckets)")
    p.add_argument("--out", default="runs/diagnosis", help="run directory (config, metrics, checkpoints)")
    p.add_argument("--cache", default=None, help="cache of preprocessed arrays (.npz; default in --out)")
    p.add_argument("--init", default=None,
                   help="anomaly bundle or checkpoint to initialise the encoders from, or 'none' "
                        "(default: the bundled resources/models/ecglens-anomaly.pt)")
    p.add_argument("--freeze-encoder", action="store_true", help="train the linear head only")
    p.add_argument("--use-beats", action="store_true", help="also encode heartbeat windows (slower)")
    p.add_argument("--epochs", type=int, default=12)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--gamma-pos", type=float, default=0.0, help="ASL focusing of positives (0 or 1)")
    p.add_argument("--min-positives", type=int, default=10,
                   help="training positives needed to train a statement")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--max-minutes", type=float, default=None, help="stop after this long (resume later)")
    p.add_argument("--max-steps", type=int, default=None, help="cap steps per epoch (smoke runs)")
    p.add_argument("--no-test", action="store_true", help="skip the fold-10 report")
    p.add_argument("--install", action="store_true",
                   help="copy the bundle into resources/models, record it in the manifest, "
                        "write the taxonomy")
    p.add_argument("--version", default="dev", help="version string stored in the bundle")


def add_evaluate_arguments(p: argparse.ArgumentParser) -> None:
    """Arguments of ``ecglens evaluate-diagnosis``."""
    p.add_argument("--data", required=True)
    p.add_argument("--extra", default=None)
    p.add_argument("--meta", default=None)
    p.add_argument("--cache", default=None)
    p.add_argument("--model", action="append", default=None,
                   help="bundle to evaluate (repeat to compare; default: the bundled model)")
    p.add_argument("--names", nargs="*", default=None, help="a display name per --model")
    p.add_argument("--n-boot", type=int, default=1000)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--out", default="runs/evaluate-diagnosis")
    p.add_argument("--json", action="store_true")


def main(argv: list[str] | None = None) -> int:
    """``python -m ecgmodel.training.diagnosis_main train|evaluate ...`` (before ``ecglens`` wires it)."""
    parser = argparse.ArgumentParser(prog="python -m ecgmodel.training.diagnosis_main")
    sub = parser.add_subparsers(dest="command", required=True)
    add_train_arguments(sub.add_parser("train", help="train the diagnosis model"))
    add_evaluate_arguments(sub.add_parser("evaluate", help="evaluate diagnosis bundles on fold 10"))
    args = parser.parse_args(argv)
    return train_diagnosis_command(args) if args.command == "train" else evaluate_diagnosis_command(args)


if __name__ == "__main__":
    raise SystemExit(main())
