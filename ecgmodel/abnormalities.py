"""Inject realistic, labelled abnormalities into a normal 12-lead ECG, with exact point-level ground truth.

Every injector is a pure function::

    inject_x(signal, fs, r_peaks, rng=seed, **options) -> (new_signal, mask, events)

- ``signal``: (12, n_samples) in mV, rows in :data:`~ecgmodel.types.STANDARD_LEADS` order (not modified);
- ``fs``: sampling rate in Hz; ``r_peaks``: R-peak sample indices of the record;
- ``rng``: an int seed or a :class:`numpy.random.Generator` (same seed -> same output, bit for bit);
- ``mask``: bool (12, n_samples), True where the new signal differs from the input (every sample that
  changed by more than 1 uV lies inside it; nothing outside it changes);
- ``events``: :class:`InjectedEvent` boxes (kind, leads, t_start_s, t_end_s, is_artifact).

Physiological consistency: changes are built in the 8 independent leads (I, II, V1-V6) and the other four
limb leads are derived (III = II - I, aVR = -(I + II)/2, aVL = I - II/2, aVF = II - I/2), so Einthoven's and
Goldberger's laws keep holding. A limb-lead change is therefore a change of the frontal-plane vector: an
inferior ST elevation brings reciprocal depression in aVL/aVR, exactly as on a real ECG. Every lead that
changes is in the mask and in an event (reciprocal changes get their own event, ``detail="reciprocal"``).

Beat timing (QRS onset/offset, T onset/end, P onset) comes from a simple median-beat delineation
(:func:`median_beat_timing`); PTB-XL normals have narrow QRS and one morphology, which it is made for.
Noise bursts are ARTEFACTS (``is_artifact=True``): they must not be mistaken for disease.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy import signal as sps

from .types import STANDARD_LEADS

__all__ = [
    "ABNORMALITY_KINDS", "ARTIFACT_KINDS", "INJECTORS", "InjectedEvent", "LEAD_GROUPS", "BeatTiming",
    "inject", "inject_af_like", "inject_noise_burst", "inject_pvc", "inject_qrs_widening",
    "inject_st_depression", "inject_st_elevation", "inject_t_inversion", "leads_from_independent",
    "median_beat_timing", "pvc_waveform",
]

LEAD_INDEX: dict[str, int] = {name: i for i, name in enumerate(STANDARD_LEADS)}
#: Rows of the 8 independent leads inside the 12-lead order: I, II, V1..V6.
INDEPENDENT_ROWS: tuple[int, ...] = (0, 1, 6, 7, 8, 9, 10, 11)

#: Contiguous lead territories (names as a cardiologist would say them).
LEAD_GROUPS: dict[str, tuple[str, ...]] = {
    "inferior": ("II", "III", "aVF"),
    "anterior": ("V1", "V2", "V3", "V4"),
    "lateral": ("I", "aVL", "V5", "V6"),
}

#: Frontal-plane unit vector (x = leftward, y = inferior) of each territory's limb leads; None: no limb lead.
_FRONTAL_AXIS: dict[str, tuple[float, float] | None] = {
    "inferior": (0.0, 1.0),  # +90 deg (aVF); lead I is perpendicular, so it does not change
    "anterior": None,
    "lateral": (np.sqrt(3.0) / 2.0, -0.5),  # -30 deg (aVL); lead II is perpendicular
}

#: Approximate Dower-style transfer from a cardiac dipole (x left, y inferior, z posterior; mV) to the
#: independent leads I, II, V1..V6 (rows). Used for the PVC's vector loop and the atrial f-waves.
DIPOLE_TO_LEADS = np.array([
    [0.632, -0.235, 0.059],   # I
    [0.235, 1.066, -0.132],   # II
    [-0.515, 0.157, -0.917],  # V1
    [0.044, 0.164, -1.387],   # V2
    [0.882, 0.098, -1.277],   # V3
    [1.213, 0.127, -0.601],   # V4
    [1.125, 0.127, -0.086],   # V5
    [0.831, 0.076, 0.230],    # V6
])

#: Electrodes an artefact can sit on (RL is the driven ground and is left out).
ELECTRODES: tuple[str, ...] = ("RA", "LA", "LL", "V1", "V2", "V3", "V4", "V5", "V6")

CHANGE_TOL_MV = 1e-6


@dataclass(frozen=True)
class InjectedEvent:
    """One injected abnormality: ``kind``, the ``leads`` it changes, its time span (s from record start).

    ``is_artifact`` marks recording artefacts (noise bursts) that are not disease; ``detail`` is free text
    (territory, electrode, "reciprocal", ...).
    """

    kind: str
    leads: tuple[str, ...]
    t_start_s: float
    t_end_s: float
    is_artifact: bool = False
    detail: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "leads", tuple(str(name) for name in self.leads))
        object.__setattr__(self, "t_start_s", round(float(self.t_start_s), 6))
        object.__setattr__(self, "t_end_s", round(float(self.t_end_s), 6))
        object.__setattr__(self, "is_artifact", bool(self.is_artifact))

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["leads"] = list(self.leads)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> InjectedEvent:
        return cls(kind=str(data["kind"]), leads=tuple(data["leads"]), t_start_s=float(data["t_start_s"]),
                   t_end_s=float(data["t_end_s"]), is_artifact=bool(data.get("is_artifact", False)),
                   detail=str(data.get("detail", "")))


#: What every injector returns: (new signal (12, n) mV, mask (12, n) bool, events).
Injected = tuple[np.ndarray, np.ndarray, list[InjectedEvent]]
#: A seed or a generator.
Rng = int | np.random.Generator


@dataclass(frozen=True)
class BeatTiming:
    """Fiducial offsets of a typical beat, in seconds relative to its R peak (negative = before R)."""

    p_on_s: float = -0.24
    qrs_on_s: float = -0.045
    qrs_off_s: float = 0.05
    t_on_s: float = 0.15
    t_peak_s: float = 0.26
    t_end_s: float = 0.36


# --------------------------------------------------------------------------------------------- helpers

def _generator(rng: int | np.random.Generator) -> np.random.Generator:
    return rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)


def leads_from_independent(independent: np.ndarray) -> np.ndarray:
    """(12, n) in canonical order from (8, n) independent leads I, II, V1..V6 (Einthoven + Goldberger)."""
    i, ii = independent[0], independent[1]
    limbs = np.stack([i, ii, ii - i, -(i + ii) / 2.0, i - ii / 2.0, ii - i / 2.0])
    return np.concatenate([limbs, independent[2:]], axis=0)


def _frontal_xy(i: np.ndarray, ii: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Frontal-plane vector (x leftward, y inferior) from leads I and II (II = x/2 + sqrt(3)/2 y)."""
    return i, (2.0 * ii - i) / np.sqrt(3.0)


