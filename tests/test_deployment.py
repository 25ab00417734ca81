"""The deployment as it runs in production (`python -m recsys_dagster.deployment serve`, what
`make serve` runs): a fresh PostgreSQL cluster in a temporary folder, the code server, the
webserver and the daemon as separate processes, on loopback, with small synthetic data whose
calendar reaches yesterday. The daemon, not the test, launches the scheduled runs; the test
launches only what a person would from the UI (a first backfill, a retrain, a re-delivery).

One deployment for the module; its tests run in order and build on each other:
1. it comes up on PostgreSQL with the queued run coordinator and healthy daemons;
2. a first backfill of the window (through the GraphQL API, as the UI does); the sensor
   retrains after it; a person asks for the same retrain meanwhile (QUEUED until the first
   ends); the first one's worker is killed with SIGKILL: it is failed and retried, and both
   retrains complete; never two runs at once, no served table ever half-written;
3. a re-delivered day that was retrained is not retrained again;
4. once the served tables are older than the minute allowed, each fails its freshness and is
   alerted; the schedule is switched on (as a person would, after the backfill) while the
   daemon is down; stop (with an ingest in progress) and start again: history, schedule
   state and cursors are kept, the ingest is failed and retried, and no staleness is alerted
   twice;
5. the schedule ingests yesterday and the sensor retrains as of yesterday, read back from
   PostgreSQL; the served tables, stale until then, pass their freshness again;
6. the UI in Chromium: daemons, automation, the scheduled run, the lineage and the products.
(4 comes before 5 so that the restart fills the minute the tables take to go stale.)
Only the monitoring intervals of deploy/dagster.yaml are shortened for the test.
"""

import contextlib
import datetime as dt
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import dagster as dg
import pyarrow.parquet as pq
import pytest
import yaml
from helpers import STANDARD_CONFIG, database_sessions
from spark_cluster import free_port
from ui_helpers import (
    ARTIFACTS,
    BACKFILL,
    EXPECTED_EDGES,
    GROUPS,
    LAUNCH,
    chromium_page,
    gql,
    metadata_text,
)

from recsys_dagster.deployment.instance import PRODUCTION_YAML
from recsys_dagster.deployment.launcher import reported_worker
from recsys_dagster.deployment.serve import open_instance
from recsys_dagster.tables import TableStore

pytestmark = pytest.mark.slow

SERVED = ("user_recommendations", "similar_items", "similar_artists", "artist_radio")
INGESTION = ("play_events", "play_events_quarantine", "item_catalog")
DONE = ("SUCCESS", "FAILURE", "CANCELED")
RUNNING = ("STARTING", "STARTED")
# The test's only changes to deploy/dagster.yaml: monitoring every 2 s instead of 30 s.
MONITORING = {"poll_interval_seconds": 2, "start_timeout_seconds": 180}
DEQUEUE_SECONDS = 1
READ_FOR_S = 3  # the watcher reads a served table's new version for its first 3 s
RUNS = """{ runsOrError { ... on Runs { results { runId jobName status creationTime startTime
             endTime tags { key value } } } } }"""
REPO = {"repositoryLocationName": "recsys_dagster", "repositoryName": "__repository__"}


class Hook(BaseHTTPRequestHandler):
    """The alert webhook: every JSON body posted to it."""

    received: list = []

    def do_POST(self):  # noqa: N802 - http.server's name
        Hook.received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


