"""The project's jar for a local Spark driver (recsys_dagster/spark_jar.py): a local file system
that sets permissions through java.nio, as Hadoop's own would set them but with no `chmod`
process; given to a local driver only when `make setup` built it, appended to its class path."""

import io
import os
import zipfile

from recsys_dagster import settings, spark_jar
from recsys_dagster.spark_session import resolve_settings

FS_KEY = spark_jar.FS_KEY


def resolved(profile: str, env: dict, **kwargs):
    return resolve_settings(profile=profile, env=env, **kwargs)


def test_a_local_driver_gets_the_file_system_only_when_there_is_a_jar(tmp_path):
    jar = tmp_path / "recsys-spark.jar"
    env = {settings.SPARK_JAR.name: str(jar)}
    nothing = resolved("test", env)
    assert FS_KEY not in nothing.conf and nothing.driver_jar is None  # no file yet
    jar.write_bytes(b"a jar")
    local = resolved("test", env)
    assert local.conf[FS_KEY] == spark_jar.LOCAL_FS_CLASS and local.driver_jar == jar
    assert resolved("small", env).driver_jar == jar
    # A profile's own file system wins; a cluster's executors would lack the jar; a Spark
    # Connect client has no driver of its own; `off` is off.
    own = resolved("test", env, overrides={FS_KEY: "org.apache.hadoop.fs.LocalFileSystem"})
    assert own.conf[FS_KEY] == "org.apache.hadoop.fs.LocalFileSystem" and own.driver_jar is None
    cluster = resolved("test", env, master="spark://127.0.0.1:7077")
    assert FS_KEY not in cluster.conf and cluster.driver_jar is None
    remote = resolved("connect", {**env, "RECSYS_SPARK_REMOTE": "sc://127.0.0.1:15002"})
    assert FS_KEY not in remote.conf and remote.driver_jar is None
    off = resolved("test", {settings.SPARK_JAR.name: "off"})
    assert FS_KEY not in off.conf and off.driver_jar is None
    assert spark_jar.jar_path({}) == spark_jar.DEFAULT_JAR


def processes_started() -> int:
    """Processes forked on the whole machine since it booted."""
    with open("/proc/stat") as fh:
        return next(int(line.split()[1]) for line in fh if line.startswith("processes "))


def test_the_suites_driver_sets_permissions_as_hadoop_does_without_a_process(spark, tmp_path):
    jar = spark_jar.jar_path()
    assert jar is not None and jar.is_file(), (
        f"no jar at {jar}: `make setup` (scripts/bootstrap.sh) builds it")
    jvm = spark.sparkContext._jvm
    # Last on the class path: the class archive's (Spark's own) path stays its prefix.
    assert jvm.java.lang.System.getProperty("java.class.path").split(os.pathsep)[-1] == str(jar)
    conf = spark.sparkContext._jsc.hadoopConfiguration()
    ours = jvm.org.apache.hadoop.fs.FileSystem.getLocal(conf)
    assert ours.getRawFileSystem().getClass().getName() == spark_jar.LOCAL_FS_CLASS + "$Raw"
    stock = jvm.org.apache.hadoop.fs.RawLocalFileSystem()
    stock.initialize(jvm.java.net.URI.create("file:///"), conf)
    fs_path, perm = jvm.org.apache.hadoop.fs.Path, jvm.org.apache.hadoop.fs.permission.FsPermission

    def modes(fs, folder) -> list[int]:
        """What each step of a write does to permissions, as the file system sets them."""
        base = str(tmp_path / folder)
        fs.mkdirs(fs_path(base + "/a/b"), perm(0o750))
        fs.create(fs_path(base + "/a/b/part.parquet"), True).close()
        out = [os.stat(p).st_mode & 0o7777 for p in (base + "/a", base + "/a/b",
                                                    base + "/a/b/part.parquet")]
        for mode in (0o640, 0o000, 0o755, 0o1777):  # the last with the sticky bit
            fs.setPermission(fs_path(base + "/a/b"), perm(mode))
            out.append(os.stat(base + "/a/b").st_mode & 0o7777)
        return out

    want = modes(stock, "stock")
    assert modes(ours.getRawFileSystem(), "ours") == want
    assert want[-4:] == [0o640, 0o000, 0o755, 0o1777]
    # Hadoop's own starts a `chmod` for each; ours none (the machine's count of forks, which
    # the other worker's processes may raise by a few in these milliseconds).
    target = fs_path(str(tmp_path / "ours" / "a" / "b" / "part.parquet"))
    raw, mode, calls = ours.getRawFileSystem(), perm(0o640), 300
    before = processes_started()
    for _ in range(calls):
        raw.setPermission(target, mode)
    assert processes_started() - before < calls / 3
    before = processes_started()
    for _ in range(30):
        stock.setPermission(target, mode)
    assert processes_started() - before >= 30  # the check above can fail


def test_build_compiles_the_sources_or_says_why_not(tmp_path, monkeypatch):
    jar = spark_jar.build(tmp_path / "built.jar")
    with zipfile.ZipFile(jar) as built:
        names = set(built.namelist())
    assert {"recsys/dagster/NioLocalFileSystem.class",
            "recsys/dagster/NioLocalFileSystem$Raw.class"} <= names
    # A Java runtime only: no jar, an old one removed (its classes may predate the sources),
    # and a message; the driver then gets Spark's own file system.
    monkeypatch.setenv("PATH", str(tmp_path / "no-jdk"))
    said = io.StringIO()
    assert spark_jar.build(jar, log=said) is None
    assert not jar.exists() and "no javac" in said.getvalue()
    assert FS_KEY not in resolved("test", {settings.SPARK_JAR.name: str(jar)}).conf
