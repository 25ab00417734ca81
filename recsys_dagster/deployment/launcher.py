"""A run launcher that knows whether its run workers are alive.

Dagster's DefaultRunLauncher starts each run's worker as a process of the code server and
does not implement the worker health check (`supports_check_run_worker_health` is false), so
run monitoring cannot tell a run whose worker was killed from a slow one; only the code
server that spawned it notices, and only while it lives (a restarted code server forgets its
workers, and the run would stay STARTED for ever). This launcher launches exactly as the
default one and adds the check: the worker reports its process id in the run's first engine
event ("Started process for run (pid: N)"); the daemon's run monitoring asks, every
poll_interval_seconds, whether that process still exists on this machine and is the same
process (started no later than that event, give or take CLOCK_SLACK_S: a recycled pid is
someone else's). A worker that is gone fails its run, which run_retries then re-executes.

This fits a deployment whose code server runs on the daemon's machine (`make serve`). With
workers elsewhere the check answers RUNNING and says it cannot tell: use Dagster's Docker or
Kubernetes launchers there, which check their containers and jobs themselves.
"""

from __future__ import annotations

import json
import os
import signal
import socket

import dagster as dg
from dagster._core.launcher import CheckRunHealthResult, DefaultRunLauncher, WorkerStatus
from dagster._core.storage.tags import GRPC_INFO_TAG

STARTED_PREFIX = "Started process for run (pid: "
LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1", "0.0.0.0"}
# How much later than its report a live process may seem to have started and still be the
# worker. Both times are on the wall clock, which a step (NTP, a virtual machine's clock) can move
# by seconds between the report and the check: a tight slack would fail live workers then. A
# recycled pid belongs to a process started long after the worker reported itself (the kernel
# hands a pid out again only after cycling through the others).
CLOCK_SLACK_S = 60.0


def boot_time() -> float:
    with open("/proc/stat", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("btime "):
                return float(line.split()[1])
    raise OSError("no btime in /proc/stat")


def process_ticks(pid: int) -> tuple[int, str] | None:
    """(start in clock ticks since boot, state letter) of a process, or None if there is none.
    The ticks name a process for good: no clock step moves them."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
            stat = fh.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # The command name (field 2) may hold spaces and parentheses: fields after its last ')'.
    fields = stat[stat.rindex(")") + 2:].split()
    return int(fields[19]), fields[0]


def ticks_to_time(ticks: int) -> float:
    """A start in clock ticks since boot as a Unix timestamp (on today's wall clock)."""
    return boot_time() + ticks / os.sysconf("SC_CLK_TCK")


def process_start(pid: int) -> tuple[float, str] | None:
    """(start time as a Unix timestamp, state letter) of a process, or None if there is none."""
    found = process_ticks(pid)
    return None if found is None else (ticks_to_time(found[0]), found[1])


def worker_status(pid: int, reported_at: float) -> tuple[WorkerStatus, str]:
    """Whether the process that reported itself as a run's worker at `reported_at` lives."""
    found = process_start(pid)
    if found is None:
        return WorkerStatus.FAILED, f"run worker process {pid} is gone"
    started, state = found
    if state in ("Z", "X"):
        return WorkerStatus.FAILED, f"run worker process {pid} has exited (state {state})"
    if started > reported_at + CLOCK_SLACK_S:
        return WorkerStatus.FAILED, (f"run worker process {pid} is gone (the pid now belongs to a "
                                     "process started after the worker reported itself)")
    return WorkerStatus.RUNNING, f"run worker process {pid} is alive"


def reported_worker(instance: dg.DagsterInstance, run_id: str) -> tuple[int, float] | None:
    """(pid, when) of the worker's "Started process for run" event, or None."""
    records = instance.event_log_storage.get_records_for_run(
        run_id, of_type=dg.DagsterEventType.ENGINE_EVENT, limit=50, ascending=True).records
    for record in records:
        entry = record.event_log_entry
        message = entry.dagster_event.message if entry.dagster_event else ""
        if message and message.startswith(STARTED_PREFIX):
            return int(message[len(STARTED_PREFIX):].split(")")[0]), entry.timestamp
    return None


def kill_workers(instance: dg.DagsterInstance, group: int) -> list[tuple[str, int]]:
    """SIGKILL the live workers of the runs in progress whose process is in process group
    `group`; (run id, pid) of each. Their runs stay STARTED until run monitoring fails them."""
    killed = []
    in_progress = dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTING,
                                          dg.DagsterRunStatus.STARTED,
                                          dg.DagsterRunStatus.CANCELING])
    for run in instance.get_runs(filters=in_progress):
        worker = reported_worker(instance, run.run_id)
        if worker is None or worker_status(*worker)[0] != WorkerStatus.RUNNING:
            continue
        try:
            if os.getpgid(worker[0]) != group:
                continue
            os.kill(worker[0], signal.SIGKILL)
        except ProcessLookupError:
            continue
        killed.append((run.run_id, worker[0]))
    return killed


def runs_on_this_machine(run: dg.DagsterRun) -> bool:
    info = run.tags.get(GRPC_INFO_TAG)
    if not info:
        return False
    host = json.loads(info).get("host") or "localhost"
    return host in LOCAL_HOSTS or host == socket.gethostname() or "socket" in json.loads(info)


class LocalWorkerRunLauncher(DefaultRunLauncher):
    """DefaultRunLauncher plus a worker health check for workers on this machine."""

    @property
    def supports_check_run_worker_health(self) -> bool:
        return True

    def check_run_worker_health(self, run: dg.DagsterRun) -> CheckRunHealthResult:
        if not runs_on_this_machine(run):
            return CheckRunHealthResult(WorkerStatus.RUNNING,
                                        "the run worker is not on this machine: not checked")
        worker = reported_worker(self._instance, run.run_id)
        if worker is None:  # launched, but the worker has not reported yet (start timeout)
            return CheckRunHealthResult(WorkerStatus.RUNNING, "no run worker reported yet")
        status, message = worker_status(*worker)
        return CheckRunHealthResult(status, message, run_worker_id=str(worker[0]))
