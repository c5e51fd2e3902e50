"""A human-readable summary of one record (what ``ecglens info FILE`` prints)."""

from __future__ import annotations

import numpy as np

from ..types import EcgRecord

#: Peak-to-peak below this (mV) over the whole record: the lead is called flat (electrode off?).
FLAT_PEAK_TO_PEAK_MV = 0.02
#: Share of samples sitting exactly at the lead's min or max beyond which it is called saturated.
SATURATED_SHARE = 0.05


def lead_sanity(samples: np.ndarray) -> str:
    """One word for a lead's samples (mV): "ok", "missing", "NaN (k samples)", "flat" or "saturated"."""
    finite = np.isfinite(samples)
    if not finite.any():
        return "missing"
    values = samples[finite]
    problems = []
    if not finite.all():
        problems.append(f"NaN ({int((~finite).sum())} samples)")
    low, high = float(values.min()), float(values.max())
    if high - low < FLAT_PEAK_TO_PEAK_MV:
        problems.append("flat")
    else:
        at_rails = np.count_nonzero(values == low) + np.count_nonzero(values == high)
        if at_rails / values.size > SATURATED_SHARE:
            problems.append("saturated")
    return ", ".join(problems) or "ok"


def describe(record: EcgRecord) -> str:
    """Multi-line summary: format, fs (Hz), duration (s), leads (derived/missing), age/sex, acquisition
    time, and per lead its range (mV) and sanity (ok / flat / saturated / missing / NaN).

    Never prints patient identifiers.
    """
    sex = {"M": "male", "F": "female"}.get(record.patient.sex or "", "unknown")
    age = f"{record.patient.age:g} years" if record.patient.age is not None else "unknown"
    lines = [
        f"File:      {record.source.path or '(in memory)'}",
        f"Format:    {record.source.format}",
        f"Sampling:  {record.fs:g} Hz, {record.n_samples} samples, {record.duration_s:.2f} s",
        f"Patient:   age {age}, sex {sex}",
        f"Acquired:  {record.acquired.isoformat(sep=' ') if record.acquired else 'unknown'}",
        f"Leads:     {', '.join(record.leads)}",
        f"Derived:   {', '.join(record.derived_leads) or 'none'}",
        f"Missing:   {', '.join(record.missing_leads) or 'none'}",
    ]
    extra = record.metadata.get("extra_leads") or {}
    if extra:
        lines.append(f"Extra:     {', '.join(extra)} (non-standard, kept aside)")
    lines.append("Per lead (min / max mV, sanity):")
    for name, samples in zip(record.leads, record.signal):
        finite = samples[np.isfinite(samples)]
        span = f"{finite.min():7.3f} / {finite.max():7.3f}" if finite.size else "    -   /    -   "
        tag = " (derived)" if name in record.derived_leads else ""
        lines.append(f"  {name:<4} {span}  {lead_sanity(samples)}{tag}")
    if record.warnings:
        lines.append("Warnings:")
        lines.extend(f"  - {message}" for message in record.warnings)
    return "\n".join(lines)
