"""The talk's "broadcast everything" strategy for implicit ALS on Spark.

Ratings are cut into blocks by user and by item once (blocks.rating_blocks: one CSR record
per block, never shuffled again), each record also holding the block's current factors. Each
half-step ships the whole other side's factor matrix and its Gram matrix YᵀY to every task
(PySpark broadcasts a large UDF closure), solves every row of the block with the fit's row
solver starting, for CG, from the factors in the record, and writes the new factors back into
a new block record (a local checkpoint: the plan does not grow with the iterations). The new
factors and per-block Gram partials are collected to the driver, through Arrow, for the next
half-step. Shuffle-free after the blocking, but every half-step moves one side's factors
through the driver to every task: the baseline the gridified strategies improve on.
On an executor loss the local checkpoints are gone and the fit fails (Spark's task retries
cannot recompute them); the retrain job is rerun, as for the gridified engines.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from ..ids import vectors_frame
from .blocks import (
    BLOCK_SCHEMA,
    block_factors,
    collect_factors,
    rating_blocks,
    unpack,
    with_factors,
)
from .checkpoints import drop
from .kernels import RowSolver
from .params import ALSParams, Side


@dataclass(frozen=True)
class Collected:
    """A side's factors on the driver: dense (n_rows x rank, zero for rows without ratings),
    their Gram matrix, and the sorted ids of the rows that have ratings."""

    dense: np.ndarray
    gram: np.ndarray
    ids: np.ndarray
    n_rows: int


def solve_blocks(blocks: DataFrame, other: np.ndarray, other_gram: np.ndarray, rank: int,
                 solver: RowSolver) -> DataFrame:
    """Every row of the blocks solved against the fixed `other` factors (Gram `other_gram`),
    as new block records (lazily checkpointed)."""

    def solve(batches):
        for pdf in batches:
            for _, record in pdf.iterrows():
                b = unpack(record)
                x = solver(other, other_gram, b.indptr, b.others, b.conf,
                           block_factors(record, rank))
                yield pd.DataFrame([with_factors(record, x, solver.float64_gram)])

    return blocks.mapInPandas(solve, BLOCK_SCHEMA).localCheckpoint(eager=False)


def factor_table(spark, ids: np.ndarray, dense: np.ndarray) -> DataFrame:
    """The (idx, features) table of the rows `ids` of a driver-side factor matrix."""
    return vectors_frame(spark, ids, dense[ids])


class BroadcastEngine:
    def __init__(self, params: ALSParams, solver: RowSolver):
        self.params, self.solver = params, solver

    def prepare(self, confidence: DataFrame) -> tuple[Side, Side]:
        sizes = confidence.agg(F.max("user_idx").alias("u"), F.max("item_idx").alias("i")).first()
        p = self.params
        by_user, by_item = rating_blocks(confidence, p.num_user_blocks, p.num_item_blocks,
                                         p.rank, p.seed, routed=False)
        n_users, n_items = int(sizes["u"]) + 1, int(sizes["i"]) + 1
        users = Side(by_user, Collected(*collect_factors(by_user, n_users, p.rank), n_users))
        return users, Side(by_item, Collected(None, None, None, n_items))

    def half_step(self, solving: Side, given: Side) -> Side:
        other = given.state
        solved = solve_blocks(solving.frame, other.dense, other.gram, self.params.rank,
                              self.solver)
        n_rows = solving.state.n_rows
        return Side(solved, Collected(*collect_factors(solved, n_rows, self.params.rank),
                                      n_rows))  # the collect computes `solved`, once

    def factors(self, users: Side, items: Side) -> tuple[DataFrame, DataFrame]:
        spark = users.frame.sparkSession
        return tuple(factor_table(spark, side.state.ids, side.state.dense)
                     for side in (users, items))

    def close(self, users: Side, items: Side) -> None:
        for side in (users, items):  # the returned tables are made from the driver's copy
            drop(side.frame)
