"""Saving and loading a model bundle: one ``.pt`` file of tensors + plain values, loaded weights-only.

A bundle holds ``name``, ``version``, ``kind``, ``config`` (dict), ``state_dict`` and ``extras``
(calibration tensors, label lists...). ``resources/models/manifest.json`` records the sha256 of every
shipped bundle; a file whose hash differs is refused as corrupted, never loaded silently.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import torch

from ..errors import ModelLoadError
from ..resources import models_dir

MANIFEST = "manifest.json"


def sha256_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def save_bundle(
    path: str | Path,
    *,
    name: str,
    version: str,
    kind: str,
    config: dict[str, Any],
    state_dict: dict[str, torch.Tensor],
    extras: dict[str, Any],
) -> str:
    """Write a bundle atomically; returns its sha256."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "name": name,
        "version": version,
        "kind": kind,
        "config_json": json.dumps(config),
        "state_dict": {k: v.detach().cpu().contiguous() for k, v in state_dict.items()},
        "extras": extras,
    }
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(payload, tmp)
    os.replace(tmp, path)
    return sha256_file(path)


def expected_sha256(path: Path) -> str | None:
    manifest = path.parent / MANIFEST
    if not manifest.is_file():
        return None
    try:
        entries = json.loads(manifest.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise ModelLoadError(f"{manifest}: the model manifest is unreadable ({err}).") from err
    entry = entries.get(path.name)
    return entry.get("sha256") if isinstance(entry, dict) else None


def record_in_manifest(path: str | Path, sha256: str, **info: Any) -> None:
    """Add or update the manifest entry (sha256 and descriptive fields) of a bundle file."""
    path = Path(path)
    manifest = path.parent / MANIFEST
    entries = json.loads(manifest.read_text()) if manifest.is_file() else {}
    entries[path.name] = {"sha256": sha256, **info}
    manifest.write_text(json.dumps(entries, indent=2, sort_keys=True) + "\n")


def load_bundle(path: str | Path, expected_kind: str | None = None) -> tuple[dict[str, Any], str]:
    """Load a bundle safely (``weights_only=True``) and check its hash against the manifest.

    Returns (payload with ``config`` parsed, sha256). Raises :class:`ModelLoadError` with a clear
    sentence when the file is missing, corrupted, tampered with, or of the wrong kind.
    """
    path = Path(path)
    if not path.is_file():
        raise ModelLoadError(
            f"{path}: the model weights file is missing; reinstall ECG Lens or retrain the model."
        )
    sha = sha256_file(path)
    expected = expected_sha256(path)
    if expected is not None and expected != sha:
        raise ModelLoadError(
            f"{path}: the model weights file is corrupted (sha256 {sha[:12]}... does not match "
            f"the manifest's {expected[:12]}...); reinstall ECG Lens."
        )
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
        payload["config"] = json.loads(payload.pop("config_json"))
    except Exception as err:  # torch raises many types for a damaged zip/pickle
        raise ModelLoadError(
            f"{path}: the model weights file cannot be read ({type(err).__name__}); "
            "it is damaged or not an ECG Lens model."
        ) from err
    if expected_kind is not None and payload.get("kind") != expected_kind:
        raise ModelLoadError(
            f"{path}: this is a '{payload.get('kind')}' model, not the expected '{expected_kind}'."
        )
    return payload, sha


def default_model_path(filename: str) -> Path:
    return models_dir() / filename
