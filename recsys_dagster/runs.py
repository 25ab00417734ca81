"""What the instance knows about this project's runs, as the schedule and sensors ask it: which
days a run ingested, which as-of days were retrained, what is queued or running."""

from __future__ import annotations

import dagster as dg

from .jobs import RETRAIN_JOB

PLAY_EVENTS = dg.AssetKey("play_events")
PARTITION_TAG = "dagster/partition"
RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"
ACTIVE = [dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED,
          dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED]
DONE = [dg.DagsterRunStatus.SUCCESS]
RECENT = 200  # runs looked at for the newest retrain


def runs_for_day(instance: dg.DagsterInstance, job: str, day: str,
                 statuses: list[dg.DagsterRunStatus]) -> list[dg.DagsterRun]:
    """The job's runs for one day partition with one of the statuses, newest first."""
    return list(instance.get_runs(filters=dg.RunsFilter(
        job_name=job, tags={PARTITION_TAG: day}, statuses=statuses), limit=20))


def days_of(run: dg.DagsterRun) -> tuple[str, str] | None:
    """(first, last) day a run targeted, from its partition tags; None if unpartitioned."""
    if PARTITION_TAG in run.tags:
        return run.tags[PARTITION_TAG], run.tags[PARTITION_TAG]
    if RANGE_START_TAG in run.tags and RANGE_END_TAG in run.tags:
        return run.tags[RANGE_START_TAG], run.tags[RANGE_END_TAG]
    return None


def materialized_in_run(instance: dg.DagsterInstance, run_id: str,
                        key: dg.AssetKey) -> list[dg.EventLogEntry]:
    records = instance.get_records_for_run(
        run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION).records
    return [r.event_log_entry for r in records
            if r.event_log_entry.dagster_event.asset_key == key]


def newest_retrained_day(instance: dg.DagsterInstance) -> str | None:
    """The newest as-of day of a successful retrain, or None."""
    runs = instance.get_runs(filters=dg.RunsFilter(job_name=RETRAIN_JOB, statuses=DONE),
                             limit=RECENT)
    days = [run.tags[PARTITION_TAG] for run in runs if PARTITION_TAG in run.tags]
    return max(days) if days else None
