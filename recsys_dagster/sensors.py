"""Sensors: retrain after each successful ingest, and alert on failed runs, blocked gates and
stale served tables (alerts.py says where alerts go).

`retrain_after_ingest` replaces the former `nightly_retraining` schedule and
`retrain_on_new_days` sensor: a cron racing the ingest could start a retrain before the day
had landed (two Spark drivers on one machine, a training window without its newest day), and
counting landed days was a second answer to the same question. It reacts to an ingest run's
success, so a day's retrain starts only after that day's ingest has succeeded, and asks for
each as-of day once (its run key; and it skips a day already retrained, queued or running,
whoever asked). It starts stopped unless RECSYS_AUTOMATION names it (or says all); the alert
sensors start running.
"""

import datetime as dt
import json

import dagster as dg

from . import alerts, settings
from .jobs import RETRAIN_JOB, retrain_and_publish
from .pipeline import automation_config
from .runs import (
    ACTIVE,
    PARTITION_TAG,
    PLAY_EVENTS,
    days_of,
    materialized_in_run,
    newest_retrained_day,
)

RETRAIN_AFTER_INGEST = "retrain_after_ingest"
ALERT_ON_RUN_FAILURE = "alert_on_run_failure"
ALERT_ON_STALE_TABLES = "alert_on_stale_tables"
MODEL = dg.AssetKey("als_model")


def default_status(name: str) -> dg.DefaultSensorStatus:
    return (dg.DefaultSensorStatus.RUNNING if settings.automation_on(name)
            else dg.DefaultSensorStatus.STOPPED)


def retrain_request(instance: dg.DagsterInstance, run: dg.DagsterRun):
    """The retrain a successful run asks for (as of the newest day it ingested), or why none."""
    ingested = materialized_in_run(instance, run.run_id, PLAY_EVENTS)
    if not ingested:
        return dg.SkipReason(f"run {run.run_id} ingested no play logs")
    if materialized_in_run(instance, run.run_id, MODEL):
        return dg.SkipReason(f"run {run.run_id} retrained in the same run")
    days = days_of(run)
    day = days[1] if days else max(e.dagster_event.partition for e in ingested)
    accepted = [e.asset_materialization.metadata.get("accepted_rows") for e in ingested]
    if all(value is not None and value.value == 0 for value in accepted):
        return dg.SkipReason(f"nothing new: the ingest of {days[0] if days else day}..{day} "
                             f"(run {run.run_id}) delivered no plays")
    newest = newest_retrained_day(instance)
    if newest is not None and day <= newest:
        return dg.SkipReason(f"already retrained as of {newest}, not before {day}")
    every = settings.read(settings.RETRAIN_AFTER_DAYS)
    if newest is not None and (dt.date.fromisoformat(day)
                               - dt.date.fromisoformat(newest)).days < every:
        return dg.SkipReason(f"the last retrain was as of {newest}; retraining every {every} days "
                             f"(${settings.RETRAIN_AFTER_DAYS.name})")
    # A retrain of this day or a later one already waits or runs: this one would add nothing
    # (the same day) or, queued behind it, publish an older model after a newer one.
    later = [r for r in instance.get_runs(filters=dg.RunsFilter(job_name=RETRAIN_JOB,
                                                                statuses=ACTIVE), limit=50)
             if r.tags.get(PARTITION_TAG, "") >= day]
    if later:
        return dg.SkipReason(f"a retrain as of {later[0].tags[PARTITION_TAG]} is "
                             f"{later[0].status.value.lower()} (run {later[0].run_id})")
    return dg.RunRequest(run_key=f"retrain-as-of-{day}", partition_key=day,
                         run_config=automation_config(ingestion=False),
                         tags={"recsys/trigger": f"ingest run {run.run_id}"})


@dg.run_status_sensor(
    name=RETRAIN_AFTER_INGEST, run_status=dg.DagsterRunStatus.SUCCESS,
    request_job=retrain_and_publish, minimum_interval_seconds=5,
    default_status=default_status(RETRAIN_AFTER_INGEST),
    description="After an ingest run succeeds: retrain as of the newest day it ingested, once "
    "per day (skipped when it delivered no plays, when that day was retrained or is being "
    f"retrained, or until ${settings.RETRAIN_AFTER_DAYS.name} days have passed).")
def retrain_after_ingest(context: dg.RunStatusSensorContext):
    return retrain_request(context.instance, context.dagster_run)