@dataclass
class Live:
    env: dict
    folder: Path
    port: int
    days: list  # the calendar: the window's days, then yesterday
    serve_seconds: float
    alerts: list
    seen: dict = field(default_factory=dict)  # run id -> statuses seen, in order
    most_running: int = 0
    unreadable: list = field(default_factory=list)
    versions_seen: dict = field(default_factory=dict)  # served table -> versions seen

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def store(self) -> TableStore:
        return TableStore(self.env["RECSYS_DATA_DIR"])

    def gql(self, query, variables=None):
        return gql(self.port, query, variables)

    def runs(self) -> list[dict]:
        runs = self.gql(RUNS)["runsOrError"]["results"]
        for run in runs:
            run["tags"] = {t["key"]: t["value"] for t in run["tags"]}
        return runs

    def run(self, run_id) -> dict:
        return next(r for r in self.runs() if r["runId"] == run_id)

    def deployment(self, command: str) -> str:
        out = subprocess.run([sys.executable, "-m", "recsys_dagster.deployment", command],
                             env=self.env, capture_output=True, text=True, timeout=300)
        assert out.returncode == 0, out.stdout + out.stderr
        return out.stdout

    def instance(self):
        """The deployment's instance (PostgreSQL), opened from this process."""
        return open_instance({
            **self.env, "DAGSTER_PG_HOST": "127.0.0.1", "DAGSTER_PG_USER": "recsys",
            "DAGSTER_PG_DB": "dagster",
            "DAGSTER_PG_PASSWORD": (self.folder / "postgres.password").read_text().strip(),
            "RECSYS_COMPUTE_LOG_DIR": str(self.folder / "logs" / "compute")})

    def connect(self):
        """A connection to the deployment's PostgreSQL database, in autocommit."""
        import psycopg2

        conn = psycopg2.connect(
            host="127.0.0.1", port=self.env["DAGSTER_PG_PORT"], user="recsys", dbname="dagster",
            password=(self.folder / "postgres.password").read_text().strip(), connect_timeout=5)
        conn.autocommit = True
        return conn

    def launch(self, job: str, day: str, config: dict) -> str:
        params = {"selector": {**REPO, "jobName": job}, "runConfigData": config,
                  "executionMetadata": {"tags": [{"key": "dagster/partition", "value": day}]}}
        launched = self.gql(LAUNCH, {"params": params})["launchRun"]
        assert launched["__typename"] == "LaunchRunSuccess", launched
        return launched["run"]["runId"]

    def wait_run(self, find, timeout=300, what="a run"):
        """The first run find(runs) returns, once it does."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            found = find(self.runs())
            if found:
                return found
            time.sleep(0.5)
        raise AssertionError(f"{what} did not happen within {timeout} s: "
                             f"{[(r['jobName'], r['status']) for r in self.runs()]}")

    def wait_done(self, run_id, timeout=300) -> dict:
        return self.wait_run(lambda runs: next((r for r in runs if r["runId"] == run_id
                                                and r["status"] in DONE), None), timeout,
                             f"the end of run {run_id}")


def run_config(start: str) -> dict:
    """The standard run's small data, all of it delivered from `start` on; the artist gate
    reports without blocking (a week of 300 listeners is too little to judge artists)."""
    cfg = json.loads(json.dumps(STANDARD_CONFIG))
    cfg["ops"]["ingest_play_logs"]["config"]["synthetic"]["start_date"] = start
    cfg["ops"]["artist_evaluation"] = {"config": {"gate": False}}
    return cfg


def ingest_part(cfg):
    return {"ops": {"ingest_play_logs": cfg["ops"]["ingest_play_logs"]}}


def retrain_part(cfg):
    return {"ops": {k: v for k, v in cfg["ops"].items() if k != "ingest_play_logs"}}


def watch(live: Live, stop: threading.Event) -> None:
    """Every 0.3 s: the runs' statuses, read from PostgreSQL (how many run at once), and each
    version of each served table read through its `current` link during its first seconds
    there (never half-written)."""
    conn, since = None, {}  # (table, version) -> when first seen
    while not stop.is_set():
        try:
            conn = conn or live.connect()
            with conn.cursor() as cur:
                cur.execute("SELECT run_id, status FROM runs")
                runs = cur.fetchall()
        except Exception:  # noqa: BLE001 - PostgreSQL is being restarted
            conn, runs = None, []
        live.most_running = max(live.most_running, sum(s in RUNNING for _, s in runs))
        for run_id, status in runs:
            seen = live.seen.setdefault(run_id, [])
            if not seen or seen[-1] != status:
                seen.append(status)
        for table in SERVED:
            path = live.store.current_path(table)
            if path is None:
                continue
            version = os.path.basename(path)
            live.versions_seen.setdefault(table, set()).add(version)
            if time.time() - since.setdefault((table, version), time.time()) > READ_FOR_S:
                continue
            try:
                frame = "stations" if table == "artist_radio" else ""
                pq.read_table(os.path.join(path, frame) if frame else path)
            except Exception as exc:  # noqa: BLE001
                live.unreadable.append((table, path, repr(exc)))
        stop.wait(0.3)
    if conn:
        conn.close()


@pytest.fixture(scope="module")
def live():
    folder = Path(tempfile.mkdtemp(prefix="recsys-deployment-"))
    folder.chmod(0o755)  # PostgreSQL's user must reach its folder below this one
    today = dt.datetime.now(dt.UTC).date()
    days = [(today - dt.timedelta(days=n)).isoformat() for n in range(8, 0, -1)]
    cfg = run_config(days[0])
    (folder / "run_config.yaml").write_text(yaml.safe_dump(cfg))
    instance_yaml = yaml.safe_load(PRODUCTION_YAML.read_text())
    instance_yaml["run_monitoring"].update(MONITORING)
    instance_yaml["run_coordinator"]["config"]["dequeue_interval_seconds"] = DEQUEUE_SECONDS
    (folder / "dagster.yaml").write_text(yaml.safe_dump(instance_yaml))
    hook = HTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=hook.serve_forever, daemon=True).start()
    Hook.received = []
    env = {k: v for k, v in os.environ.items()
           if k not in ("DAGSTER_HOME", "RECSYS_DATA_DIR", "RECSYS_SPARK_CHECKPOINT_DIR")}
    env.update({
        "RECSYS_DEPLOY_DIR": str(folder), "RECSYS_PORT": str(free_port()),
        "RECSYS_CODE_SERVER_PORT": str(free_port()), "DAGSTER_PG_PORT": str(free_port()),
        "RECSYS_DAGSTER_YAML": str(folder / "dagster.yaml"),
        "RECSYS_SPARK_PROFILE": "test", "RECSYS_CALENDAR_START": days[0],
        "RECSYS_CALENDAR_END": "open", "RECSYS_TRAINING_WINDOW_DAYS": "all",
        # The sensors run from the start; the schedule is switched on after the first
        # backfill, as the recipe says (docs/operations.md).
        "RECSYS_AUTOMATION": "retrain_after_ingest", "RECSYS_INGEST_CRON": "* * * * *",
        "RECSYS_RUN_CONFIG": str(folder / "run_config.yaml"),
        "RECSYS_SERVED_MAX_AGE_MINUTES": "1", "FRESHNESS_DAEMON_INTERVAL_SECONDS": "5",
        "RECSYS_ALERT_WEBHOOK": f"http://127.0.0.1:{hook.server_port}/alerts",
        "RECSYS_DATA_DIR": str(folder / "data"), "DAGSTER_HOME": str(folder / "dagster_home"),
    })
    t0 = time.time()
    live = Live(env, folder, int(env["RECSYS_PORT"]), days, 0.0, Hook.received)
    stop = threading.Event()
    watcher = threading.Thread(target=watch, args=(live, stop), daemon=True)
    try:
        live.deployment("serve")
        live.serve_seconds = time.time() - t0
        watcher.start()
        yield live
    finally:
        stop.set()
        with contextlib.suppress(Exception):
            t0 = time.time()
            stopped = live.deployment("stop")
            ARTIFACTS.mkdir(exist_ok=True)  # what the stop did, and how long each part took
            log = (folder / "logs" / "code_server.log").read_text(errors="replace")
            (ARTIFACTS / "deployment-stop.txt").write_text(
                f"{stopped}whole stop {time.time() - t0:.1f} s\n\nthe code server's log, its "
                "end:\n" + "\n".join(log.splitlines()[-40:]) + "\n")
        hook.shutdown()
        left = subprocess.run(["pgrep", "-f", str(folder)], capture_output=True, text=True)
        if not os.environ.get("RECSYS_KEEP_TEST_DEPLOYMENT"):  # set it to read the logs
            shutil.rmtree(folder, ignore_errors=True)
        assert not left.stdout.strip(), f"processes left behind: {left.stdout}"


def test_serve_brings_up_postgres_the_code_server_the_webserver_and_the_daemon(live):
    print(f"\nmake serve came up in {live.serve_seconds:.1f} s")
    status = live.deployment("status")
    for name in ("daemon", "webserver", "code_server", "postgres"):
        assert f"{name:12s} running" in status, status
    instance = live.gql("{ instance { info runQueuingSupported runLauncher { name } } }")
    info = instance["instance"]["info"]
    for storage in ("PostgresRunStorage", "PostgresEventLogStorage", "PostgresScheduleStorage"):
        assert storage in info
    assert instance["instance"]["runQueuingSupported"]
    assert instance["instance"]["runLauncher"]["name"] == "LocalWorkerRunLauncher"
    assert "granularity: run" in info and "retry_on_asset_or_op_failure: false" in info
    # Healthy daemons (each reports a heartbeat within its first seconds).
    query = "{ instance { daemonHealth { allDaemonStatuses { daemonType healthy required } } } }"
    deadline = time.time() + 90
    while True:
        daemons = live.gql(query)["instance"]["daemonHealth"]["allDaemonStatuses"]
        if all(d["healthy"] for d in daemons if d["required"]) or time.time() > deadline:
            break
        time.sleep(2)
    assert all(d["healthy"] for d in daemons if d["required"]), daemons
    assert {"SCHEDULER", "SENSOR", "QUEUED_RUN_COORDINATOR", "MONITORING",
            "FRESHNESS_DAEMON"} <= {d["daemonType"] for d in daemons}
    # The processes keep their PostgreSQL connections (deployment/pg_storage.py): the daemon,
    # querying every second, opens a few in 5 s, where one per query was about 150.
    opened = new_sessions(live, seconds=5)
    print(f"PostgreSQL connections opened in 5 s with nothing running: {opened}")
    assert opened < 15, opened
    # Automation started by the environment (RECSYS_AUTOMATION names the retrain sensor; the
    # alert sensors start running by default), no click needed.
    selector = """repositorySelector: {repositoryLocationName: "recsys_dagster",
                                        repositoryName: "__repository__"}"""
    schedules = live.gql(f"""{{ schedulesOrError({selector}) {{ ... on Schedules {{ results {{
        name scheduleState {{ status }} }} }} }} }}""")["schedulesOrError"]["results"]
    sensors = live.gql(f"""{{ sensorsOrError({selector}) {{ ... on Sensors {{ results {{
        name sensorState {{ status }} }} }} }} }}""")["sensorsOrError"]["results"]
    assert {s["name"]: s["scheduleState"]["status"] for s in schedules} == {
        "daily_ingest": "STOPPED"}
    assert {s["name"]: s["sensorState"]["status"] for s in sensors} == {
        "retrain_after_ingest": "RUNNING", "alert_on_run_failure": "RUNNING",
        "alert_on_stale_tables": "RUNNING"}
    # The shipped instance file, with only the monitoring intervals shortened.
    used = yaml.safe_load((live.folder / "dagster_home" / "dagster.yaml").read_text())
    shipped = yaml.safe_load(PRODUCTION_YAML.read_text())
    assert used["run_monitoring"] == {**shipped["run_monitoring"], **MONITORING}
    used.pop("run_monitoring"), shipped.pop("run_monitoring")
    used["run_coordinator"]["config"].pop("dequeue_interval_seconds")
    shipped["run_coordinator"]["config"].pop("dequeue_interval_seconds")
    assert used == shipped


def new_sessions(live: Live, seconds: float) -> int:
    """Connections opened to the instance's database in the next `seconds` (not this one)."""
    conn = live.connect()
    try:
        before = database_sessions(conn)
        time.sleep(seconds)
        return database_sessions(conn) - before
    finally:
        conn.close()


