"""From a trained restoration network to calibrated anomaly maps and scores (pure functions).

1. :func:`restoration_errors`: every 10 s window goes through the network once per complementary
   mask set, all in ONE batched forward pass; each sample's error is taken from the pass that hid it.
2. :func:`fit_calibration`: per error channel, lead and position-in-beat, the mean and standard
   deviation of log error on normal reference ECGs.
3. :func:`calibrated_map`: errors -> standard deviations above what a normal ECG shows at that lead and
   position in the beat (0 = typical of normal), smoothed over 40 ms. Its mean is the anomaly score.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .models.anomaly import AnomalyConfig, AnomalyNet, inference_masks

ERROR_CHANNELS: tuple[str, ...] = ("global", "trend", "beat")
PHASE_BIN_SAMPLES = 10  # 40 ms at 250 Hz
LOG_EPS = 1e-3
SMOOTH_SAMPLES = 11  # 44 ms at 250 Hz


def select_beats(r_peaks: np.ndarray, config: AnomalyConfig, n_samples: int | None = None) -> np.ndarray:
    """R peaks whose whole beat window fits inside the 10 s window, evenly sub-sampled to ``max_beats``."""
    n_samples = n_samples or config.n_samples
    peaks = np.asarray(r_peaks, dtype=np.int64)
    inside = peaks[(peaks >= config.beat_before) & (peaks + config.beat_after <= n_samples)]
    if inside.size > config.max_beats:
        inside = inside[np.linspace(0, inside.size - 1, config.max_beats).round().astype(int)]
    return inside


def cut_beats(signal: np.ndarray, centers: np.ndarray, config: AnomalyConfig) -> np.ndarray:
    """(12, T) signal, beat centres -> (n_beats, 12, L) windows R - beat_before ... R + beat_after."""
    offsets = np.arange(-config.beat_before, config.beat_after)
    index = np.asarray(centers, dtype=np.int64)[:, None] + offsets[None, :]
    return np.ascontiguousarray(signal[:, index].transpose(1, 0, 2))


def phase_bins(r_peaks: np.ndarray, n_samples: int, config: AnomalyConfig) -> np.ndarray:
    """Position-in-beat bin of every sample: 40 ms bins of (t - nearest R) over the beat window.

    Samples outside every beat window (long pauses, or no R peak found) share the last bin.
    """
    n_bins = config.beat_len // PHASE_BIN_SAMPLES
    bins = np.full(n_samples, n_bins, dtype=np.int64)
    t = np.arange(n_samples)
    best = np.full(n_samples, np.iinfo(np.int64).max)
    for r in np.asarray(r_peaks, dtype=np.int64):
        offset = t - r + config.beat_before
        inside = (offset >= 0) & (offset < config.beat_len) & (np.abs(t - r) < best)
        bins[inside] = offset[inside] // PHASE_BIN_SAMPLES
        best[inside] = np.abs(t - r)[inside]
    return bins


def n_phase_bins(config: AnomalyConfig) -> int:
    return config.beat_len // PHASE_BIN_SAMPLES + 1


OUTPUT_NAMES: tuple[str, ...] = ("global", "trend", "beat", "attributes", "embedding")


def torch_forward(net: AnomalyNet):
    """A forward function over numpy arrays running ``net`` with torch (inference mode)."""

    @torch.inference_mode()
    def forward(signal: np.ndarray, time_mask: np.ndarray, beats: np.ndarray, beat_mask: np.ndarray):
        out = net(
            torch.from_numpy(signal),
            torch.from_numpy(time_mask),
            torch.from_numpy(beats),
            torch.from_numpy(beat_mask),
        )
        return {name: out[name].numpy() for name in OUTPUT_NAMES}

    return forward


def masked_batch(config: AnomalyConfig, windows: np.ndarray, r_peaks: list[np.ndarray]):
    """Network inputs for W windows x K complementary mask sets, stacked into one batch.

    Returns (inputs dict of float32 arrays, beat windows (W, nb, 12, L), beat centres per window).
    Batch item ``w * K + j`` is window ``w`` under mask set ``j``.
    """
    n_windows, n_leads, n_samples = windows.shape
    global_masks, beat_masks = (m.numpy() for m in inference_masks(config))
    k = global_masks.shape[0]
    centers = [select_beats(p, config, n_samples) for p in r_peaks]
    n_beats = max(1, max(len(c) for c in centers))
    beats = np.zeros((n_windows, n_beats, n_leads, config.beat_len), dtype=np.float32)
    for w, c in enumerate(centers):
        if len(c):
            beats[w, : len(c)] = cut_beats(windows[w], c, config)
    inputs = {
        "signal": np.repeat(np.ascontiguousarray(windows, dtype=np.float32), k, axis=0),
        "time_mask": np.tile(global_masks, (n_windows, 1)),
        "beats": np.repeat(beats, k, axis=0),
        "beat_mask": np.ascontiguousarray(
            np.broadcast_to(
                np.tile(beat_masks, (n_windows, 1))[:, None, :], (n_windows * k, n_beats, config.beat_len)
            )
        ),
    }
    return inputs, beats, centers


def restoration_errors(model, windows: np.ndarray, r_peaks: list[np.ndarray]) -> dict[str, np.ndarray]:
    """Restoration errors of W windows (W, 12, T) z-scored at 250 Hz, with their R peaks (250 Hz).

    ``model`` is an :class:`AnomalyNet` (run with torch) or any forward function taking the numpy inputs
    of :func:`masked_batch` (e.g. an ONNX Runtime session wrapper) and returning :data:`OUTPUT_NAMES`.
    All W x K masked passes go through the network as ONE batch. Returns ``global``, ``trend``, ``beat``
    squared-error maps (W, 12, T) (``beat`` is NaN where no beat window covers a sample),
    ``attributes`` (W, 7) and ``embedding`` (W, D), averaged over mask sets.
    """
    forward = torch_forward(model) if isinstance(model, torch.nn.Module) else model
    config = model.config
    n_windows, n_leads, n_samples = windows.shape
    global_masks, beat_masks = (m.numpy() for m in inference_masks(config))
    k = global_masks.shape[0]
    inputs, beats, centers = masked_batch(config, windows, r_peaks)
    out = forward(inputs["signal"], inputs["time_mask"], inputs["beats"], inputs["beat_mask"])

    def merge_masked(pred: np.ndarray, masks: np.ndarray) -> np.ndarray:
        # (W*K, ..., L) predictions -> (W, ..., L) keeping each sample from the pass that masked it
        pred = pred.reshape((n_windows, k) + pred.shape[1:])
        m = masks.reshape((1, k) + (1,) * (pred.ndim - 3) + (masks.shape[-1],))
        return (pred * m).sum(axis=1)

    global_restored = merge_masked(out["global"], global_masks)
    trend_restored = merge_masked(out["trend"], global_masks)
    beat_restored = merge_masked(out["beat"], beat_masks)  # (W, nb, 12, L)

    beat_error = np.full((n_windows, n_leads, n_samples), np.nan, dtype=np.float32)
    for w, c in enumerate(centers):
        if not len(c):
            continue
        total = np.zeros((n_leads, n_samples), np.float32)
        count = np.zeros(n_samples, np.float32)
        err = (beat_restored[w, : len(c)] - beats[w, : len(c)]) ** 2
        for b, r in enumerate(c):
            lo = r - config.beat_before
            total[:, lo : lo + config.beat_len] += err[b]
            count[lo : lo + config.beat_len] += 1
        covered = count > 0
        beat_error[w][:, covered] = total[:, covered] / count[covered]

    return {
        "global": (global_restored - windows) ** 2,
        "trend": (trend_restored - windows) ** 2,
        "beat": beat_error,
        "attributes": out["attributes"].reshape(n_windows, k, -1).mean(1),
        "embedding": out["embedding"].reshape(n_windows, k, -1).mean(1),
    }


@dataclass
class Calibration:
    """Statistics of normal ECGs that turn raw restoration errors and latents into comparable scores.

    - ``log_mean`` / ``log_std``: (channels, 12, n_bins) of log(error + 1e-3) per channel, lead and
      position-in-beat bin, on held-out normal ECGs (the anomaly map's reference).
    - ``latent_mean`` (D,) / ``latent_precision`` (D, D): Gaussian model (shrunk covariance) of the pooled
      latent of the training normals; the latent distance is the Mahalanobis distance to it.
    - ``score_norm``: mean and std of [map score, log latent distance] over held-out normals; the anomaly
      score is the sum of the two standardised components.
    - ``reference_scores``: sorted anomaly scores of the held-out normal ECGs (for percentiles).
    """

    log_mean: np.ndarray
    log_std: np.ndarray
    reference_scores: np.ndarray
    latent_mean: np.ndarray | None = None
    latent_precision: np.ndarray | None = None
    score_norm: np.ndarray | None = None  # [map_mean, map_std, latent_mean, latent_std]

    def percentile(self, score: float) -> float:
        """Percentage (0-100) of normal reference ECGs whose score is below ``score``."""
        ref = self.reference_scores
        if ref.size == 0:
            return float("nan")
        return float(100.0 * np.searchsorted(ref, score, side="left") / ref.size)

    def latent_distance(self, embedding: np.ndarray) -> np.ndarray:
        """log Mahalanobis distance of (W, D) latents to the normal training ECGs' latent distribution."""
        if self.latent_mean is None or self.latent_precision is None:
            return np.zeros(len(embedding))
        centred = embedding - self.latent_mean
        return np.log(np.einsum("ij,jk,ik->i", centred, self.latent_precision, centred) + 1e-6)

    def combine(self, map_scores: np.ndarray, latent_distances: np.ndarray) -> np.ndarray:
        """Anomaly score = standardised map score + standardised latent distance (normals: mean 0)."""
        if self.score_norm is None:
            return np.asarray(map_scores, np.float64)
        m_mu, m_sd, l_mu, l_sd = self.score_norm
        return (np.asarray(map_scores) - m_mu) / m_sd + (np.asarray(latent_distances) - l_mu) / l_sd


def fit_latent_gaussian(embeddings: np.ndarray, shrinkage: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    """Mean and precision of (N, D) latents with the covariance shrunk towards a scaled identity."""
    mean = embeddings.mean(0)
    cov = np.cov(embeddings.T)
    d = cov.shape[0]
    cov = (1 - shrinkage) * cov + shrinkage * np.trace(cov) / d * np.eye(d)
    return mean.astype(np.float32), np.linalg.inv(cov).astype(np.float32)


def fit_calibration(
    errors: dict[str, np.ndarray], bins: np.ndarray, n_bins: int
) -> tuple[np.ndarray, np.ndarray]:
    """Per channel/lead/bin mean and std of log error over normal ECGs (W, 12, T) with bins (W, T)."""
    n_leads = errors["global"].shape[1]
    mean = np.zeros((len(ERROR_CHANNELS), n_leads, n_bins), np.float32)
    std = np.ones_like(mean)
    for c, name in enumerate(ERROR_CHANNELS):
        log_err = np.log(errors[name] + LOG_EPS)  # (W, 12, T)
        for b in range(n_bins):
            sel = bins == b  # (W, T)
            values = log_err.transpose(1, 0, 2)[:, sel]  # (12, n)
            finite = np.isfinite(values)
            if finite.sum() < 20 * n_leads:
                # rare bin: fall back to the channel's overall statistics per lead
                values = log_err.transpose(1, 0, 2).reshape(n_leads, -1)
                finite = np.isfinite(values)
            v = np.where(finite, values, np.nan)
            mean[c, :, b] = np.nanmean(v, axis=1)
            std[c, :, b] = np.maximum(np.nanstd(v, axis=1), 0.05)
    return mean, std


def smooth_time(x: np.ndarray, width: int = SMOOTH_SAMPLES) -> np.ndarray:
    """Centred moving average along the last axis (edges use the available samples)."""
    pad = width // 2
    padded = np.pad(x, [(0, 0)] * (x.ndim - 1) + [(pad, pad)], mode="edge")
    cs = np.cumsum(padded, axis=-1, dtype=np.float64)
    cs = np.concatenate([np.zeros(cs.shape[:-1] + (1,)), cs], axis=-1)
    return ((cs[..., width:] - cs[..., :-width]) / width).astype(np.float32)


def calibrated_map(
    errors: dict[str, np.ndarray], bins: np.ndarray, log_mean: np.ndarray, log_std: np.ndarray
) -> np.ndarray:
    """(W, 12, T) anomaly map in SD above the normal error at that lead and phase, smoothed over 44 ms.

    Channels are averaged where available (the beat channel is missing between beats).
    """
    total = np.zeros_like(errors["global"], dtype=np.float64)
    count = np.zeros_like(total)
    for c, name in enumerate(ERROR_CHANNELS):
        log_err = np.log(errors[name] + LOG_EPS)
        mu = np.take_along_axis(log_mean[c][None], bins[:, None, :].repeat(log_mean.shape[1], 1), axis=2)
        sd = np.take_along_axis(log_std[c][None], bins[:, None, :].repeat(log_std.shape[1], 1), axis=2)
        z = (log_err - mu) / sd
        ok = np.isfinite(z)
        total[ok] += z[ok]
        count[ok] += 1
    z_map = (total / np.maximum(count, 1)).astype(np.float32)
    return smooth_time(z_map)


def score_from_map(anomaly_map: np.ndarray, valid: np.ndarray | None = None) -> float:
    """Anomaly score of one ECG: mean of its calibrated map over valid leads and samples."""
    values = anomaly_map if valid is None else anomaly_map[valid]
    values = values[np.isfinite(values)]
    return float(values.mean()) if values.size else float("nan")


def window_starts(n_samples: int, window: int) -> list[int]:
    """Starts of 10 s windows tiling a record: back to back, the last one aligned to the record's end."""
    if n_samples <= window:
        return [0]
    starts = list(range(0, n_samples - window + 1, window))
    if starts[-1] + window < n_samples:
        starts.append(n_samples - window)
    return starts


@dataclass
class AnomalyDetector:
    """A trained network with its calibration: z-scored 250 Hz ECG -> calibrated anomaly map."""

    net: AnomalyNet
    calibration: Calibration
    name: str = "ecglens-anomaly"
    version: str = "dev"
    sha256: str = ""

    @property
    def config(self) -> AnomalyConfig:
        return self.net.config

    def score_windows(
        self, windows: np.ndarray, r_peaks: list[np.ndarray], valid_leads: np.ndarray | None = None
    ) -> dict[str, np.ndarray]:
        """Calibrated maps (W, 12, T), scores (W,), attributes (W, 7), embeddings for 10 s windows."""
        errors = restoration_errors(self.net, windows, r_peaks)
        bins = np.stack([phase_bins(p, windows.shape[-1], self.config) for p in r_peaks])
        maps = calibrated_map(errors, bins, self.calibration.log_mean, self.calibration.log_std)
        map_scores = np.array([score_from_map(m, valid_leads) for m in maps])
        latent = self.calibration.latent_distance(errors["embedding"])
        return {
            "maps": maps,
            "scores": self.calibration.combine(map_scores, latent),
            "map_scores": map_scores,
            "latent_distances": latent,
            "attributes": errors["attributes"],
            "embedding": errors["embedding"],
        }

    def score_record(
        self, z: np.ndarray, r_peaks: np.ndarray, valid_leads: np.ndarray | None = None
    ) -> dict[str, np.ndarray | float]:
        """Any-length (12, n) z-scored 250 Hz record: windows of 10 s, maps stitched back to (12, n).

        A record shorter than 10 s is zero-padded; the padding never enters the map or the score.
        """
        window = self.config.n_samples
        n = z.shape[1]
        starts = window_starts(n, window)
        windows = np.zeros((len(starts), z.shape[0], window), np.float32)
        peaks = []
        for i, s in enumerate(starts):
            part = z[:, s : s + window]
            windows[i, :, : part.shape[1]] = part
            local = np.asarray(r_peaks) - s
            peaks.append(local[(local >= 0) & (local < min(window, n - s))])
        result = self.score_windows(windows, peaks, valid_leads)
        total = np.zeros((z.shape[0], n), np.float64)
        count = np.zeros(n, np.float64)
        for i, s in enumerate(starts):
            length = min(window, n - s)
            total[:, s : s + length] += result["maps"][i][:, :length]
            count[s : s + length] += 1
        anomaly_map = (total / np.maximum(count, 1)).astype(np.float32)
        if valid_leads is not None:
            anomaly_map[~valid_leads] = np.nan
        map_score = score_from_map(anomaly_map, valid_leads)
        latent = float(np.mean(result["latent_distances"]))
        return {
            "map": anomaly_map,
            "score": float(self.calibration.combine(np.array([map_score]), np.array([latent]))[0]),
            "map_score": map_score,
            "latent_distance": latent,
            "attributes": result["attributes"].mean(0),
            "embedding": result["embedding"].mean(0),
        }
