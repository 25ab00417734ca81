"""The run launcher's worker health check (deployment/launcher.py): what run monitoring asks
every poll. The deployment test kills a real worker; here each answer is checked directly,
including when the code server that spawned the worker is gone (the case the check exists
for: nobody else would notice)."""

import json
import subprocess
import sys
import time

import dagster as dg
from dagster._core.launcher import WorkerStatus
from dagster._core.storage.tags import GRPC_INFO_TAG

from recsys_dagster.deployment.launcher import LocalWorkerRunLauncher, worker_status

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
    """A process that started after the worker reported itself holds the pid now."""
    me = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        assert worker_status(me.pid, time.time())[0] == WorkerStatus.RUNNING
        status, message = worker_status(me.pid, time.time() - 3600)
        assert status == WorkerStatus.FAILED and "started after" in message
    finally:
        me.kill()
        me.wait()
