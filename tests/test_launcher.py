"""The run launcher's worker health check (deployment/launcher.py): what run monitoring asks
every poll. The deployment test kills a real worker; here each answer is checked directly,
including when the code server that spawned the worker is gone (the case the check exists
for: nobody else would notice). Also what `make stop` kills: the workers of the runs in
progress, and a process group that outlives the grace period."""

import json
import os
import signal
import subprocess
import sys
import time

import dagster as dg
from dagster._core.launcher import WorkerStatus
from dagster._core.storage.tags import GRPC_INFO_TAG

from recsys_dagster.deployment import processes
from recsys_dagster.deployment.launcher import LocalWorkerRunLauncher, kill_workers, worker_status

LAUNCHER = {"module": "recsys_dagster.deployment.launcher", "class": "LocalWorkerRunLauncher"}


def started_run(instance, run_id, pid, host="127.0.0.1"):
    run = dg.DagsterRun(job_name="retrain_and_publish", run_id=run_id,
                        status=dg.DagsterRunStatus.STARTED,
                        tags={GRPC_INFO_TAG: json.dumps({"host": host, "port": 4000})})
    instance.add_run(run)
    instance.report_engine_event(f"Started process for run (pid: {pid}).", run)
    return run


def test_a_dead_worker_fails_its_run_and_a_live_one_does_not(tmp_path):
    with dg.instance_for_test(temp_dir=str(tmp_path),
                              overrides={"run_launcher": LAUNCHER}) as instance:
        launcher = instance.run_launcher
        assert isinstance(launcher, LocalWorkerRunLauncher)
        assert launcher.supports_check_run_worker_health
        worker = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
        run = started_run(instance, "alive", worker.pid)
        health = launcher.check_run_worker_health(run)
        assert health.status == WorkerStatus.RUNNING and health.run_worker_id == str(worker.pid)
        worker.kill()
        time.sleep(0.2)  # not reaped yet: a zombie is a dead worker too
        assert launcher.check_run_worker_health(run).status == WorkerStatus.FAILED
        worker.wait()
        health = launcher.check_run_worker_health(run)
        assert health.status == WorkerStatus.FAILED and "is gone" in health.msg
        # A worker on another machine is not this launcher's to judge.
        remote = started_run(instance, "remote", worker.pid, host="10.0.0.9")
        assert launcher.check_run_worker_health(remote).status == WorkerStatus.RUNNING
        # No worker reported yet: the start timeout, not this check, decides.
        instance.add_run(dg.DagsterRun(job_name="x", run_id="early",
                                       status=dg.DagsterRunStatus.STARTED,
                                       tags={GRPC_INFO_TAG: json.dumps({"host": "localhost"})}))
        early = instance.get_run_by_id("early")
        assert launcher.check_run_worker_health(early).status == WorkerStatus.RUNNING


def test_a_recycled_pid_is_not_the_worker():
    """A process that started after the worker reported itself holds the pid now; a step of
    the wall clock between the report and the check (tens of seconds) is not mistaken for it."""
    me = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        assert worker_status(me.pid, time.time())[0] == WorkerStatus.RUNNING
        assert worker_status(me.pid, time.time() - 30)[0] == WorkerStatus.RUNNING
        status, message = worker_status(me.pid, time.time() - 3600)
        assert status == WorkerStatus.FAILED and "started after" in message
    finally:
        me.kill()
        me.wait()


def test_a_recorded_process_is_known_by_its_start_in_ticks_not_by_the_clock(tmp_path):
    pid = processes.start("sleeper", [sys.executable, "-c", "import time; time.sleep(60)"],
                          dict(os.environ), tmp_path / "run", tmp_path / "logs")
    try:
        record = processes.recorded(tmp_path / "run", "sleeper")
        assert record["pid"] == pid and processes.alive(record)
        # The wall clock stepped since the start: the same process still.
        assert processes.alive({**record, "started": record["started"] - 30})
        # Another process under the same pid (started at another tick): not ours.
        assert not processes.alive({**record, "ticks": record["ticks"] - 100})
        # A pid file of an earlier version has only the start time.
        old = {"pid": pid, "started": record["started"]}
        assert processes.alive(old) and not processes.alive({**old, "started": 0.0})
    finally:
        assert processes.stop(tmp_path / "run", "sleeper", grace_s=5)
    assert not processes.alive(record)


def sleeper(**kwargs) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], **kwargs)


def test_the_stop_kills_the_workers_of_runs_in_progress_in_its_group(tmp_path):
    group = sleeper(process_group=0)  # the code server: a group of its own
    mine = sleeper(process_group=group.pid)
    other = sleeper(process_group=0)  # someone else's worker
    finished = sleeper(process_group=group.pid)  # a worker whose run has ended
    everyone = (group, mine, other, finished)
    try:
        with dg.instance_for_test(temp_dir=str(tmp_path)) as instance:
            started_run(instance, "mine", mine.pid)
            started_run(instance, "other", other.pid)
            done = started_run(instance, "done", finished.pid)
            instance.handle_new_event(dg.EventLogEntry(
                error_info=None, level="INFO", user_message="", run_id=done.run_id,
                timestamp=time.time(), dagster_event=dg.DagsterEvent(
                    dg.DagsterEventType.RUN_SUCCESS.value, job_name=done.job_name)))
            assert instance.get_run_by_id("done").status == dg.DagsterRunStatus.SUCCESS
            started_run(instance, "gone", 2**22 - 1)  # above this machine's pid range
            assert kill_workers(instance, group.pid) == [("mine", mine.pid)]
            assert mine.wait(5) == -signal.SIGKILL
            assert all(p.poll() is None for p in (group, other, finished))
            # Its run stays STARTED: run monitoring fails it once the worker is found gone.
            assert instance.get_run_by_id("mine").status == dg.DagsterRunStatus.STARTED
    finally:
        for p in everyone:
            p.kill()
            p.wait()


def test_a_group_that_outlives_the_grace_period_is_killed_and_named(tmp_path):
    deaf = ("import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
            "open(__import__('sys').argv[1], 'w').close(); time.sleep(60)")
    ready = tmp_path / "ready"
    pid = processes.start("deaf", [sys.executable, "-c", deaf, str(ready)], dict(os.environ),
                          tmp_path / "run", tmp_path / "logs")
    deadline = time.time() + 20
    while not ready.exists() and time.time() < deadline:  # its handler is in place
        time.sleep(0.05)
    said = []
    t0 = time.time()
    assert processes.stop(tmp_path / "run", "deaf", grace_s=1.0, say=said.append)
    assert 1.0 <= time.time() - t0 < 10
    assert len(said) == 1 and said[0].startswith("deaf: still running 1 s after SIGTERM, "
                                                 f"killed: {pid} ")
    assert processes.recorded(tmp_path / "run", "deaf") is None
    assert not processes.alive({"pid": pid, "started": None})
