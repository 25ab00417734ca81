"""What a small pipeline run costs whatever its data: the whole graph (`cli run`) several times
in one process on a week of 300 listeners (the suite's standard data), printing for each run
its wall time, the Spark jobs it started and the CPU seconds the driver's JVM and Python spent.
The first run is a cold JVM's; the later ones a warm session's. JVM options (e.g. C1 only) are
passed with --java-options, for one process (Dagster logs to stderr):

    .venv/bin/python benchmarks/fixed_cost.py --runs 4 2>/dev/null
    .venv/bin/python benchmarks/fixed_cost.py --runs 4 2>/dev/null \
        --java-options="-XX:TieredStopAtLevel=1 -XX:ReservedCodeCacheSize=240m"
"""

import argparse
import contextlib
import io
import os
import resource
import sys
import tempfile
import time

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [ROOT, os.path.join(ROOT, "tests")]

from helpers import STANDARD_CONFIG  # noqa: E402  the suite's standard data, one definition


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def started_jobs(tracker) -> int:
    """Jobs started so far (job ids count up from 0; the tracker keeps only the newest)."""
    return max(tracker.getJobIdsForGroup(None), default=-1) + 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--java-options", default="")
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix="recsys-fixed-cost-")
    os.environ.update({"RECSYS_SPARK_PROFILE": os.environ.get("RECSYS_SPARK_PROFILE", "test"),
                       "RECSYS_CALENDAR_START": "2024-03-24", "RECSYS_CALENDAR_END": "2024-03-31",
                       "DAGSTER_HOME": os.path.join(work, "dagster_home"),
                       "RECSYS_SPARK_CHECKPOINT_DIR": os.path.join(work, "checkpoints")})
    if args.java_options:
        os.environ["JDK_JAVA_OPTIONS"] = args.java_options
    os.makedirs(os.environ["DAGSTER_HOME"])
    config = os.path.join(work, "small.yaml")
    with open(config, "w") as fh:
        yaml.safe_dump(STANDARD_CONFIG, fh)

    from recsys_dagster import cli
    from recsys_dagster.resources import SparkResource

    spark = SparkResource().spark_session
    jvm = spark.sparkContext._jvm.java.lang.ProcessHandle.current().pid()
    tracker = spark.sparkContext.statusTracker()
    print(f"profile {os.environ['RECSYS_SPARK_PROFILE']}, JVM options "
          f"{args.java_options or '(default)'}")
    print("run  wall s  Spark jobs  JVM CPU s  Python CPU s")
    jobs_before, jvm_before = started_jobs(tracker), cpu_seconds(jvm)
    py_before = resource.getrusage(resource.RUSAGE_SELF)
    for n in range(args.runs):
        t0 = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()) as out:
            code = cli.main(["run", "--config", config, "--data-dir",
                             os.path.join(work, f"data{n}")])
        if code != 0:
            raise SystemExit(out.getvalue()[-3000:])
        wall = time.perf_counter() - t0
        jobs, jvm_cpu = started_jobs(tracker), cpu_seconds(jvm)
        py = resource.getrusage(resource.RUSAGE_SELF)
        py_cpu = (py.ru_utime + py.ru_stime) - (py_before.ru_utime + py_before.ru_stime)
        print(f"{n:3d} {wall:7.1f} {jobs - jobs_before:11d} {jvm_cpu - jvm_before:10.1f} "
              f"{py_cpu:13.1f}", flush=True)
        jobs_before, jvm_before, py_before = jobs, jvm_cpu, py


if __name__ == "__main__":
    main()
