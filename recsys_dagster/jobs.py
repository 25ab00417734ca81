"""Jobs: the whole pipeline, and retraining from the stored play events."""


import dagster as dg

PIPELINE_JOB = "recsys_pipeline"
RETRAIN_JOB = "retrain_and_publish"

recsys_pipeline = dg.define_asset_job(
    PIPELINE_JOB,
    selection=dg.AssetSelection.all(),
    description="Play logs to recommendations: ingest, index, weigh, train, evaluate, publish.",
)

retrain_and_publish = dg.define_asset_job(
    RETRAIN_JOB,
    selection=dg.AssetSelection.groups("features", "training", "evaluation", "serving"),
    description="Retrain on the stored play events and republish if the gate passes.",
)
