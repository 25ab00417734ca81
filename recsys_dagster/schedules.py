"""Schedules. They start stopped; turn them on in the UI (Automation) with the daemon running."""


import os

import dagster as dg

from .jobs import recsys_pipeline

RETRAIN_CRON_ENV = "RECSYS_RETRAIN_CRON"

nightly_retraining = dg.ScheduleDefinition(
    name="nightly_retraining",
    job=recsys_pipeline,
    cron_schedule=os.environ.get(RETRAIN_CRON_ENV, "0 3 * * *"),
    execution_timezone="UTC",
    description="Ingest the play logs and retrain every night (cron from $RECSYS_RETRAIN_CRON).",
    default_status=dg.DefaultScheduleStatus.STOPPED,
)
