"""Sensors: retrain when enough new days of play logs have landed; report failed runs."""

import datetime as dt
import json
import os

import dagster as dg

from .jobs import (
    ingest_play_logs_job,
    recsys_pipeline,
    refresh_recommendations,
    retrain_and_publish,
)
from .partitions import last_day
from .paths import data_dir

RETRAIN_AFTER_ENV = "RECSYS_RETRAIN_AFTER_DAYS"
FAILURE_LOG = os.path.join("_alerts", "run_failures.jsonl")


def days_needed() -> int:
    return max(1, int(os.environ.get(RETRAIN_AFTER_ENV, "3")))


@dg.sensor(job=retrain_and_publish, minimum_interval_seconds=300,
           default_status=dg.DefaultSensorStatus.STOPPED,
           description="Retrain as of the newest day once N distinct days of play_events have "
           "landed (new or re-delivered) since the last retrain request (N from "
           "$RECSYS_RETRAIN_AFTER_DAYS, default 3).")
def retrain_on_new_days(context: dg.SensorEvaluationContext):
    state = json.loads(context.cursor) if context.cursor else {"after": 0, "days": []}
    records = context.instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey("play_events"),
                              after_storage_id=state["after"]),
        limit=1000, ascending=True).records
    days = sorted(set(state["days"]) | {r.partition_key for r in records if r.partition_key})
    after = records[-1].storage_id if records else state["after"]
    needed = days_needed()
    if len(days) < needed:
        context.update_cursor(json.dumps({"after": after, "days": days}))
        return dg.SkipReason(f"{len(days)} new days of play_events landed, waiting for {needed}")
    context.update_cursor(json.dumps({"after": after, "days": []}))
    return dg.RunRequest(run_key=f"days-up-to-{after}", partition_key=last_day(),
                         tags={"recsys/trigger": f"{len(days)} new days: {days[0]}..{days[-1]}"})


@dg.run_failure_sensor(monitored_jobs=[recsys_pipeline, ingest_play_logs_job,
                                       retrain_and_publish, refresh_recommendations],
                       default_status=dg.DefaultSensorStatus.RUNNING,
                       description="Logs every failed run and appends it to "
                       "$RECSYS_DATA_DIR/_alerts/run_failures.jsonl for alerting.")
def report_run_failure(context: dg.RunFailureSensorContext):
    run = context.dagster_run
    record = {
        "at": dt.datetime.now(dt.UTC).isoformat(),
        "run_id": run.run_id, "job": run.job_name,
        "message": context.failure_event.message,
        "failed_steps": sorted({e.step_key for e in context.get_step_failure_events()
                                if e.step_key}),
    }
    path = os.path.join(data_dir(), FAILURE_LOG)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(record) + "\n")
    context.log.error(f"run {run.run_id} of {run.job_name} failed: {record['failed_steps']}")


ALL_SENSORS = [retrain_on_new_days, report_run_failure]
