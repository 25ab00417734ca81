"""Jobs of the asset graph: the whole pipeline (recsys_pipeline), ingestion alone
(ingest_play_logs_job), retraining from the stored play events (retrain_and_publish) and
serving the current model to new listeners between retrains (refresh_recommendations).

Each is partitioned by day (play_events and interactions are): a run targets one day, a range
of days (ingestion only, as one run) or is launched as a backfill from the UI. The day-one
operations' jobs are in operation_jobs.py.

Every step is retried by RETRY_POLICY: a transient failure (a lost executor, a busy file
system) costs a retry, not a failed run.
"""

import dagster as dg

PIPELINE_JOB = "recsys_pipeline"
INGEST_JOB = "ingest_play_logs_job"
RETRAIN_JOB = "retrain_and_publish"
REFRESH_JOB = "refresh_recommendations"

RETRY_POLICY = dg.RetryPolicy(max_retries=2, delay=5, backoff=dg.Backoff.EXPONENTIAL)

recsys_pipeline = dg.define_asset_job(
    PIPELINE_JOB,
    selection=dg.AssetSelection.all(),
    description="Play logs to recommendations: ingest, index, weigh, tune, train, evaluate, "
    "publish.",
    op_retry_policy=RETRY_POLICY,
)

ingest_play_logs_job = dg.define_asset_job(
    INGEST_JOB,
    selection=dg.AssetSelection.groups("ingestion"),
    description="Read and validate the play logs of the run's days (play_events, quarantine, "
    "item catalogue); a re-run day replaces the stored one.",
    op_retry_policy=RETRY_POLICY,
)

retrain_and_publish = dg.define_asset_job(
    RETRAIN_JOB,
    selection=dg.AssetSelection.groups("features", "training", "evaluation", "serving"),
    description="Retrain as of the run's day on the play events of the training window; "
    "republish only if the gates pass.",
    op_retry_policy=RETRY_POLICY,
)

refresh_recommendations = dg.define_asset_job(
    REFRESH_JOB,
    selection=(dg.AssetSelection.groups("ingestion")
               | dg.AssetSelection.assets("user_index", "item_index", "interactions",
                                          "user_recommendations")),
    description="Between retrains: ingest, then recommend with the current model; users who "
    "arrived since it was trained are folded in (flagged folded_in).",
    op_retry_policy=RETRY_POLICY,
)
