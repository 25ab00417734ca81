"""The talk's "full gridify" strategy for implicit ALS on Spark: partial normal equations per
grid block, summed per row.

Ratings are cut into a (solved blocks x other blocks) grid, cached. Each half-step sends the
other side's factor block q to every grid block (p, q); a grid block computes, for each of its
rows, the partial normal equations Σ (c−1) y yᵀ and Σ c y over its ratings; the partials are
shuffled to the row's block p, summed with YᵀY + λI and solved exactly (kernels.solve_systems).
What it shuffles is those partials. Factors stay in Spark; only r x r Gram matrices reach the
driver. Exact solver only: no row's ratings are left in one place for CG to work with.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from ..ids import require_positions
from .blocks import csr
from .kernels import EXACT_CHUNK, RowSolver, row_reg, solve_systems
from .params import ALSParams, Side

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


def frame_gram(factors: DataFrame, rank: int) -> np.ndarray:
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


def _matrix(pdf: pd.DataFrame, rank: int) -> tuple[np.ndarray, np.ndarray]:
    pdf = pdf.sort_values("idx")
    ids = pdf["idx"].to_numpy(dtype=np.int64)
    mat = (np.stack(pdf["features"].to_numpy()).astype(np.float32) if len(pdf)
           else np.zeros((0, rank), dtype=np.float32))
    return ids, mat


def full_gridify_grid(confidence: DataFrame, key: str, other: str, n_rows_blocks: int,
                      n_other_blocks: int) -> DataFrame:
    """Ratings (p, q, row, other, confidence) in a row-block x other-block grid, cached."""
    return confidence.select(
        (F.col(key) % n_rows_blocks).cast("int").alias("p"),
        (F.col(other) % n_other_blocks).cast("int").alias("q"),
        F.col(key).cast("int").alias("row"), F.col(other).cast("int").alias("other"),
        F.col("confidence").cast("float"),
    ).repartition("p", "q").persist()  # as the cogroup needs it: not reshuffled per step


_PARTIALS = ("p int, row int, n int, ys array<float>, c array<float>, a array<double>, "
             "b array<double>")


def block_partials(ratings_pdf: pd.DataFrame, factors_pdf: pd.DataFrame,
                   rank: int) -> pd.DataFrame:
    """One grid block's partial normal equations, one row per solved row (p, row, n ratings,
    and either raw ys, c or packed a, b: full_gridify_step says which and why)."""
    if ratings_pdf.empty:
        return pd.DataFrame({"p": [], "row": [], "n": [], "ys": [], "c": [], "a": [], "b": []})
    tri = np.triu_indices(rank)
    n_packed, empty = tri[0].size + rank, np.zeros(0, np.float32)
    ids, mat = _matrix(factors_pdf, rank)
    block = csr(ratings_pdf["row"].to_numpy(np.int64), ratings_pdf["other"].to_numpy(np.int64),
                ratings_pdf["confidence"].to_numpy(np.float32))
    rows, indptr, others, conf = block.rows, block.indptr, block.others, block.conf
    y = mat[require_positions(ids, others, "factors sent to a grid block")]
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


def solve_block(pdf: pd.DataFrame, yty: np.ndarray, solver: RowSolver) -> pd.DataFrame:
    """A row block's factors: each row's partials (packed and raw) summed with YᵀY and
    solved exactly, EXACT_CHUNK rows at a time (bounded r x r stacks)."""
    rank = yty.shape[0]
    tri = np.triu_indices(rank)
    rows, inverse = np.unique(pdf["row"].to_numpy(np.int64), return_inverse=True)
    n = np.zeros(rows.size)
    np.add.at(n, inverse, pdf["n"].to_numpy())
    packed = pdf["a"].map(len).to_numpy() > 0
    out = np.zeros((rows.size, rank), dtype=np.float32)
    for start in range(0, rows.size, EXACT_CHUNK):
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
        lam = row_reg(n[start:stop], solver.reg, solver.scale_reg, solver.reg_exponent)
        out[start:stop] = solve_systems(a, b, lam)
    return pd.DataFrame({"idx": rows.astype(np.int32), "features": list(out)})


def full_gridify_step(grid: DataFrame, other_factors: DataFrame, yty: np.ndarray,
                      solver: RowSolver, n_rows_blocks: int, n_other_blocks: int) -> DataFrame:
    """Partial normal equations per grid block, summed per row in its block, solved exactly.

    A row's partial from one grid block is sent in the smaller of two exact forms: packed
    (the upper triangle of Σ (c−1) y yᵀ and Σ c y: r(r+1)/2 + r numbers) or, when the row has
    fewer than about r/2 ratings in the block, raw (those ratings' factors and confidences:
    n(r+1) numbers) from which the solving block forms the same sums. Most (user, grid
    column) pairs hold a handful of ratings, so the packed form alone would shuffle many
    times the raw one (benchmarks/README.md)."""
    rank = yty.shape[0]
    blocks = grid.sparkSession.range(n_rows_blocks).select(F.col("id").cast("int").alias("p"))
    sent = (other_factors.withColumn("q", (F.col("idx") % n_other_blocks).cast("int"))
            .crossJoin(blocks))  # factor block q goes to every grid block (p, q)
    partials = (grid.groupBy("p", "q").cogroup(sent.groupBy("p", "q"))
                .applyInPandas(lambda r, f: block_partials(r, f, rank), _PARTIALS))
    return partials.groupBy("p").applyInPandas(lambda pdf: solve_block(pdf, yty, solver), _ROWS)


@dataclass(frozen=True)
class Grid:
    """One side's cached ratings grid and its number of row blocks."""

    grid: DataFrame
    n_blocks: int


class FullGridifyEngine:
    def __init__(self, params: ALSParams, solver: RowSolver):
        self.params, self.solver = params, solver

    def prepare(self, confidence: DataFrame) -> tuple[Side, Side]:
        p = self.params
        ku, ki = p.num_user_blocks, p.num_item_blocks
        users = confidence.select(F.col("user_idx").cast("int").alias("idx")).distinct()
        items = confidence.select(F.col("item_idx").cast("int").alias("idx")).distinct()
        x = init_factor_frame(users, p.rank, p.seed).localCheckpoint()
        # The items are solved first and need no start (exact solver): theirs stay lazy.
        y = init_factor_frame(items, p.rank, p.seed + 1)
        return (Side(x, Grid(full_gridify_grid(confidence, "user_idx", "item_idx", ku, ki), ku)),
                Side(y, Grid(full_gridify_grid(confidence, "item_idx", "user_idx", ki, ku), ki)))

    def half_step(self, solving: Side, given: Side) -> Side:
        yty = frame_gram(given.frame, self.params.rank)
        solved = full_gridify_step(solving.state.grid, given.frame, yty, self.solver,
                                   solving.state.n_blocks, given.state.n_blocks)
        return Side(solved.localCheckpoint(), solving.state)  # eager: computed here

    def factors(self, users: Side, items: Side) -> tuple[DataFrame, DataFrame]:
        return users.frame, items.frame

    def close(self, users: Side, items: Side) -> None:
        for side in (users, items):
            side.state.grid.unpersist()