def test_a_first_backfill_a_killed_worker_and_two_retrains_asked_at_once(live):
    cfg = run_config(live.days[0])
    window = live.days[:-1]
    launched = live.gql(BACKFILL, {"params": {
        "assetSelection": [{"path": [a]} for a in INGESTION], "partitionNames": window,
        "runConfigData": ingest_part(cfg)}})["launchPartitionBackfill"]
    assert launched["__typename"] == "LaunchBackfillSuccess", launched
    backfill = live.wait_run(lambda rs: next((r for r in rs if r["tags"].get(
        "dagster/backfill") == launched["backfillId"]), None), what="the backfill's run")
    backfill = live.wait_done(backfill["runId"])
    assert backfill["status"] == "SUCCESS"
    # The sensor reacts to the backfill's success: a retrain as of its newest day.
    first = live.wait_run(lambda rs: next((r for r in rs if r["jobName"] == "retrain_and_publish"
                                           and r["status"] == "STARTED"), None), 120,
                          "the sensor's retrain")
    assert first["tags"]["dagster/sensor_name"] == "retrain_after_ingest"
    assert first["tags"]["dagster/partition"] == window[-1]
    assert first["creationTime"] >= backfill["endTime"]  # only once the ingest had succeeded
    # A person asks for the same retrain meanwhile: queued behind it.
    person = live.launch("retrain_and_publish", window[-1], retrain_part(cfg))
    live.wait_run(lambda rs: any(r["runId"] == person and r["status"] == "QUEUED" for r in rs),
                  30, "the second retrain's QUEUED")
    # The first retrain's worker dies (SIGKILL) in the middle of its steps.
    kill_after(live, first["runId"], "evaluation_split")
    killed_at = time.time()
    failed = live.wait_done(first["runId"], 120)
    detected = time.time() - killed_at
    print(f"\nthe killed worker's run was failed {detected:.1f} s after the kill")
    assert failed["status"] == "FAILURE" and detected < 60
    assert live.wait_done(person)["status"] == "SUCCESS"
    retry = live.wait_run(lambda rs: next((r for r in rs if r["tags"].get(
        "dagster/parent_run_id") == first["runId"]), None), 120, "the retry")
    assert retry["tags"].get("dagster/retry_number") == "1"
    assert live.wait_done(retry["runId"])["status"] == "SUCCESS"
    assert "QUEUED" in live.seen[person] and live.most_running == 1
    assert not live.unreadable, live.unreadable[:3]
    crash = [a for a in live.alerts if a.get("run_id") == first["runId"]]
    assert crash and crash[0]["kind"] == "run_failed"


