"""Recommendation and similarity tables from factors."""

from __future__ import annotations

from dataclasses import dataclass

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from .. import setting
from ..ids import factor_matrix
from .topk import normalize_rows, top_k


@dataclass(frozen=True)
class RecommendationParams:
    """The personal recommendations table."""

    top_n: int = setting(20, "Recommendations per user.")
    exclude_played: bool = setting(True, "Never recommend an already-played item.")


@dataclass(frozen=True)
class SimilarItemsParams:
    """The similar-items table."""

    top_n: int = setting(20, "Similar items per item.")


def recommend_for_users(user_factors: DataFrame, item_factors: DataFrame, n: int,
                        seen: DataFrame | None = None) -> DataFrame:
    """(user_idx, rank, item_idx, score) top-n by predicted preference x_u . y_i.

    `seen` (user_idx, item_idx): items never to recommend to that user (already played).
    """
    item_ids, item_mat = factor_matrix(item_factors)
    return top_k(user_factors, item_ids, item_mat, n, "user_idx", "item_idx", exclude=seen)


def similar_by_factors(item_factors: DataFrame, n: int) -> DataFrame:
    """(item_idx, rank, similar_item_idx, score) top-n by cosine of item factors, no self."""
    item_ids, item_mat = factor_matrix(item_factors)
    unit = normalize_rows(item_mat)
    norm = F.sqrt(F.aggregate("features", F.lit(0.0), lambda acc, x: acc + x * x))
    queries = item_factors.select(
        "idx",
        F.when(norm > 0, F.transform("features", lambda x: (x / norm).cast("float")))
        .otherwise(F.col("features")).alias("features"),
    )
    return top_k(queries, item_ids, unit, n, "item_idx", "similar_item_idx", exclude_self=True)
