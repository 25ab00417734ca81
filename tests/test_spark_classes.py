"""The local Spark driver's class-data sharing archive (recsys_dagster/spark_classes.py): given
to a classic driver only when it exists, mapped by the suite's own driver (`make setup` built
it), and a broken one ignored by the JVM."""

import subprocess

from recsys_dagster import settings, spark_classes
from recsys_dagster.spark_session import resolve_settings

JAVA_OPTIONS = spark_classes.JAVA_OPTIONS


def options(profile: str, env: dict, **kwargs) -> str:
    return resolve_settings(profile=profile, env=env, **kwargs).conf.get(JAVA_OPTIONS, "")


def test_a_classic_driver_gets_the_archive_only_when_there_is_one(tmp_path):
    archive = tmp_path / "spark-driver.jsa"
    env = {settings.SPARK_CLASS_ARCHIVE.name: str(archive)}
    assert options("test", env) == ""  # no file yet: nothing added
    archive.write_bytes(b"an archive")
    assert options("test", env) == f"-XX:SharedArchiveFile={archive}"
    # Added after the profile's own options, which stay.
    small = options("small", env)
    assert small.startswith("-XX:TieredStopAtLevel=1 ") and small.endswith(
        f" -XX:SharedArchiveFile={archive}")
    # Never twice, never beside an archive being dumped, never to a Spark Connect client (its
    # driver is the server's).
    own = "-XX:SharedArchiveFile=/elsewhere.jsa"
    assert options("test", env, overrides={JAVA_OPTIONS: own}) == own
    dump = "-XX:ArchiveClassesAtExit=/tmp/new.jsa"
    assert options("test", env, overrides={JAVA_OPTIONS: dump}) == dump
    assert options("connect", {**env, "RECSYS_SPARK_REMOTE": "sc://127.0.0.1:15002"}) == ""
    # Switched off.
    assert options("test", {settings.SPARK_CLASS_ARCHIVE.name: "off"}) == ""
    assert spark_classes.archive_path({settings.SPARK_CLASS_ARCHIVE.name: "OFF"}) is None
    assert spark_classes.archive_path({}) == spark_classes.DEFAULT_ARCHIVE


def test_the_suites_driver_maps_the_archive_make_setup_built(spark):
    archive = spark_classes.archive_path()
    assert archive is not None and archive.is_file(), (
        f"no class archive at {archive}: `make setup` (scripts/bootstrap.sh) builds it")
    assert f"-XX:SharedArchiveFile={archive}" in spark.sparkContext.getConf().get(JAVA_OPTIONS)
    pid = spark.sparkContext._jvm.java.lang.ProcessHandle.current().pid()
    with open(f"/proc/{pid}/maps") as fh:
        mapped = {line.split()[-1] for line in fh if len(line.split()) == 6}
    # The JVM maps an archive only once its header matched this Java.
    assert str(archive) in mapped


def test_a_broken_archive_is_ignored_by_the_jvm(tmp_path):
    junk = tmp_path / "junk.jsa"
    junk.write_bytes(bytes(range(256)) * 4000)
    java = ["java", f"-XX:SharedArchiveFile={junk}", "-version"]
    # With sharing required (-Xshare:on), the JVM reads the file, refuses it and stops...
    strict = subprocess.run(java[:1] + ["-Xshare:on"] + java[1:], capture_output=True,
                            text=True, timeout=60)
    assert strict.returncode != 0 and "shared archive" in strict.stdout + strict.stderr
    # ...and as the driver is given it (sharing where it can), the JVM starts without it.
    done = subprocess.run(java, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "version" in done.stderr, done.stderr
