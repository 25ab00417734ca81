"""Rating blocks kept in Spark as compact CSR records (NumPy + PySpark, no Dagster).

A block is every rating of the rows whose idx ≡ blk (mod n_blocks), sorted by row, stored as
ONE Spark row of binary columns: row ids (int32), indptr (int64), the other side's ids (int32)
and confidences (float32), plus the block's current factors (float32, one row per row id) and
their Gram matrix (float64). A half-step then hands each Python worker a handful of records it
turns into arrays with np.frombuffer, instead of hundreds of thousands of array<> cells that
Arrow and pandas convert one object at a time (measured: that per-row conversion, not the
solver, was most of a broadcast half-step; benchmarks/README.md). Keeping each
block's factors in its record lets CG start from them where they are, instead of shipping
the solved side's previous factors from the driver to every task.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

BLOCK_SCHEMA = ("part int, blk int, rows binary, indptr binary, others binary, conf binary, "
                "route_ptr binary, routes binary, factors binary, gram binary")
_RATINGS = ("part", "blk", "rows", "indptr", "others", "conf", "route_ptr", "routes")


@dataclass(frozen=True)
class Block:
    rows: np.ndarray     # int64, sorted, unique: the solved side's ids
    indptr: np.ndarray   # int64, rows.size + 1
    others: np.ndarray   # int64, the other side's ids, per row
    conf: np.ndarray     # float32, confidences aligned with others


def csr(keys: np.ndarray, others: np.ndarray, conf: np.ndarray) -> Block:
    """Ratings (key, other, conf) sorted by key, other, conf into CSR form: the same arrays
    (so the same float sums) whatever order the ratings arrived in."""
    pair = (keys.astype(np.int64) << 32) | others.astype(np.int64)  # both ids are int32 >= 0
    order = np.argsort(pair)  # one key: several times faster than a 3-key lexsort
    if pair.size and (np.diff(pair[order]) == 0).any():  # a pair came twice: order by conf
        order = np.lexsort((conf, pair))
    keys, others, conf = keys[order], others[order], conf[order]
    rows, starts = np.unique(keys, return_index=True)
    return Block(rows.astype(np.int64), np.append(starts, keys.size).astype(np.int64),
                 others.astype(np.int64), conf.astype(np.float32))


def out_routes(block: Block, n_dest: int) -> tuple[np.ndarray, np.ndarray]:
    """The talk's out-block table for one block: (ptr, positions) with positions[ptr[p]:
    ptr[p + 1]] the rows of this block that block p of the other side rated (sorted), i.e.
    exactly the factors that block p needs from this one."""
    n = block.rows.size
    row_pos = np.repeat(np.arange(n, dtype=np.int64), np.diff(block.indptr))
    pairs = np.unique((block.others % n_dest) * n + row_pos)
    dest, pos = np.divmod(pairs, max(n, 1))
    return (np.searchsorted(dest, np.arange(n_dest + 1)).astype(np.int64),
            pos.astype(np.int32))


def gram(mat: np.ndarray, float64: bool = True) -> np.ndarray:
    """MᵀM as float64; float64=False multiplies in float32 (half the time; what the float32
    CG kernel uses anyway)."""
    if float64:
        m64 = mat.astype(np.float64)
        return m64.T @ m64
    m32 = np.ascontiguousarray(mat, dtype=np.float32)
    return (m32.T @ m32).astype(np.float64)


def check_ids(users: np.ndarray, items: np.ndarray) -> None:
    """ALS's ids are indexes: a negative one is refused, with its name."""
    for name, ids in (("user_idx", users), ("item_idx", items)):
        if ids.size and ids.min() < 0:
            raise ValueError(f"ALS needs non-negative {name} (an index), got {ids.min()}")