def failed_blocking_checks(instance: dg.DagsterInstance, run_id: str) -> list[str]:
    records = instance.get_records_for_run(
        run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION).records
    failed = []
    for record in records:
        evaluation = record.event_log_entry.dagster_event.event_specific_data
        if not evaluation.passed and evaluation.blocking:
            failed.append(f"{evaluation.asset_key.to_user_string()}:{evaluation.check_name}")
    return sorted(set(failed))


def failure_alert(context: dg.RunFailureSensorContext) -> dict:
    run = context.dagster_run
    steps = sorted({e.step_key for e in context.get_step_failure_events() if e.step_key})
    details = {"run_id": run.run_id, "job": run.job_name, "days": days_of(run),
               "failed_steps": steps, "message": context.failure_event.message}
    gates = failed_blocking_checks(context.instance, run.run_id)
    if gates:
        return alerts.send("gate_blocked", f"{run.job_name} run {run.run_id} stopped at a "
                           f"blocking check: {', '.join(gates)}", {**details, "checks": gates})
    return alerts.send("run_failed", f"{run.job_name} run {run.run_id} failed"
                       + (f" in {', '.join(steps)}" if steps else ""), details)


@dg.run_failure_sensor(name=ALERT_ON_RUN_FAILURE, default_status=dg.DefaultSensorStatus.RUNNING,
                       description="Every failed run of this code location becomes an alert: "
                       "gate_blocked when a blocking check stopped it, run_failed otherwise.")
def alert_on_run_failure(context: dg.RunFailureSensorContext):
    record = failure_alert(context)
    context.log.error(record["text"])


def stale_cursor(text: str | None) -> dict:
    """The stale-table sensor's cursor: the last freshness change read (`after`) and, per
    table, the publication (its materialisation's storage id) already alerted as stale. An
    older cursor, a bare event id, reads as no table alerted yet."""
    if not text:
        return {"after": 0, "alerted": {}}
    value = json.loads(text)
    return value if isinstance(value, dict) else {"after": int(value), "alerted": {}}


def publication_before(instance: dg.DagsterInstance, key: dg.AssetKey, storage_id: int):
    """The newest materialisation record of `key` before event `storage_id`, or None."""
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=key, before_storage_id=storage_id), limit=1).records
    return records[0] if records else None


def stale_alerts(instance: dg.DagsterInstance, cursor: dict) -> tuple[list[dict], dict]:
    """Alerts for the served tables whose freshness failed since the cursor, and the new cursor.

    Each stale publication is alerted once: a table that fails again without having been
    published since (a daemon restart, a step of the wall clock can take its state through
    UNKNOWN or PASS and back) is not alerted again; one published since and stale again is."""
    records = instance.get_event_records(
        dg.EventRecordsFilter(event_type=dg.DagsterEventType.FRESHNESS_STATE_CHANGE,
                              after_cursor=cursor["after"]), limit=200, ascending=True)
    alerted = dict(cursor["alerted"])
    sent = []
    for record in records:
        change = record.event_log_entry.dagster_event.event_specific_data
        if change.new_state.value != "FAIL":
            continue
        asset = change.key.to_user_string()
        published = publication_before(instance, change.key, record.storage_id)
        publication = published.storage_id if published else None
        if asset in alerted and alerted[asset] == publication:
            continue
        alerted[asset] = publication
        age = settings.read(settings.SERVED_MAX_AGE_MINUTES)
        when = (dt.datetime.fromtimestamp(published.timestamp, dt.UTC).isoformat(
            timespec="seconds") if published else None)
        sent.append(alerts.send(
            "stale_table", f"{asset} has not been published for more than {age} minutes"
            + (f" (last published {when})" if when else ""),
            {"asset": asset, "previous_state": change.previous_state.value,
             "published_at": when, "publication": publication}))
    after = records[-1].storage_id if records else cursor["after"]
    return sent, {"after": after, "alerted": alerted}


@dg.sensor(name=ALERT_ON_STALE_TABLES, minimum_interval_seconds=15,
           default_status=dg.DefaultSensorStatus.RUNNING,
           description="A served table whose freshness policy fails becomes a stale_table alert, "
           "once per publication that went stale.")
def alert_on_stale_tables(context: dg.SensorEvaluationContext):
    sent, cursor = stale_alerts(context.instance, stale_cursor(context.cursor))
    context.update_cursor(json.dumps(cursor))
    return dg.SkipReason(f"{len(sent)} stale-table alerts sent" if sent
                         else "no served table turned stale")


ALL_SENSORS = [retrain_after_ingest, alert_on_run_failure, alert_on_stale_tables]
