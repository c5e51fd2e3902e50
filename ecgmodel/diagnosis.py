"""Ranked diagnoses: a multi-label SCP-ECG classifier on the anomaly model's encoders.

The network reuses the anomaly model's global and trend encoders, the global transformer mixer and the
two cross-attention blocks (same module names, so an anomaly ``state_dict`` loads straight into it),
optionally the beat encoder over heartbeat windows, and puts a small linear head on pooled tokens. The
input is the *unmasked* z-scored 250 Hz ECG (time mask all zeros). Outputs: one logit per SCP statement
trained (diagnostic, form, rhythm) and per diagnostic superclass (NORM, MI, STTC, CD, HYP).

At inference (:class:`DiagnosisModel`) logits are averaged over the 10 s windows of the record,
calibrated as sigmoid(logit / T + b) with T and b fitted on the validation fold, and compared with
per-label decision thresholds stored in the bundle. Decision support only: a probability is not a diagnosis.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .anomaly_scoring import cut_beats, select_beats, window_starts
from .errors import ModelLoadError
from .models.anomaly import AnomalyConfig, CrossAttention, Encoder, moving_average
from .models.bundle import default_model_path, load_bundle
from .types import Diagnosis, ModelInfo

MODEL_NAME = "ecglens-diagnosis"
KIND = "diagnosis"
SUPERCLASS_NAMES: dict[str, str] = {
    "NORM": "normal ECG (superclass)",
    "MI": "myocardial infarction (superclass)",
    "STTC": "ST/T change (superclass)",
    "CD": "conduction disturbance (superclass)",
    "HYP": "hypertrophy (superclass)",
}
#: Encoder modules shared with :class:`ecgmodel.models.anomaly.AnomalyNet` (state_dict prefixes).
SHARED_MODULES: tuple[str, ...] = (
    "global_encoder",
    "trend_encoder",
    "global_mixer",
    "global_from_trend",
    "trend_from_global",
    "beat_encoder",
    "beat_from_ecg",
)


@dataclass
class DiagnosisConfig:
    """Every hyper-parameter of the diagnosis model and its training in one place.

    ``labels`` are the output codes: SCP statements then superclasses; ``kinds`` gives each one's kind
    ("diagnostic", "form", "rhythm" or "superclass"). Encoder sizes must match the anomaly model the
    encoders come from.
    """

    labels: list[str] = field(default_factory=list)
    kinds: list[str] = field(default_factory=list)
    # encoder (copied from the AnomalyConfig of the initialising model)
    n_samples: int = 2500  # 10 s window at 250 Hz
    n_leads: int = 12
    width: int = 64
    n_heads: int = 4
    n_transformer_layers: int = 2
    trend_kernel: int = 31
    beat_before: int = 70
    beat_after: int = 170
    max_beats: int = 16
    train_beats: int = 6
    use_beats: bool = False  # also encode beat windows (slower; off by default on CPU)
    # head
    dropout: float = 0.1
    freeze_encoder: bool = False  # True = linear probe (the frozen-random baseline)
    init: str = "none"  # where the encoder weights came from (path or "none"), for the record
    # label selection
    min_positives: int = 10  # a statement is trained when it has >= this many positives in training folds
    # loss: asymmetric loss (Ridnik et al., ICCV 2021)
    gamma_neg: float = 4.0
    gamma_pos: float = 0.0
    clip: float = 0.05
    # training
    epochs: int = 12
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 1e-2
    noise_std: float = 0.03  # augmentation: white noise in z units
    gain_jitter: float = 0.1  # augmentation: per-lead gain 1 +- this
    seed: int = 0

    @property
    def beat_len(self) -> int:
        return self.beat_before + self.beat_after

    @property
    def n_labels(self) -> int:
        return len(self.labels)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> DiagnosisConfig:
        known = {k: v for k, v in values.items() if k in cls.__dataclass_fields__}
        return cls(**known)

    @classmethod
    def from_anomaly(cls, anomaly: AnomalyConfig, **overrides) -> DiagnosisConfig:
        """Encoder sizes taken from an anomaly model's config, everything else default or overridden."""
        shared = {k: getattr(anomaly, k) for k in (
            "n_samples", "n_leads", "width", "n_heads", "n_transformer_layers", "trend_kernel",
            "beat_before", "beat_after", "max_beats", "train_beats",
        )}
        return cls(**{**shared, **overrides})


