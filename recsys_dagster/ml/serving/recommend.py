"""Recommendation and similarity tables from factors."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field

import numpy as np
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from .. import setting
from ..ids import factor_matrix
from .ann import AnnIndex, TopKParams, recall
from .topk import normalize_rows, top_k, top_k_rows

TOP_K_DOC = "How the top N is found: exact (every candidate scored) or approximate (an index)."


@dataclass(frozen=True)
class RecommendationParams:
    """The personal recommendations table."""

    top_n: int = setting(20, "Recommendations per user.")
    exclude_played: bool = setting(True, "Never recommend an already-played item.")
    top_k: TopKParams = setting(TopKParams(), TOP_K_DOC)


@dataclass(frozen=True)
class SimilarItemsParams:
    """The similar-items table."""

    top_n: int = setting(20, "Similar items per item.")
    top_k: TopKParams = setting(TopKParams(), TOP_K_DOC)


@dataclass
class Ranked:
    """A top-N table and how it was found: for the approximate method, its recall@N against
    exact on a seeded sample of queries, and what the index cost."""

    table: DataFrame
    method: str
    recall: float | None = None
    info: dict = field(default_factory=dict)


def ranked(queries: DataFrame, cand_ids: np.ndarray, cands: np.ndarray, k: int,
           query_col: str, cand_col: str, params: TopKParams, exclude: DataFrame | None = None,
           exclude_self: bool = False) -> Ranked:
    """topk.top_k by params.method; approximate: one index, built here, searched by the tasks,
    and measured against exact on `recall_sample` queries (with their exclusions)."""
    if params.method == "exact":
        return Ranked(top_k(queries, cand_ids, cands, k, query_col, cand_col, exclude,
                            exclude_self), "exact")
    clock = time.perf_counter()
    index = AnnIndex(cands, params)
    info = {"index_seconds": time.perf_counter() - clock, "index_bytes": index.nbytes}
    table = top_k(queries, cand_ids, cands, k, query_col, cand_col, exclude, exclude_self,
                  index=index)
    clock = time.perf_counter()
    ids, mat, excludes = sample_queries(queries, params.recall_sample, params.seed, exclude,
                                        query_col, cand_col)
    exact = top_k_rows(ids, mat, cand_ids, cands, k, excludes, exclude_self)
    approximate = index.top_k_rows(ids, mat, cand_ids, k, excludes, exclude_self,
                                   threads=os.cpu_count() or 1)
    info.update(recall_queries=int(ids.size), recall_seconds=time.perf_counter() - clock)
    return Ranked(table, "approximate", recall(exact, approximate), info)


def sample_queries(queries: DataFrame, n: int, seed: int, exclude: DataFrame | None,
                   query_col: str, cand_col: str):
    """(ids, matrix, exclusion lists) of a seeded sample of n queries (idx, features), in the
    driver: the queries on which approximate top-N is measured against exact."""
    # Cached: the sample is read twice below (its ids pick the exclusions), sorted once.
    sample = (queries.select(F.col("idx").alias(query_col), "features")
              .orderBy(F.xxhash64(query_col, F.lit(seed)), query_col).limit(n).persist())
    picked = sample
    if exclude is not None:
        ex = (exclude.join(F.broadcast(sample.select(query_col)), query_col)
              .groupBy(query_col).agg(F.collect_list(cand_col).alias("_exclude")))
        picked = sample.join(ex, query_col, "left")
    pdf = picked.toPandas().sort_values(query_col)
    sample.unpersist()
    rank = len(pdf.features.iloc[0]) if len(pdf) else 0
    mat = (np.stack(pdf.features.to_numpy()).astype(np.float32) if len(pdf)
           else np.zeros((0, rank), dtype=np.float32))
    excludes = pdf["_exclude"].to_numpy() if exclude is not None else None
    return pdf[query_col].to_numpy(dtype=np.int64), mat, excludes


def recommend_for_users(user_factors: DataFrame, item_factors: DataFrame, n: int,
                        seen: DataFrame | None = None,
                        params: TopKParams | None = None) -> Ranked:
    """(user_idx, rank, item_idx, score) top-n by predicted preference x_u . y_i.

    `seen` (user_idx, item_idx): items never to recommend to that user (already played).
    `params`: exact (the default) or approximate top-N.
    """
    item_ids, item_mat = factor_matrix(item_factors)
    return ranked(user_factors, item_ids, item_mat, n, "user_idx", "item_idx",
                  params or TopKParams(), exclude=seen)


def similar_by_factors(item_factors: DataFrame, n: int,
                       params: TopKParams | None = None) -> Ranked:
    """(item_idx, rank, similar_item_idx, score) top-n by cosine of item factors, no self."""
    item_ids, item_mat = factor_matrix(item_factors)
    unit = normalize_rows(item_mat)
    # The norm is a column of its own, computed once a row: inside the transform's lambda it
    # would be computed again for every element (rank^2 work a row).
    norm = F.col("_norm")
    queries = (item_factors
               .select("idx", "features", F.sqrt(F.aggregate(
                   "features", F.lit(0.0), lambda acc, x: acc + x * x)).alias("_norm"))
               .select("idx", F.when(norm > 0, F.transform(
                   "features", lambda x: (x / norm).cast("float")))
                   .otherwise(F.col("features")).alias("features")))
    return ranked(queries, item_ids, unit, n, "item_idx", "similar_item_idx",
                  params or TopKParams(), exclude_self=True)
