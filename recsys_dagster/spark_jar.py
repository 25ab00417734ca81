"""The project's own JVM classes for a local Spark driver, in a jar `make setup` compiles.

One class: `recsys.dagster.NioLocalFileSystem` (jvm/NioLocalFileSystem.java), Hadoop's local
file system, checksum files and all, except that it sets permissions through java.nio. Without
Hadoop's native library (pyspark ships none) the stock one runs `chmod` in a new process for
every file and folder a write creates (each Parquet part file, its checksum file, the
committer's folders): hundreds of processes forked from the driver's JVM in a small pipeline
run (benchmarks/README.md, "Small runs").

- `build` compiles it with the JDK's `javac` against the Hadoop API jar pyspark ships. With a
  Java runtime only (no `javac`) there is no jar, and Spark runs as before.
- `for_local_driver` (called by `spark_session.resolve_settings`) names the class as a local
  driver's `file:` system and says which jar to add, when the jar exists and the profile names
  no `file:` system of its own. A cluster's executors would need the jar too: only `local`
  masters get it.
- `spark_session.build_session` appends the jar to the class path of the driver JVM it is
  about to launch (`SPARK_DIST_CLASSPATH`, which Spark's launcher puts last). Last, because
  the class archive (spark_classes.py) is dumped with Spark's own class path, which must stay
  a prefix of a JVM's for the JVM to map it.

No Dagster import.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Mapping
from pathlib import Path

from . import settings

DEFAULT_JAR = Path(sys.prefix) / "share" / "recsys-dagster" / "recsys-spark.jar"
SOURCES = Path(__file__).parent / "jvm"
LOCAL_FS_CLASS = "recsys.dagster.NioLocalFileSystem"
FS_KEY = "spark.hadoop.fs.file.impl"
LAUNCH_CLASS_PATH = "SPARK_DIST_CLASSPATH"


def jar_path(env: Mapping[str, str] | None = None) -> Path | None:
    """Where the jar is (or is built): $RECSYS_SPARK_JAR, else the venv's; None when that
    setting says `off`."""
    chosen = settings.read(settings.SPARK_JAR, env)
    if chosen == settings.OFF:
        return None
    return Path(chosen) if chosen else DEFAULT_JAR


def for_local_driver(conf: dict[str, str], master: str | None,
                     env: Mapping[str, str] | None = None) -> tuple[dict[str, str], Path | None]:
    """(conf, jar): conf naming the project's local file system and the jar to add to the
    driver's class path, or (conf, None) unchanged when the master is not local, there is no
    jar, or the conf names a `file:` system of its own."""
    path = jar_path(env)
    if (not str(master or "").startswith("local") or path is None or not path.is_file()
            or FS_KEY in conf):
        return conf, None
    return {**conf, FS_KEY: LOCAL_FS_CLASS}, path


def launch_class_path(current: str, jar: Path) -> str:
    """$SPARK_DIST_CLASSPATH for the next driver JVM: the current value with the jar last."""
    parts = [p for p in current.split(os.pathsep) if p]
    return os.pathsep.join(parts if str(jar) in parts else [*parts, str(jar)])


def on_class_path(jvm, jar: Path) -> bool:
    """Whether a running driver JVM (a py4j view of it) has the jar on its class path."""
    return str(jar) in jvm.java.lang.System.getProperty("java.class.path").split(os.pathsep)


def javac() -> str | None:
    """The JDK's compiler, found as `java` is (PATH); None with a Java runtime only."""
    return shutil.which("javac")


def hadoop_api_jar() -> Path:
    import pyspark

    found = sorted((Path(pyspark.__file__).parent / "jars").glob("hadoop-client-api-*.jar"))
    if not found:
        raise RuntimeError("pyspark ships no hadoop-client-api jar to compile against")
    return found[-1]


def build(path: Path, log=sys.stderr) -> Path | None:
    """Compile the sources into a jar at `path` (replacing the old one only once the new one
    is whole); None, and the old jar removed, when there is no `javac`."""
    compiler = javac()
    if compiler is None:
        path.unlink(missing_ok=True)  # a jar older than the sources must not be used
        print("[spark jar] not built: no javac (a Java runtime only); Spark's own local file "
              "system is used", file=log)
        return None
    path.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="recsys-spark-jar-"))
    try:
        classes = work / "classes"
        done = subprocess.run([compiler, "--release", "17", "-nowarn", "-cp",
                               str(hadoop_api_jar()), "-d", str(classes),
                               *map(str, sorted(SOURCES.glob("*.java")))],
                              capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"javac failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
        staged = path.with_name(path.name + ".new")
        with zipfile.ZipFile(staged, "w", zipfile.ZIP_DEFLATED) as jar:
            jar.writestr("META-INF/MANIFEST.MF", "Manifest-Version: 1.0\r\n\r\n")
            for file in sorted(classes.rglob("*.class")):
                jar.write(file, file.relative_to(classes).as_posix())
        os.replace(staged, path)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"[spark jar] {path}", file=log)
    return path
