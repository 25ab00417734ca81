"""Dense, stable integer indexes for raw string ids, and the interactions table."""

from __future__ import annotations

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F


def extend_index(ids: DataFrame, previous: DataFrame | None = None) -> DataFrame:
    """(id, idx) covering every id in `ids` (one string column named id).

    Ids already in `previous` keep their idx; new ids get max(idx)+1, +2, ... in sorted id
    order, so the result is deterministic and dense (0..n-1) when `previous` was dense.
    """
    distinct = ids.select(F.col("id").cast("string").alias("id")).where(F.col("id").isNotNull()
                                                                          ).distinct()
    if previous is None:
        known, offset = None, -1
        new = distinct
    else:
        known = previous.select("id", F.col("idx").cast("int").alias("idx"))
        offset = known.agg(F.max("idx")).first()[0]
        offset = -1 if offset is None else int(offset)
        new = distinct.join(known.select("id"), on="id", how="left_anti")
    order = Window.orderBy("id")  # a single, sorted pass: ids are small per row
    fresh = new.select("id", (F.row_number().over(order) + F.lit(offset)).cast("int").alias("idx"))
    return fresh if known is None else known.unionByName(fresh)


def build_interactions(play_events: DataFrame, user_index: DataFrame,
                       item_index: DataFrame) -> DataFrame:
    """One row per (user, item): total plays, first and last play time."""
    users = user_index.select(F.col("id").alias("user_id"), F.col("idx").alias("user_idx"))
    items = item_index.select(F.col("id").alias("item_id"), F.col("idx").alias("item_idx"))
    return (
        play_events.join(F.broadcast(items), "item_id").join(users, "user_id")
        .groupBy("user_idx", "item_idx")
        .agg(F.sum("plays").cast("long").alias("plays"),
             F.min("ts").alias("first_ts"), F.max("ts").alias("last_ts"))
    )


def index_and_build(play_events: DataFrame) -> DataFrame:
    """Interactions of events indexed from scratch (a fresh user and item index each): for
    benchmarks and one-off fits; the pipeline's assets extend the previous indexes instead."""
    users = extend_index(play_events.select(F.col("user_id").alias("id")))
    items = extend_index(play_events.select(F.col("item_id").alias("id")))
    return build_interactions(play_events, users, items)