def init_factors(n: int, rank: int, seed) -> np.ndarray:
    """Seeded Gaussian rows scaled to unit norm (as MLlib initialises)."""
    x = np.random.default_rng(seed).standard_normal((n, rank)).astype(np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def with_factors(record, factors: np.ndarray, float64_gram: bool = True) -> dict:
    """A block record: the ratings fields of `record` unchanged, new factors and their Gram."""
    return {**{k: record[k] for k in _RATINGS},
            "factors": np.ascontiguousarray(factors, dtype=np.float32).tobytes(),
            "gram": gram(factors, float64_gram).tobytes()}


def pack(part: int, blk: int, block: Block, n_dest: int | None, factors: np.ndarray) -> dict:
    """A block record; its out-block table is left empty when n_dest is None (no routing)."""
    route_ptr, routes = (out_routes(block, n_dest) if n_dest else
                         (np.zeros(0, np.int64), np.zeros(0, np.int32)))
    ratings = {"part": part, "blk": blk, "rows": block.rows.astype(np.int32).tobytes(),
               "indptr": block.indptr.tobytes(),
               "others": block.others.astype(np.int32).tobytes(), "conf": block.conf.tobytes(),
               "route_ptr": route_ptr.tobytes(), "routes": routes.tobytes()}
    return with_factors(ratings, factors)


def unpack(record) -> Block:
    """A Block from a record with the BLOCK_SCHEMA binary fields (a pandas row or Spark Row)."""
    return Block(np.frombuffer(record["rows"], np.int32).astype(np.int64),
                 np.frombuffer(record["indptr"], np.int64),
                 np.frombuffer(record["others"], np.int32).astype(np.int64),
                 np.frombuffer(record["conf"], np.float32))


def block_factors(record, rank: int) -> np.ndarray:
    return np.frombuffer(record["factors"], np.float32).reshape(-1, rank)


def collect_factors(blocks: DataFrame, n_rows: int,
                    rank: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(dense factors, n_rows x rank, zero where a row has no ratings; their Gram matrix; the
    sorted ids of the rows that have ratings) from every block, through Arrow (no per-row
    pickling), in one Spark job."""
    out, total = np.zeros((n_rows, rank), dtype=np.float32), np.zeros((rank, rank))
    ids = [np.zeros(0, np.int32)]
    for record in blocks.select("rows", "factors", "gram").toArrow().to_pylist():
        ids.append(np.frombuffer(record["rows"], np.int32))
        out[ids[-1]] = block_factors(record, rank)
        total += np.frombuffer(record["gram"], np.float64).reshape(rank, rank)
    return out, total, np.sort(np.concatenate(ids))


def joined(values, dtype) -> np.ndarray:
    """One array from a column of binary fragments."""
    return np.concatenate([np.frombuffer(v, dtype) for v in values])


_FRAGMENTS = "side int, blk int, keys binary, others binary, conf binary"


def block_fragments(batches, n_user_blocks: int, n_item_blocks: int):
    """rating_blocks' first pass, per input partition: for each side and block, one fragment
    of the raw (key, other, conf) arrays, as binary."""
    parts = [pdf for pdf in batches if len(pdf)]
    if not parts:
        return
    pdf = pd.concat(parts, ignore_index=True)
    users = pdf["user_idx"].to_numpy(np.int32)
    items = pdf["item_idx"].to_numpy(np.int32)
    check_ids(users, items)
    conf = pdf["confidence"].to_numpy(np.float32)
    out = []
    for side, keys, others, n in ((0, users, items, n_user_blocks),
                                  (1, items, users, n_item_blocks)):
        blk = keys % n
        for b in np.unique(blk):
            m = blk == b
            out.append({"side": side, "blk": int(b), "keys": keys[m].tobytes(),
                        "others": others[m].tobytes(), "conf": conf[m].tobytes()})
    yield pd.DataFrame(out)


def merged_blocks(batches, side: int, rank: int, seed: int, n_dest: int | None):
    """rating_blocks' second pass, per block partition: a block's fragments merged into one
    CSR record with its seeded initial factors (n_dest: the other side's block count, for
    the out-block tables; None leaves them out)."""
    frags = pd.concat([pdf for pdf in batches if len(pdf)] or [pd.DataFrame()],
                      ignore_index=True)
    for blk, mine in frags.groupby("blk", sort=True) if len(frags) else ():
        block = csr(joined(mine["keys"], np.int32).astype(np.int64),
                    joined(mine["others"], np.int32).astype(np.int64),
                    joined(mine["conf"], np.float32))
        x0 = init_factors(block.rows.size, rank, [seed + side, int(blk)])
        yield pd.DataFrame([pack(int(mine["part"].iloc[0]), int(blk), block, n_dest, x0)])


def rating_blocks(confidence: DataFrame, n_user_blocks: int, n_item_blocks: int, rank: int,
                  seed: int, routed: bool = True) -> tuple[DataFrame, DataFrame]:
    """(by_user, by_item): one CSR record per block of users (user_idx mod n_user_blocks) and
    of items, from (user_idx, item_idx, confidence) ratings, with seeded initial factors
    (init_factors from (seed, blk) for users, (seed + 1, blk) for items: the same whatever
    the partitioning, for a given block count); both persisted. Ratings never move again.
    routed=False (broadcast) leaves out what only routing needs: the out-block tables and a
    partitioning Spark knows (one more shuffle of every block).

    The rows go through Arrow into Python once: each input partition emits, per side and
    block, one fragment of raw (key, other, conf) arrays as binary; only those fragments are
    shuffled to their block's partition and merged there (handing every rating to pandas as
    a row, side by side, cost more than the rest of the blocking: benchmarks/README.md)."""

    spark = confidence.sparkSession
    frags = (confidence.select(F.col("user_idx").cast("int"), F.col("item_idx").cast("int"),
                               F.col("confidence").cast("float"))
             .mapInPandas(functools.partial(block_fragments, n_user_blocks=n_user_blocks,
                                            n_item_blocks=n_item_blocks), _FRAGMENTS)
             .persist())
    sides = []
    for side, n, n_other in ((0, n_user_blocks, n_item_blocks),
                             (1, n_item_blocks, n_user_blocks)):
        merge = functools.partial(merged_blocks, side=side, rank=rank, seed=seed,
                                  n_dest=n_other if routed else None)
        merged = (frags.filter(F.col("side") == side)
                  .withColumn("part", partition_key(spark, n, "blk"))
                  .repartition(n, "part")
                  .mapInPandas(merge, BLOCK_SCHEMA))
        if routed:  # once more by the output column: the cached blocks then carry a
            # partitioning Spark knows, and a cogroup keyed by it (half gridify) shuffles
            # only the other side, never the ratings
            merged = merged.repartition(n, "part")
        sides.append(merged.persist())
    for df in sides:
        df.count()
    frags.unpersist()
    return sides[0], sides[1]


_PARTITION_KEYS: dict[int, list[int]] = {}


def partition_keys(spark, n: int) -> list[int]:
    """keys[b]: an int that Spark's hash partitioning into n partitions sends to partition b.
    Spark hash-partitions by pmod(murmur3(key, 42), n), so small ints like the block numbers
    collide (4 blocks can land in 3 partitions, leaving a core idle); instead
    each block is keyed by the first int Spark's own hash() (the same Murmur3, seed 42) sends
    to its partition. Spark's hash is fixed, so the keys are looked up once per n per
    process."""
    if n not in _PARTITION_KEYS:
        found: dict[int, int] = {}
        candidates = spark.range(64 * n).select(F.col("id").cast("int").alias("k"))
        for row in candidates.select("k", F.expr(f"pmod(hash(k), {n})").alias("p")).collect():
            found.setdefault(int(row["p"]), int(row["k"]))
        if len(found) < n:
            raise RuntimeError(f"no key found for every one of {n} partitions")
        _PARTITION_KEYS[n] = [found[b] for b in range(n)]
    return list(_PARTITION_KEYS[n])


def partition_key(spark, n: int, column: str):
    """The partition key (partition_keys) of the block number in `column`, as a column:
    repartition(n, it) puts block b alone in partition b."""
    keys = partition_keys(spark, n)
    return F.element_at(F.array(*[F.lit(k) for k in keys]), F.col(column) + 1)