def asymmetric_loss(
    logits: torch.Tensor,
    targets: torch.Tensor,
    gamma_neg: float = 4.0,
    gamma_pos: float = 0.0,
    clip: float = 0.05,
    eps: float = 1e-8,
) -> torch.Tensor:
    """Asymmetric loss (ASL) for multi-label logits (B, C) and 0/1 targets (B, C); mean over the batch.

    Negatives: probability shifted down by ``clip`` (easy negatives with p < clip cost nothing) and
    focused with ``gamma_neg``; positives focused with ``gamma_pos``. Summed over labels.
    """
    p = torch.sigmoid(logits)
    p_neg = (p - clip).clamp(min=0.0) if clip > 0 else p
    loss_pos = targets * F.logsigmoid(logits) * (1.0 - p) ** gamma_pos
    loss_neg = (1.0 - targets) * torch.log((1.0 - p_neg).clamp(min=eps)) * p_neg**gamma_neg
    return -(loss_pos + loss_neg).sum(dim=1).mean()


class DiagnosisNet(nn.Module):
    """Anomaly-model encoders + cross-scale attention -> pooled features -> one logit per label."""

    def __init__(self, config: DiagnosisConfig):
        super().__init__()
        self.config = c = config
        n_tokens = -(-c.n_samples // 16)
        self.global_encoder = Encoder(c.n_leads + 1, c.width, n_tokens)
        self.trend_encoder = Encoder(c.n_leads + 1, c.width, n_tokens)
        layer = nn.TransformerEncoderLayer(
            c.width, c.n_heads, 2 * c.width, dropout=0.0, batch_first=True, norm_first=True, activation="gelu"
        )
        self.global_mixer = nn.TransformerEncoder(layer, c.n_transformer_layers, enable_nested_tensor=False)
        self.global_from_trend = CrossAttention(c.width, c.n_heads)
        self.trend_from_global = CrossAttention(c.width, c.n_heads)
        n_features = 3 * c.width
        if c.use_beats:
            self.beat_encoder = Encoder(c.n_leads + 1, c.width, -(-c.beat_len // 16))
            self.beat_from_ecg = CrossAttention(c.width, c.n_heads)
            n_features += c.width
        self.head = nn.Sequential(
            nn.LayerNorm(n_features), nn.Dropout(c.dropout), nn.Linear(n_features, c.n_labels)
        )
        if c.freeze_encoder:
            for name, param in self.named_parameters():
                if not name.startswith("head."):
                    param.requires_grad_(False)

    def features(
        self, signal: torch.Tensor, beats: torch.Tensor | None = None, beat_valid: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Pooled features (B, F) of z-scored ECGs (B, 12, T); beats (B, nb, 12, L) + validity (B, nb)."""
        c = self.config
        mask = torch.zeros_like(signal[:, :1])  # nothing hidden: the time mask is all zeros
        global_tokens = self.global_mixer(self.global_encoder(torch.cat([signal, mask], dim=1)))
        trend_tokens = self.trend_encoder(torch.cat([moving_average(signal, c.trend_kernel), mask], dim=1))
        global_tokens, trend_tokens = (
            self.global_from_trend(global_tokens, trend_tokens),
            self.trend_from_global(trend_tokens, global_tokens),
        )
        pooled = [global_tokens.mean(1), global_tokens.amax(1), trend_tokens.mean(1)]
        if c.use_beats:
            if beats is None or beat_valid is None:
                raise ValueError("this diagnosis model encodes beats: pass beats and beat_valid")
            b, nb = beats.shape[:2]
            flat = beats.reshape(b * nb, c.n_leads, c.beat_len)
            tokens = self.beat_encoder(torch.cat([flat, torch.zeros_like(flat[:, :1])], dim=1))
            context = torch.cat([global_tokens, trend_tokens], dim=1).repeat_interleave(nb, dim=0)
            beat_vec = self.beat_from_ecg(tokens, context).mean(1).reshape(b, nb, -1)
            weight = beat_valid.float().unsqueeze(-1)
            pooled.append((beat_vec * weight).sum(1) / weight.sum(1).clamp(min=1.0))
        return torch.cat(pooled, dim=1)

    def forward(
        self, signal: torch.Tensor, beats: torch.Tensor | None = None, beat_valid: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Logits (B, n_labels)."""
        return self.head(self.features(signal, beats, beat_valid))


def load_encoder_weights(net: DiagnosisNet, state_dict: dict[str, torch.Tensor]) -> list[str]:
    """Copy the shared encoder modules of an anomaly model's ``state_dict`` into ``net``; returns their keys.

    Raises :class:`ModelLoadError` when a shared tensor is missing or has another shape.
    """
    own = net.state_dict()
    wanted = [k for k in own if k.split(".")[0] in SHARED_MODULES]
    missing = [k for k in wanted if k not in state_dict or state_dict[k].shape != own[k].shape]
    if missing:
        raise ModelLoadError(f"the anomaly weights do not fit the diagnosis encoder (e.g. {missing[0]}).")
    net.load_state_dict({k: state_dict[k] for k in wanted}, strict=False)
    return wanted


def read_anomaly_weights(path: str | Path) -> tuple[AnomalyConfig, dict[str, torch.Tensor]]:
    """AnomalyConfig + state_dict from a shipped anomaly bundle or a training checkpoint (``{"model": ...}``).

    A checkpoint's config is read from ``config.json`` beside it when present (else the default config).
    """
    import json

    path = Path(path)
    if not path.is_file():
        raise ModelLoadError(f"{path}: no anomaly model here to initialise the diagnosis encoders from.")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many types for a damaged file
        raise ModelLoadError(f"{path}: cannot be read as an anomaly model ({type(err).__name__}).") from err
    if isinstance(state, dict) and "config_json" in state:
        payload, _ = load_bundle(path, expected_kind="anomaly")
        return AnomalyConfig.from_dict(payload["config"]), payload["state_dict"]
    if isinstance(state, dict) and "model" in state:
        config_path = path.parent / "config.json"
        config = (
            AnomalyConfig.from_dict(json.loads(config_path.read_text()))
            if config_path.is_file()
            else AnomalyConfig()
        )
        return config, state["model"]
    raise ModelLoadError(f"{path}: neither an anomaly bundle nor a training checkpoint.")


def record_windows(z: np.ndarray, n_samples: int) -> tuple[np.ndarray, list[int]]:
    """Any-length (12, n) record -> (W, 12, n_samples) 10 s windows (zero-padded if short), their starts."""
    starts = window_starts(z.shape[1], n_samples)
    windows = np.zeros((len(starts), z.shape[0], n_samples), np.float32)
    for i, s in enumerate(starts):
        part = z[:, s : s + n_samples]
        windows[i, :, : part.shape[1]] = part
    return windows, starts


def beat_batch(
    signals: np.ndarray, r_peaks: list[np.ndarray], config: DiagnosisConfig
) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, nb, 12, L) beat windows (up to ``max_beats``) and their validity (B, nb) for B windows."""
    anomaly_like = AnomalyConfig(
        beat_before=config.beat_before, beat_after=config.beat_after, max_beats=config.max_beats,
        n_samples=config.n_samples,
    )
    centers = [select_beats(p, anomaly_like, signals.shape[-1]) for p in r_peaks]
    nb = max(1, max(len(c) for c in centers))
    beats = np.zeros((len(signals), nb, config.n_leads, config.beat_len), np.float32)
    valid = np.zeros((len(signals), nb), bool)
    for i, c in enumerate(centers):
        if len(c):
            beats[i, : len(c)] = cut_beats(signals[i], c, anomaly_like)
            valid[i, : len(c)] = True
    return torch.from_numpy(beats), torch.from_numpy(valid)


@torch.inference_mode()
def window_logits(
    net: DiagnosisNet, signals: np.ndarray, r_peaks: list[np.ndarray] | None = None, batch_size: int = 64
) -> np.ndarray:
    """Raw logits (N, n_labels) of N 10 s windows (N, 12, T), in batches."""
    net.eval()
    out = []
    for lo in range(0, len(signals), batch_size):
        part = np.ascontiguousarray(signals[lo : lo + batch_size], dtype=np.float32)
        beats = valid = None
        if net.config.use_beats:
            no_peaks = [np.zeros(0, np.int64)] * len(part)
            peaks = r_peaks[lo : lo + batch_size] if r_peaks is not None else no_peaks
            beats, valid = beat_batch(part, peaks, net.config)
        out.append(net(torch.from_numpy(part), beats, valid).numpy())
    return np.concatenate(out) if out else np.zeros((0, net.config.n_labels), np.float32)


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(x, -60, 60)))


@dataclass
class DiagnosisModel:
    """A trained diagnosis network with its calibration, thresholds and label names.

    Probabilities are sigmoid(logit / ``temperature`` + ``bias``) (both (n_labels,)); ``thresholds``
    (n_labels,) are probabilities above which a label is flagged ``likely``; ``names`` are English
    descriptions from the taxonomy.
    """

    net: DiagnosisNet
    temperature: np.ndarray
    bias: np.ndarray
    thresholds: np.ndarray
    names: list[str]
    info: ModelInfo

    @property
    def config(self) -> DiagnosisConfig:
        return self.net.config

    def probabilities(self, windows: np.ndarray, r_peaks: list[np.ndarray] | None = None) -> np.ndarray:
        """Calibrated probabilities (N, n_labels) of N 10 s windows."""
        return sigmoid(window_logits(self.net, windows, r_peaks) / self.temperature + self.bias)

    def predict(self, z: np.ndarray, r_peaks: np.ndarray, valid: np.ndarray | None = None) -> list[Diagnosis]:
        """Ranked diagnoses of one record, most probable first.

        - ``z``: (12, n) z-scored 250 Hz model input of the whole record (any length; windows of 10 s,
          their calibrated logits averaged);
        - ``r_peaks``: R peak sample indices at 250 Hz (used by models that encode beats);
        - ``valid``: (12,) bool usable leads; unusable leads are zeroed (as a flat lead looks after
          z-scoring).
        Only labels the model was trained on are ever returned.
        """
        z = np.nan_to_num(np.asarray(z, dtype=np.float32))
        if valid is not None:
            z = np.where(np.asarray(valid, bool)[:, None], z, 0.0).astype(np.float32)
        windows, starts = record_windows(z, self.config.n_samples)
        peaks = np.asarray(r_peaks, dtype=np.int64)
        local = [peaks[(peaks >= s) & (peaks < s + self.config.n_samples)] - s for s in starts]
        logits = window_logits(self.net, windows, local).mean(0)
        probs = sigmoid(logits / self.temperature + self.bias)
        order = np.argsort(-probs, kind="stable")
        c = self.config
        return [
            Diagnosis(
                code=c.labels[i],
                name=self.names[i],
                probability=float(probs[i]),
                likely=bool(probs[i] >= self.thresholds[i]),
                kind=c.kinds[i],
            )
            for i in order
        ]


def label_names(labels: list[str], kinds: list[str], descriptions: dict[str, str]) -> list[str]:
    """English names: superclass names, else the statement description, else the code itself."""
    return [
        SUPERCLASS_NAMES.get(code, code) if kind == "superclass" else descriptions.get(code, code)
        for code, kind in zip(labels, kinds)
    ]


def load_diagnosis_model(path: str | Path | None = None) -> DiagnosisModel:
    """Load a diagnosis bundle (weights-only, sha256 checked against the manifest).

    Raises :class:`ModelLoadError` for a missing, corrupted or incompatible file.
    """
    path = Path(path) if path is not None else default_model_path(f"{MODEL_NAME}.pt")
    payload, sha = load_bundle(path, expected_kind=KIND)
    try:
        config = DiagnosisConfig.from_dict(payload["config"])
        config.freeze_encoder = False  # inference: no gradients anyway
        net = DiagnosisNet(config)
        net.load_state_dict(payload["state_dict"])
        extras = payload["extras"]
        temperature = extras["temperature"].numpy().astype(np.float64)
        thresholds = extras["thresholds"].numpy().astype(np.float64)
        bias = extras["bias"].numpy().astype(np.float64) if "bias" in extras else np.zeros_like(temperature)
        names = list(extras["names"])
        sizes = {len(names), len(temperature), len(bias), len(thresholds), config.n_labels, len(config.kinds)}
        if len(sizes) != 1:
            raise ValueError("label lists and calibration arrays differ in length")
    except (KeyError, RuntimeError, TypeError, ValueError) as err:
        raise ModelLoadError(f"{path}: the weights do not match this version of ECG Lens ({err}).") from err
    net.eval()
    card = path.with_suffix(".md")
    info = ModelInfo(
        name=payload["name"],
        version=payload["version"],
        weights_sha256=sha,
        card_path=str(card) if card.is_file() else None,
    )
    return DiagnosisModel(
        net=net, temperature=temperature, bias=bias, thresholds=thresholds, names=names, info=info
    )
