"""The talk's "half gridify" strategy for implicit ALS on Spark: each block receives only the
factors its rows rated.

Ratings are blocked by user and by item once and cached (blocks.rating_blocks: one CSR record
per block holding the block's current factors and its out-block table: for every block of the
other side, which of this block's rows it rated). Each half-step, every block of the other
side sends each solved block exactly the factors it needs (one message per block pair, the
only shuffle, straight into the cached blocks' partitioning), and each solved block solves
its rows completely where it is with the fit's row solver, emitting its new factors as a
stream record of its own plus one routed record per block of the other side. Factors never
reach the driver; only r x r Gram partials do.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from ..ids import require_positions
from .blocks import block_factors, gram, joined, partition_keys, rating_blocks, unpack
from .kernels import RowSolver
from .params import ALSParams, Side

_ROWS = "idx int, features array<float>"
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
            "factors": x.tobytes(), "gram": gram(x, float64_gram).tobytes()}]
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
                      other_gram: np.ndarray, rank: int, solver: RowSolver) -> DataFrame:
    """Solve every row of the cached `blocks` against the factors `received` (incoming()),
    where the block is. Returns the stream of the new factors, locally checkpointed (lazily:
    the plan does not grow with the iterations)."""

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
        local = require_positions(ids, b.others, "factors routed to a block")
        x0 = None
        if solver.needs_start:
            own = stream_pdf[stream_pdf["kind"] == OWN]
            x0 = np.zeros((b.rows.size, rank), dtype=np.float32)
            if len(own):
                own_ids = joined(own["ids"], np.int32)
                x0[require_positions(b.rows, own_ids, "a block's own factors")] = joined(
                    own["factors"], np.float32).reshape(-1, rank)
        x = solver(mat, other_gram, b.indptr, local, b.conf, x0)
        return _emit(record, x, other_keys, solver.float64_gram)

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


@dataclass(frozen=True)
class Blocked:
    """One side's cached rating blocks, how many, where its factors are routed (the other
    side's partition keys), and the Gram matrix of its current factors."""

    blocks: DataFrame
    n_blocks: int
    other_keys: list[int]
    gram: np.ndarray | None


class HalfGridifyEngine:
    def __init__(self, params: ALSParams, solver: RowSolver):
        self.params, self.solver = params, solver

    def prepare(self, confidence: DataFrame) -> tuple[Side, Side]:
        p, f64 = self.params, self.solver.float64_gram
        ku, ki = p.num_user_blocks, p.num_item_blocks
        by_user, by_item = rating_blocks(confidence, ku, ki, p.rank, p.seed)
        spark = confidence.sparkSession
        user_keys, item_keys = partition_keys(spark, ku), partition_keys(spark, ki)
        x_out = initial_stream(by_user, item_keys, p.rank, f64)
        y_out = initial_stream(by_item, user_keys, p.rank, f64)
        return (Side(x_out, Blocked(by_user, ku, item_keys, stream_gram(x_out, p.rank))),
                Side(y_out, Blocked(by_item, ki, user_keys, None)))

    def half_step(self, solving: Side, given: Side) -> Side:
        mine = solving.state
        own = solving.frame if self.solver.needs_start else None
        solved = half_gridify_step(mine.blocks, incoming(given.frame, own, mine.n_blocks),
                                   mine.other_keys, given.state.gram, self.params.rank,
                                   self.solver)
        # stream_gram materialises the step: the superseded stream can go after it
        return Side(solved, replace(mine, gram=stream_gram(solved, self.params.rank)))

    def factors(self, users: Side, items: Side) -> tuple[DataFrame, DataFrame]:
        return (stream_factors(users.frame, self.params.rank),
                stream_factors(items.frame, self.params.rank))

    def close(self, users: Side, items: Side) -> None:
        for side in (users, items):  # the returned tables read the last streams, not these
            side.state.blocks.unpersist()
