"""Training loop of the anomaly model: normal ECGs only, resumable, seeded, torchrun-ready.

Run directory layout: ``config.json``, ``metrics.jsonl`` (one line per epoch), ``checkpoint.pt``
(model + optimiser + epoch, saved every epoch; training resumes from it), ``model.pt`` (final weights).
Under ``torchrun`` (``WORLD_SIZE`` > 1) each process trains on its shard with PyTorch DDP.
"""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from ..anomaly_scoring import select_beats
from ..models.anomaly import (
    ATTRIBUTES,
    AnomalyConfig,
    AnomalyNet,
    gaussian_nll,
    random_beat_mask,
    random_time_mask,
)
from .data import EcgArrays


def attribute_stats(attributes: np.ndarray) -> dict[str, list[float]]:
    """Mean and std of each attribute target over the training set (NaN-aware), for standardisation."""
    mean = np.nanmean(attributes, axis=0)
    std = np.nanstd(attributes, axis=0)
    mean[~np.isfinite(mean)] = 0.0
    std[~np.isfinite(std) | (std < 1e-6)] = 1.0
    return {"mean": mean.tolist(), "std": std.tolist()}


def sample_beats(r_peaks: np.ndarray, config: AnomalyConfig, rng: np.random.Generator) -> np.ndarray:
    """``train_beats`` beat centres for one ECG (random beats; random positions if no R peak was found)."""
    usable = select_beats(r_peaks, config)
    if usable.size == 0:
        return rng.integers(config.beat_before, config.n_samples - config.beat_after, config.train_beats)
    return rng.choice(usable, config.train_beats, replace=usable.size < config.train_beats)


def make_batch(
    arrays: EcgArrays,
    index: np.ndarray,
    config: AnomalyConfig,
    rng: np.random.Generator,
    augment: bool = True,
) -> dict[str, torch.Tensor]:
    """One training batch: augmented signals, beat windows, random masks and standardised targets."""
    signal = arrays.signal[index].astype(np.float32, copy=True)
    if augment:
        signal *= 1.0 + config.scale_jitter * rng.uniform(-1, 1, (len(index), signal.shape[1], 1)).astype(
            np.float32
        )
        signal += config.noise_std * rng.standard_normal(signal.shape).astype(np.float32)
    offsets = np.arange(-config.beat_before, config.beat_after)
    centers = np.stack([sample_beats(arrays.r_peaks[i], config, rng) for i in index])  # (B, nb)
    beat_index = centers[:, :, None] + offsets[None, None, :]  # (B, nb, L)
    beats = np.take_along_axis(signal[:, :, None, :], beat_index[:, None, :, :], axis=3)  # (B, 12, nb, L)
    beats = np.ascontiguousarray(beats.transpose(0, 2, 1, 3))
    stats = config.attribute_stats
    targets = (arrays.attributes[index] - np.asarray(stats["mean"], np.float32)) / np.asarray(
        stats["std"], np.float32
    )
    sex_col = ATTRIBUTES.index("sex")
    targets[:, sex_col] = arrays.attributes[index][:, sex_col]  # sex stays 0/1 for the BCE
    generator = torch.Generator().manual_seed(int(rng.integers(2**31)))
    return {
        "signal": torch.from_numpy(signal),
        "time_mask": random_time_mask(config, len(index), generator),
        "beats": torch.from_numpy(beats),
        "beat_mask": random_beat_mask(config, len(index), config.train_beats, generator),
        "targets": torch.from_numpy(targets.astype(np.float32)),
    }


def anomaly_loss(
    out: dict[str, torch.Tensor], batch: dict[str, torch.Tensor], config: AnomalyConfig
) -> tuple[torch.Tensor, dict[str, float]]:
    """Uncertainty-weighted global + local restoration, trend MSE, attribute loss (NaN targets skipped)."""
    signal, time_mask = batch["signal"], batch["time_mask"].unsqueeze(1)
    global_nll = gaussian_nll(signal, out["global"], out["global_logvar"])
    global_loss = (global_nll * time_mask).sum() / (time_mask.sum() * signal.shape[1]).clamp(min=1)
    beat_mask = batch["beat_mask"].unsqueeze(2)
    beat_nll = gaussian_nll(batch["beats"], out["beat"], out["beat_logvar"])
    beat_loss = (beat_nll * beat_mask).sum() / (beat_mask.sum() * signal.shape[1]).clamp(min=1)
    trend_loss = F.mse_loss(out["trend"], signal)

    targets, predicted = batch["targets"], out["attributes"]
    known = torch.isfinite(targets)
    sex_col = ATTRIBUTES.index("sex")
    attr_terms = []
    for col in range(targets.shape[1]):
        ok = known[:, col]
        if not ok.any():
            continue
        if col == sex_col:
            attr_terms.append(F.binary_cross_entropy_with_logits(predicted[ok, col], targets[ok, col]))
        else:
            attr_terms.append(F.smooth_l1_loss(predicted[ok, col], targets[ok, col]))
    attr_loss = torch.stack(attr_terms).mean() if attr_terms else predicted.sum() * 0.0
    total = global_loss + beat_loss + trend_loss + config.attribute_weight * attr_loss
    parts = {
        "global": global_loss.item(),
        "beat": beat_loss.item(),
        "trend": trend_loss.item(),
        "attributes": attr_loss.item(),
    }
    return total, parts


