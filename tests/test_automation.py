"""The schedule, the sensors, alerts and retries, evaluated in-process against an ephemeral
instance (tests/test_deployment.py has the daemon fire them for real)."""

import datetime as dt
import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import dagster as dg
import pytest

from recsys_dagster import alerts, sensors, settings
from recsys_dagster.assets.helpers import fails_for_good
from recsys_dagster.definitions import defs
from recsys_dagster.jobs import INGEST_JOB, RETRAIN_JOB, RETRY_POLICY
from recsys_dagster.runs import PARTITION_TAG
from recsys_dagster.schedules import daily_ingest

DAYS = dg.DailyPartitionsDefinition(start_date="2024-01-01", end_date="2024-03-31")


def tick(instance, when):
    ctx = dg.build_schedule_context(instance=instance, scheduled_execution_time=when,
                                    repository_def=defs.get_repository_def())
    return daily_ingest.evaluate_tick(ctx)


def test_the_daily_ingest_asks_for_yesterday_once(tmp_path):
    instance = dg.DagsterInstance.local_temp(str(tmp_path))  # a schedule needs a stored one
    when = dt.datetime(2024, 3, 1, 0, 30, tzinfo=dt.UTC)
    request, = tick(instance, when).run_requests
    assert request.partition_key == "2024-02-29" and daily_ingest.job_name == INGEST_JOB
    assert daily_ingest.cron_schedule == "30 0 * * *" and daily_ingest.execution_timezone == "UTC"
    # Running: the next tick (another run key: the tick time is in it) skips the day.
    instance.add_run(dg.DagsterRun(job_name=INGEST_JOB, run_id="r1",
                                   status=dg.DagsterRunStatus.STARTED,
                                   tags={PARTITION_TAG: "2024-02-29"}))
    later = tick(instance, when + dt.timedelta(minutes=1))
    assert not later.run_requests and "started (run r1)" in later.skip_message
    # Ingested (by any run): skipped for good.
    instance.report_runless_asset_event(dg.AssetMaterialization("play_events",
                                                                partition="2024-02-29"))
    assert "2024-02-29 was ingested already" in tick(instance, when).skip_message
    # A day outside the calendar says how to open it.
    late = tick(instance, dt.datetime(2026, 11, 27, 0, 30, tzinfo=dt.UTC))
    assert not late.run_requests and "RECSYS_CALENDAR_END=open" in late.skip_message


def test_automation_is_switched_on_by_the_environment(monkeypatch):
    monkeypatch.setenv("RECSYS_AUTOMATION", "daily_ingest,retrain_after_ingest")
    assert settings.automation_on("daily_ingest") and not settings.automation_on("other")
    monkeypatch.setenv("RECSYS_AUTOMATION", "all")
    assert settings.automation_on("anything")
    monkeypatch.setenv("RECSYS_AUTOMATION", "")
    assert not settings.automation_on("daily_ingest")
    assert sensors.default_status("retrain_after_ingest") == dg.DefaultSensorStatus.STOPPED
    monkeypatch.setenv("RECSYS_AUTOMATION", "bad name")
    with pytest.raises(settings.SettingError, match="RECSYS_AUTOMATION"):
        settings.automation_on("x")


def ingest_run(instance, day, accepted):
    """A successful run that materialised play_events for `day` with `accepted` rows."""

    @dg.asset(name="play_events", partitions_def=DAYS)
    def play_events():
        return dg.MaterializeResult(metadata={"accepted_rows": accepted})

    result = dg.materialize([play_events], partition_key=day, instance=instance)
    return result.dagster_run


def retrain(instance, day, status, run_id):
    instance.add_run(dg.DagsterRun(job_name=RETRAIN_JOB, run_id=run_id, status=status,
                                   tags={PARTITION_TAG: day}))