def _i_ii_from_xy(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return x, x / 2.0 + np.sqrt(3.0) / 2.0 * y


def _plateau(n: int, ramp_in: int, ramp_out: int) -> np.ndarray:
    """Window of ``n`` samples: raised-cosine ramps of ``ramp_in``/``ramp_out`` samples, 1 in between.

    The first and last samples are exactly 0 when the ramp is non-empty.
    """
    w = np.ones(n)
    if ramp_in > 0:
        w[:ramp_in] = 0.5 - 0.5 * np.cos(np.pi * np.arange(ramp_in) / ramp_in)
    if ramp_out > 0:
        w[n - ramp_out:] = 0.5 - 0.5 * np.cos(np.pi * (np.arange(ramp_out, 0, -1) - 1) / ramp_out)
    return w


def _finish(signal: np.ndarray, delta: np.ndarray, region: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Add ``delta`` (12, n) to ``signal``; mask = ``region`` on the leads that actually changed."""
    delta = np.where(region, delta, 0.0)
    changed = np.abs(delta).max(axis=1) > CHANGE_TOL_MV
    mask = region & changed[:, None]
    new = (signal.astype(np.float64) + np.where(mask, delta, 0.0)).astype(signal.dtype)
    return new, mask


def _changed_leads(mask: np.ndarray) -> tuple[str, ...]:
    return tuple(STANDARD_LEADS[i] for i in np.flatnonzero(mask.any(axis=1)))


def _noise_level_mv(signal: np.ndarray, fs: float) -> np.ndarray:
    """Per-lead noise level (mV): robust std (MAD) of the signal high-passed at 15 Hz.

    The QRS complexes are a small fraction of the samples, so the median ignores them.
    """
    sos = sps.butter(2, 15.0, btype="highpass", fs=fs, output="sos")
    high = sps.sosfiltfilt(sos, signal.astype(np.float64), axis=1)
    return 1.4826 * np.median(np.abs(high - np.median(high, axis=1, keepdims=True)), axis=1)


def _independent_noise(rng: np.random.Generator, signal: np.ndarray, fs: float, n: int) -> np.ndarray:
    """(12, n) noise at the record's own level and band (>15 Hz), made in I, II, V1..V6 and derived."""
    level = _noise_level_mv(signal, fs)[list(INDEPENDENT_ROWS)]
    sos = sps.butter(2, 15.0, btype="highpass", fs=fs, output="sos")
    pad = int(fs)
    white = sps.sosfiltfilt(sos, rng.standard_normal((8, n + 2 * pad)), axis=1)[:, pad:pad + n]
    white /= white.std(axis=1, keepdims=True) + 1e-12
    return leads_from_independent(white * level[:, None])


def _usable_beats(r_peaks: np.ndarray, n: int, fs: float, timing: BeatTiming) -> np.ndarray:
    """Indices (into ``r_peaks``) of beats whose whole P-QRS-T lies inside the record."""
    r = np.asarray(r_peaks)
    ok = (r + timing.p_on_s * fs >= 1) & (r + (timing.t_end_s + 0.05) * fs < n - 1)
    return np.flatnonzero(ok)


def _choose_span(rng: np.random.Generator, beats: np.ndarray, n_beats: int | None, min_beats: int = 3
                 ) -> np.ndarray:
    """A contiguous run of ``n_beats`` usable beats (random length >= ``min_beats`` when None)."""
    if beats.size == 0:
        raise ValueError("no complete beat in the record to inject into")
    if n_beats is None:
        n_beats = int(rng.integers(min(min_beats, beats.size), beats.size + 1))
    n_beats = int(np.clip(n_beats, 1, beats.size))
    start = int(rng.integers(0, beats.size - n_beats + 1))
    return beats[start:start + n_beats]


# ------------------------------------------------------------------------------------------ delineation

def median_beat_timing(signal: np.ndarray, fs: float, r_peaks: np.ndarray) -> BeatTiming:
    """Fiducial offsets (s from R) of the record's median beat: QRS on/off from the spatial velocity,
    T peak/onset/end from the baseline-corrected RMS across leads. Falls back to typical adult values
    (:class:`BeatTiming` defaults) where the record does not allow a measurement.
    """
    default = BeatTiming()
    r = np.asarray(r_peaks, dtype=int)
    pre, post = int(round(0.30 * fs)), int(round(0.60 * fs))
    if r.size >= 2:
        post = min(post, int(np.median(np.diff(r)) - 0.20 * fs))
    r = r[(r - pre >= 0) & (r + post < signal.shape[1])]
    if r.size < 2 or post < 0.30 * fs:
        return default
    beats = np.stack([signal[:, k - pre:k + post] for k in r]).astype(np.float64)
    med = np.median(beats, axis=0)  # (12, pre + post)
    med = med - med[:, pre - int(0.07 * fs):pre - int(0.04 * fs)].mean(axis=1, keepdims=True)
    smooth = max(3, int(round(0.01 * fs)) | 1)
    vel = np.sqrt((np.gradient(med, axis=1) ** 2).sum(axis=0))
    vel = np.convolve(vel, np.ones(smooth) / smooth, mode="same")
    v_qrs = vel[pre - int(0.05 * fs):pre + int(0.05 * fs)].max()
    below = vel < 0.12 * v_qrs
    hold = int(round(0.012 * fs))

    def quiet_run(start: int, stop: int, step: int) -> int | None:
        for k in range(start, stop, step):
            lo, hi = (k, k + hold) if step > 0 else (k - hold, k)
            if lo >= 0 and hi <= below.size and below[lo:hi].all():
                return k
        return None

    on = quiet_run(pre - int(0.015 * fs), pre - int(0.10 * fs), -1)
    off = quiet_run(pre + int(0.025 * fs), pre + int(0.12 * fs), 1)
    qrs_on = np.clip((on - pre) / fs, -0.07, -0.02) if on is not None else default.qrs_on_s
    qrs_off = np.clip((off - pre) / fs, 0.03, 0.09) if off is not None else default.qrs_off_s
    rms = np.sqrt((med ** 2).mean(axis=0))
    lo_t, hi_t = pre + int((qrs_off + 0.08) * fs), pre + post
    if hi_t - lo_t < 0.1 * fs:
        return BeatTiming(qrs_on_s=float(qrs_on), qrs_off_s=float(qrs_off))
    t_peak = lo_t + int(np.argmax(rms[lo_t:hi_t]))
    level = 0.25 * rms[t_peak]
    after = np.flatnonzero(rms[t_peak:hi_t] < level)
    t_end = t_peak + (int(after[0]) if after.size else int(0.12 * fs))
    before = np.flatnonzero(rms[pre + int(qrs_off * fs):t_peak] < level)
    t_on = pre + int(qrs_off * fs) + (int(before[-1]) if before.size else 0)
    t_peak_s = (t_peak - pre) / fs
    t_end_s = float(np.clip((t_end - pre) / fs, t_peak_s + 0.04, t_peak_s + 0.16))
    t_on_s = float(np.clip((t_on - pre) / fs, qrs_off + 0.04, t_peak_s - 0.04))
    return BeatTiming(p_on_s=default.p_on_s, qrs_on_s=float(qrs_on), qrs_off_s=float(qrs_off),
                      t_on_s=t_on_s, t_peak_s=float(t_peak_s), t_end_s=t_end_s)


def _timing(signal: np.ndarray, fs: float, r_peaks: np.ndarray, timing: BeatTiming | None) -> BeatTiming:
    return timing if timing is not None else median_beat_timing(signal, fs, r_peaks)


# ---------------------------------------------------------------------------------------------- PVC

def pvc_waveform(t_s: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A premature ventricular complex in the 8 independent leads (mV), t_s in s relative to its QRS
    centre: wide (~140-180 ms), bizarre QRS from an ectopic vector loop and a discordant, broad T wave.
    Origin is drawn at random: right ventricular outflow (LBBB-like, inferior axis) or left ventricle
    (RBBB-like, tall R in V1).
    """
    if rng.random() < 0.5:  # RVOT: leftward, inferior, posterior -> QS in V1, tall R in II/III/aVF
        first, second = np.array([0.45, 0.75, 0.55]), np.array([0.75, 0.35, 0.30])
    else:  # LV free wall: rightward, anterior -> tall R in V1, negative I/aVL
        first, second = np.array([-0.55, 0.30, -0.80]), np.array([-0.30, -0.35, -0.75])
    first = first / np.linalg.norm(first) + rng.normal(0, 0.12, 3)
    second = second / np.linalg.norm(second) + rng.normal(0, 0.12, 3)
    amp = rng.uniform(1.4, 2.2)  # mV, larger than a sinus QRS
    sig1, sig2 = rng.uniform(0.022, 0.030), rng.uniform(0.020, 0.028)
    lag = rng.uniform(0.035, 0.050)
    g1 = np.exp(-0.5 * ((t_s + lag / 2) / sig1) ** 2)
    g2 = np.exp(-0.5 * ((t_s - lag / 2) / sig2) ** 2)
    qrs_vec = amp * (np.outer(first, g1) + 0.55 * np.outer(second, g2))
    mean_qrs = first + 0.55 * second
    t_center, t_sig_l, t_sig_r = rng.uniform(0.27, 0.32), rng.uniform(0.07, 0.09), rng.uniform(0.05, 0.06)
    t_shape = np.where(t_s < t_center, np.exp(-0.5 * ((t_s - t_center) / t_sig_l) ** 2),
                       np.exp(-0.5 * ((t_s - t_center) / t_sig_r) ** 2))
    t_vec = -rng.uniform(0.30, 0.45) * amp * np.outer(mean_qrs / np.linalg.norm(mean_qrs), t_shape)
    return DIPOLE_TO_LEADS @ (qrs_vec + t_vec)


def inject_pvc(signal: np.ndarray, fs: float, r_peaks: np.ndarray, rng: Rng = 0, *,
               beat_index: int | None = None, timing: BeatTiming | None = None
               ) -> Injected:
    """Replace one sinus beat by a premature ventricular beat (all leads).

    The PVC comes early (coupling 55-72 % of the RR interval, after the previous T wave), the sinus beat
    it replaces (its P, QRS and T) is removed and the next sinus beat keeps its time, giving the
    full compensatory pause. The replaced stretch is rebuilt as the interpolated baseline plus noise at
    the record's own level plus the PVC; 20 ms cross-fades at both ends keep the signal continuous.
    ``beat_index`` (into ``r_peaks``) picks the replaced beat; default random.
    """
    gen = _generator(rng)
    n = signal.shape[1]
    r = np.asarray(r_peaks, dtype=int)
    tm = _timing(signal, fs, r, timing)
    usable = set(_usable_beats(r, n, fs, tm).tolist())
    candidates = [k for k in range(1, r.size - 1) if k - 1 in usable and k + 1 in usable]
    if beat_index is not None:
        candidates = [beat_index] if beat_index in candidates else []
    if not candidates:
        raise ValueError("a PVC needs a beat with complete neighbours on both sides")
    k = int(gen.choice(candidates))
    rr = (r[k] - r[k - 1]) / fs
    earliest = tm.t_end_s + 0.10 + 0.07  # QRS centre after previous T end (+ half the PVC QRS)
    coupling = max(gen.uniform(0.55, 0.72) * rr, earliest)
    if coupling > rr - 0.10:
        raise ValueError("heart rate too fast for a premature beat after the previous T wave")
    centre = r[k - 1] + coupling * fs
    start = int(np.floor(centre - 0.11 * fs))
    stop = int(np.ceil(r[k + 1] + (tm.p_on_s - 0.03) * fs))
    t_rel = (np.arange(start, n) - centre) / fs
    pvc_len = int(np.searchsorted(t_rel, 0.62))
    pvc = leads_from_independent(pvc_waveform(t_rel[:pvc_len], gen))
    stop = max(stop, start + pvc_len)
    stop = min(stop, n)
    length = stop - start
    x = signal[:, start:stop].astype(np.float64)
    edge = max(2, int(round(0.01 * fs)))
    a_level = signal[:, start - edge:start + edge].mean(axis=1)
    b_level = signal[:, stop - edge:stop + edge].mean(axis=1)
    baseline = a_level[:, None] + (b_level - a_level)[:, None] * np.linspace(0, 1, length)[None, :]
    replacement = baseline + _independent_noise(gen, signal, fs, length)
    pvc_part = np.zeros_like(x)
    pvc_part[:, :min(pvc_len, length)] = pvc[:, :length]
    pvc_part *= _plateau(length, 0, int(0.05 * fs))[None, :]
    w = _plateau(length, int(0.02 * fs), int(0.02 * fs))[None, :]
    delta = np.zeros(signal.shape)
    delta[:, start:stop] = w * (replacement - x) + pvc_part
    region = np.zeros(signal.shape, dtype=bool)
    region[:, start:stop] = True
    new, mask = _finish(signal, delta, region)
    event = InjectedEvent("pvc", _changed_leads(mask), start / fs, stop / fs,
                          detail=f"coupling {coupling * 1000:.0f} ms, replaces beat {k}")
    return new, mask, [event]


# ------------------------------------------------------------------------------------------ ST and T

def _territory(gen: np.random.Generator, territory: str | None) -> str:
    if territory is None:
        return str(gen.choice(sorted(LEAD_GROUPS)))
    if territory not in LEAD_GROUPS:
        raise ValueError(f"unknown territory {territory!r}; expected one of {sorted(LEAD_GROUPS)}")
    return territory


def _st_amplitudes(territory: str, magnitude_mv: float) -> np.ndarray:
    """Per-lead ST shift (12,) in mV for a territory: frontal vector for limb leads, precordial profile."""
    ind = np.zeros(8)
    axis = _FRONTAL_AXIS[territory]
    if axis is not None:  # scaled so the territory's own limb leads shift by exactly magnitude_mv
        vector = magnitude_mv / (np.sqrt(3.0) / 2.0)
        i, ii = _i_ii_from_xy(np.array(axis[0] * vector), np.array(axis[1] * vector))
        ind[0], ind[1] = float(i), float(ii)
    profile = {"inferior": {}, "anterior": {"V1": 0.6, "V2": 1.0, "V3": 1.0, "V4": 0.7},
               "lateral": {"V5": 0.8, "V6": 0.7}}[territory]
    for name, weight in profile.items():
        ind[2 + int(name[1]) - 1] = weight * magnitude_mv
    return leads_from_independent(ind[:, None])[:, 0]


def _st_events(kind_up: str, kind_down: str, amps: np.ndarray, mask: np.ndarray, fs: float,
               primary_sign: float, territory: str) -> list[InjectedEvent]:
    cols = np.flatnonzero(mask.any(axis=0))
    t0, t1 = cols[0] / fs, (cols[-1] + 1) / fs
    events = []
    for sign, kind in ((1.0, kind_up), (-1.0, kind_down)):
        leads = tuple(STANDARD_LEADS[i] for i in range(12) if mask[i].any() and np.sign(amps[i]) == sign)
        if leads:
            detail = territory if sign == primary_sign else f"reciprocal to {territory}"
            events.append(InjectedEvent(kind, leads, float(t0), float(t1), detail=detail))
    return events


def _inject_st(signal: np.ndarray, fs: float, r_peaks: np.ndarray, gen: np.random.Generator, sign: float,
               territory: str | None, magnitude_mv: float | None, n_beats: int | None,
               timing: BeatTiming | None) -> Injected:
    r = np.asarray(r_peaks, dtype=int)
    tm = _timing(signal, fs, r, timing)
    territory = _territory(gen, territory)
    magnitude = gen.uniform(0.15, 0.35) if magnitude_mv is None else float(magnitude_mv)
    amps = sign * _st_amplitudes(territory, magnitude)
    span = _choose_span(gen, _usable_beats(r, signal.shape[1], fs, tm), n_beats)
    delta = np.zeros(signal.shape)
    region = np.zeros(signal.shape, dtype=bool)
    for k in span:
        a = int(round(r[k] + (tm.qrs_off_s - 0.015) * fs))
        b = int(round(r[k] + tm.t_end_s * fs)) + 1
        ramp_in = int(round(0.03 * fs))
        plateau_end = r[k] + (tm.t_on_s + tm.t_peak_s) / 2 * fs
        ramp_out = max(1, b - int(round(plateau_end)))
        shape = _plateau(b - a, ramp_in, ramp_out)
        delta[:, a:b] += amps[:, None] * shape[None, :]
        region[:, a:b] = True
    new, mask = _finish(signal, delta, region)
    return new, mask, _st_events("st_elevation", "st_depression", amps, mask, fs, sign, territory)


def inject_st_elevation(signal: np.ndarray, fs: float, r_peaks: np.ndarray,
                        rng: Rng = 0, *, territory: str | None = None,
                        magnitude_mv: float | None = None, n_beats: int | None = None,
                        timing: BeatTiming | None = None) -> Injected:
    """ST elevation (0.15-0.35 mV) from the J point through the ST segment, merging into the T wave, in
    one territory (inferior / anterior / lateral, random by default) over a run of beats. Limb-lead
    changes follow the frontal ST vector, so reciprocal depression appears (aVL/aVR for inferior).
    """
    return _inject_st(signal, fs, r_peaks, _generator(rng), 1.0, territory, magnitude_mv, n_beats, timing)


def inject_st_depression(signal: np.ndarray, fs: float, r_peaks: np.ndarray,
                         rng: Rng = 0, *, territory: str | None = None,
                         magnitude_mv: float | None = None, n_beats: int | None = None,
                         timing: BeatTiming | None = None) -> Injected:
    """Horizontal ST depression (0.15-0.35 mV), J point to T onset, tapering through the T wave, in one
    territory over a run of beats (see :func:`inject_st_elevation`; reciprocal leads rise).
    """
    return _inject_st(signal, fs, r_peaks, _generator(rng), -1.0, territory, magnitude_mv, n_beats, timing)


def _t_wave(segment: np.ndarray, fs: float) -> np.ndarray:
    """The T-wave component of a (leads, m) segment: smoothed signal minus the chord between its ends."""
    m = segment.shape[1]
    win = min(m - (1 - m % 2), max(5, int(round(0.04 * fs)) | 1))
    smooth = sps.savgol_filter(segment, win, 2, axis=1) if win >= 5 else segment
    chord = smooth[:, :1] + (smooth[:, -1:] - smooth[:, :1]) * np.linspace(0, 1, m)[None, :]
    return (smooth - chord) * _plateau(m, max(1, m // 8), max(1, m // 8))[None, :]


def inject_t_inversion(signal: np.ndarray, fs: float, r_peaks: np.ndarray, rng: Rng = 0, *,
                       territory: str | None = None, depth: float | None = None, n_beats: int | None = None,
                       timing: BeatTiming | None = None) -> Injected:
    """Invert the T wave in one territory over a run of beats; the new T is ``-depth`` times the old one
    (depth 0.6-1.3). Precordial leads (V2-V4 anterior, V5-V6 lateral) are inverted lead by lead; in the
    limb leads the frontal T vector's component along the territory's axis is reversed (Einthoven holds),
    so e.g. inferior inversion also makes aVL's T taller.
    """
    gen = _generator(rng)
    r = np.asarray(r_peaks, dtype=int)
    tm = _timing(signal, fs, r, timing)
    territory = _territory(gen, territory)
    depth = gen.uniform(0.6, 1.3) if depth is None else float(depth)
    precordial = {"inferior": (), "anterior": ("V2", "V3", "V4"), "lateral": ("V5", "V6")}[territory]
    axis = _FRONTAL_AXIS[territory]
    span = _choose_span(gen, _usable_beats(r, signal.shape[1], fs, tm), n_beats)
    delta = np.zeros(signal.shape)
    region = np.zeros(signal.shape, dtype=bool)
    for k in span:
        a = int(round(r[k] + (tm.t_on_s - 0.02) * fs))
        b = int(round(r[k] + (tm.t_end_s + 0.03) * fs)) + 1
        t_ind = _t_wave(signal[list(INDEPENDENT_ROWS), a:b].astype(np.float64), fs)
        d_ind = np.zeros_like(t_ind)
        if axis is not None:
            x, y = _frontal_xy(t_ind[0], t_ind[1])
            along = x * axis[0] + y * axis[1]
            d_i, d_ii = _i_ii_from_xy(-(1 + depth) * along * axis[0], -(1 + depth) * along * axis[1])
            d_ind[0], d_ind[1] = d_i, d_ii
        for name in precordial:
            row = 2 + int(name[1]) - 1
            d_ind[row] = -(1 + depth) * t_ind[row]
        delta[:, a:b] += leads_from_independent(d_ind)
        region[:, a:b] = True
    new, mask = _finish(signal, delta, region)
    cols = np.flatnonzero(mask.any(axis=0))
    event = InjectedEvent("t_inversion", _changed_leads(mask), cols[0] / fs, (cols[-1] + 1) / fs,
                          detail=territory)
    return new, mask, [event]


# ------------------------------------------------------------------------------------------ QRS widening

def inject_qrs_widening(signal: np.ndarray, fs: float, r_peaks: np.ndarray, rng: Rng = 0,
                        *, factor: float | None = None, n_beats: int | None = None,
                        timing: BeatTiming | None = None) -> Injected:
    """Stretch the QRS by ``factor`` (1.5-2.0: ~85 ms -> 130-170 ms) in all leads over a run of beats.

    A piecewise-linear time warp from QRS onset to T end: the QRS is slowed down, the ST-T that follows
    is compressed so the beat ends where it did. The whole warped window is in the mask.
    """
    gen = _generator(rng)
    r = np.asarray(r_peaks, dtype=int)
    tm = _timing(signal, fs, r, timing)
    factor = gen.uniform(1.5, 2.0) if factor is None else float(factor)
    span = _choose_span(gen, _usable_beats(r, signal.shape[1], fs, tm), n_beats)
    delta = np.zeros(signal.shape)
    region = np.zeros(signal.shape, dtype=bool)
    qrs_len = (tm.qrs_off_s - tm.qrs_on_s) * fs
    for k in span:
        a = int(round(r[k] + tm.qrs_on_s * fs))
        b = int(round(r[k] + (tm.t_end_s + 0.02) * fs))
        t = np.arange(a, b + 1, dtype=np.float64)
        knot = a + factor * qrs_len
        src = np.where(t <= knot, a + (t - a) / factor,
                       a + qrs_len + (t - knot) * (b - a - qrs_len) / (b - knot))
        x = signal[:, a:b + 1].astype(np.float64)
        warped = np.stack([np.interp(src, t, row) for row in x])
        delta[:, a:b + 1] = warped - x
        region[:, a:b + 1] = True
    new, mask = _finish(signal, delta, region)
    cols = np.flatnonzero(mask.any(axis=0))
    event = InjectedEvent("qrs_widening", _changed_leads(mask), cols[0] / fs, (cols[-1] + 1) / fs,
                          detail=f"QRS x{factor:.2f} ({qrs_len / fs * 1000:.0f} -> "
                                 f"{factor * qrs_len / fs * 1000:.0f} ms)")
    return new, mask, [event]


# ------------------------------------------------------------------------------------------- AF-like

def _f_waves(rng: np.random.Generator, n: int, fs: float, amplitude_mv: float) -> np.ndarray:
    """Atrial fibrillatory waves (8 independent leads, mV): 4-8 Hz, irregular in rate and amplitude,
    largest in V1 and the inferior leads."""
    t = np.arange(n) / fs
    vec = np.zeros((3, n))
    for direction, weight in ((np.array([-0.15, 0.45, -0.88]), 1.0), (np.array([0.20, 0.50, -0.85]), 0.6)):
        f0 = rng.uniform(4.5, 7.5)
        wander = np.cumsum(rng.normal(0, 15.0, n)) / fs  # Hz drift of the instantaneous frequency
        if n > 101:
            wander = sps.savgol_filter(wander, 101, 1)
        wander = np.clip(wander, -1.5, 1.5)
        phase = 2 * np.pi * np.cumsum(f0 + wander) / fs + rng.uniform(0, 2 * np.pi)
        envelope = 1 + 0.5 * np.sin(2 * np.pi * rng.uniform(0.5, 2.0) * t + rng.uniform(0, 2 * np.pi))
        wave = envelope * (np.sin(phase) + 0.35 * np.sin(2 * phase + 0.8))
        vec += weight * np.outer(direction / np.linalg.norm(direction), wave)
    leads = DIPOLE_TO_LEADS @ vec
    return leads * amplitude_mv / np.abs(leads[2]).max()


def inject_af_like(signal: np.ndarray, fs: float, r_peaks: np.ndarray, rng: Rng = 0, *,
                   n_beats: int | None = None, f_amplitude_mv: float | None = None,
                   timing: BeatTiming | None = None) -> Injected:
    """An AF-like stretch (all leads): P waves removed, fibrillatory f-waves (4-8 Hz, 0.05-0.10 mV in V1)
    added and the QRS-T complexes moved to irregular times (jitter up to +-30 % of the mean RR).

    The stretch runs from the TP segment before its first beat to the TP segment after its last; the
    complexes are cut from the record (chord-corrected) and pasted on the interpolated baseline.
    """
    gen = _generator(rng)
    n = signal.shape[1]
    r = np.asarray(r_peaks, dtype=int)
    tm = _timing(signal, fs, r, timing)
    usable = _usable_beats(r, n, fs, tm)
    inner = usable[(usable >= 1) & (usable <= r.size - 2)]
    inner = inner[np.isin(inner - 1, usable) & np.isin(inner + 1, usable)]
    span = _choose_span(gen, inner, n_beats, min_beats=3)
    first, last = int(span[0]), int(span[-1])
    start = int(round((r[first - 1] + tm.t_end_s * fs + 0.03 * fs + r[first] + tm.p_on_s * fs) / 2))
    stop = int(round((r[last] + tm.t_end_s * fs + 0.03 * fs + r[last + 1] + tm.p_on_s * fs) / 2))
    c_pre, c_post = int(round((-tm.qrs_on_s + 0.02) * fs)), int(round((tm.t_end_s + 0.04) * fs))
    rr = np.median(np.diff(r)) if r.size > 1 else fs
    min_gap = c_pre + c_post + int(0.03 * fs)
    ramp = int(round(0.03 * fs))
    positions = r[span].astype(float)
    for attempt in range(60):
        jitter = 0.30 * (0.93 ** attempt)
        trial = np.sort(r[span] + gen.uniform(-jitter, jitter, span.size) * rr)
        ok = (trial[0] - c_pre >= start + ramp) and (trial[-1] + c_post <= stop - ramp)
        if ok and (span.size < 2 or np.diff(trial).min() >= min_gap):
            positions = trial
            break
    positions = np.round(positions).astype(int)
    length = stop - start
    # baseline through the isoelectric points at the ends of each original complex
    anchors = [start, stop]
    for k in range(first - 1, last + 2):
        anchors += [int(r[k] - c_pre), int(r[k] + c_post)]
    anchors = np.unique(np.clip(anchors, start, stop))
    edge = max(1, int(round(0.008 * fs)))
    levels = np.stack([signal[:, max(0, p - edge):p + edge + 1].mean(axis=1) for p in anchors], axis=1)
    grid = np.arange(start, stop)
    baseline = np.stack([np.interp(grid, anchors, lv) for lv in levels])
    rebuilt = baseline + _independent_noise(gen, signal, fs, length)
    for k, new_r in zip(span, positions):
        seg = signal[:, r[k] - c_pre:r[k] + c_post + 1].astype(np.float64)
        chord = seg[:, :1] + (seg[:, -1:] - seg[:, :1]) * np.linspace(0, 1, seg.shape[1])[None, :]
        lo = new_r - c_pre - start
        rebuilt[:, lo:lo + seg.shape[1]] += seg - chord
    amp = gen.uniform(0.05, 0.10) if f_amplitude_mv is None else float(f_amplitude_mv)
    rebuilt += leads_from_independent(_f_waves(gen, length, fs, amp))
    w = _plateau(length, ramp, ramp)[None, :]
    x = signal[:, start:stop].astype(np.float64)
    delta = np.zeros(signal.shape)
    delta[:, start:stop] = w * (rebuilt - x)
    region = np.zeros(signal.shape, dtype=bool)
    region[:, start:stop] = True
    new, mask = _finish(signal, delta, region)
    event = InjectedEvent("af_like", _changed_leads(mask), start / fs, stop / fs,
                          detail=f"{span.size} beats moved, f-waves {amp:.2f} mV")
    return new, mask, [event]


# ----------------------------------------------------------------------------------------- artefacts

def _electrode_to_leads(electrode: str, potential: np.ndarray) -> np.ndarray:
    """(12, n) lead deltas caused by ``potential`` (mV) on one electrode (Wilson terminal included)."""
    pot = {name: np.zeros_like(potential) for name in ELECTRODES}
    pot[electrode] = potential
    ra, la, ll = pot["RA"], pot["LA"], pot["LL"]
    wct = (ra + la + ll) / 3.0
    rows = [la - ra, ll - ra, ll - la, ra - (la + ll) / 2, la - (ra + ll) / 2, ll - (ra + la) / 2]
    rows += [pot[f"V{i}"] - wct for i in range(1, 7)]
    return np.stack(rows)


def inject_noise_burst(signal: np.ndarray, fs: float, r_peaks: np.ndarray, rng: Rng = 0, *,
                       kind: str | None = None, electrode: str | None = None, duration_s: float | None = None,
                       timing: BeatTiming | None = None) -> Injected:
    """A recording ARTEFACT on one electrode for 0.6-3 s: ``"emg"`` (muscle tremor, 20-150 Hz, 0.03-0.12 mV
    RMS) or ``"motion"`` (electrode motion, 0.3-4 Hz excursions of 0.3-1.0 mV). The leads that use the
    electrode change (a limb electrode also shifts V1-V6 through Wilson's terminal). ``is_artifact=True``.
    """
    del r_peaks, timing  # artefacts do not depend on the heart beat
    gen = _generator(rng)
    n = signal.shape[1]
    kind = str(gen.choice(["emg", "motion"])) if kind is None else kind
    if kind not in ("emg", "motion"):
        raise ValueError(f"noise kind must be 'emg' or 'motion', not {kind!r}")
    if electrode is None:
        electrode = str(gen.choice(ELECTRODES[:3] if kind == "emg" and gen.random() < 0.7 else ELECTRODES))
    duration = gen.uniform(0.6, 3.0) if duration_s is None else float(duration_s)
    length = min(n - 2, int(round(duration * fs)))
    start = int(gen.integers(1, n - length))
    if kind == "emg":
        high = min(150.0, 0.45 * fs)
        sos = sps.butter(4, [20.0, high], btype="bandpass", fs=fs, output="sos")
        raw = sps.sosfiltfilt(sos, gen.standard_normal(length + int(fs)))[int(fs) // 2:][:length]
        raw *= gen.uniform(0.03, 0.12) / raw.std()
        raw *= 1 + 0.6 * np.abs(np.sin(np.pi * np.arange(length) / fs * gen.uniform(1.0, 4.0)))
    else:
        sos = sps.butter(2, [0.3, 4.0], btype="bandpass", fs=fs, output="sos")
        raw = sps.sosfiltfilt(sos, gen.standard_normal(length + int(4 * fs)))[int(2 * fs):][:length]
        raw *= gen.uniform(0.3, 1.0) / np.abs(raw).max()
    potential = raw * _plateau(length, int(0.1 * length), int(0.1 * length))
    delta = np.zeros(signal.shape)
    delta[:, start:start + length] = _electrode_to_leads(electrode, potential)
    region = np.zeros(signal.shape, dtype=bool)
    region[:, start:start + length] = True
    new, mask = _finish(signal, delta, region)
    event = InjectedEvent(f"noise_{kind}", _changed_leads(mask), start / fs, (start + length) / fs,
                          is_artifact=True, detail=f"electrode {electrode}")
    return new, mask, [event]


# ------------------------------------------------------------------------------------------ registry

Injector = Callable[..., Injected]

#: Benchmark abnormality types -> injector. "noise_burst" is the artefact class.
INJECTORS: dict[str, Injector] = {
    "pvc": inject_pvc,
    "st_elevation": inject_st_elevation,
    "st_depression": inject_st_depression,
    "t_inversion": inject_t_inversion,
    "qrs_widening": inject_qrs_widening,
    "af_like": inject_af_like,
    "noise_burst": inject_noise_burst,
}
ABNORMALITY_KINDS: tuple[str, ...] = tuple(INJECTORS)
ARTIFACT_KINDS: frozenset[str] = frozenset({"noise_burst", "noise_emg", "noise_motion"})


def inject(kind: str, signal: np.ndarray, fs: float, r_peaks: np.ndarray, rng: Rng = 0,
           **options: Any) -> Injected:
    """Dispatch to the injector of ``kind`` (one of :data:`ABNORMALITY_KINDS`)."""
    if kind not in INJECTORS:
        raise ValueError(f"unknown abnormality {kind!r}; expected one of {list(INJECTORS)}")
    return INJECTORS[kind](signal, fs, r_peaks, rng, **options)
