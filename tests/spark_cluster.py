"""Real server processes for the tests, from the pyspark package: a standalone master with
workers, and a Spark Connect server (test_ui also uses `stop` and `free_port` for `dagster
dev`). Loopback only; every process is started in its own process group and that group is
always killed (SIGTERM, then SIGKILL)."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import pyspark

from recsys_dagster import spark_classes

SPARK_HOME = Path(pyspark.__file__).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def class_archive() -> str:
    """The JVM option that maps the driver's class archive (`make setup` builds it; its
    classes are every Spark JVM's, the cluster's too), or nothing when there is none."""
    conf = spark_classes.with_archive({})
    return conf.get(spark_classes.JAVA_OPTIONS, "")


def _env(logs: Path) -> dict:
    daemons = f"{os.environ.get('SPARK_DAEMON_JAVA_OPTS', '')} {class_archive()}".strip()
    return {**os.environ, "SPARK_HOME": str(SPARK_HOME), "SPARK_LOCAL_IP": "127.0.0.1",
            "SPARK_LOG_DIR": str(logs), "SPARK_PID_DIR": str(logs),
            "SPARK_NO_DAEMONIZE": "1", "PYSPARK_PYTHON": sys.executable,
            "SPARK_DAEMON_JAVA_OPTS": daemons}


def _start(cmd, env, log: Path) -> subprocess.Popen:
    with open(log, "w") as fh:
        return subprocess.Popen(cmd, env=env, stdout=fh, stderr=subprocess.STDOUT,
                                start_new_session=True)


def stop(procs, term_grace: float = 15) -> None:
    """End each process's whole group: SIGTERM, then SIGKILL after term_grace seconds."""
    for proc in procs:
        for sig, grace in ((signal.SIGTERM, term_grace), (signal.SIGKILL, 10)):
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                break
            try:
                proc.wait(timeout=grace)
                break
            except subprocess.TimeoutExpired:
                continue


def _wait(ready, procs, what: str, log: Path, timeout=120) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if any(p.poll() is not None for p in procs):
            raise RuntimeError(f"{what} exited early; see {log}")
        try:
            if ready():
                return
        except OSError:
            pass
        time.sleep(1)
    raise RuntimeError(f"{what} not ready after {timeout} s; see {log}")


@contextmanager
def standalone_cluster(workdir: Path, workers: int = 1, cores: int = 2, memory: str = "2g"):
    """Yields spark://127.0.0.1:<port> once the master answers, its `workers` started (they
    register meanwhile: a client started now gets their executors as they come)."""
    logs = workdir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    env = _env(logs)
    port, ui = free_port(), free_port()
    spark_class = str(SPARK_HOME / "bin" / "spark-class")
    procs = []
    try:
        procs.append(_start([spark_class, "org.apache.spark.deploy.master.Master",
                             "--host", "127.0.0.1", "--port", str(port),
                             "--webui-port", str(ui)], env, logs / "master.out"))
        url = f"spark://127.0.0.1:{port}"
        for i in range(workers):
            wdir = workdir / f"worker{i}"
            wdir.mkdir(exist_ok=True)
            procs.append(_start([spark_class, "org.apache.spark.deploy.worker.Worker", url,
                                 "--host", "127.0.0.1", "--cores", str(cores), "--memory",
                                 memory, "--webui-port", str(free_port()), "--work-dir",
                                 str(wdir)], env, logs / f"worker{i}.out"))

        def master_up():
            with urllib.request.urlopen(f"http://127.0.0.1:{ui}/json/", timeout=2) as r:
                return "aliveworkers" in json.load(r)

        _wait(master_up, procs, "standalone master", logs)
        yield url
    finally:
        stop(procs)


@contextmanager
def connect_server(workdir: Path, master: str, conf: dict):
    """Yields sc://127.0.0.1:<port> served by the bundled start-connect-server.sh."""
    logs = workdir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    port = free_port()
    args = [str(SPARK_HOME / "sbin" / "start-connect-server.sh"), "--master", master,
            "--conf", f"spark.connect.grpc.binding.port={port}",
            "--conf", "spark.connect.grpc.binding.address=127.0.0.1",
            "--conf", "spark.driver.host=127.0.0.1", "--conf", "spark.driver.bindAddress=127.0.0.1",
            "--conf", "spark.ui.enabled=false"]
    archive = class_archive()
    if archive:  # the server is a driver; its executors load the same classes
        conf = {"spark.driver.extraJavaOptions": archive,
                "spark.executor.extraJavaOptions": archive, **conf}
    for key, value in conf.items():
        args += ["--conf", f"{key}={value}"]
    log = logs / "connect.out"
    procs = [_start(args, _env(logs), log)]

    def listening():
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            return True

    try:
        _wait(listening, procs, "Spark Connect server", log, timeout=180)
        yield f"sc://127.0.0.1:{port}"
    finally:
        stop(procs)
