"""Where bundled resources (models, model cards, taxonomy, examples) live at run time."""

from __future__ import annotations

import os
import sys
from pathlib import Path


def resources_dir() -> Path:
    """The ``resources/`` folder: ``$ECGLENS_RESOURCES``, the frozen app's bundle, or the source tree."""
    env = os.environ.get("ECGLENS_RESOURCES")
    if env:
        return Path(env)
    frozen = getattr(sys, "_MEIPASS", None)
    if frozen:
        return Path(frozen) / "resources"
    return Path(__file__).resolve().parent.parent / "resources"


def models_dir() -> Path:
    return resources_dir() / "models"


def examples_dir() -> Path:
    return resources_dir() / "examples"