def test_a_successful_ingest_asks_for_one_retrain_of_its_day(monkeypatch):
    monkeypatch.setenv("RECSYS_RETRAIN_AFTER_DAYS", "1")
    instance = dg.DagsterInstance.ephemeral()
    run = ingest_run(instance, "2024-03-10", accepted=120)
    request = sensors.retrain_request(instance, run)
    assert request.partition_key == "2024-03-10" and request.run_key == "retrain-as-of-2024-03-10"
    # Another request for that day, however it came, while one runs: skipped.
    retrain(instance, "2024-03-10", dg.DagsterRunStatus.STARTED, "q1")
    skip = sensors.retrain_request(instance, ingest_run(instance, "2024-03-10", accepted=5))
    assert "a retrain as of 2024-03-10 is started (run q1)" in skip.skip_message
    # A newer day's retrain waiting: an older one queued behind it would publish an older model.
    skip = sensors.retrain_request(instance, ingest_run(instance, "2024-03-09", accepted=5))
    assert "a retrain as of 2024-03-10 is started" in skip.skip_message
    # Retrained: a re-delivery of that day, or an older one, is not retrained again.
    retrain(instance, "2024-03-10", dg.DagsterRunStatus.SUCCESS, "s1")
    for day in ("2024-03-10", "2024-03-08"):
        skip = sensors.retrain_request(instance, ingest_run(instance, day, accepted=5))
        assert "already retrained as of 2024-03-10" in skip.skip_message
    # Nothing new: an ingest that delivered no plays.
    skip = sensors.retrain_request(instance, ingest_run(instance, "2024-03-11", accepted=0))
    assert "nothing new" in skip.skip_message and "delivered no plays" in skip.skip_message
    # Every N days.
    monkeypatch.setenv("RECSYS_RETRAIN_AFTER_DAYS", "3")
    skip = sensors.retrain_request(instance, ingest_run(instance, "2024-03-12", accepted=9))
    assert "retraining every 3 days" in skip.skip_message
    assert sensors.retrain_request(instance, ingest_run(instance, "2024-03-13", accepted=9)
                                   ).partition_key == "2024-03-13"


class Hook(BaseHTTPRequestHandler):
    received: list = []

    def do_POST(self):  # noqa: N802 - http.server's name
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Hook.received.append((self.headers["Content-Type"], json.loads(body)))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def webhook(monkeypatch):
    server = HTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    Hook.received = []
    monkeypatch.setenv("RECSYS_ALERT_WEBHOOK", f"http://127.0.0.1:{server.server_port}/hook")
    yield Hook.received
    server.shutdown()


def failure_context(instance, result):
    return dg.build_run_status_sensor_context(
        sensor_name=sensors.ALERT_ON_RUN_FAILURE, dagster_instance=instance,
        dagster_run=result.dagster_run, dagster_event=result.get_run_failure_event(),
    ).for_run_failure()


def test_failed_runs_and_blocked_gates_are_posted_to_the_webhook(tmp_path, monkeypatch, webhook):
    monkeypatch.setenv("RECSYS_DATA_DIR", str(tmp_path))
    instance = dg.DagsterInstance.ephemeral()

    @dg.asset
    def breaks():
        raise RuntimeError("disk on fire")

    @dg.asset(check_specs=[dg.AssetCheckSpec("gate", asset="gated", blocking=True)])
    def gated():
        yield dg.Output(1)
        yield dg.AssetCheckResult(check_name="gate", passed=False)

    for asset in (breaks, gated):
        result = dg.materialize([asset], instance=instance, raise_on_error=False)
        sensors.alert_on_run_failure(failure_context(instance, result))
    logged = [json.loads(line) for line in
              (tmp_path / alerts.ALERT_LOG).read_text().splitlines()]
    assert [a["kind"] for a in logged] == ["run_failed", "gate_blocked"]
    assert logged[0]["failed_steps"] == ["breaks"] and logged[1]["checks"] == ["gated:gate"]
    assert all(a["webhook"] == "HTTP 200" for a in logged)
    assert [body["kind"] for _, body in webhook] == ["run_failed", "gate_blocked"]
    assert all(kind == "application/json" and body["text"].startswith("recsys-dagster: ")
               for kind, body in webhook)


