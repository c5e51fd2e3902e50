"""Multi-scale cross-restoration anomaly model (after Jiang et al., MICCAI 2023), CPU-sized.

Three views of one 10 s, 12-lead, 250 Hz, per-lead z-scored ECG are masked and restored:

- **global**: the whole ECG with random time patches masked in all leads at once;
- **local**: single heartbeat windows (R - 0.28 s ... R + 0.68 s) with a contiguous cut masked;
- **trend**: a smoothed (moving-average) copy of the masked ECG, from which the full-detail signal is
  restored.

Latent tokens of the three views exchange information through cross-attention (beats attend to the
global and trend tokens of their own ECG). The global and local decoders also predict a per-sample
log-variance (uncertainty-weighted loss), and an attribute head predicts age, sex, HR, PR, QRS, QT, QTc
from the pooled latents. Trained on normal ECGs only: restoration error = anomaly evidence.

At inference :func:`inference_masks` gives ``n_mask_sets`` complementary masks so that every sample is
restored exactly once, and all of them go through the network in ONE batched forward pass.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

ATTRIBUTES: tuple[str, ...] = ("age", "sex", "hr_bpm", "pr_ms", "qrs_ms", "qt_ms", "qtc_ms")


@dataclass
class AnomalyConfig:
    """Every hyper-parameter of the anomaly model and its training in one place."""

    fs: int = 250  # model sampling rate, Hz
    n_samples: int = 2500  # 10 s window
    n_leads: int = 12
    beat_before: int = 70  # samples before R in a beat window (0.28 s)
    beat_after: int = 170  # samples after R (0.68 s)
    max_beats: int = 16  # beats per 10 s window at inference (evenly sub-sampled beyond)
    train_beats: int = 6  # beats per ECG per training step
    width: int = 64  # channels of the latent tokens
    n_heads: int = 4
    n_transformer_layers: int = 2
    patch: int = 25  # global mask patch, samples (0.1 s)
    global_mask_ratio: float = 0.3
    beat_mask_ratio: float = 0.3
    n_mask_sets: int = 4  # complementary deterministic mask sets at inference
    trend_kernel: int = 31  # moving-average length of the trend view, samples (0.12 s)
    attribute_weight: float = 0.1
    # training
    epochs: int = 60
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 1e-4
    noise_std: float = 0.03  # augmentation: white noise in z units
    scale_jitter: float = 0.1  # augmentation: per-lead gain 1 +- this
    seed: int = 0
    attribute_stats: dict = field(default_factory=dict)  # mean/std of each attribute target

    @property
    def beat_len(self) -> int:
        return self.beat_before + self.beat_after

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> AnomalyConfig:
        known = {k: v for k, v in values.items() if k in cls.__dataclass_fields__}
        return cls(**known)


def conv_block(c_in: int, c_out: int, kernel: int, stride: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv1d(c_in, c_out, kernel, stride=stride, padding=kernel // 2),
        nn.GroupNorm(8, c_out),
        nn.GELU(),
    )


def up_block(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Upsample(scale_factor=2, mode="linear", align_corners=False),
        nn.Conv1d(c_in, c_out, 5, padding=2),
        nn.GroupNorm(8, c_out),
        nn.GELU(),
    )


class Encoder(nn.Module):
    """(B, leads + 1 mask channel, T) -> tokens (B, T/16, width) with a sinusoid-free learned position."""

    def __init__(self, n_in: int, width: int, n_tokens: int):
        super().__init__()
        self.convs = nn.Sequential(
            conv_block(n_in, 32, 7, 2),
            conv_block(32, 48, 5, 2),
            conv_block(48, width, 5, 2),
            conv_block(width, width, 3, 2),
        )
        self.position = nn.Parameter(torch.zeros(1, n_tokens, width))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tokens = self.convs(x).transpose(1, 2)
        return tokens + self.position[:, : tokens.shape[1]]


class Decoder(nn.Module):
    """tokens (B, n, width) -> (B, n_out, n * 16) restored signal (and log-variance channels)."""

    def __init__(self, width: int, n_out: int):
        super().__init__()
        self.ups = nn.Sequential(
            up_block(width, width), up_block(width, 48), up_block(48, 32), up_block(32, 32)
        )
        self.head = nn.Conv1d(32, n_out, 5, padding=2)

    def forward(self, tokens: torch.Tensor, length: int) -> torch.Tensor:
        out = self.head(self.ups(tokens.transpose(1, 2)))
        return (
            F.interpolate(out, size=length, mode="linear", align_corners=False)
            if out.shape[-1] != length
            else out
        )


class CrossAttention(nn.Module):
    """Pre-norm residual cross-attention: queries attend to a context token sequence."""

    def __init__(self, width: int, n_heads: int):
        super().__init__()
        self.norm_q = nn.LayerNorm(width)
        self.norm_kv = nn.LayerNorm(width)
        self.attn = nn.MultiheadAttention(width, n_heads, batch_first=True)
        self.mlp = nn.Sequential(
            nn.LayerNorm(width), nn.Linear(width, 2 * width), nn.GELU(), nn.Linear(2 * width, width)
        )

    def forward(self, queries: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        kv = self.norm_kv(context)
        attended, _ = self.attn(self.norm_q(queries), kv, kv, need_weights=False)
        queries = queries + attended
        return queries + self.mlp(queries)


def moving_average(x: torch.Tensor, kernel: int) -> torch.Tensor:
    """Trend view: centred moving average along time (B, C, T) -> (B, C, T)."""
    padded = F.pad(x, (kernel // 2, kernel - 1 - kernel // 2), mode="replicate")
    return F.avg_pool1d(padded, kernel, stride=1)


class AnomalyNet(nn.Module):
    """The three-branch restoration network with cross-scale attention and an attribute head."""

    def __init__(self, config: AnomalyConfig):
        super().__init__()
        self.config = c = config
        n_global_tokens = -(-c.n_samples // 16)
        n_beat_tokens = -(-c.beat_len // 16)
        self.global_encoder = Encoder(c.n_leads + 1, c.width, n_global_tokens)
        self.trend_encoder = Encoder(c.n_leads + 1, c.width, n_global_tokens)
        self.beat_encoder = Encoder(c.n_leads + 1, c.width, n_beat_tokens)
        layer = nn.TransformerEncoderLayer(
            c.width, c.n_heads, 2 * c.width, dropout=0.0, batch_first=True, norm_first=True, activation="gelu"
        )
        self.global_mixer = nn.TransformerEncoder(layer, c.n_transformer_layers, enable_nested_tensor=False)
        self.global_from_trend = CrossAttention(c.width, c.n_heads)
        self.trend_from_global = CrossAttention(c.width, c.n_heads)
        self.beat_from_ecg = CrossAttention(c.width, c.n_heads)
        self.global_decoder = Decoder(c.width, 2 * c.n_leads)
        self.trend_decoder = Decoder(c.width, c.n_leads)
        self.beat_decoder = Decoder(c.width, 2 * c.n_leads)
        self.attribute_head = nn.Sequential(
            nn.LayerNorm(2 * c.width),
            nn.Linear(2 * c.width, c.width),
            nn.GELU(),
            nn.Linear(c.width, len(ATTRIBUTES)),
        )

    def forward(
        self, signal: torch.Tensor, time_mask: torch.Tensor, beats: torch.Tensor, beat_mask: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        """Restore masked views.

        - ``signal`` (B, 12, T) z-scored ECG; ``time_mask`` (B, T) 1 = masked (hidden from the network);
        - ``beats`` (B, nb, 12, L) beat windows cut from the UNMASKED signal; ``beat_mask`` (B, nb, L).
        Returns ``global`` / ``global_logvar`` (B, 12, T), ``trend`` (B, 12, T), ``beat`` /
        ``beat_logvar`` (B, nb, 12, L), ``attributes`` (B, 7) and the pooled ``embedding`` (B, 2*width).
        """
        c = self.config
        b, n_beats = beats.shape[0], beats.shape[1]
        mask = time_mask.unsqueeze(1)
        visible = signal * (1.0 - mask)
        global_tokens = self.global_mixer(self.global_encoder(torch.cat([visible, mask], dim=1)))
        trend_input = moving_average(visible, c.trend_kernel)
        trend_tokens = self.trend_encoder(torch.cat([trend_input, mask], dim=1))
        global_tokens, trend_tokens = (
            self.global_from_trend(global_tokens, trend_tokens),
            self.trend_from_global(trend_tokens, global_tokens),
        )

        flat_beats = beats.reshape(b * n_beats, c.n_leads, c.beat_len)
        flat_beat_mask = beat_mask.reshape(b * n_beats, 1, c.beat_len)
        beat_input = torch.cat([flat_beats * (1.0 - flat_beat_mask), flat_beat_mask], dim=1)
        beat_tokens = self.beat_encoder(beat_input)
        context = torch.cat([global_tokens, trend_tokens], dim=1)
        context = context.repeat_interleave(n_beats, dim=0)
        beat_tokens = self.beat_from_ecg(beat_tokens, context)

        global_out = self.global_decoder(global_tokens, c.n_samples)
        beat_out = self.beat_decoder(beat_tokens, c.beat_len).reshape(b, n_beats, 2 * c.n_leads, c.beat_len)
        embedding = torch.cat([global_tokens.mean(1), trend_tokens.mean(1)], dim=1)
        return {
            "global": global_out[:, : c.n_leads],
            "global_logvar": global_out[:, c.n_leads :].clamp(-8, 8),
            "trend": self.trend_decoder(trend_tokens, c.n_samples),
            "beat": beat_out[:, :, : c.n_leads],
            "beat_logvar": beat_out[:, :, c.n_leads :].clamp(-8, 8),
            "attributes": self.attribute_head(embedding),
            "embedding": embedding,
        }


def random_time_mask(
    config: AnomalyConfig, batch: int, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Training mask (B, T): a random ``global_mask_ratio`` of the 0.1 s patches, same in all leads."""
    n_patches = -(-config.n_samples // config.patch)
    scores = torch.rand(batch, n_patches, generator=generator)
    n_masked = max(1, round(config.global_mask_ratio * n_patches))
    threshold = scores.kthvalue(n_masked, dim=1, keepdim=True).values
    patch_mask = (scores <= threshold).float()
    return patch_mask.repeat_interleave(config.patch, dim=1)[:, : config.n_samples]


def random_beat_mask(
    config: AnomalyConfig, batch: int, n_beats: int, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Training mask (B, nb, L): one contiguous cut of ``beat_mask_ratio`` of each beat window."""
    length = config.beat_len
    cut = max(1, round(config.beat_mask_ratio * length))
    starts = torch.randint(0, length - cut + 1, (batch, n_beats, 1), generator=generator)
    positions = torch.arange(length).view(1, 1, length)
    return ((positions >= starts) & (positions < starts + cut)).float()


def inference_masks(config: AnomalyConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """Complementary deterministic masks: (K, T) global and (K, L) beat masks, K = ``n_mask_sets``.

    Every time sample (and every beat sample) is masked in exactly one of the K sets. Patches are
    interleaved (patch p goes to set p mod K) so each set hides an even spread of the ECG.
    """
    k = config.n_mask_sets
    n_patches = -(-config.n_samples // config.patch)
    patch_set = torch.arange(n_patches) % k
    global_masks = (patch_set.unsqueeze(0) == torch.arange(k).unsqueeze(1)).float()
    global_masks = global_masks.repeat_interleave(config.patch, dim=1)[:, : config.n_samples]
    bounds = torch.linspace(0, config.beat_len, k + 1).round().long()
    positions = torch.arange(config.beat_len)
    beat_masks = torch.stack(
        [((positions >= bounds[i]) & (positions < bounds[i + 1])).float() for i in range(k)]
    )
    return global_masks, beat_masks


def gaussian_nll(target: torch.Tensor, mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """Per-sample uncertainty-weighted restoration loss: exp(-logvar) * err^2 + logvar."""
    return torch.exp(-logvar) * (target - mean) ** 2 + logvar


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