def failures(inst, run_id: str) -> list[str]:
    """The error messages of a run's failed steps, and its failure message."""
    records = inst.get_records_for_run(run_id).records
    return [getattr(getattr(r.event_log_entry.dagster_event.event_specific_data, "error", None),
                    "message", "")[:1500] for r in records
            if r.event_log_entry.dagster_event and r.event_log_entry.dagster_event.event_type_value
            in ("STEP_FAILURE", "PIPELINE_FAILURE", "RUN_FAILURE")]


def kill_after(live: Live, run_id: str, asset: str) -> int:
    """SIGKILL the run's worker once the run has written `asset`; its pid."""
    deadline = time.time() + 180
    with live.instance() as inst:
        while time.time() < deadline:
            made = {r.event_log_entry.dagster_event.asset_key.path[-1] for r in
                    inst.get_records_for_run(run_id, of_type=dg.DagsterEventType.
                                             ASSET_MATERIALIZATION).records}
            status = inst.get_run_by_id(run_id).status
            assert status == dg.DagsterRunStatus.STARTED, (status, made, failures(inst, run_id))
            if asset in made:
                pid, _ = reported_worker(inst, run_id)
                os.kill(pid, signal.SIGKILL)
                return pid
            time.sleep(0.3)
    raise AssertionError(f"run {run_id} did not write {asset} within 180 s")