def _distributed() -> tuple[int, int]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not torch.distributed.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        torch.distributed.init_process_group(backend)
    rank = torch.distributed.get_rank() if world > 1 else 0
    return rank, world


def train_anomaly(
    arrays: EcgArrays,
    train_index: np.ndarray,
    config: AnomalyConfig,
    run_dir: str | Path,
    progress: bool = True,
    max_minutes: float | None = None,
) -> AnomalyNet:
    """Train on ``arrays[train_index]`` (normal ECGs) and return the model; resumes from ``run_dir``.

    ``max_minutes`` stops cleanly (checkpoint saved) after that much wall time; call again to resume.
    """
    run_dir = Path(run_dir)
    rank, world = _distributed()
    if rank == 0:
        run_dir.mkdir(parents=True, exist_ok=True)
    train_index = np.asarray(train_index)
    if not config.attribute_stats:
        config.attribute_stats = attribute_stats(arrays.attributes[train_index])
    torch.manual_seed(config.seed)
    model = AnomalyNet(config)
    optimiser = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    steps_per_epoch = max(1, math.ceil(len(train_index) / (config.batch_size * world)))
    total_steps = steps_per_epoch * config.epochs
    warmup = min(200, total_steps // 10)

    def lr_factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, total_steps - warmup)))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimiser, lr_factor)
    start_epoch = 0
    checkpoint_path = run_dir / "checkpoint.pt"
    if checkpoint_path.is_file():
        state = torch.load(checkpoint_path, map_location="cpu", weights_only=True)
        model.load_state_dict(state["model"])
        optimiser.load_state_dict(state["optimiser"])
        scheduler.load_state_dict(state["scheduler"])
        start_epoch = int(state["epoch"])
    net = torch.nn.parallel.DistributedDataParallel(model) if world > 1 else model
    if rank == 0:
        (run_dir / "config.json").write_text(json.dumps(config.to_dict(), indent=2))

    started = time.monotonic()
    for epoch in range(start_epoch, config.epochs):
        rng = np.random.default_rng(config.seed * 1000 + epoch)
        order = rng.permutation(train_index)[rank::world]
        model.train()
        epoch_start = time.monotonic()
        sums: dict[str, float] = {}
        bar = tqdm(
            range(steps_per_epoch),
            desc=f"epoch {epoch + 1}/{config.epochs}",
            disable=not progress or rank != 0,
            leave=False,
        )
        for step in bar:
            index = order[step * config.batch_size : (step + 1) * config.batch_size]
            if len(index) == 0:
                continue
            batch = make_batch(arrays, index, config, rng)
            out = net(batch["signal"], batch["time_mask"], batch["beats"], batch["beat_mask"])
            loss, parts = anomaly_loss(out, batch, config)
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimiser.step()
            scheduler.step()
            for key, value in parts.items():
                sums[key] = sums.get(key, 0.0) + value
            bar.set_postfix(loss=f"{loss.item():.3f}")
        if rank == 0:
            record = {
                "epoch": epoch + 1,
                "seconds": round(time.monotonic() - epoch_start, 2),
                "lr": scheduler.get_last_lr()[0],
                **{k: v / steps_per_epoch for k, v in sums.items()},
            }
            with open(run_dir / "metrics.jsonl", "a") as f:
                f.write(json.dumps(record) + "\n")
            if progress:
                tqdm.write(json.dumps(record))
            tmp = checkpoint_path.with_suffix(".tmp")
            torch.save(
                {
                    "model": model.state_dict(),
                    "optimiser": optimiser.state_dict(),
                    "scheduler": scheduler.state_dict(),
                    "epoch": epoch + 1,
                },
                tmp,
            )
            os.replace(tmp, checkpoint_path)
        if max_minutes is not None and (time.monotonic() - started) > 60 * max_minutes:
            break
    model.eval()
    return model
