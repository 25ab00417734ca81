"""Schedules, sensors and the retry policy, evaluated in-process."""

import datetime as dt
import json

import dagster as dg

from recsys_dagster import sensors
from recsys_dagster.definitions import defs
from recsys_dagster.jobs import RETRAIN_JOB, RETRY_POLICY
from recsys_dagster.schedules import daily_ingest, nightly_retraining


def test_schedules_request_yesterday_of_their_jobs():
    when = dg.build_schedule_context(
        scheduled_execution_time=dt.datetime(2024, 3, 1, 3, 0, tzinfo=dt.UTC),
        repository_def=defs.get_repository_def())
    for schedule, job in ((nightly_retraining, RETRAIN_JOB), (daily_ingest,
                                                              "ingest_play_logs_job")):
        requests = schedule.evaluate_tick(when).run_requests
        assert len(requests) == 1 and schedule.job_name == job
        assert requests[0].partition_key == "2024-02-29"  # the newest complete day
    assert nightly_retraining.cron_schedule == "0 3 * * *"
    assert daily_ingest.cron_schedule == "30 0 * * *"
    assert nightly_retraining.execution_timezone == "UTC"
    retrain = defs.resolve_job_def(RETRAIN_JOB)
    keys = {k.path[-1] for k in retrain.asset_layer.executable_asset_keys}
    assert "play_events" not in keys and {"als_model", "user_recommendations"} <= keys


def test_schedule_skips_days_outside_the_calendar():
    late = dg.build_schedule_context(
        scheduled_execution_time=dt.datetime(2026, 11, 27, 3, 0, tzinfo=dt.UTC),
        repository_def=defs.get_repository_def())
    result = nightly_retraining.evaluate_tick(late)
    assert not result.run_requests and "outside the play-log calendar" in result.skip_message


def test_retrain_sensor_waits_for_enough_new_days(monkeypatch):
    monkeypatch.setenv(sensors.RETRAIN_AFTER_ENV, "3")
    instance = dg.DagsterInstance.ephemeral()

    def tick(cursor=None):
        ctx = dg.build_sensor_context(instance=instance, cursor=cursor,
                                      repository_def=defs.get_repository_def())
        return sensors.retrain_on_new_days.evaluate_tick(ctx)

    def land(day):
        instance.report_runless_asset_event(dg.AssetMaterialization("play_events", partition=day))

    # Three deliveries, but two of them re-deliver the same day: two days.
    for day in ("2024-03-01", "2024-03-02", "2024-03-02"):
        land(day)
    result = tick()
    assert not result.run_requests and "2 new days" in result.skip_message
    land("2024-03-05")  # the cursor remembered the two days seen so far
    result = tick(result.cursor)
    assert len(result.run_requests) == 1
    request = result.run_requests[0]
    assert request.partition_key == "2024-03-30"  # retrain as of the calendar's newest day
    assert "2024-03-01..2024-03-05" in request.tags["recsys/trigger"]
    # Nothing new since the request: skip again.
    result = tick(result.cursor)
    assert not result.run_requests and "0 new days" in result.skip_message


def test_run_failure_sensor_records_the_failure(tmp_path, monkeypatch):
    monkeypatch.setenv("RECSYS_DATA_DIR", str(tmp_path))

    @dg.op
    def breaks():
        raise RuntimeError("disk on fire")

    @dg.job
    def doomed():
        breaks()

    instance = dg.DagsterInstance.ephemeral()
    result = doomed.execute_in_process(instance=instance, raise_on_error=False)
    ctx = dg.build_run_status_sensor_context(
        sensor_name="report_run_failure", dagster_instance=instance,
        dagster_run=result.dagster_run, dagster_event=result.get_run_failure_event(),
    ).for_run_failure()
    sensors.report_run_failure(ctx)
    lines = (tmp_path / sensors.FAILURE_LOG).read_text().splitlines()
    record = json.loads(lines[-1])
    assert record["run_id"] == result.run_id and record["job"] == "doomed"
    assert record["failed_steps"] == ["breaks"]


def test_transient_step_failure_is_retried(tmp_path):
    marker = tmp_path / "attempts"

    @dg.asset
    def flaky():
        n = int(marker.read_text()) if marker.exists() else 0
        marker.write_text(str(n + 1))
        if n == 0:
            raise ConnectionError("transient")
        return n

    job = dg.define_asset_job("flaky_job", selection=[flaky], op_retry_policy=RETRY_POLICY)
    d = dg.Definitions(assets=[flaky], jobs=[job])
    result = d.resolve_job_def("flaky_job").execute_in_process()
    assert result.success and marker.read_text() == "2"
    for name in ("recsys_pipeline", "ingest_play_logs_job", "retrain_and_publish"):
        assert defs.resolve_job_def(name).op_retry_policy == RETRY_POLICY
