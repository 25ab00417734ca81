"""The whole ALS fit in the driver process (NumPy, no Spark tasks), for data small enough that
Spark's fixed cost per task and per job outweighs the work: on lastfm-2k a broadcast
half-step is mostly that cost (benchmarks/README.md). The default engine, auto, runs it up to
params.LOCAL_MAX_RATINGS ratings: als_model, the evaluation's refit and tuning's trials, which
can then afford several times as many trials.

The ratings are collected once, through Arrow, into one CSR matrix per side; each half-step
solves every row with the fit's row solver, from the broadcast engine's seeded initial
factors (blocks.init_factors per block), so a fit with one block per side equals a broadcast
fit. The driver holds both sides' factors and the ratings twice (about 24 bytes a rating).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from .blocks import Block, check_ids, csr, gram, init_factors
from .broadcast import factor_table
from .kernels import RowSolver
from .params import ALSParams, Side


@dataclass(frozen=True)
class Rows:
    """One side in the driver: its ratings (CSR over the rows that have any), its factors
    (n_rows x rank, zero for rows without ratings), their Gram matrix, and the block count
    the broadcast engine would cut it into."""

    block: Block
    dense: np.ndarray
    gram: np.ndarray
    n_blocks: int

    def solved(self, x: np.ndarray, float64_gram: bool) -> Rows:
        """This side with new factors x for its rows that have ratings. The Gram matrix is
        summed block by block in block order, as the broadcast engine collects it."""
        dense = np.zeros_like(self.dense)
        dense[self.block.rows] = x
        total = np.zeros((dense.shape[1], dense.shape[1]))
        for rows in self.blocks():
            total += gram(dense[rows], float64_gram)
        return Rows(self.block, dense, total, self.n_blocks)

    def blocks(self) -> list[np.ndarray]:
        """The rows (with ratings) of each block: idx mod n_blocks."""
        rows = self.block.rows
        return [rows[rows % self.n_blocks == blk] for blk in range(self.n_blocks)]


class LocalEngine:
    def __init__(self, params: ALSParams, solver: RowSolver):
        self.params, self.solver = params, solver
        self.spark = None

    def prepare(self, confidence: DataFrame) -> tuple[Side, Side]:
        self.spark = confidence.sparkSession
        table = confidence.select(F.col("user_idx").cast("int"), F.col("item_idx").cast("int"),
                                  F.col("confidence").cast("float")).toArrow()
        users, items, conf = (table.column(name).to_numpy().astype(dtype) for name, dtype in
                              (("user_idx", np.int64), ("item_idx", np.int64),
                               ("confidence", np.float32)))
        check_ids(users, items)
        p = self.params
        sides = []
        for side, keys, others, n_blocks in ((0, users, items, p.num_user_blocks),
                                             (1, items, users, p.num_item_blocks)):
            empty = np.zeros((int(keys.max()) + 1 if keys.size else 0, p.rank), np.float32)
            rows = Rows(csr(keys, others, conf), empty, np.zeros((p.rank, p.rank)), n_blocks)
            start = np.zeros((rows.block.rows.size, p.rank), np.float32)
            for blk, ids in enumerate(rows.blocks()):  # the broadcast engine's seeded start
                start[np.searchsorted(rows.block.rows, ids)] = init_factors(
                    ids.size, p.rank, [p.seed + side, blk])
            sides.append(Side(None, rows.solved(start, True)))  # as blocks.pack
        return sides[0], sides[1]

    def half_step(self, solving: Side, given: Side) -> Side:
        mine, other = solving.state, given.state
        b = mine.block
        x = self.solver(other.dense, other.gram, b.indptr, b.others, b.conf, mine.dense[b.rows])
        return Side(None, mine.solved(x, self.solver.float64_gram))

    def factors(self, users: Side, items: Side) -> tuple[DataFrame, DataFrame]:
        return tuple(factor_table(self.spark, side.state.block.rows, side.state.dense)
                     for side in (users, items))

    def close(self, users: Side, items: Side) -> None:
        pass  # nothing in Spark to drop
