"""A class-data sharing archive for the local Spark driver's JVM: its start without loading,
parsing and verifying Spark's classes one by one.

A local driver loads thousands of classes from Spark's jars, on its start and in its first
queries, every time: the demo's run, each run a deployment's daemon launches (a fresh
process each), each session of the test suite. Java's class-data sharing (JEP 350, dynamic
CDS archives, Java 13+) keeps them parsed and verified in a file the JVM maps at start.

- `make setup` builds the archive once (`python -m recsys_dagster.spark_classes build`, right
  after the project's jar: spark_jar.py): a JVM started with `-XX:ArchiveClassesAtExit` runs
  a query of each kind the pipeline runs, on generated plays, compiled (the `small` profile)
  and then interpreted (the `test` profile), and writes the classes it loaded when it exits;
- `resolve_settings` hands it to every classic (not Spark Connect) driver it configures
  (`-XX:SharedArchiveFile`), when the file exists.

Nothing depends on it: the JVM checks the archive against itself and the jars on its class
path (their sizes and times), and without a word starts as before when they differ (another
Java, Spark reinstalled, a missing file). No Dagster import here (nor in the build's workload).
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

from . import settings, spark_jar

DEFAULT_ARCHIVE = Path(sys.prefix) / "share" / "recsys-dagster" / "spark-driver.jsa"
OPTION = "-XX:SharedArchiveFile="
DUMP_OPTION = "-XX:ArchiveClassesAtExit="
JAVA_OPTIONS = "spark.driver.extraJavaOptions"
# The workload: queries of the kinds the pipeline runs, on generated plays, in the session of
# the `small` profile, compiled and then interpreted (the `test` profile's mode).
WORKLOAD_PROFILE = "small"
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
    env = {**os.environ, settings.SPARK_PROFILE.name: WORKLOAD_PROFILE,
           settings.SPARK_CLASS_ARCHIVE.name: settings.OFF,
           # Spark's own class path only: the project's jar (spark_jar.py), appended to a
           # local driver's, would not be on the cluster's JVMs' that map the archive too.
           settings.SPARK_JAR.name: settings.OFF,
           settings.SPARK_CHECKPOINT_DIR.name: str(work / "checkpoints")}
    env.pop("JDK_JAVA_OPTIONS", None)  # the archive is the driver's; JIT options don't matter
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
    """The archive's workload, in its own process; then wait for its JVM to exit (it writes
    the archive as it does)."""
    from pyspark import SparkContext

    from .spark_session import build_session, resolve_settings

    resolved = resolve_settings()
    options = f"{resolved.conf.get(JAVA_OPTIONS, '')} {DUMP_OPTION}{dumped}".strip()
    session = build_session(resolve_settings(overrides={JAVA_OPTIONS: options}))
    plays = generated_plays()
    for n, conf in enumerate(({}, NO_CODEGEN)):
        for key, value in conf.items():
            session.conf.set(key, value)
        queries(session, plays, os.path.join(work, str(n)))
    gateway = SparkContext._gateway
    session.stop()
    gateway.shutdown()
    gateway.proc.stdin.close()  # the JVM exits when its stdin closes, writing the archive
    gateway.proc.wait(timeout=600)


def generated_plays(rows: int = 5000):
    """Random plays with the pipeline's column types: ids, counts, scores, times, names."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(0)
    seconds = rng.integers(0, 7 * 86400, rows)
    return pd.DataFrame({
        "user_id": rng.integers(0, 300, rows), "item_id": rng.integers(0, 500, rows),
        "plays": rng.integers(1, 50, rows).astype("int32"),
        "score": rng.random(rows).astype("float32"),
        "ts": pd.Timestamp("2024-03-24") + pd.to_timedelta(seconds, unit="s"),
        "name": [f"song {i}" for i in rng.integers(0, 500, rows)]})


def queries(session, plays, folder: str) -> None:
    """A query of each kind the pipeline runs: Arrow both ways, day-partitioned Parquet
    written and read with its schema, aggregations, joins (broadcast too), windows, pandas
    functions in Python workers, explode, distinct, sort, sampling. On a pipeline run's
    classes: benchmarks/README.md, "Small runs"."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    frame = session.createDataFrame(plays).withColumn("day", F.to_date("ts"))
    frame.write.partitionBy("day").parquet(folder)
    read = session.read.schema(frame.schema).parquet(folder)
    per_user = read.groupBy("user_id").agg(
        F.count("*").alias("n"), F.sum("plays"), F.avg("score"), F.max("ts"),
        F.collect_list("item_id"))
    names = F.broadcast(read.select("item_id", "name").distinct())
    joined = read.join(per_user, "user_id").join(names, "item_id", "left")
    ranked = joined.withColumn("rank", F.row_number().over(
        Window.partitionBy("user_id").orderBy(F.desc("score"))))
    ranked.filter("rank <= 5").toPandas()
    read.groupBy("item_id").applyInPandas(lambda g: g.head(2), read.schema).count()
    read.mapInPandas(lambda batches: (b[b.plays > 3] for b in batches), read.schema).count()
    read.select(F.explode(F.array("user_id", "item_id")).alias("id")).distinct().count()
    read.unionByName(read).dropDuplicates(["user_id", "item_id"]).orderBy("user_id") \
        .limit(10).collect()
    read.sample(0.5, seed=1).randomSplit([0.8, 0.2], seed=1)[0].count()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("build", help="build the project's jar (spark_jar.py), then the archive, "
                   "where the driver looks for them")
    run = sub.add_parser("workload", help=argparse.SUPPRESS)
    run.add_argument("dumped")
    run.add_argument("work")
    args = parser.parse_args(argv)
    if args.command == "workload":
        workload(args.dumped, args.work)
        return 0
    jar = spark_jar.jar_path()
    if jar is not None:
        try:
            spark_jar.build(jar)
        except RuntimeError as failed:  # the archive does not need it: build that still
            jar.unlink(missing_ok=True)
            print(f"[spark jar] not built: {failed}", file=sys.stderr)
    path = archive_path()
    if path is None:
        print(f"[class archive] not built: ${settings.SPARK_CLASS_ARCHIVE.name} is off",
              file=sys.stderr)
        return 0
    build(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
