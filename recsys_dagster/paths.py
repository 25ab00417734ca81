"""Where things live: the repository's resources folder and the data base directory."""

from __future__ import annotations

import os
from pathlib import Path

from . import settings

PACKAGE_DIR = Path(__file__).resolve().parent
REPO_ROOT = PACKAGE_DIR.parent
RESOURCES_DIR = REPO_ROOT / "resources"
SPARK_PROFILES_DIR = RESOURCES_DIR / "spark"
SEED_EXAMPLE_CSV = RESOURCES_DIR / "data" / "seed_example.csv"

DATA_DIR_ENV = settings.DATA_DIR.name


def data_dir() -> str:
    """The base directory for every output table: $RECSYS_DATA_DIR, else ./data."""
    return settings.read(settings.DATA_DIR)


def resolve_resource_path(path: str) -> str:
    """A relative path that names a file under resources/ resolves there; others stay as given."""
    if os.path.isabs(path) or os.path.exists(path):
        return os.path.abspath(path)
    candidate = REPO_ROOT / path
    return str(candidate) if candidate.exists() else os.path.abspath(path)
