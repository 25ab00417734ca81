"""The Dagster instance folders: the deployment's ($RECSYS_DEPLOY_DIR/dagster_home, with
deploy/dagster.yaml) and the development one ($DAGSTER_HOME of `make demo`, `make ui` and the
CLI, with deploy/dagster.dev.yaml)."""

from __future__ import annotations

import os
import shutil

from ..paths import REPO_ROOT

DEPLOY_FILES = REPO_ROOT / "deploy"
PRODUCTION_YAML = DEPLOY_FILES / "dagster.yaml"
DEVELOPMENT_YAML = DEPLOY_FILES / "dagster.dev.yaml"
WORKSPACE_YAML = DEPLOY_FILES / "workspace.yaml"
SETTINGS_ENV = DEPLOY_FILES / "deployment.env"
INSTANCE_FILE = "dagster.yaml"


def ensure_home(home: str, template=DEVELOPMENT_YAML) -> str:
    """Make `home` a Dagster home with the template's dagster.yaml, unless it has one already
    (a person's own file is never replaced). Returns the home."""
    os.makedirs(home, exist_ok=True)
    target = os.path.join(home, INSTANCE_FILE)
    if not os.path.exists(target):
        shutil.copyfile(template, target)
    return home


def read_env_file(path=SETTINGS_ENV) -> dict[str, str]:
    """KEY=VALUE lines (comments and blank lines ignored) of the deployment's settings file."""
    values = {}
    if not os.path.exists(path):
        return values
    with open(path, encoding="utf-8") as fh:
        for number, line in enumerate(fh, 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            if "=" not in line:
                raise ValueError(f"{path}:{number}: expected KEY=VALUE, got {line!r}")
            key, value = line.split("=", 1)
            values[key.strip()] = value.strip()
    return values
