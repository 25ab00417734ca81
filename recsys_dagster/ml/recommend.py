"""Recommendation and similarity tables from factors, and the popularity baseline."""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from .topk import collect_matrix, normalize_rows, top_k


def recommend_for_users(user_factors: DataFrame, item_factors: DataFrame, n: int,
                        seen: DataFrame | None = None) -> DataFrame:
    """(user_idx, rank, item_idx, score) top-n by predicted preference x_u . y_i.

    `seen` (user_idx, item_idx): items never to recommend to that user (already played).
    """
    item_ids, item_mat = collect_matrix(item_factors)
    return top_k(user_factors, item_ids, item_mat, n, "user_idx", "item_idx", exclude=seen)


def similar_items(item_factors: DataFrame, n: int) -> DataFrame:
    """(item_idx, rank, similar_item_idx, score) top-n by cosine of item factors, no self."""
    item_ids, item_mat = collect_matrix(item_factors)
    unit = normalize_rows(item_mat)
    norm = F.sqrt(F.aggregate("features", F.lit(0.0), lambda acc, x: acc + x * x))
    queries = item_factors.select(
        "idx",
        F.when(norm > 0, F.transform("features", lambda x: (x / norm).cast("float")))
        .otherwise(F.col("features")).alias("features"),
    )
    return top_k(queries, item_ids, unit, n, "item_idx", "similar_item_idx", exclude_self=True)


def popularity_recommendations(train: DataFrame, users: DataFrame, n: int,
                               seen: DataFrame | None = None) -> DataFrame:
    """The popularity baseline: the n items with most training listeners, minus seen ones."""
    pop = (train.groupBy("item_idx").agg(F.countDistinct("user_idx").cast("float").alias("p"))
           .select(F.col("item_idx").alias("idx"), F.array("p").alias("features")))
    item_ids, item_mat = collect_matrix(pop)
    queries = users.select(F.col("user_idx").alias("idx"),
                           F.array(F.lit(1.0).cast("float")).alias("features"))
    return top_k(queries, item_ids, item_mat, n, "user_idx", "item_idx", exclude=seen)