def test_a_retrained_day_delivered_again_is_not_retrained_again(live):
    day = live.days[-2]  # the backfill's newest day, retrained above
    again = live.launch("ingest_play_logs_job", day, ingest_part(run_config(live.days[0])))
    assert live.wait_done(again)["status"] == "SUCCESS"
    deadline = time.time() + 90
    reasons = []
    while time.time() < deadline and not any("already retrained" in r for r in reasons):
        with live.instance() as inst:
            state = next(s for s in inst.all_instigator_state()
                         if s.name == "retrain_after_ingest")
            ticks = inst.get_ticks(state.instigator_origin_id, state.selector_id, limit=5)
        reasons = [t.skip_reason or "" for t in ticks]
        time.sleep(2)
    assert any("already retrained as of" in r for r in reasons), reasons
    retrains = [r for r in live.runs() if r["jobName"] == "retrain_and_publish"
                and r["tags"].get("dagster/partition") == day]
    assert len(retrains) == 3  # the sensor's (killed), the person's, the retry: no fourth


START_SCHEDULE = """mutation($s: ScheduleSelector!) { startSchedule(scheduleSelector: $s) {
    __typename ... on ScheduleStateResult { scheduleState { status } } } }"""


def stale_alerts(live: Live) -> list[tuple[str, int]]:
    """(table, publication) of each stale_table alert posted, in order."""
    return [(a["asset"], a["publication"]) for a in live.alerts if a["kind"] == "stale_table"]


def publications(live: Live) -> set[tuple[str, int]]:
    """(table, storage id of its newest materialisation) of each served table."""
    with live.instance() as inst:
        return {(t, inst.fetch_materializations(dg.AssetKey(t), limit=1).records[0].storage_id)
                for t in SERVED}


