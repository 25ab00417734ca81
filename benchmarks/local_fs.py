"""A local driver's file system: the project's (recsys_dagster/spark_jar.py, permissions set
through java.nio) against Hadoop's own (a `chmod` process per file and folder), writing the
same small Parquet tables. Each side runs in fresh processes, alternating (Hadoop caches a
driver's file system, so one process cannot switch); each process writes a table once to warm
up, then --writes tables of 100 rows in 2 files, timed: the wall, and the CPU the whole
machine spent meanwhile (the `chmod` processes are not the JVM's own CPU), so run it on an
otherwise idle machine. Needs the jar (`make setup`):

    .venv/bin/python benchmarks/local_fs.py --rounds 3 --writes 100
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from recsys_dagster import settings, spark_jar  # noqa: E402


def machine_busy() -> float:
    """CPU seconds every process on the machine has spent since it booted."""
    with open("/proc/stat") as fh:
        v = list(map(int, fh.readline().split()[1:]))
    return (sum(v) - v[3] - v[4]) / os.sysconf("SC_CLK_TCK")


def writes(count: int, folder: str) -> None:
    """In this process: a session of the `test` profile, one write to warm up, then `count`
    timed; prints `<wall> <machine CPU> <file system class>`."""
    from recsys_dagster.spark_session import build_session, resolve_settings

    spark = build_session(resolve_settings(profile="test",
                                           checkpoint_dir=os.path.join(folder, "ckpt")))
    frame = spark.range(100).repartition(2)
    frame.write.parquet(os.path.join(folder, "warm"))
    conf = spark.sparkContext._jsc.hadoopConfiguration()
    local = spark.sparkContext._jvm.org.apache.hadoop.fs.FileSystem.getLocal(conf)
    t0, busy0 = time.perf_counter(), machine_busy()
    for n in range(count):
        frame.write.parquet(os.path.join(folder, str(n)))
    print(time.perf_counter() - t0, machine_busy() - busy0,
          local.getRawFileSystem().getClass().getName())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--writes", type=int, default=100)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        writes(args.writes, args.child)
        return
    jar = spark_jar.jar_path()
    if jar is None or not jar.is_file():
        raise SystemExit(f"no jar at {jar}: run `make setup` first")
    sides = {"ours (java.nio)": str(jar), "Hadoop's (chmod)": settings.OFF}
    got = {side: [] for side in sides}
    print(f"{args.writes} writes of 100 rows in 2 Parquet files, per process")
    print(f"{'file system':18s} {'round':>5s} {'wall s':>7s} {'machine CPU s':>14s}  class")
    for n in range(args.rounds):
        for side, value in sides.items():
            with tempfile.TemporaryDirectory(prefix="recsys-local-fs-") as folder:
                env = {**os.environ, settings.SPARK_JAR.name: value}
                out = subprocess.run([sys.executable, __file__, "--writes", str(args.writes),
                                      "--child", folder], env=env, capture_output=True,
                                     text=True, check=True).stdout.split()
            wall, cpu, cls = float(out[-3]), float(out[-2]), out[-1]
            got[side].append((wall, cpu))
            print(f"{side:18s} {n:5d} {wall:7.2f} {cpu:14.2f}  {cls}", flush=True)
    (ours, stock) = ([statistics.median(v[i] for v in got[s]) for i in (0, 1)] for s in sides)
    print(f"medians: ours {ours[0]:.2f} s, {ours[1]:.2f} CPU s; Hadoop's {stock[0]:.2f} s, "
          f"{stock[1]:.2f} CPU s; ours / Hadoop's: wall {ours[0] / stock[0]:.2f}, "
          f"machine CPU {ours[1] / stock[1]:.2f}; machine CPU saved per write "
          f"{(stock[1] - ours[1]) / args.writes * 1000:.0f} ms")


if __name__ == "__main__":
    main()
