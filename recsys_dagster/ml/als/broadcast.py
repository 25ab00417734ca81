"""The talk's "broadcast everything" strategy for implicit ALS on Spark.

Ratings are grouped by user and by item once (two cached tables of CSR-like rows). Each
half-step ships the whole other side's factor matrix and its Gram matrix YᵀY to every task
(PySpark broadcasts a large UDF closure once per executor), solves every row of the task with
the chosen kernel (kernels.py), and collects the new factors to the driver for the next
half-step. Simple and shuffle-free after the first grouping, but every iteration moves all
factors through the driver: it is the baseline the gridified strategies improve on.
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from .kernels import solve_cg, solve_exact
from .params import ALSParams, Factors

_ROWS = "idx int, features array<float>"


def group_rows(confidence: DataFrame, key: str, other: str) -> DataFrame:
    """(idx, others, conf) rows: one per user (or item) with its ratings, cached."""
    return (confidence.groupBy(F.col(key).cast("int").alias("idx"))
            .agg(F.collect_list(F.col(other).cast("int")).alias("others"),
                 F.collect_list(F.col("confidence").cast("float")).alias("conf"))
            .persist())


def init_factors(n: int, rank: int, seed: int) -> np.ndarray:
    """Seeded Gaussian rows scaled to unit norm (as MLlib initialises)."""
    x = np.random.default_rng(seed).standard_normal((n, rank)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def half_step(rows: DataFrame, other: np.ndarray, previous: np.ndarray,
              params: ALSParams) -> np.ndarray:
    """Solve every row of `rows` against the fixed `other` factors; a dense result matrix."""
    y64 = other.astype(np.float64)
    yty = y64.T @ y64
    solver, reg, scale = params.solver, params.reg_param, params.scale_reg
    steps = params.cg_steps

    def solve(batches):
        for pdf in batches:
            counts = pdf["others"].map(len).to_numpy()
            indptr = np.concatenate([[0], np.cumsum(counts)])
            indices = (np.concatenate(pdf["others"].to_numpy()).astype(np.int64)
                       if counts.sum() else np.zeros(0, np.int64))
            conf = (np.concatenate(pdf["conf"].to_numpy()).astype(np.float32)
                    if counts.sum() else np.zeros(0, np.float32))
            idx = pdf["idx"].to_numpy()
            if solver == "cg":
                x = solve_cg(other, yty, indptr, indices, conf, reg, previous[idx], steps,
                             scale)
            else:
                x = solve_exact(other, yty, indptr, indices, conf, reg, scale)
            yield pd.DataFrame({"idx": idx.astype(np.int32), "features": list(x)})

    solved = rows.mapInPandas(solve, _ROWS).toPandas()
    out = np.zeros_like(previous)
    if len(solved):
        out[solved["idx"].to_numpy()] = np.stack(solved["features"].to_numpy())
    return out


def train_broadcast(confidence: DataFrame, params: ALSParams) -> Factors:
    spark = confidence.sparkSession
    by_user = group_rows(confidence, "user_idx", "item_idx")
    by_item = group_rows(confidence, "item_idx", "user_idx")
    sizes = confidence.agg(F.max("user_idx").alias("u"), F.max("item_idx").alias("i")).first()
    n_users, n_items = int(sizes["u"]) + 1, int(sizes["i"]) + 1
    x = init_factors(n_users, params.rank, params.seed)
    y = init_factors(n_items, params.rank, params.seed + 1)
    t0 = time.perf_counter()
    for _ in range(params.max_iter):
        x = half_step(by_user, y, x, params)
        y = half_step(by_item, x, y, params)
    fit_s = time.perf_counter() - t0
    users = by_user.select("idx").toPandas()["idx"].to_numpy()
    items = by_item.select("idx").toPandas()["idx"].to_numpy()
    by_user.unpersist()
    by_item.unpersist()

    def frame(ids, mat):
        ids = np.sort(ids)
        return spark.createDataFrame(
            pd.DataFrame({"idx": ids.astype(np.int32), "features": list(mat[ids])}), _ROWS)

    return Factors(frame(users, x), frame(items, y),
                   {"fit_seconds": fit_s, "seconds_per_iteration": fit_s / params.max_iter})