def test_stop_and_start_again_keep_history_state_and_cursors(live):
    from recsys_dagster.deployment import processes

    # A day delivered again is being ingested: its worker is paused (SIGSTOP) once its step
    # has started, so that the run is still in progress at the stop below however fast it is.
    in_flight = live.launch("ingest_play_logs_job", live.days[-2],
                            ingest_part(run_config(live.days[0])))
    deadline = time.time() + 120
    with live.instance() as inst:
        while time.time() < deadline and not inst.get_records_for_run(
                in_flight, of_type=dg.DagsterEventType.STEP_START).records:
            time.sleep(0.2)
        worker = reported_worker(inst, in_flight)
        assert worker, failures(inst, in_flight)
    os.kill(worker[0], signal.SIGSTOP)
    # The served tables go stale a minute after their last publication
    # (RECSYS_SERVED_MAX_AGE_MINUTES=1), however fast the tests before this one ran: each
    # fails its freshness, and the alert sensor (every 15 s) posts it once.
    deadline = time.time() + 120
    while time.time() < deadline and not all(
            any(state == "FAIL" for _, state in freshness_changes(live, t)) for t in SERVED):
        time.sleep(2)
    # Each alerts its newest publication once (the alerts of an earlier publication that went
    # stale between two retrains above are kept).
    deadline = time.time() + 40
    while time.time() < deadline and not publications(live) <= set(stale_alerts(live)):
        time.sleep(2)
    alerted = stale_alerts(live)
    assert publications(live) <= set(alerted) and len(set(alerted)) == len(alerted), alerted

    def state():
        with live.instance() as inst:
            return ({r.run_id: (r.status, r.tags.get("dagster/schedule_name"),
                                r.tags.get("dagster/parent_run_id")) for r in inst.get_runs()},
                    {s.name: (s.status, s.instigator_data) for s in inst.all_instigator_state()})

    # The schedule is switched on while the daemon is down (so it cannot tick before the
    # restart): its RUNNING state is the instance's, in PostgreSQL, not the daemon's.
    assert processes.stop(live.folder / "run", "daemon")
    started = live.gql(START_SCHEDULE, {"s": {**REPO, "scheduleName": "daily_ingest"}})
    assert started["startSchedule"]["scheduleState"]["status"] == "RUNNING", started
    assert processes.stop(live.folder / "run", "webserver")  # PostgreSQL keeps running
    status = live.deployment("status")
    assert "daemon       stopped" in status and "webserver    stopped" in status, status
    runs, instigators = state()
    assert instigators["daily_ingest"][0].value == "RUNNING"
    assert runs[in_flight][0] == dg.DagsterRunStatus.STARTED
    # `stop` kills the run's worker outright, then stops the code server and PostgreSQL.
    t0 = time.time()
    stopped = live.deployment("stop")
    print(f"\nstop with a run in progress took {time.time() - t0:.1f} s")
    assert f"of run {in_flight}" in stopped and "stopped code_server" in stopped, stopped
    t0 = time.time()
    live.deployment("serve")
    print(f"restart (every process, PostgreSQL too): serve took {time.time() - t0:.1f} s")
    restarted = time.time()
    time.sleep(5)  # the daemon's first evaluations after the start
    runs_after, instigators_after = state()
    # Every run is there with its status, but the one whose worker was killed; a new one can
    # only be the schedule's, ticking now, or that run's retry.
    assert {r: s for r, s in runs_after.items() if r in runs and r != in_flight} == {
        r: s for r, s in runs.items() if r != in_flight}
    assert all(s[1] == "daily_ingest" or s[2] == in_flight
               for r, s in runs_after.items() if r not in runs)
    for name, (status, _data) in instigators.items():
        assert instigators_after[name][0] == status, name
    # The cursors went on from where they were (a lost one starts again from nothing or from
    # now): the run-status sensor's last record, the stale-table sensor's last event.
    before, after = (json.loads(i["retrain_after_ingest"][1].cursor)["record_id"]
                     for i in (instigators, instigators_after))
    assert after >= before > 0
    before, after = (json.loads(i["alert_on_stale_tables"][1].cursor)["after"]
                     for i in (instigators, instigators_after))
    assert after >= before > 0
    # Once the stale-table sensor has looked again after the restart, each staleness is
    # still alerted once (its cursor kept it from posting them again, and a table whose
    # freshness fails again without a publication since is not a new staleness).
    deadline = time.time() + 40
    while time.time() < deadline and not sensor_ticked_since(live, "alert_on_stale_tables",
                                                             restarted):
        time.sleep(1)
    assert sensor_ticked_since(live, "alert_on_stale_tables", restarted)
    assert stale_alerts(live) == alerted, [(t, freshness_changes(live, t, previous=True))
                                           for t in SERVED]
    # The killed run failed as a crashed worker's (no step failed), and its retry succeeds.
    assert live.wait_done(in_flight, 60)["status"] == "FAILURE"
    with live.instance() as inst:
        assert not inst.get_records_for_run(
            in_flight, of_type=dg.DagsterEventType.STEP_FAILURE).records, failures(inst, in_flight)
    retry = live.wait_run(lambda rs: next((r for r in rs if r["tags"].get(
        "dagster/parent_run_id") == in_flight), None), 60, "the killed run's retry")
    assert live.wait_done(retry["runId"])["status"] == "SUCCESS"


