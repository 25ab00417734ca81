"""The talk's gridified strategies for implicit ALS on Spark: full gridify and half gridify.

Factors never reach the driver; only r x r Gram matrices YᵀY do (summed from per-block
partials). Rows are cut into blocks by idx modulo the block count (ALSParams.num_user_blocks /
num_item_blocks).

half gridify: ratings are blocked by user and by item once and cached (blocks.rating_blocks:
  one CSR record per block holding the block's current factors and its out-block table: for
  every block of the other side, which of this block's rows it rated). Each half-step, every
  block of the other side sends each solved block exactly the factors it needs (one message
  per block pair, the only shuffle), and each solved block solves its rows completely where it
  is (kernels.solve_exact / solve_cg), writing its new factors into a new block record.

full gridify: ratings are cut into a (solved blocks x other blocks) grid, cached. Each
  half-step sends the other side's factor block q to every grid block (p, q); a grid block
  computes, for each of its rows, the partial normal equations Σ (c−1) y yᵀ and Σ c y over its
  ratings; the partials are shuffled to the row's block p, summed with YᵀY + λI and solved
  exactly. The partials (per row and grid column, the smaller of r(r+1)/2 + r numbers or the
  ratings' own factors) are what it shuffles.

Each half-step's result is checkpointed locally (Spark's localCheckpoint) so the query plan
does not grow with the iterations, and dropped once the next one of its side exists
(checkpoints.release); on an executor loss those checkpoints are gone and the fit fails
(rerun the job).
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from .blocks import (block_factors, csr, gram as dense_gram, joined, partition_keys,
                     rating_blocks, unpack)
from .checkpoints import release
from .kernels import EXACT_CHUNK, solve_cg, solve_exact
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
# A stream record is either factors routed to a block of the side solved next (kind 0) or a
# block's own current factors and their Gram partial (kind 1), keyed by the receiving block's
# partition key, so one shuffle delivers both into the cached blocks' own partitioning.
STREAM_SCHEMA = "part int, kind int, ids binary, factors binary, gram binary"
ROUTED, OWN = 0, 1


def _emit(record, x: np.ndarray, other_keys: list[int], float64_gram: bool) -> pd.DataFrame:
    """A solved block's stream records: its own factors, and for every block of the other
    side the factors of exactly the rows that block rated (the cached out-block table)."""
    rows = np.frombuffer(record["rows"], np.int32)
    ptr = np.frombuffer(record["route_ptr"], np.int64)
    pos = np.frombuffer(record["routes"], np.int32)
    out = [{"part": int(record["part"]), "kind": OWN, "ids": rows.tobytes(),
            "factors": x.tobytes(), "gram": dense_gram(x, float64_gram).tobytes()}]
    out += [{"part": other_keys[p], "kind": ROUTED, "ids": rows[pos[ptr[p]:ptr[p + 1]]].tobytes(),
             "factors": x[pos[ptr[p]:ptr[p + 1]]].tobytes(), "gram": b""}
            for p in range(ptr.size - 1) if ptr[p + 1] > ptr[p]]
    return pd.DataFrame(out)


def initial_stream(blocks: DataFrame, other_keys: list[int], rank: int,
                   float64_gram: bool = True) -> DataFrame:
    """The stream records of the factors the blocks hold (their initial ones)."""

    def emit(batches):
        for pdf in batches:
            for _, record in pdf.iterrows():
                yield _emit(record, block_factors(record, rank), other_keys, float64_gram)

    return blocks.mapInPandas(emit, STREAM_SCHEMA)


def incoming(routed_from: DataFrame, own: DataFrame | None, n_blocks: int) -> DataFrame:
    """What the blocks solved next receive: the factors routed to them by the other side's
    last half-step and (for CG) their own previous factors, in one shuffle into their
    partitioning (same key, same count as the cached blocks: the cogroup moves nothing else)."""
    stream = routed_from.filter(F.col("kind") == ROUTED)
    if own is not None:
        stream = stream.unionByName(own.filter(F.col("kind") == OWN))
    return stream.repartition(n_blocks, "part")


def half_gridify_step(blocks: DataFrame, received: DataFrame, other_keys: list[int],
                      other_gram: np.ndarray, params: ALSParams) -> DataFrame:
    """Solve every row of the cached `blocks` against the factors `received` (incoming()),
    where the block is. Returns the stream of the new factors, locally checkpointed (lazily:
    the plan does not grow with the iterations)."""
    rank, reg, scale, solver, steps = (params.rank, params.reg_param, params.scale_reg,
                                       params.solver, params.cg_steps)
    exact = solver == "exact"

    def solve(block_pdf: pd.DataFrame, stream_pdf: pd.DataFrame) -> pd.DataFrame:
        if block_pdf.empty:
            return pd.DataFrame({"part": [], "kind": [], "ids": [], "factors": [], "gram": []})
        record = block_pdf.iloc[0]
        b = unpack(record)
        routed = stream_pdf[stream_pdf["kind"] == ROUTED]
        ids = joined(routed["ids"], np.int32)
        mat = joined(routed["factors"], np.float32).reshape(-1, rank)
        order = np.argsort(ids, kind="stable")
        ids, mat = ids[order], mat[order]
        local = _local(ids, b.others)
        if exact:
            x = solve_exact(mat, other_gram, b.indptr, local, b.conf, reg, scale)
        else:
            own = stream_pdf[stream_pdf["kind"] == OWN]
            x0 = np.zeros((b.rows.size, rank), dtype=np.float32)
            if len(own):
                own_ids = joined(own["ids"], np.int32)
                x0[_local(b.rows, own_ids)] = joined(own["factors"], np.float32).reshape(-1, rank)
            x = solve_cg(mat, other_gram, b.indptr, local, b.conf, reg, x0, steps, scale)
        return _emit(record, x, other_keys, float64_gram=exact)

    return (blocks.groupBy("part").cogroup(received.groupBy("part"))
            .applyInPandas(solve, STREAM_SCHEMA).localCheckpoint(eager=False))


def stream_gram(stream: DataFrame, rank: int) -> np.ndarray:
    """The Gram matrix of a side's factors from its blocks' partials (r² numbers per block
    reach the driver); computing it materialises the half-step."""
    total = np.zeros((rank, rank))
    for row in stream.filter(F.col("kind") == OWN).select("gram").collect():
        total += np.frombuffer(row["gram"], np.float64).reshape(rank, rank)
    return total


def stream_factors(stream: DataFrame, rank: int) -> DataFrame:
    """(idx, features) rows of a side's factors, made on the executors."""

    def rows(batches):
        for pdf in batches:
            for _, record in pdf.iterrows():
                ids = np.frombuffer(record["ids"], np.int32)
                mat = np.frombuffer(record["factors"], np.float32).reshape(ids.size, rank)
                yield pd.DataFrame({"idx": ids, "features": list(mat)})

    return stream.filter(F.col("kind") == OWN).mapInPandas(rows, _ROWS)


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
    """Partial normal equations per grid block, summed per row in its block, solved exactly.

    A row's partial from one grid block is sent in the smaller of two exact forms: packed
    (the upper triangle of Σ (c−1) y yᵀ and Σ c y: r(r+1)/2 + r numbers) or, when the row has
    fewer than about r/2 ratings in the block, raw (those ratings' factors and confidences:
    n(r+1) numbers) from which the solving block forms the same sums. On the benchmark
    workload (rank 64, 2 x 2 grid) the packed form alone would shuffle about 200 k users x
    2 grid columns x 2,144 doubles = 6.9 GB per users half-step, as most (user, grid
    column) pairs hold a handful of ratings; raw, about nnz x 65 floats = 0.8 GB."""
    rank, reg, scale = params.rank, params.reg_param, params.scale_reg
    tri = np.triu_indices(rank)
    n_packed = tri[0].size + rank
    spark = grid.sparkSession
    blocks = spark.range(n_rows_blocks).select(F.col("id").cast("int").alias("p"))
    sent = (other_factors.withColumn("q", (F.col("idx") % n_other_blocks).cast("int"))
            .crossJoin(blocks))  # factor block q goes to every grid block (p, q)
    empty = np.zeros(0, np.float32)

    def partial(ratings_pdf: pd.DataFrame, factors_pdf: pd.DataFrame) -> pd.DataFrame:
        if ratings_pdf.empty:
            return pd.DataFrame({"p": [], "row": [], "n": [], "ys": [], "c": [], "a": [],
                                 "b": []})
        ids, mat = _matrix(factors_pdf, rank)
        block = csr(ratings_pdf["row"].to_numpy(np.int64),
                    ratings_pdf["other"].to_numpy(np.int64),
                    ratings_pdf["confidence"].to_numpy(np.float32))
        rows, indptr, others, conf = block.rows, block.indptr, block.others, block.conf
        y = mat[_local(ids, others)]
        ys, cs, a_parts, b_parts = [], [], [], []
        for u in range(rows.size):
            lo, hi = indptr[u], indptr[u + 1]
            if (hi - lo) * (rank + 1) < n_packed:  # raw: the ratings' own factors
                ys.append(y[lo:hi].ravel())
                cs.append(conf[lo:hi])
                a_parts.append(empty)
                b_parts.append(empty)
                continue
            yu, c = y[lo:hi].astype(np.float64), conf[lo:hi].astype(np.float64)
            ys.append(empty)
            cs.append(empty)
            a_parts.append(((yu.T * (c - 1.0)) @ yu)[tri])
            b_parts.append(yu.T @ c)
        return pd.DataFrame({"p": int(ratings_pdf["p"].iloc[0]), "row": rows.astype(np.int32),
                             "n": np.diff(indptr).astype(np.int32), "ys": ys, "c": cs,
                             "a": a_parts, "b": b_parts})

    partials = (grid.groupBy("p", "q").cogroup(sent.groupBy("p", "q"))
                .applyInPandas(partial, "p int, row int, n int, ys array<float>, "
                                        "c array<float>, a array<double>, b array<double>"))

    def solve(pdf: pd.DataFrame) -> pd.DataFrame:
        rows, inverse = np.unique(pdf["row"].to_numpy(np.int64), return_inverse=True)
        n = np.zeros(rows.size)
        np.add.at(n, inverse, pdf["n"].to_numpy())
        packed = pdf["a"].map(len).to_numpy() > 0
        out = np.zeros((rows.size, rank), dtype=np.float32)
        for start in range(0, rows.size, EXACT_CHUNK):  # bounded r x r stacks
            stop = min(start + EXACT_CHUNK, rows.size)
            mine = (inverse >= start) & (inverse < stop)
            a = np.broadcast_to(yty, (stop - start, rank, rank)).copy()
            b = np.zeros((stop - start, rank))
            sel = mine & packed
            if sel.any():
                upper = np.zeros((stop - start, rank, rank))
                a_up = np.zeros((stop - start, tri[0].size))
                np.add.at(a_up, inverse[sel] - start, np.stack(pdf["a"].to_numpy()[sel]))
                np.add.at(b, inverse[sel] - start, np.stack(pdf["b"].to_numpy()[sel]))
                upper[:, tri[0], tri[1]] = a_up
                a += upper + np.triu(upper, 1).transpose(0, 2, 1)
            for k in np.flatnonzero(mine & ~packed):
                yu = pdf["ys"].iat[k].reshape(-1, rank).astype(np.float64)
                c = pdf["c"].iat[k].astype(np.float64)
                a[inverse[k] - start] += (yu.T * (c - 1.0)) @ yu
                b[inverse[k] - start] += yu.T @ c
            lam = reg * (n[start:stop] if scale else np.ones(stop - start))
            a[:, np.arange(rank), np.arange(rank)] += lam[:, None]
            out[start:stop] = np.linalg.solve(a, b[..., None])[..., 0]
        return pd.DataFrame({"idx": rows.astype(np.int32), "features": list(out)})

    return partials.groupBy("p").applyInPandas(solve, _ROWS)


