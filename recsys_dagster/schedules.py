"""Schedules. They start stopped; turn them on in the UI (Automation) with the daemon running.

Both jobs are partitioned by day, so each tick targets the calendar's newest complete day:
the daily ingest lands yesterday's plays, the retraining builds interactions as of yesterday
and retrains on its window. With the default (closed, synthetic) calendar the newest day is
its last one; production sets RECSYS_CALENDAR_END=open.
"""

import datetime as dt
import os

import dagster as dg

from .jobs import ingest_play_logs_job, retrain_and_publish
from .partitions import PLAY_DAYS, first_day, last_day

INGEST_CRON_ENV = "RECSYS_INGEST_CRON"
RETRAIN_CRON_ENV = "RECSYS_RETRAIN_CRON"

def newest_day(context: dg.ScheduleEvaluationContext) -> str | None:
    """The day before the tick (the newest complete UTC day), if the calendar has it."""
    when = context.scheduled_execution_time or dt.datetime.now(dt.UTC)
    day = (when.astimezone(dt.UTC).date() - dt.timedelta(days=1)).isoformat()
    return day if PLAY_DAYS.has_partition_key(day) else None


def _partitioned_schedule(name: str, job, cron_env: str, cron: str, description: str):
    @dg.schedule(name=name, job=job, cron_schedule=os.environ.get(cron_env, cron),
                 execution_timezone="UTC", description=description,
                 default_status=dg.DefaultScheduleStatus.STOPPED)
    def _schedule(context: dg.ScheduleEvaluationContext):
        day = newest_day(context)
        if day is None:
            return dg.SkipReason(f"the day before this tick is outside the play-log calendar "
                                 f"({first_day()}..{last_day()}); set RECSYS_CALENDAR_END=open")
        return dg.RunRequest(run_key=f"{name}-{day}", partition_key=day)

    return _schedule


daily_ingest = _partitioned_schedule(
    "daily_ingest", ingest_play_logs_job, INGEST_CRON_ENV, "30 0 * * *",
    "Ingest yesterday's play logs (cron from $RECSYS_INGEST_CRON, UTC).")

nightly_retraining = _partitioned_schedule(
    "nightly_retraining", retrain_and_publish, RETRAIN_CRON_ENV, "0 3 * * *",
    "Retrain as of yesterday and republish if the gates pass (cron from $RECSYS_RETRAIN_CRON, "
    "UTC).")

ALL_SCHEDULES = [daily_ingest, nightly_retraining]
