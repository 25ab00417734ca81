"""Schedules. They start stopped; turn them on in the UI (Automation) with the daemon running."""

import os

import dagster as dg

from .jobs import ingest_play_logs_job, retrain_and_publish

INGEST_CRON_ENV = "RECSYS_INGEST_CRON"
RETRAIN_CRON_ENV = "RECSYS_RETRAIN_CRON"

daily_ingest = dg.ScheduleDefinition(
    name="daily_ingest",
    job=ingest_play_logs_job,
    cron_schedule=os.environ.get(INGEST_CRON_ENV, "30 0 * * *"),
    execution_timezone="UTC",
    description="Ingest the play logs every day (cron from $RECSYS_INGEST_CRON).",
    default_status=dg.DefaultScheduleStatus.STOPPED,
)

nightly_retraining = dg.ScheduleDefinition(
    name="nightly_retraining",
    job=retrain_and_publish,
    cron_schedule=os.environ.get(RETRAIN_CRON_ENV, "0 3 * * *"),
    execution_timezone="UTC",
    description="Retrain and republish every night (cron from $RECSYS_RETRAIN_CRON).",
    default_status=dg.DefaultScheduleStatus.STOPPED,
)

ALL_SCHEDULES = [daily_ingest, nightly_retraining]
