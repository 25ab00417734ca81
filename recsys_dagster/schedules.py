"""The schedule: ingest yesterday's play logs, once per day.

`daily_ingest` (cron RECSYS_INGEST_CRON, UTC) asks for the newest complete day. Dagster's
schedule run keys include the tick time, so they do not de-duplicate across ticks; the
schedule itself skips, with the reason, a day that was ingested already (by any run: this
schedule, a backfill, the CLI) or whose ingest is queued or running. A failed ingest is not
asked again by the schedule (its run is retried if its worker crashed; a person re-runs a
day whose input was bad). Retraining follows a successful ingest (sensors.retrain_after_ingest).
It starts stopped unless RECSYS_AUTOMATION names it (or says all).
"""

import datetime as dt

import dagster as dg

from . import settings
from .jobs import INGEST_JOB, ingest_play_logs_job
from .partitions import PLAY_DAYS, first_day
from .pipeline import automation_config
from .runs import ACTIVE, PLAY_EVENTS, runs_for_day

DAILY_INGEST = "daily_ingest"


def newest_day(context: dg.ScheduleEvaluationContext) -> str:
    """The day before the tick: the newest complete UTC day."""
    when = context.scheduled_execution_time or dt.datetime.now(dt.UTC)
    return (when.astimezone(dt.UTC).date() - dt.timedelta(days=1)).isoformat()


def why_not_ingest(instance: dg.DagsterInstance, day: str) -> str | None:
    """Why the schedule need not ask for the day's ingest (None: it should)."""
    if not PLAY_DAYS.has_partition_key(day):
        return (f"{day} is outside the play-log calendar (from {first_day()}, "
                f"{settings.CALENDAR_END.name}={settings.read(settings.CALENDAR_END)}); "
                f"set {settings.CALENDAR_END.name}=open")
    if day in instance.get_materialized_partitions(PLAY_EVENTS):
        return f"{day} was ingested already"
    active = runs_for_day(instance, INGEST_JOB, day, ACTIVE)
    if active:
        return f"the ingest of {day} is {active[0].status.value.lower()} (run {active[0].run_id})"
    return None


@dg.schedule(name=DAILY_INGEST, job=ingest_play_logs_job,
             cron_schedule=settings.read(settings.INGEST_CRON), execution_timezone="UTC",
             description=f"Ingest yesterday's play logs once (cron ${settings.INGEST_CRON.name}, "
             "UTC); a day already ingested or being ingested is skipped.",
             default_status=(dg.DefaultScheduleStatus.RUNNING
                             if settings.automation_on(DAILY_INGEST)
                             else dg.DefaultScheduleStatus.STOPPED))
def daily_ingest(context: dg.ScheduleEvaluationContext):
    day = newest_day(context)
    reason = why_not_ingest(context.instance, day)
    if reason:
        return dg.SkipReason(reason)
    return dg.RunRequest(run_key=f"{DAILY_INGEST}-{day}", partition_key=day,
                         run_config=automation_config(ingestion=True),
                         tags={"recsys/trigger": f"schedule {DAILY_INGEST}"})


ALL_SCHEDULES = [daily_ingest]