def test_a_webhook_that_is_down_leaves_the_alert_in_the_file(tmp_path, monkeypatch):
    monkeypatch.setenv("RECSYS_ALERT_WEBHOOK", "http://127.0.0.1:9/nothing-listens")
    record = alerts.send("run_failed", "x", {}, base_dir=str(tmp_path))
    assert record["webhook"].startswith("not delivered")
    assert json.loads((tmp_path / alerts.ALERT_LOG).read_text())["kind"] == "run_failed"


def test_each_stale_publication_of_a_served_table_is_alerted_once(tmp_path, monkeypatch,
                                                                 webhook):
    from dagster._core.definitions.freshness import FreshnessState, FreshnessStateChange

    monkeypatch.setenv("RECSYS_DATA_DIR", str(tmp_path))
    instance = dg.DagsterInstance.ephemeral()
    table = dg.AssetKey("user_recommendations")

    def change(*states):
        for state in states:
            instance._report_runless_asset_event(FreshnessStateChange(  # noqa: SLF001
                key=table, new_state=state, previous_state=FreshnessState.UNKNOWN,
                state_change_timestamp=0.0))

    def publish():
        instance.report_runless_asset_event(dg.AssetMaterialization(table))
        return instance.fetch_materializations(table, limit=1).records[0].storage_id

    first = publish()
    change(FreshnessState.PASS, FreshnessState.FAIL)
    sent, cursor = sensors.stale_alerts(instance, sensors.stale_cursor(None))
    assert [(a["asset"], a["publication"]) for a in sent] == [("user_recommendations", first)]
    assert a_time(sent[0]["published_at"]) and cursor["after"] > 0
    assert webhook[0][1]["kind"] == "stale_table"
    assert sensors.stale_alerts(instance, cursor) == ([], cursor)  # each change once
    # The same publication failing again (its state went through UNKNOWN or PASS without a
    # publication: a daemon restart, a step of the clock) is not a new staleness.
    change(FreshnessState.UNKNOWN, FreshnessState.FAIL, FreshnessState.PASS, FreshnessState.FAIL)
    sent, cursor = sensors.stale_alerts(instance, sensors.stale_cursor(json.dumps(cursor)))
    assert sent == [] and len(webhook) == 1
    # Published again and stale again: alerted; a publication after the change read is not
    # the one that went stale.
    second = publish()
    change(FreshnessState.PASS, FreshnessState.FAIL)
    publish()
    sent, cursor = sensors.stale_alerts(instance, cursor)
    assert [a["publication"] for a in sent] == [second]
    assert cursor["alerted"] == {"user_recommendations": second}
    # A cursor of the former format (the last event id) reads as nothing alerted yet.
    assert sensors.stale_cursor("42") == {"after": 42, "alerted": {}}


def a_time(text: str) -> bool:
    return dt.datetime.fromisoformat(text).tzinfo is not None


def test_transient_errors_are_retried_and_deterministic_ones_are_not(tmp_path):
    attempts = {"transient": 0, "bad_input": 0}

    @dg.asset
    @fails_for_good
    def transient():
        attempts["transient"] += 1
        if attempts["transient"] == 1:
            raise ConnectionError("lost executor")
        return 1

    @dg.asset
    @fails_for_good
    def bad_input():
        attempts["bad_input"] += 1
        raise ValueError("no plays in the training window")

    d = dg.Definitions(assets=[transient, bad_input], jobs=[
        dg.define_asset_job(name, selection=[name], op_retry_policy=dg.RetryPolicy(max_retries=2))
        for name in ("transient", "bad_input")])
    assert d.resolve_job_def("transient").execute_in_process().success
    assert not d.resolve_job_def("bad_input").execute_in_process(raise_on_error=False).success
    assert attempts == {"transient": 2, "bad_input": 1}
    for name in ("recsys_pipeline", "ingest_play_logs_job", "retrain_and_publish"):
        assert defs.resolve_job_def(name).op_retry_policy == RETRY_POLICY