def sensor_ticked_since(live: Live, name: str, when: float) -> bool:
    with live.instance() as inst:
        state = next(s for s in inst.all_instigator_state() if s.name == name)
        ticks = inst.get_ticks(state.instigator_origin_id, state.selector_id, limit=3)
    return any(t.timestamp > when for t in ticks)


def test_the_schedule_ingests_yesterday_and_the_sensor_retrains(live):
    yesterday = live.days[-1]
    # The served tables are stale, and the schedule, switched on before the restart, ticks
    # at the start of a minute (the test before).
    assert all(freshness_changes(live, t)[-1][1] == "FAIL" for t in SERVED)
    ingest = live.wait_run(lambda rs: next((r for r in rs if r["tags"].get(
        "dagster/schedule_name") == "daily_ingest"), None), 150, "the schedule's ingest")
    assert ingest["tags"]["dagster/partition"] == yesterday
    ingest = live.wait_done(ingest["runId"])
    assert ingest["status"] == "SUCCESS"
    retrain = live.wait_run(lambda rs: next((r for r in rs if r["jobName"] ==
                                             "retrain_and_publish" and r["tags"].get(
                                                 "dagster/partition") == yesterday), None),
                            120, "the retrain as of yesterday")
    assert retrain["tags"]["dagster/sensor_name"] == "retrain_after_ingest"
    assert retrain["creationTime"] >= ingest["endTime"]
    retrain = live.wait_done(retrain["runId"])
    assert retrain["status"] == "SUCCESS"
    tick = dt.datetime.fromtimestamp(ingest["creationTime"], dt.UTC).replace(second=0,
                                                                              microsecond=0)
    print(f"\nfrom the tick to the ingest's start {ingest['startTime'] - tick.timestamp():.1f} "
          f"s; the ingest {ingest['endTime'] - ingest['startTime']:.1f} s; the sensor's retrain "
          f"created {retrain['creationTime'] - ingest['endTime']:.1f} s after it, ran "
          f"{retrain['endTime'] - retrain['startTime']:.1f} s")
    store = live.store
    served = store.manifest("user_recommendations")["served_model"]
    assert served["run_id"] == retrain["runId"]
    # Read back from PostgreSQL: the run, its events, its materialisations.
    with live.instance() as inst:
        run = inst.get_run_by_id(retrain["runId"])
        assert run.status == dg.DagsterRunStatus.SUCCESS and run.tags["dagster/partition"] \
            == yesterday
        made = {r.event_log_entry.dagster_event.asset_key.path[-1] for r in
                inst.get_records_for_run(retrain["runId"], of_type=dg.DagsterEventType.
                                         ASSET_MATERIALIZATION).records}
        assert set(SERVED) <= made and "als_model" in made
    conn = live.connect()
    with conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM event_logs WHERE run_id = %s AND dagster_event_type "
                    "= 'ASSET_MATERIALIZATION'", (retrain["runId"],))
        assert cur.fetchone()[0] >= len(made)
    conn.close()
    # Freshness: the served tables failed their freshness (and an alert was posted) before
    # this retrain (the test before waited for it), and pass after it.
    deadline = time.time() + 60
    while time.time() < deadline and not all(
            freshness_changes(live, t)[-1:] and freshness_changes(live, t)[-1][1] == "PASS"
            for t in SERVED):
        time.sleep(2)
    for table in SERVED:
        changes = freshness_changes(live, table)
        stale = [when for when, state in changes if state == "FAIL"]
        assert stale and stale[-1] < retrain["endTime"], (table, changes)
        assert changes[-1][1] == "PASS" and changes[-1][0] >= stale[-1], (table, changes)
    deadline = time.time() + 30  # the alert sensor looks every 15 s
    while time.time() < deadline and not [a for a in live.alerts if a["kind"] == "stale_table"]:
        time.sleep(1)
    assert "user_recommendations" in {t for t, _ in stale_alerts(live)}, live.alerts
    assert live.most_running == 1 and not live.unreadable


