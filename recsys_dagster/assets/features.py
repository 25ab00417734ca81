"""Features: stable id indexes and the interactions table (as of a day, over a window)."""


import dagster as dg
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from ..ml.ingest.days import DAY
from ..ml.ingest.indexing import build_interactions, extend_index
from ..partitions import (
    PLAY_DAYS,
    TRAINING_WINDOW_DAYS,
    WINDOW_ENV,
    describe_window,
    window_mapping,
)
from ..resources import SparkResource, Warehouse
from .helpers import KINDS, OWNERS, POOL, fails_for_good, table_metadata


def _index(context, column: str, play_events: DataFrame, spark: SparkResource,
           warehouse: Warehouse):
    name = context.asset_key.path[-1]
    store = warehouse.store()
    previous = store.read(spark.spark_session, name) if store.exists(name) else None
    n_prev = previous.count() if previous is not None else 0
    index = extend_index(play_events.select(F.col(column).alias("id")), previous).persist()
    n = index.count()
    return dg.Output(index, metadata={
        **table_metadata(index, n, order_by=["idx"]),
        "previous_size": n_prev,
        "new_ids": n - n_prev,
    })


@dg.asset(group_name="features", kinds=KINDS, owners=OWNERS, pool=POOL, code_version="1")
@fails_for_good
def user_index(context: dg.AssetExecutionContext, play_events: DataFrame, spark: SparkResource,
               warehouse: Warehouse):
    """Dense user index (id -> idx); an id keeps its idx across runs."""
    return _index(context, "user_id", play_events, spark, warehouse)


@dg.asset(group_name="features", kinds=KINDS, owners=OWNERS, pool=POOL, code_version="1")
@fails_for_good
def item_index(context: dg.AssetExecutionContext, play_events: DataFrame, spark: SparkResource,
               warehouse: Warehouse):
    """Dense item index (id -> idx); an id keeps its idx across runs."""
    return _index(context, "item_id", play_events, spark, warehouse)


def interactions_asset(window: int | None = TRAINING_WINDOW_DAYS,
                       partitions: dg.DailyPartitionsDefinition = PLAY_DAYS):
    """The interactions asset for a training window (None = all history)."""

    @dg.asset(
        name="interactions", group_name="features", kinds=KINDS, owners=OWNERS, pool=POOL,
        code_version="2", partitions_def=partitions,
        ins={"play_events": dg.AssetIn(partition_mapping=window_mapping(window))},
        description="One row per (user, item) as of a day: total plays, first and last play "
        f"time, over the training window ({describe_window(window)}; "
        f"${WINDOW_ENV}). Partition D reads play_events for the window ending on D.",
    )
    @fails_for_good
    def interactions(context: dg.AssetExecutionContext, play_events: DataFrame,
                     user_index: DataFrame, item_index: DataFrame):
        window_keys = context.asset_partition_keys_for_input("play_events")
        # One pass over the window: its days, and the days holding snapshot plays (no ts).
        snap = F.when(F.col("ts").isNull(), F.col(DAY))
        days = play_events.agg(F.countDistinct(DAY).alias("n"), F.min(DAY).alias("first"),
                               F.max(DAY).alias("last"), F.countDistinct(snap).alias("snaps"),
                               F.min(snap).alias("snap_first"),
                               F.max(snap).alias("snap_last")).first()
        if days["snaps"] > 1:
            raise ValueError(
                "plays without timestamps (snapshot deliveries, each the whole history) were "
                f"delivered on {days['snaps']} days ({days['snap_first']}..{days['snap_last']}); "
                "summing them would count plays twice. Deliver a snapshot to one day only.")
        df = build_interactions(play_events, user_index, item_index).persist()
        row = df.agg(F.count("*").alias("nnz"), F.countDistinct("user_idx").alias("users"),
                     F.countDistinct("item_idx").alias("items"), F.sum("plays").alias("plays"),
                     F.min("first_ts").alias("first"), F.max("last_ts").alias("last")).first()
        nnz, users, items = int(row["nnz"]), int(row["users"]), int(row["items"])
        if nnz == 0:
            raise ValueError(f"no plays in the training window {window_keys[0]}..{window_keys[-1]}"
                             " (materialise play_events for those days first)")
        return dg.Output(df, metadata={
            **table_metadata(df, nnz, order_by=["user_idx", "item_idx"]),
            "nnz": nnz, "users": users, "items": items,
            "total_plays": int(row["plays"] or 0),
            "density": float(nnz / (users * items)) if users and items else 0.0,
            "first_play": str(row["first"]), "last_play": str(row["last"]),
            "window": describe_window(window),
            "window_days": f"{window_keys[0]}..{window_keys[-1]}",
            "days_with_plays": int(days["n"]),
            "first_day_with_plays": str(days["first"]), "last_day_with_plays": str(days["last"]),
        })

    return interactions


interactions = interactions_asset()
