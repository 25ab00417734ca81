"""The talk's gridified strategies for implicit ALS on Spark: full gridify and half gridify.

Factors live in Spark as (idx, features) DataFrames; nothing but the r x r Gram matrix YᵀY
(computed by a Spark aggregation, r² numbers) reaches the driver. Rows are cut into blocks by
idx modulo the block count (ALSParams.num_user_blocks / num_item_blocks).

half gridify: ratings are grouped by the solved side's block once and cached, together with
  the routing ("out-block") table: for every block, which factors of the other side it needs.
  Each half-step joins the other side's factors with that table, so every block receives
  exactly the factors its rows rated (one shuffle of those factors), and solves its rows
  completely where it is (kernels.solve_exact / solve_cg).

full gridify: ratings are cut into a (solved blocks x other blocks) grid, cached. Each
  half-step sends the other side's factor block q to every grid block (p, q); a grid block
  computes, for each of its rows, the partial normal equations Σ (c−1) y yᵀ and Σ c y over its
  ratings; the partials are shuffled to the row's block p, summed with YᵀY + λI and solved
  exactly. The partials (r(r+1)/2 + r numbers per row and grid column) are what it shuffles.

Each half-step's result is checkpointed locally (Spark's localCheckpoint) so the query plan
does not grow with the iterations.
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


def init_factor_frame(ids: DataFrame, rank: int, seed: int) -> DataFrame:
    """Seeded unit-norm Gaussian rows, each from its own stream (seed, idx): the same
    whatever the partitioning, and made on the executors."""

    def make(batches):
        for pdf in batches:
            idx = pdf["idx"].to_numpy()
            rows = [np.random.default_rng([seed, int(i)]).standard_normal(rank) for i in idx]
            mat = np.asarray(rows, dtype=np.float32).reshape(len(idx), rank)
            mat /= np.maximum(np.linalg.norm(mat, axis=1, keepdims=True), 1e-12)
            yield pd.DataFrame({"idx": idx.astype(np.int32), "features": list(mat)})

    return ids.mapInPandas(make, _ROWS)


def gram(factors: DataFrame, rank: int) -> np.ndarray:
    """YᵀY in float64: partial Gram matrices per partition, summed on the driver."""

    def partial(batches):
        g = np.zeros((rank, rank))
        for pdf in batches:
            if len(pdf):
                y = np.stack(pdf["features"].to_numpy()).astype(np.float64)
                g += y.T @ y
        yield pd.DataFrame({"g": [g.ravel()]})

    parts = factors.mapInPandas(partial, "g array<double>").collect()
    return sum((np.asarray(r["g"]).reshape(rank, rank) for r in parts), np.zeros((rank, rank)))


def _csr(keys: np.ndarray, others: np.ndarray, conf: np.ndarray):
    """Rows sorted by key: (row ids, indptr, others, conf)."""
    order = np.argsort(keys, kind="stable")
    keys, others, conf = keys[order], others[order], conf[order]
    rows, starts = np.unique(keys, return_index=True)
    indptr = np.append(starts, keys.size)
    return rows, indptr, others, conf


def _local(ids: np.ndarray, wanted: np.ndarray) -> np.ndarray:
    """Positions of `wanted` ids in the sorted `ids` (every wanted id must be present)."""
    pos = np.searchsorted(ids, wanted)
    if wanted.size and (pos.max(initial=0) >= ids.size or (ids[pos] != wanted).any()):
        raise ValueError("a rated row has no factors in its block")
    return pos


def _matrix(pdf: pd.DataFrame, rank: int) -> tuple[np.ndarray, np.ndarray]:
    pdf = pdf.sort_values("idx")
    ids = pdf["idx"].to_numpy(dtype=np.int64)
    mat = (np.stack(pdf["features"].to_numpy()).astype(np.float32) if len(pdf)
           else np.zeros((0, rank), dtype=np.float32))
    return ids, mat


# ---- half gridify ------------------------------------------------------------------------
def half_gridify_tables(confidence: DataFrame, key: str, other: str, n_blocks: int):
    """(ratings, routes), both cached: ratings (blk, row, other, confidence) of the solved
    side, and the routing table (blk, other): which other-side factors each block needs."""
    ratings = confidence.select(
        (F.col(key) % n_blocks).cast("int").alias("blk"), F.col(key).cast("int").alias("row"),
        F.col(other).cast("int").alias("other"), F.col("confidence").cast("float"),
    ).repartition("blk").persist()  # the cogroup's own partitioning: not reshuffled per step
    # Partitioned by the factor id: each step's join moves only the factors, not the table.
    routes = ratings.select("blk", "other").distinct().repartition("other").persist()
    return ratings, routes


def half_gridify_step(ratings: DataFrame, routes: DataFrame, n_blocks: int,
                      other_factors: DataFrame, previous: DataFrame | None, yty: np.ndarray,
                      params: ALSParams) -> DataFrame:
    """Solve every row of the blocked ratings against the factors routed to its block."""
    rank, reg, scale, solver, steps = (params.rank, params.reg_param, params.scale_reg,
                                       params.solver, params.cg_steps)
    route = routes.select(F.col("blk").alias("to_blk"), F.col("other").alias("idx"))
    needed = (route.join(other_factors, "idx")
              .select(F.col("to_blk").alias("blk"), "idx", "features", F.lit(0).alias("own")))
    if solver == "cg":  # CG starts from the block's own previous factors
        own = previous.select((F.col("idx") % n_blocks).cast("int").alias("blk"), "idx",
                              "features", F.lit(1).alias("own"))
        needed = needed.unionByName(own)

    def solve(ratings_pdf: pd.DataFrame, factors_pdf: pd.DataFrame) -> pd.DataFrame:
        if ratings_pdf.empty:
            return pd.DataFrame({"idx": np.zeros(0, np.int32), "features": []})
        ids, mat = _matrix(factors_pdf[factors_pdf["own"] == 0], rank)
        rows, indptr, others, conf = _csr(ratings_pdf["row"].to_numpy(np.int64),
                                          ratings_pdf["other"].to_numpy(np.int64),
                                          ratings_pdf["confidence"].to_numpy(np.float32))
        local = _local(ids, others)
        if solver == "cg":
            own_ids, own_mat = _matrix(factors_pdf[factors_pdf["own"] == 1], rank)
            x0 = np.zeros((rows.size, rank), dtype=np.float32)
            pos = np.searchsorted(own_ids, rows)
            ok = pos < own_ids.size
            ok[ok] = own_ids[pos[ok]] == rows[ok]
            x0[ok] = own_mat[pos[ok]]
            x = solve_cg(mat, yty, indptr, local, conf, reg, x0, steps, scale)
        else:
            x = solve_exact(mat, yty, indptr, local, conf, reg, scale)
        return pd.DataFrame({"idx": rows.astype(np.int32), "features": list(x)})

    return (ratings.groupBy("blk").cogroup(needed.groupBy("blk"))
            .applyInPandas(solve, _ROWS))


# ---- full gridify ------------------------------------------------------------------------
def full_gridify_grid(confidence: DataFrame, key: str, other: str, n_rows_blocks: int,
                      n_other_blocks: int) -> DataFrame:
    """Ratings (p, q, row, other, confidence) in a row-block x other-block grid, cached."""
    return confidence.select(
        (F.col(key) % n_rows_blocks).cast("int").alias("p"),
        (F.col(other) % n_other_blocks).cast("int").alias("q"),
        F.col(key).cast("int").alias("row"), F.col(other).cast("int").alias("other"),
        F.col("confidence").cast("float"),
    ).repartition("p", "q").persist()  # as the cogroup needs it: not reshuffled per step


def full_gridify_step(grid: DataFrame, other_factors: DataFrame, yty: np.ndarray,
                      params: ALSParams, n_rows_blocks: int, n_other_blocks: int) -> DataFrame:
    """Partial normal equations per grid block, summed per row in its block, solved exactly."""
    rank, reg, scale = params.rank, params.reg_param, params.scale_reg
    tri = np.triu_indices(rank)
    spark = grid.sparkSession
    blocks = spark.range(n_rows_blocks).select(F.col("id").cast("int").alias("p"))
    sent = (other_factors.withColumn("q", (F.col("idx") % n_other_blocks).cast("int"))
            .crossJoin(blocks))  # factor block q goes to every grid block (p, q)

    def partial(ratings_pdf: pd.DataFrame, factors_pdf: pd.DataFrame) -> pd.DataFrame:
        if ratings_pdf.empty:
            return pd.DataFrame({"p": [], "row": [], "n": [], "a": [], "b": []})
        ids, mat = _matrix(factors_pdf, rank)
        rows, indptr, others, conf = _csr(ratings_pdf["row"].to_numpy(np.int64),
                                          ratings_pdf["other"].to_numpy(np.int64),
                                          ratings_pdf["confidence"].to_numpy(np.float64))
        y = mat[_local(ids, others)].astype(np.float64)
        a_parts, b_parts = [], []
        for u in range(rows.size):
            lo, hi = indptr[u], indptr[u + 1]
            yu, c = y[lo:hi], conf[lo:hi]
            a_parts.append(((yu.T * (c - 1.0)) @ yu)[tri])
            b_parts.append(yu.T @ c)
        return pd.DataFrame({"p": int(ratings_pdf["p"].iloc[0]), "row": rows.astype(np.int32),
                             "n": np.diff(indptr).astype(np.int32), "a": a_parts,
                             "b": b_parts})

    partials = (grid.groupBy("p", "q").cogroup(sent.groupBy("p", "q"))
                .applyInPandas(partial, "p int, row int, n int, a array<double>, "
                                        "b array<double>"))

    def solve(pdf: pd.DataFrame) -> pd.DataFrame:
        rows, inverse = np.unique(pdf["row"].to_numpy(np.int64), return_inverse=True)
        a_up = np.zeros((rows.size, tri[0].size))
        b = np.zeros((rows.size, rank))
        n = np.zeros(rows.size)
        np.add.at(a_up, inverse, np.stack(pdf["a"].to_numpy()))
        np.add.at(b, inverse, np.stack(pdf["b"].to_numpy()))
        np.add.at(n, inverse, pdf["n"].to_numpy())
        a = np.broadcast_to(yty, (rows.size, rank, rank)).copy()
        upper = np.zeros((rows.size, rank, rank))
        upper[:, tri[0], tri[1]] = a_up
        a += upper + np.triu(upper, 1).transpose(0, 2, 1)
        lam = reg * (n if scale else np.ones(rows.size))
        a[:, np.arange(rank), np.arange(rank)] += lam[:, None]
        x = np.linalg.solve(a, b[..., None])[..., 0].astype(np.float32)
        return pd.DataFrame({"idx": rows.astype(np.int32), "features": list(x)})

    return partials.groupBy("p").applyInPandas(solve, _ROWS)


# ---- training loop -----------------------------------------------------------------------
def train_gridified(confidence: DataFrame, params: ALSParams) -> Factors:
    """Train with params.engine in (half_gridify, full_gridify); factors stay in Spark."""
    ku, ki = params.num_user_blocks, params.num_item_blocks
    conf = confidence.select("user_idx", "item_idx", "confidence")
    users = conf.select(F.col("user_idx").cast("int").alias("idx")).distinct()
    items = conf.select(F.col("item_idx").cast("int").alias("idx")).distinct()
    x = init_factor_frame(users, params.rank, params.seed).localCheckpoint()
    y = init_factor_frame(items, params.rank, params.seed + 1).localCheckpoint()
    if params.engine == "half_gridify":
        by_user = half_gridify_tables(conf, "user_idx", "item_idx", ku)
        by_item = half_gridify_tables(conf, "item_idx", "user_idx", ki)

        def step_users(x_prev, y_now):
            return half_gridify_step(*by_user, ku, y_now, x_prev, gram(y_now, params.rank),
                                     params)

        def step_items(y_prev, x_now):
            return half_gridify_step(*by_item, ki, x_now, y_prev, gram(x_now, params.rank),
                                     params)
        cached = [*by_user, *by_item]
    else:
        grid_u = full_gridify_grid(conf, "user_idx", "item_idx", ku, ki)
        grid_i = full_gridify_grid(conf, "item_idx", "user_idx", ki, ku)

        def step_users(x_prev, y_now):
            return full_gridify_step(grid_u, y_now, gram(y_now, params.rank), params, ku, ki)

        def step_items(y_prev, x_now):
            return full_gridify_step(grid_i, x_now, gram(x_now, params.rank), params, ki, ku)
        cached = [grid_u, grid_i]
    t0 = time.perf_counter()
    for _ in range(params.max_iter):  # items first, then users: MLlib's order
        y = step_items(y, x).localCheckpoint()
        x = step_users(x, y).localCheckpoint()
    fit_s = time.perf_counter() - t0
    for df in cached:
        df.unpersist()
    return Factors(x, y, {"fit_seconds": fit_s, "seconds_per_iteration": fit_s / params.max_iter})
