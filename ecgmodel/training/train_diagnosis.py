"""Training of the diagnosis model: labels, the loop (ASL, AdamW, cosine), calibration, bundle.

Run directory layout: ``config.json``, ``metrics.jsonl`` (one line per epoch: loss, validation macro
AUROC), ``checkpoint.pt`` (model + optimiser + scheduler + epoch + best weights; training resumes from
it), ``best.pt`` (weights of the epoch with the best validation macro AUROC). Under ``torchrun``
(``WORLD_SIZE`` > 1) each process trains on its shard with PyTorch DDP (same helper as the anomaly loop).
Model selection and calibration use the validation fold only (fold 9); fold 10 is never seen here.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections import Counter
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from ..anomaly_scoring import select_beats
from ..datasets import SUPERCLASSES, PtbxlRow, ScpStatement, load_ptbxl_table
from ..diagnosis import (
    DiagnosisConfig,
    DiagnosisNet,
    asymmetric_loss,
    beat_batch,
    load_encoder_weights,
    read_anomaly_weights,
    window_logits,
)
from ..metrics import auroc
from .data import EcgArrays
from .train_anomaly import _distributed

TRAIN_FOLDS = (1, 2, 3, 4, 5, 6, 7, 8)
VAL_FOLD = 9
TEST_FOLD = 10


def statement_kind(statement: ScpStatement) -> str:
    """"diagnostic", "form" or "rhythm" (first flag set, in that order)."""
    if statement.diagnostic:
        return "diagnostic"
    return "form" if statement.form else "rhythm"


def scp_codes_by_id(ptbxl_root: str | Path, extra_root: str | Path | None,
                    statements: dict[str, ScpStatement]) -> dict[int, dict[str, float]]:
    """ecg_id -> scp_codes (code -> likelihood) from the raw and extra PTB-XL tables."""
    rows: list[PtbxlRow] = load_ptbxl_table(ptbxl_root, statements=statements)
    if extra_root is not None:
        rows += load_ptbxl_table(extra_root, statements=statements)
    return {row.ecg_id: row.scp_codes for row in rows}


def select_labels(
    train_codes: list[dict[str, float]], statements: dict[str, ScpStatement], min_positives: int
) -> tuple[list[str], list[str], dict[str, int]]:
    """Output labels: statements with >= ``min_positives`` training positives (most frequent first), then
    the 5 superclasses. The NORM statement is the NORM superclass, so it appears once, as a superclass.

    Returns (labels, kinds, training positives per statement code).
    """
    counts = Counter(code for codes in train_codes for code in codes if code in statements)
    chosen = [
        code for code, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
        if n >= min_positives and code not in SUPERCLASSES
    ]
    labels = chosen + list(SUPERCLASSES)
    kinds = [statement_kind(statements[c]) for c in chosen] + ["superclass"] * len(SUPERCLASSES)
    return labels, kinds, dict(counts)


def target_matrix(
    arrays: EcgArrays, codes_by_id: dict[int, dict[str, float]], labels: list[str], kinds: list[str]
) -> np.ndarray:
    """(N, n_labels) float32 0/1 targets: a statement is positive when listed (any likelihood, as PTB-XL's
    benchmark); superclasses from ``arrays.superclass``."""
    targets = np.zeros((len(arrays), len(labels)), np.float32)
    for i, ecg_id in enumerate(arrays.ecg_id):
        codes = codes_by_id.get(int(ecg_id), {})
        for j, (code, kind) in enumerate(zip(labels, kinds)):
            if kind == "superclass":
                targets[i, j] = float(arrays.superclass[i, SUPERCLASSES.index(code)])
            else:
                targets[i, j] = float(code in codes)
    return targets


def macro_auroc(targets: np.ndarray, scores: np.ndarray, columns: np.ndarray | None = None) -> float:
    """Mean AUROC over the label columns that have both classes (NaN if none)."""
    columns = np.arange(targets.shape[1]) if columns is None else np.asarray(columns)
    values = [auroc(targets[:, j], scores[:, j]) for j in columns]
    values = [v for v in values if np.isfinite(v)]
    return float(np.mean(values)) if values else float("nan")


def make_batch(
    arrays: EcgArrays, targets: np.ndarray, index: np.ndarray, config: DiagnosisConfig,
    rng: np.random.Generator, augment: bool = True,
) -> dict[str, torch.Tensor | None]:
    """One training batch: signals with per-lead gain and white-noise augmentation, targets, beats."""
    signal = arrays.signal[index].astype(np.float32, copy=True)
    if augment:
        gain = 1.0 + config.gain_jitter * rng.uniform(-1, 1, (len(index), signal.shape[1], 1))
        signal *= gain.astype(np.float32)
        signal += config.noise_std * rng.standard_normal(signal.shape).astype(np.float32)
    beats = beat_valid = None
    if config.use_beats:
        peaks = []
        for i in index:  # a random subset of train_beats beats per ECG keeps the step cheap
            usable = select_beats(arrays.r_peaks[i], _beat_config(config))
            take = min(config.train_beats, usable.size)
            peaks.append(np.sort(rng.choice(usable, take, replace=False)) if take else usable)
        beats, beat_valid = beat_batch(signal, peaks, config)
    return {
        "signal": torch.from_numpy(signal),
        "targets": torch.from_numpy(targets[index]),
        "beats": beats,
        "beat_valid": beat_valid,
    }


def _beat_config(config: DiagnosisConfig):
    from ..models.anomaly import AnomalyConfig

    return AnomalyConfig(beat_before=config.beat_before, beat_after=config.beat_after,
                         max_beats=config.max_beats, n_samples=config.n_samples)


def build_net(config: DiagnosisConfig, init: str | Path | None) -> DiagnosisNet:
    """A fresh network (seeded); encoders copied from an anomaly bundle/checkpoint when ``init`` is a path."""
    torch.manual_seed(config.seed)
    net = DiagnosisNet(config)
    if init is not None and str(init).lower() != "none":
        _, state = read_anomaly_weights(init)
        load_encoder_weights(net, state)
    return net


def train_diagnosis(
    arrays: EcgArrays,
    targets: np.ndarray,
    train_index: np.ndarray,
    val_index: np.ndarray,
    config: DiagnosisConfig,
    run_dir: str | Path,
    init: str | Path | None = None,
    progress: bool = True,
    max_minutes: float | None = None,
    max_steps: int | None = None,
) -> DiagnosisNet:
    """Train on ``train_index``; keep the weights of the epoch with the best validation macro AUROC.

    Resumes from ``run_dir/checkpoint.pt``. ``max_minutes`` stops cleanly after an epoch (call again to
    resume); ``max_steps`` caps the steps per epoch (smoke tests).
    """
    run_dir = Path(run_dir)
    rank, world = _distributed()
    if rank == 0:
        run_dir.mkdir(parents=True, exist_ok=True)
    train_index, val_index = np.asarray(train_index), np.asarray(val_index)
    model = build_net(config, init)
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimiser = torch.optim.AdamW(trainable, lr=config.lr, weight_decay=config.weight_decay)
    steps_per_epoch = max(1, math.ceil(len(train_index) / (config.batch_size * world)))
    if max_steps is not None:
        steps_per_epoch = min(steps_per_epoch, max_steps)
    total_steps = steps_per_epoch * config.epochs
    warmup = max(1, min(100, total_steps // 10))

    def lr_factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, total_steps - warmup)))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimiser, lr_factor)
    start_epoch, best_auroc, best_state = 0, -1.0, None
    checkpoint_path = run_dir / "checkpoint.pt"
    if checkpoint_path.is_file():
        state = torch.load(checkpoint_path, map_location="cpu", weights_only=True)
        model.load_state_dict(state["model"])
        optimiser.load_state_dict(state["optimiser"])
        scheduler.load_state_dict(state["scheduler"])
        start_epoch, best_auroc, best_state = int(state["epoch"]), float(state["best_auroc"]), state["best"]
    net = torch.nn.parallel.DistributedDataParallel(model) if world > 1 else model
    if rank == 0:
        (run_dir / "config.json").write_text(json.dumps(config.to_dict(), indent=2))

    started = time.monotonic()
    for epoch in range(start_epoch, config.epochs):
        rng = np.random.default_rng(config.seed * 1000 + epoch)
        order = rng.permutation(train_index)[rank::world]
        model.train()
        epoch_start, loss_sum = time.monotonic(), 0.0
        bar = tqdm(range(steps_per_epoch), desc=f"epoch {epoch + 1}/{config.epochs}",
                   disable=not progress or rank != 0, leave=False)
        for step in bar:
            index = order[step * config.batch_size : (step + 1) * config.batch_size]
            if len(index) == 0:
                continue
            batch = make_batch(arrays, targets, index, config, rng)
            logits = net(batch["signal"], batch["beats"], batch["beat_valid"])
            loss = asymmetric_loss(logits, batch["targets"], config.gamma_neg, config.gamma_pos, config.clip)
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(trainable, 1.0)
            optimiser.step()
            scheduler.step()
            loss_sum += loss.item()
            bar.set_postfix(loss=f"{loss.item():.3f}")
        val_logits = window_logits(model, arrays.signal[val_index], [arrays.r_peaks[i] for i in val_index])
        val_auroc = macro_auroc(targets[val_index], val_logits)
        if val_auroc > best_auroc:
            best_auroc = val_auroc
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        if rank == 0:
            record = {
                "epoch": epoch + 1,
                "seconds": round(time.monotonic() - epoch_start, 2),
                "lr": scheduler.get_last_lr()[0],
                "loss": loss_sum / steps_per_epoch,
                "val_macro_auroc": round(val_auroc, 4),
                "best_val_macro_auroc": round(best_auroc, 4),
            }
            with open(run_dir / "metrics.jsonl", "a") as f:
                f.write(json.dumps(record) + "\n")
            if progress:
                tqdm.write(json.dumps(record))
            tmp = checkpoint_path.with_suffix(".tmp")
            torch.save({"model": model.state_dict(), "optimiser": optimiser.state_dict(),
                        "scheduler": scheduler.state_dict(), "epoch": epoch + 1,
                        "best_auroc": best_auroc, "best": best_state}, tmp)
            os.replace(tmp, checkpoint_path)
            torch.save(best_state, run_dir / "best.pt")
        if max_minutes is not None and (time.monotonic() - started) > 60 * max_minutes:
            break
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    return model


def fit_calibration(logits: np.ndarray, targets: np.ndarray) -> tuple[float, float]:
    """Temperature T and one shared bias b minimising the binary cross-entropy of sigmoid(logits / T + b)
    on the validation fold (L-BFGS over log T and b).

    The shared bias is needed because the asymmetric loss shifts every logit up (negatives are
    down-weighted): temperature alone leaves the probabilities of negatives too high. Both are monotone
    per label, so AUROCs and threshold decisions do not change.
    """
    from scipy.optimize import minimize

    y = targets.astype(np.float64)
    x = logits.astype(np.float64)

    def nll(params: np.ndarray) -> float:
        z = x / np.exp(params[0]) + params[1]
        return float(np.mean(np.logaddexp(0.0, z) - y * z))

    best = minimize(nll, np.zeros(2), method="L-BFGS-B", bounds=[(-3.0, 3.0), (-10.0, 10.0)])
    return float(np.exp(best.x[0])), float(best.x[1])


def fit_thresholds(probs: np.ndarray, targets: np.ndarray, min_positives: int = 3,
                   default: float = 0.5) -> np.ndarray:
    """Per-label decision threshold maximising F1 on the validation fold.

    Labels with fewer than ``min_positives`` validation positives get ``default`` (too few to fit).
    """
    thresholds = np.full(probs.shape[1], default, np.float64)
    for j in range(probs.shape[1]):
        y, p = targets[:, j] > 0.5, probs[:, j]
        if y.sum() < min_positives:
            continue
        best_f1 = -1.0
        for t in np.unique(p):
            pred = p >= t
            tp = float((pred & y).sum())
            f1 = 2 * tp / (pred.sum() + y.sum())
            if f1 > best_f1:
                best_f1, thresholds[j] = f1, float(t)
    return thresholds


def split_by_fold(arrays: EcgArrays) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Indices of the PTB-XL benchmark split: folds 1-8 train, 9 validation, 10 test."""
    return (np.flatnonzero(np.isin(arrays.fold, TRAIN_FOLDS)), np.flatnonzero(arrays.fold == VAL_FOLD),
            np.flatnonzero(arrays.fold == TEST_FOLD))