def wait_loaded(page) -> None:
    """Until the page has no spinner and no "fetching" text left."""
    page.wait_for_load_state("networkidle")
    for text in ("Fetching statuses", "Loading"):
        page.get_by_text(text).first.wait_for(state="hidden", timeout=60_000)


def test_the_deployment_ui_in_a_real_browser(live):
    """Chromium on the deployment's UI: every daemon healthy, the schedule running with the
    tick that launched yesterday's ingest, that run's page, the lineage of DESIGN.md and the
    products' samples by name. Screenshots in test-artifacts/deployment-*.png."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    nodes = live.gql("""{ assetNodes { assetKey { path } groupName description
                          dependencyKeys { path } } }""")["assetNodes"]
    assert {n["assetKey"]["path"][-1]: n["groupName"] for n in nodes} == GROUPS
    assert {(d["path"][-1], n["assetKey"]["path"][-1]) for n in nodes
            for d in n["dependencyKeys"]} == EXPECTED_EDGES
    assert all(n["description"] for n in nodes)
    ingest = next(r for r in live.runs() if r["tags"].get("dagster/schedule_name")
                  == "daily_ingest")
    store = live.store
    recs = store.read_pandas("user_recommendations")
    names = (store.read_pandas("item_catalog").sort_values("day")
             .drop_duplicates("item_id", keep="last").set_index("item_id").name)
    first_user = sorted(recs.user_id)[0]
    first_pick = names[recs[(recs.user_id == first_user) & (recs["rank"] == 1)].item_id.item()]
    with chromium_page(1300) as page:
        page.goto(f"{live.url}/deployment/daemons")
        with contextlib.suppress(PlaywrightTimeout):  # no community dialog: nux is off
            page.get_by_role("button", name="Skip").click(timeout=3_000)
        wait_loaded(page)
        for daemon in ("Scheduler", "Sensors", "Run queue", "monitoring", "freshness daemon"):
            page.get_by_text(daemon).first.wait_for(timeout=30_000)
        assert page.get_by_text("Not running", exact=True).count() == 0
        assert page.get_by_text("Running", exact=True).count() >= 5
        page.screenshot(path=str(ARTIFACTS / "deployment-daemons.png"))
        page.goto(f"{live.url}/locations/recsys_dagster/schedules/daily_ingest")
        wait_loaded(page)
        page.get_by_text(ingest["runId"][:8]).first.wait_for(timeout=30_000)
        page.screenshot(path=str(ARTIFACTS / "deployment-schedule.png"))
        page.goto(f"{live.url}/runs/{ingest['runId']}")
        wait_loaded(page)
        page.get_by_text("Success").first.wait_for(timeout=30_000)
        page.screenshot(path=str(ARTIFACTS / "deployment-scheduled-run.png"))
        page.goto(f"{live.url}/asset-groups")
        wait_loaded(page)
        for group in set(GROUPS.values()):
            page.get_by_text(group, exact=True).first.wait_for(timeout=30_000)
        page.screenshot(path=str(ARTIFACTS / "deployment-lineage.png"))
        page.goto(f"{live.url}/assets/user_recommendations")
        wait_loaded(page)
        text = metadata_text(page, "sample")
        assert first_user in text and first_pick in text, text[:500]
        page.screenshot(path=str(ARTIFACTS / "deployment-user_recommendations.png"))


def freshness_changes(live: Live, asset: str, previous: bool = False) -> list[tuple]:
    """(when, new state) of each freshness change of a served table, oldest first (and the
    state before, when `previous`)."""
    with live.instance() as inst:
        records = inst.get_event_records(
            dg.EventRecordsFilter(event_type=dg.DagsterEventType.FRESHNESS_STATE_CHANGE),
            limit=500, ascending=True)
    changes = [r.event_log_entry.dagster_event.event_specific_data for r in records]
    return [(c.state_change_timestamp, c.new_state.value)
            + ((c.previous_state.value,) if previous else ()) for c in changes
            if c.key.path[-1] == asset]
