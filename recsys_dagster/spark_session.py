"""Builds the one SparkSession from a profile in resources/spark/*.yaml plus overrides.

No Dagster import: the Spark resource, the CLI and the benchmarks all come through here, so a
session is configured the same way wherever it is made.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from . import settings, spark_classes, spark_jar
from .paths import SPARK_PROFILES_DIR

MASTER_ENV = settings.SPARK_MASTER.name
REMOTE_ENV = settings.SPARK_REMOTE.name


@dataclass(frozen=True)
class SparkSettings:
    """Resolved settings: exactly one of master (classic Spark) or remote (Spark Connect)."""

    master: str | None
    remote: str | None
    conf: dict[str, str] = field(default_factory=dict)
    checkpoint_dir: str | None = None
    driver_jar: Path | None = None  # appended to a local driver's class path (spark_jar.py)

    @property
    def is_connect(self) -> bool:
        return self.remote is not None


def available_profiles() -> list[str]:
    return sorted(p.stem for p in SPARK_PROFILES_DIR.glob("*.yaml"))


def load_profile(profile: str) -> dict[str, Any]:
    path = SPARK_PROFILES_DIR / f"{profile}.yaml"
    if not path.exists():
        raise ValueError(
            f"unknown Spark profile {profile!r}: no {path}; available: {available_profiles()}"
        )
    with open(path, encoding="utf-8") as fh:
        return yaml.safe_load(fh) or {}


def resolve_settings(
    profile: str | None = None,
    master: str | None = None,
    remote: str | None = None,
    checkpoint_dir: str | None = None,
    overrides: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
) -> SparkSettings:
    """Explicit arguments win over environment variables, which win over the profile file."""
    prof = load_profile(profile or settings.read(settings.SPARK_PROFILE, env))
    remote = remote or settings.read(settings.SPARK_REMOTE, env) or prof.get("remote")
    master = master or settings.read(settings.SPARK_MASTER, env) or prof.get("master")
    if remote:
        if not str(remote).startswith("sc://"):
            raise ValueError(f"a Spark Connect URL starts with sc://, got {remote!r}")
        master = None
    elif not master:
        raise ValueError(
            f"no Spark master: set {MASTER_ENV} (spark://host:7077, yarn, k8s://...) "
            f"or {REMOTE_ENV} (sc://host:15002), or use the 'local' profile"
        )
    conf = {str(k): str(v) for k, v in (prof.get("conf") or {}).items()}
    conf.update({str(k): str(v) for k, v in (overrides or {}).items()})
    jar = None
    if not remote:
        conf = spark_classes.with_archive(conf, env)
        conf, jar = spark_jar.for_local_driver(conf, master, env)
    ckpt = (
        checkpoint_dir
        or settings.read(settings.SPARK_CHECKPOINT_DIR, env)
        or prof.get("checkpoint_dir")
        or os.path.join(settings.read(settings.DATA_DIR, env), "_spark_checkpoints")
    )
    return SparkSettings(master=master, remote=remote, conf=conf, checkpoint_dir=ckpt,
                         driver_jar=jar)


_SESSIONS: list = []


def stop_sessions() -> None:
    """Stop every session this process built. A Spark Connect client left open keeps the
    interpreter from exiting (its gRPC threads), so command-line entry points call this."""
    while _SESSIONS:
        try:
            _SESSIONS.pop().stop()
        except Exception:  # already stopped, or the server is gone
            pass


def _launch_with(jar: Path) -> bool:
    """Append the jar to the class path of the driver JVM this process launches next; False
    when the process already has a JVM, started without it (its classes cannot be named)."""
    from pyspark import SparkContext

    if SparkContext._gateway is not None:
        return spark_jar.on_class_path(SparkContext._jvm, jar)
    name = spark_jar.LAUNCH_CLASS_PATH
    os.environ[name] = spark_jar.launch_class_path(os.environ.get(name, ""), jar)
    return True


def build_session(settings: SparkSettings):
    """Create (or join) the SparkSession these settings describe and set its checkpoint dir.

    ALS needs a checkpoint directory: without one Spark silently ignores checkpointInterval and
    long runs die of StackOverflowError from ever-growing lineage.
    """
    from pyspark.sql import SparkSession

    if not settings.is_connect:
        # Python workers must run the interpreter that has our packages (the venv), not
        # whatever `python3` is first on PATH. On a cluster, set PYSPARK_PYTHON to the
        # executors' interpreter instead.
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = SparkSession.builder
    if settings.is_connect:
        builder = builder.remote(settings.remote)
    else:
        builder = builder.master(settings.master)
        if settings.checkpoint_dir:
            builder = builder.config("spark.checkpoint.dir", settings.checkpoint_dir)
    conf = settings.conf
    if settings.driver_jar is not None and not _launch_with(settings.driver_jar):
        conf = {k: v for k, v in conf.items() if k != spark_jar.FS_KEY}
    for key, value in conf.items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    _SESSIONS.append(session)
    if not settings.is_connect and settings.checkpoint_dir:
        if "://" not in settings.checkpoint_dir:
            os.makedirs(settings.checkpoint_dir, exist_ok=True)
        session.sparkContext.setCheckpointDir(settings.checkpoint_dir)
        session.sparkContext.setLogLevel("WARN")
    return session
