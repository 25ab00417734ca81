"""A class-data sharing archive for the local Spark driver's JVM: its start without loading,
parsing and verifying Spark's classes one by one.

A local driver loads thousands of classes from Spark's jars, on its start and in its first
queries, every time: the demo's run, each run a deployment's daemon launches (a fresh
process each), each session of the test suite. Java's class-data sharing (JEP 350, dynamic
CDS archives, Java 13+) keeps them parsed and verified in a file the JVM maps at start.

- `make setup` builds the archive once (`python -m recsys_dagster.spark_classes build`): a
  short pipeline run on generated data with `-XX:ArchiveClassesAtExit`, the JVM writing the
  classes it loaded when it exits, code generation on and then off (the `small` and `test`
  profiles), so both kinds of query have their classes in it;
- `resolve_settings` hands it to every classic (not Spark Connect) driver it configures
  (`-XX:SharedArchiveFile`), when the file exists.

Nothing depends on it: the JVM checks the archive against itself and the jars on its class
path (their sizes and times), and without a word starts as before when they differ (another
Java, Spark reinstalled, a missing file). No Dagster import here (the build's workload imports
the CLI when it runs).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path

import yaml

from . import settings

DEFAULT_ARCHIVE = Path(sys.prefix) / "share" / "recsys-dagster" / "spark-driver.jsa"
OPTION = "-XX:SharedArchiveFile="
DUMP_OPTION = "-XX:ArchiveClassesAtExit="
JAVA_OPTIONS = "spark.driver.extraJavaOptions"
# The workload: the demo's config on a week of its calendar and a sixth of its listeners, with
# the `small` profile (the classes a run loads do not depend on its data's size); so little data
# is too little to judge a model, so the gates only report.
WORKLOAD_PROFILE = "small"
WORKLOAD_CALENDAR = {"RECSYS_CALENDAR_START": "2024-03-24", "RECSYS_CALENDAR_END": "2024-03-31"}
NO_CODEGEN = {"spark.sql.codegen.wholeStage": "false",
              "spark.sql.codegen.factoryMode": "NO_CODEGEN"}


def archive_path(env: Mapping[str, str] | None = None) -> Path | None:
    """Where the archive is (or is built): $RECSYS_SPARK_CLASS_ARCHIVE, else the venv's; None
    when that setting says `off`."""
    chosen = settings.read(settings.SPARK_CLASS_ARCHIVE, env)
    if chosen == settings.OFF:
        return None
    return Path(chosen) if chosen else DEFAULT_ARCHIVE


def with_archive(conf: dict[str, str], env: Mapping[str, str] | None = None) -> dict[str, str]:
    """conf with the archive added to the driver's Java options, when it exists and the conf
    names no archive of its own."""
    path = archive_path(env)
    options = conf.get(JAVA_OPTIONS, "")
    if path is None or not path.is_file() or OPTION in options or DUMP_OPTION in options:
        return conf
    return {**conf, JAVA_OPTIONS: f"{options} {OPTION}{path}".strip()}


def build(path: Path, log=sys.stderr) -> Path:
    """Run the workload in a fresh process whose JVM writes the archive when it exits; put it
    at `path` (replacing the old one only once the new one is whole)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="recsys-class-archive-"))
    dumped = work / "spark-driver.jsa"
    env = {**os.environ, **WORKLOAD_CALENDAR,
           "RECSYS_SPARK_PROFILE": WORKLOAD_PROFILE, settings.SPARK_CLASS_ARCHIVE.name: "off",
           "DAGSTER_HOME": str(work / "dagster_home"),
           "RECSYS_SPARK_CHECKPOINT_DIR": str(work / "checkpoints")}
    env.pop("JDK_JAVA_OPTIONS", None)  # the archive is the driver's; JIT options don't matter
    (work / "dagster_home").mkdir()
    try:
        with open(work / "workload.log", "w") as out:
            done = subprocess.run([sys.executable, "-m", "recsys_dagster.spark_classes", "workload",
                                   str(dumped), str(work)],
                                  env=env, stdout=out, stderr=subprocess.STDOUT)
        if done.returncode != 0 or not dumped.is_file() or dumped.stat().st_size == 0:
            tail = (work / "workload.log").read_text()[-3000:]
            raise RuntimeError(f"the class archive's workload failed (exit {done.returncode})"
                               f":\n{tail}")
        staged = path.with_name(path.name + ".new")
        shutil.move(str(dumped), staged)
        os.replace(staged, path)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"[class archive] {path}: {path.stat().st_size / 2**20:.0f} MiB", file=log)
    return path


def workload(dumped: str, work: str) -> None:
    """The archive's workload, in its own process: the pipeline through the CLI, with code
    generation and then without, in one JVM; then wait for that JVM to exit (it writes the
    archive as it does)."""
    from pyspark import SparkContext

    from . import cli
    from .paths import RESOURCES_DIR
    from .spark_session import build_session, resolve_settings

    resolved = resolve_settings()
    options = f"{resolved.conf.get(JAVA_OPTIONS, '')} {DUMP_OPTION}{dumped}".strip()
    session = build_session(resolve_settings(overrides={JAVA_OPTIONS: options}))
    with open(RESOURCES_DIR / "config" / "demo.yaml", encoding="utf-8") as fh:
        config = yaml.safe_load(fh)
    config["ops"]["ingest_play_logs"]["config"]["synthetic"].update(n_users=300, n_items=500)
    for step in ("evaluation_metrics", "artist_evaluation"):
        config["ops"].setdefault(step, {}).setdefault("config", {})["gate"] = False
    path = os.path.join(work, "workload.yaml")
    with open(path, "w", encoding="utf-8") as fh:
        yaml.safe_dump(config, fh)
    for n, conf in enumerate(({}, NO_CODEGEN)):
        for key, value in conf.items():
            session.conf.set(key, value)
        code = cli.main(["run", "--config", path, "--data-dir", os.path.join(work, str(n))])
        if code != 0:
            raise SystemExit(f"the workload's run {n} ended with {code}")
    gateway = SparkContext._gateway
    session.stop()
    gateway.shutdown()
    gateway.proc.stdin.close()  # the JVM exits when its stdin closes, writing the archive
    gateway.proc.wait(timeout=600)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("build", help="build the archive where the driver looks for it")
    run = sub.add_parser("workload", help=argparse.SUPPRESS)
    run.add_argument("dumped")
    run.add_argument("work")
    args = parser.parse_args(argv)
    if args.command == "workload":
        workload(args.dumped, args.work)
        return 0
    path = archive_path()
    if path is None:
        print(f"[class archive] not built: ${settings.SPARK_CLASS_ARCHIVE.name} is off",
              file=sys.stderr)
        return 0
    build(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