# ---- training loop -----------------------------------------------------------------------
def train_gridified(confidence: DataFrame, params: ALSParams) -> Factors:
    """Train with params.engine in (half_gridify, full_gridify); factors stay in Spark."""
    ku, ki = params.num_user_blocks, params.num_item_blocks
    conf = confidence.select("user_idx", "item_idx", "confidence")
    if params.engine == "half_gridify":
        return _train_half_gridify(conf, params)
    users = conf.select(F.col("user_idx").cast("int").alias("idx")).distinct()
    items = conf.select(F.col("item_idx").cast("int").alias("idx")).distinct()
    t0 = time.perf_counter()
    x = init_factor_frame(users, params.rank, params.seed).localCheckpoint()
    y = init_factor_frame(items, params.rank, params.seed + 1).localCheckpoint()
    grid_u = full_gridify_grid(conf, "user_idx", "item_idx", ku, ki)
    grid_i = full_gridify_grid(conf, "item_idx", "user_idx", ki, ku)
    for _ in range(params.max_iter):  # items first, then users: MLlib's order
        solved = full_gridify_step(grid_i, x, gram(x, params.rank), params, ki, ku)
        solved = solved.localCheckpoint()  # eager: x and the old y are no longer needed
        release(y)
        y = solved
        solved = full_gridify_step(grid_u, y, gram(y, params.rank), params, ku, ki)
        solved = solved.localCheckpoint()
        release(x)
        x = solved
    fit_s = time.perf_counter() - t0
    grid_u.unpersist()
    grid_i.unpersist()
    return Factors(x, y, {"fit_seconds": fit_s, "seconds_per_iteration": fit_s / params.max_iter})


