"""Shared test fixtures: where the real data lives, and offscreen Qt."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("OMP_NUM_THREADS", "2")

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data`` beside the checkout; skips the test with a reason where it is absent."""
    if not (SHARED_DATA / "README.md").exists():
        pytest.skip(f"real ECG data not found at {SHARED_DATA} (clone the project beside ../shared/data)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def ptbxl_dir(shared_data: Path) -> Path:
    return shared_data / "ptbxl"
