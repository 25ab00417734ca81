"""The one Definitions object of the code location (workspace.yaml loads this module)."""


import dagster as dg

from .assets import artist_products, evaluation, features, ingest, serving, training
from .checks import ALL_CHECKS
from .jobs import (
    ingest_play_logs_job,
    recsys_pipeline,
    refresh_recommendations,
    retrain_and_publish,
)
from .operation_jobs import OPERATION_JOBS
from .resources import ParquetIOManager, SparkResource, Warehouse
from .schedules import ALL_SCHEDULES
from .sensors import ALL_SENSORS

ASSETS = [
    ingest.ingest_play_logs,
    features.user_index, features.item_index, features.interactions,
    training.evaluation_split, training.als_tuning, training.confidence_matrix,
    training.als_model,
    evaluation.evaluation_metrics, evaluation.artist_evaluation,
    training.artist_model,
    serving.user_recommendations, serving.similar_items, artist_products.similar_artists,
    artist_products.artist_radio,
]


def make_resources(spark: SparkResource | None = None, warehouse: Warehouse | None = None):
    """The resources of a run; the environment (Spark profile, data dir) is chosen here."""
    spark = spark or SparkResource()
    warehouse = warehouse or Warehouse()
    return {
        "spark": spark,
        "warehouse": warehouse,
        "io_manager": ParquetIOManager(spark=spark, warehouse=warehouse),
    }


defs = dg.Definitions(
    assets=ASSETS,
    asset_checks=ALL_CHECKS,
    jobs=[recsys_pipeline, ingest_play_logs_job, retrain_and_publish, refresh_recommendations,
          *OPERATION_JOBS],
    schedules=ALL_SCHEDULES,
    sensors=ALL_SENSORS,
    resources=make_resources(),
    # One process, one SparkSession per run: a JVM per step would cost more than the steps.
    executor=dg.in_process_executor,
)
