"""Where a command's CPU goes, by kind of process: every process started after the command
(its JVMs, Python workers, the deployment's Dagster processes, PostgreSQL, the browser...),
sampled from /proc every second and classified by its newest command line (Spark's launch
scripts exec `java`). A process's CPU is the last value seen, so up to a second of a
process's end is lost; processes younger than a second may be missed. For the suite:

    .venv/bin/python benchmarks/suite_cpu.py -- .venv/bin/python -m pytest
"""

import argparse
import os
import subprocess
import sys
import time
from collections import Counter

TICK = os.sysconf("SC_CLK_TCK")
# (what the command line contains, the kind), first match wins; a JVM is named by its class.
KINDS = [
    ("SparkConnectServer", "JVM: Spark Connect server"),
    ("CoarseGrainedExecutorBackend", "JVM: cluster executor"),
    ("deploy.master", "JVM: cluster master/worker"),
    ("deploy.worker", "JVM: cluster master/worker"),
    ("launcher.Main", "JVM: Spark's launcher (builds the driver's command)"),
    ("ArchiveClassesAtExit", "JVM: class archive build"),
    ("java", "JVM: Spark driver"),
    ("pyspark.daemon", "Python: Spark's Python workers"),
    ("spawn_main", "Python: Dagster run workers"),
    ("dagster-daemon", "Python: Dagster daemon"),
    ("code-server", "Python: Dagster code server"),
    ("dagster-webserver", "Python: Dagster webserver"),
    ("dagster dev", "Python: dagster dev"),
    ("postgres", "PostgreSQL"),
    ("chrom", "Chromium"),
    ("execnet", "Python: pytest (its workers: tests, Dagster, Spark's driver side)"),
    ("-u -c", "Python: pytest (its workers: tests, Dagster, Spark's driver side)"),
    ("pytest", "Python: pytest (its workers: tests, Dagster, Spark's driver side)"),
    ("recsys_dagster", "Python: other recsys_dagster commands"),
]


def kind(cmdline: str) -> str:
    return next((k for needle, k in KINDS if needle in cmdline), "other")


def processes(since: float, boot: float):
    """(pid, start tick, command line, CPU s) of each process started after `since`."""
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
            start = int(fields[19])
            if boot + start / TICK < since:
                continue
            with open(f"/proc/{pid}/cmdline", "rb") as fh:
                cmdline = fh.read().replace(b"\0", b" ").decode(errors="replace").strip()
            yield pid, start, cmdline, (int(fields[11]) + int(fields[12])) / TICK
        except (FileNotFoundError, ProcessLookupError, IndexError):
            continue


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    with open("/proc/stat") as fh:
        boot = next(float(line.split()[1]) for line in fh if line.startswith("btime"))
    t0 = time.time()
    proc = subprocess.Popen(command)
    seen: dict[tuple[str, int], list] = {}  # (pid, start) -> [command line, CPU s]
    while proc.poll() is None:
        for pid, start, cmdline, cpu in processes(t0 - 1, boot):
            entry = seen.setdefault((pid, start), [cmdline, cpu])
            entry[0] = cmdline or entry[0]  # a zombie's is empty
            entry[1] = max(entry[1], cpu)
        time.sleep(1)
    wall = time.time() - t0
    cpu, count = Counter(), Counter()
    for cmdline, seconds in seen.values():
        cpu[kind(cmdline)] += seconds
        count[kind(cmdline)] += 1
    print(f"\n{' '.join(command)}: exit {proc.returncode}, {wall:.0f} s wall, "
          f"{sum(cpu.values()):.0f} CPU-seconds in the processes it started")
    print(f"{'CPU s':>8} {'share':>6} {'processes':>9}  kind")
    for name, seconds in cpu.most_common():
        print(f"{seconds:8.1f} {seconds / sum(cpu.values()):6.1%} {count[name]:9d}  {name}")
    sys.exit(proc.returncode)


if __name__ == "__main__":
    main()