def _train_half_gridify(conf: DataFrame, params: ALSParams) -> Factors:
    spark, rank, exact = conf.sparkSession, params.rank, params.solver == "exact"
    ku, ki = params.num_user_blocks, params.num_item_blocks
    t0 = time.perf_counter()  # blocking the ratings is part of the fit, as in MLlib's
    by_user, by_item = rating_blocks(conf, ku, ki, rank, params.seed)
    user_keys, item_keys = partition_keys(spark, ku), partition_keys(spark, ki)
    x_out = initial_stream(by_user, item_keys, rank, exact)
    y_out = initial_stream(by_item, user_keys, rank, exact)
    x_gram = stream_gram(x_out, rank)
    for _ in range(params.max_iter):  # items first, then users: MLlib's order
        solved = half_gridify_step(by_item, incoming(x_out, None if exact else y_out, ki),
                                   user_keys, x_gram, params)
        y_gram = stream_gram(solved, rank)  # materialises it: the old items step is done with
        release(y_out)
        y_out = solved
        solved = half_gridify_step(by_user, incoming(y_out, None if exact else x_out, ku),
                                   item_keys, y_gram, params)
        x_gram = stream_gram(solved, rank)
        release(x_out)
        x_out = solved
    fit_s = time.perf_counter() - t0
    for df in (by_user, by_item):
        df.unpersist()
    return Factors(stream_factors(x_out, rank), stream_factors(y_out, rank),
                   {"fit_seconds": fit_s, "seconds_per_iteration": fit_s / params.max_iter})
