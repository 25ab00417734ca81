"""The talk's "broadcast everything" strategy for implicit ALS on Spark.

Ratings are cut into blocks by user and by item once (blocks.rating_blocks: one CSR record
per block, never shuffled again), each record also holding the block's current factors. Each
half-step ships the whole other side's factor matrix and its Gram matrix YᵀY to every task
(PySpark broadcasts a large UDF closure), solves every row of the block with the chosen kernel
(kernels.py) starting, for CG, from the factors in the record, and writes the new factors back
into a new block record (local checkpoint: the plan does not grow with the iterations;
the superseded one is dropped at once, checkpoints.release). The
new factors and per-block Gram partials are collected to the driver, through Arrow, for the
next half-step. Shuffle-free after the first blocking, but every half-step moves one side's
factors through the driver to every task: the baseline the gridified strategies improve on.
On an executor loss the local checkpoints are gone and the fit fails (Spark's task retries
cannot recompute them); the retrain job is rerun, as for the gridified engines.
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from .blocks import (BLOCK_SCHEMA, block_factors, collect_factors, rating_blocks, unpack,
                     with_factors)
from .checkpoints import release
from .kernels import solve_cg, solve_exact
from .params import ALSParams, Factors

_ROWS = "idx int, features array<float>"


def half_step(blocks: DataFrame, other: np.ndarray, other_gram: np.ndarray, n_rows: int,
              params: ALSParams) -> tuple[DataFrame, np.ndarray, np.ndarray, np.ndarray]:
    """Solve every row of the blocks against the fixed `other` factors (Gram `other_gram`).
    Returns the new blocks, their factors (dense, n_rows x rank, zero for rows without
    ratings), the factors' Gram matrix, summed from the tasks' per-block partials, and the
    ids of the rows with ratings (collect_factors)."""
    solver, reg, scale, steps = params.solver, params.reg_param, params.scale_reg, params.cg_steps
    rank, exact = params.rank, params.solver == "exact"

    def solve(batches):
        for pdf in batches:
            for _, record in pdf.iterrows():
                b = unpack(record)
                if solver == "cg":
                    x = solve_cg(other, other_gram, b.indptr, b.others, b.conf, reg,
                                 block_factors(record, rank), steps, scale)
                else:
                    x = solve_exact(other, other_gram, b.indptr, b.others, b.conf, reg, scale)
                yield pd.DataFrame([with_factors(record, x, float64_gram=exact)])

    solved = blocks.mapInPandas(solve, BLOCK_SCHEMA).localCheckpoint(eager=False)
    return (solved, *collect_factors(solved, n_rows, rank))  # computes `solved` once


def train_broadcast(confidence: DataFrame, params: ALSParams) -> Factors:
    spark = confidence.sparkSession
    sizes = confidence.agg(F.max("user_idx").alias("u"), F.max("item_idx").alias("i")).first()
    n_users, n_items = int(sizes["u"]) + 1, int(sizes["i"]) + 1
    t0 = time.perf_counter()  # blocking the ratings is part of the fit, as in MLlib's
    by_user, by_item = rating_blocks(confidence, params.num_user_blocks,
                                     params.num_item_blocks, params.rank, params.seed,
                                     routed=False)
    cached = [by_user, by_item]
    y, y_gram, _ = collect_factors(by_item, n_items, params.rank)  # initial item factors
    for _ in range(params.max_iter):  # users first: both sides start random
        solved, x, x_gram, users = half_step(by_user, y, y_gram, n_users, params)
        release(by_user)  # superseded (a no-op for the blocks themselves, unpersisted below)
        by_user = solved
        solved, y, y_gram, items = half_step(by_item, x, x_gram, n_items, params)
        release(by_item)
        by_item = solved
    fit_s = time.perf_counter() - t0
    for df in cached + [by_user, by_item]:
        if not release(df):
            df.unpersist()

    def frame(ids, mat):  # ids sorted
        return spark.createDataFrame(
            pd.DataFrame({"idx": ids.astype(np.int32), "features": list(mat[ids])}), _ROWS)

    return Factors(frame(users, x), frame(items, y),
                   {"fit_seconds": fit_s, "seconds_per_iteration": fit_s / params.max_iter})
