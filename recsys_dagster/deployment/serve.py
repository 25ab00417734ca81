"""`make serve` and `make stop`: the whole deployment on one machine, as it runs in production.

Processes, each in its own process group, started in this order:
1. PostgreSQL (its own cluster in $RECSYS_DEPLOY_DIR/postgres, unless DAGSTER_PG_HOST names an
   existing server);
2. the code server (`dagster code-server start`): loads recsys_dagster.definitions and runs
   each run's worker as a process of its own;
3. the webserver (`dagster-webserver`), the UI on 127.0.0.1:$RECSYS_PORT;
4. the daemon (`dagster-daemon run`): schedules, sensors, the run queue, run monitoring and
   retries, freshness.
The webserver and the daemon load the code location from the code server
(deploy/workspace.yaml); all of them, and every run worker, share the instance in
$RECSYS_DEPLOY_DIR/dagster_home (deploy/dagster.yaml, its storage in PostgreSQL), so a
restart keeps every run, event, schedule state and sensor cursor.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from .. import settings
from ..paths import REPO_ROOT
from . import processes
from .instance import INSTANCE_FILE, PRODUCTION_YAML, WORKSPACE_YAML, read_env_file
from .launcher import kill_workers
from .postgres import LocalPostgres

# Stopped in this order: the daemon first (no new runs), then the workers of the runs in progress
# are killed (Deployment.kill_run_workers), the code server last.
PROCESSES = ("daemon", "webserver", "code_server")
# Seconds each gets to exit after SIGTERM before SIGKILL: Dagster's daemon and webserver can take
# over 20 s to finish what they are doing; once they are gone and the run workers are killed,
# the code server has nothing left to finish.
GRACE_S = {"daemon": 20.0, "webserver": 20.0, "code_server": 5.0}
START_TIMEOUT_S = 180


@dataclass(frozen=True)
class Deployment:
    env: dict[str, str]  # the environment every process gets

    @classmethod
    def from_environment(cls, environ=None) -> Deployment:
        """deploy/deployment.env under the environment (a variable set there wins)."""
        env = {**read_env_file(), **(os.environ if environ is None else environ)}
        settings.validate_all(env)
        folder = Path(settings.read(settings.DEPLOY_DIR, env))
        env.setdefault(settings.DATA_DIR.name, str(folder / "data"))
        env["DAGSTER_HOME"] = str(folder / "dagster_home")
        env["RECSYS_COMPUTE_LOG_DIR"] = str(folder / "logs" / "compute")
        env[settings.CODE_SERVER_PORT.name] = str(settings.read(settings.CODE_SERVER_PORT, env))
        return cls(env)

    def read(self, setting: settings.Setting):
        return settings.read(setting, self.env)

    @property
    def folder(self) -> Path:
        return Path(self.read(settings.DEPLOY_DIR))

    @property
    def run_dir(self) -> Path:
        return self.folder / "run"

    @property
    def log_dir(self) -> Path:
        return self.folder / "logs"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.read(settings.PORT)}"

    def postgres(self) -> LocalPostgres | None:
        """The deployment's own server, or None when DAGSTER_PG_HOST names another."""
        if self.read(settings.PG_HOST):
            return None
        return LocalPostgres(self.folder / "postgres", self.read(settings.PG_PORT),
                             self.read(settings.PG_USER), self.read(settings.PG_DB))

    def instance_yaml(self) -> Path:
        return Path(self.read(settings.DAGSTER_YAML) or PRODUCTION_YAML)

    def commands(self) -> dict[str, list[str]]:
        bin_dir = Path(sys.executable).parent
        host = ["-h", "127.0.0.1"]
        return {
            "code_server": [str(bin_dir / "dagster"), "code-server", "start", *host, "-p",
                            self.env[settings.CODE_SERVER_PORT.name], "-m",
                            "recsys_dagster.definitions", "--location-name", "recsys_dagster"],
            "webserver": [str(bin_dir / "dagster-webserver"), *host, "-p",
                          str(self.read(settings.PORT)), "-w", str(WORKSPACE_YAML)],
            "daemon": [str(bin_dir / "dagster-daemon"), "run", "-w", str(WORKSPACE_YAML)],
        }

    def start(self, say=print) -> None:
        if all(processes.alive(processes.recorded(self.run_dir, n)) for n in PROCESSES):
            say(f"already running: {self.url}")
            return
        self.stop(say=lambda *_: None)  # leftovers of a half-started deployment
        pg = self.postgres()
        if pg is not None:
            say(f"PostgreSQL: {pg.folder} on 127.0.0.1:{pg.port}")
            pg.start()
        env = self.process_env()
        home = Path(env["DAGSTER_HOME"])
        home.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(self.instance_yaml(), home / INSTANCE_FILE)
        commands = self.commands()
        processes.start("code_server", commands["code_server"], env, self.run_dir, self.log_dir,
                        cwd=str(REPO_ROOT))
        processes.wait_until(lambda: code_server_answers(int(env[settings.CODE_SERVER_PORT.name])),
                             START_TIMEOUT_S, "the code server")
        for name in ("webserver", "daemon"):
            processes.start(name, commands[name], env, self.run_dir, self.log_dir,
                            cwd=str(REPO_ROOT))
        processes.wait_until(lambda: ui_answers(self.url), START_TIMEOUT_S, "the UI")
        say(f"recsys-dagster is served at {self.url}")
        say(f"logs: {self.log_dir} (processes), {env['RECSYS_COMPUTE_LOG_DIR']} (steps); "
            f"warehouse: {env[settings.DATA_DIR.name]}; stop with `make stop`")

    def process_env(self) -> dict[str, str]:
        """The environment of every process: the deployment's, and its own PostgreSQL's
        address and password when it runs one."""
        env = dict(self.env)
        pg = self.postgres()
        if pg is not None:
            env.update({settings.PG_HOST.name: "127.0.0.1", settings.PG_PASSWORD.name:
                        pg.password(), settings.PG_PORT.name: str(pg.port),
                        settings.PG_USER.name: pg.user, settings.PG_DB.name: pg.database})
        return env

    def stop(self, say=print) -> None:
        for name in PROCESSES:
            t0 = time.time()
            if processes.stop(self.run_dir, name, GRACE_S[name], say=say):
                say(f"stopped {name} ({time.time() - t0:.1f} s)")
            if name == "daemon":  # no new run is launched now
                for run_id, pid in self.kill_run_workers():
                    say(f"killed the worker (process {pid}) of run {run_id}: the run is failed "
                        "and retried after the next start")
        pg = self.postgres()
        if pg is not None and pg.running():
            pg.stop()
            say("stopped PostgreSQL")

    def kill_run_workers(self) -> list[tuple[str, int]]:
        """SIGKILL the workers of the runs in progress, before the code server (their parent)
        is stopped; (run id, pid) of each.

        A worker sent TERM with the rest of the code server's group outlives its Spark JVM,
        which TERM ends at once: its step then fails against the dead JVM, the step retry
        policy retries it for 20 s, and the run ends in a step failure, which run retries never
        re-execute. A worker killed outright leaves its run STARTED; after the next start, run
        monitoring finds the worker gone, fails the run and run retries re-execute it from the
        step it was in (as for a crashed worker: docs/operations.md, "Deploying")."""
        code_server = processes.recorded(self.run_dir, "code_server")
        pg = self.postgres()
        if not processes.alive(code_server) or (pg is not None and not pg.running()):
            return []
        try:
            with open_instance(self.process_env()) as instance:
                return kill_workers(instance, code_server["pid"])
        except Exception as err:  # noqa: BLE001 - the stop goes on without it
            print(f"could not read the runs in progress ({err}): their workers are stopped "
                  "with the code server", file=sys.stderr)
            return []

    def status(self) -> dict[str, bool]:
        state = {n: processes.alive(processes.recorded(self.run_dir, n)) for n in PROCESSES}
        pg = self.postgres()
        if pg is not None:
            state["postgres"] = pg.running()
        return state


@contextlib.contextmanager
def open_instance(env: dict[str, str]):
    """The Dagster instance of $DAGSTER_HOME in `env`, opened from this process: its
    dagster.yaml reads the PostgreSQL address and the log folder from `env`, which is this
    process's environment until the instance is closed."""
    import dagster as dg

    keys = [k for k in env if k.startswith("DAGSTER_PG_")] + ["RECSYS_COMPUTE_LOG_DIR"]
    saved = {k: os.environ.get(k) for k in keys}
    os.environ.update({k: env[k] for k in keys if k in env})
    try:
        with dg.DagsterInstance.from_config(env["DAGSTER_HOME"]) as instance:
            yield instance
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def code_server_answers(port: int) -> bool:
    from dagster._grpc.client import DagsterGrpcClient

    DagsterGrpcClient(port=port, host="127.0.0.1").ping("")
    return True


def ui_answers(url: str) -> bool:
    with urllib.request.urlopen(f"{url}/server_info", timeout=5) as response:
        return response.status == 200
