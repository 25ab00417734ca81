"""Top-k scoring of queries against a broadcast candidate matrix, on Spark.

Each task takes a batch of query vectors, multiplies it with the candidate matrix (a BLAS
matrix product), masks what must not be returned and keeps the k best with argpartition. There
is no users x items cross join: the only shuffle is the optional join of each query with its
exclusion list. The candidate matrix goes to the executors as a broadcast (PySpark broadcasts
large UDF closures); at rank 64 that is 256 bytes per candidate, 51 MB for 200 k items. A
matrix above MAX_SHARD_BYTES is cut into shards, scored one after the other and merged. With
an approximate index (`ann.AnnIndex`) the tasks search the index instead, in one pass.
"""

from __future__ import annotations

from functools import partial

import numba
import numpy as np
import pandas as pd
from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from ..ids import positions

QUERY_BATCH = 512
SCORE_CELLS = 1 << 24  # queries x candidates per dense score block: 64 MB of float32


def batch_size(n_candidates: int, cap: int = QUERY_BATCH) -> int:
    """Queries per dense score block: `cap`, fewer for a large catalogue so that a block (and
    argpartition's int64 copy of it) stays within a few hundred MB per Python worker."""
    return max(1, min(cap, SCORE_CELLS // max(n_candidates, 1)))


def normalize_rows(mat: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(mat, axis=1, keepdims=True)
    return np.divide(mat, norms, out=np.zeros_like(mat), where=norms > 0)


def best_positions(scores: np.ndarray, cand_ids: np.ndarray, k: int):
    """(positions, scores) of the k best columns of each row, best first, ties broken by the
    smaller candidate id. Masked entries (-inf, and NaN) are never chosen: a row with fewer
    than k others ends with -inf scores (at position 0); callers drop them."""
    rows = scores.shape[0]
    pos = np.zeros((rows, k), dtype=np.int64)
    top = np.full((rows, k), -np.inf, dtype=np.float32)
    if k > 0 and rows:
        _select(np.ascontiguousarray(scores, dtype=np.float32),
                np.ascontiguousarray(cand_ids, dtype=np.int64), pos, top)
    return pos, top


@numba.njit(cache=True)
def _select(scores, cand_ids, pos, top):  # pragma: no cover (compiled; tested through callers)
    """One pass over each row keeping its k best in a small buffer: a value enters only if
    it beats the buffer's worst (lowest score, then largest id), so a row costs about one
    comparison per candidate (argpartition moved every element). The buffer is then sorted
    best first (score descending, id ascending)."""
    k = pos.shape[1]
    for r in range(scores.shape[0]):
        row = scores[r]
        filled = 0
        j = 0
        while j < row.size and filled < k:  # the first k candidates that are not masked
            if row[j] > -np.inf:
                pos[r, filled] = j
                top[r, filled] = row[j]
                filled += 1
            j += 1
        if filled < k:
            worst, threshold = 0, np.inf
        else:
            worst, threshold = _worst(top[r], pos[r], cand_ids)
        while j < row.size:
            v = row[j]
            if v < threshold:  # the common case: one comparison
                j += 1
                continue
            if v > threshold or (v == threshold and cand_ids[j] < cand_ids[pos[r, worst]]):
                pos[r, worst] = j
                top[r, worst] = v
                worst, threshold = _worst(top[r], pos[r], cand_ids)
            j += 1  # NaN, or a tie with a larger id: not better
        for t in range(1, filled):  # insertion sort of the k kept, best first
            v, p = top[r, t], pos[r, t]
            u = t - 1
            while u >= 0 and (top[r, u] < v or (top[r, u] == v
                                                and cand_ids[pos[r, u]] > cand_ids[p])):
                top[r, u + 1] = top[r, u]
                pos[r, u + 1] = pos[r, u]
                u -= 1
            top[r, u + 1] = v
            pos[r, u + 1] = p


SCORE_BLOCK = 8192  # candidates per matrix product: a score never depends on the catalogue's size


@numba.njit(cache=True)
def _worst(top, pos, cand_ids):  # pragma: no cover (compiled)
    """(slot, score) of the buffer's worst entry: the lowest score, then the largest id."""
    worst = 0
    for t in range(1, top.size):
        if top[t] < top[worst] or (top[t] == top[worst]
                                   and cand_ids[pos[t]] > cand_ids[pos[worst]]):
            worst = t
    return worst, top[worst]


def top_k_rows(query_ids: np.ndarray, queries: np.ndarray, cand_ids: np.ndarray,
               cands: np.ndarray, k: int, excludes=None, exclude_self: bool = False,
               block: int = SCORE_BLOCK):
    """Pure NumPy core: arrays (query, rank, candidate, score) of the k best per query.

    Ties are broken by the smaller candidate id, so results are deterministic. A candidate
    that is masked (excluded, or the query itself) is never returned, even if fewer than k
    remain. Scores are computed `block` candidates at a time: BLAS may round a product
    differently for another matrix width, and a shard of whole blocks then scores every pair
    exactly as the whole catalogue does.
    """
    n = cand_ids.size
    kk = min(k, n)
    if kk == 0 or query_ids.size == 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, empty, np.zeros(0, dtype=np.float32)
    queries = queries.astype(np.float32)
    scores = np.empty((query_ids.size, n), dtype=np.float32)
    for start in range(0, n, block):
        scores[:, start:start + block] = queries @ cands[start:start + block].T
    if excludes is not None:
        for row, ex in enumerate(excludes):
            if ex is None or len(ex) == 0:
                continue
            pos, ok = positions(cand_ids, ex)
            scores[row, pos[ok]] = -np.inf
    if exclude_self:
        pos, ok = positions(cand_ids, query_ids)
        scores[np.flatnonzero(ok), pos[ok]] = -np.inf
    part, top = best_positions(scores, cand_ids, kk)
    rank = np.broadcast_to(np.arange(1, kk + 1), part.shape)
    keep = np.isfinite(top)
    q = np.broadcast_to(query_ids[:, None], part.shape)
    return q[keep], rank[keep], cand_ids[part][keep], top[keep]


MAX_SHARD_BYTES = 2 << 30  # the candidate matrix one task holds at most (float32)


def shard_count(n_candidates: int, rank: int, max_bytes: int = MAX_SHARD_BYTES) -> int:
    """Shards of the candidate matrix, each at most max_bytes of float32."""
    return max(1, -(-(n_candidates * rank * 4) // max_bytes))


def top_k(queries: DataFrame, cand_ids: np.ndarray, cands: np.ndarray, k: int,
          query_col: str, cand_col: str, exclude: DataFrame | None = None,
          exclude_self: bool = False, shards: int | None = None,
          block: int = SCORE_BLOCK, index=None) -> DataFrame:
    """For each row of `queries` (idx, features): the k best candidates by dot product.

    `exclude` (query_col, cand_col) lists pairs never to return (e.g. already played).
    Returns (query_col, rank, cand_col, score). A candidate matrix larger than one task
    should hold (MAX_SHARD_BYTES; or `shards` given) is cut into shards, each scored as a
    whole catalogue, and each query's shard results merged into its top k by the same order
    (score, then the smaller id): the same rows as one pass. `index` (an ann.AnnIndex over
    `cands`): the tasks search it instead of scoring every candidate (never sharded).
    """
    q = queries.select(F.col("idx").alias(query_col), "features")
    if exclude is not None:
        ex = exclude.groupBy(query_col).agg(F.collect_list(cand_col).alias("_exclude"))
        q = q.join(ex, query_col, "left")
    else:
        q = q.withColumn("_exclude", F.lit(None).cast("array<int>"))
    cand_ids = np.ascontiguousarray(cand_ids, dtype=np.int64)
    cands = np.ascontiguousarray(cands, dtype=np.float32)
    rank = cands.shape[1] if cands.ndim == 2 else 0
    n = cand_ids.size
    # Queries per batch and candidates per product from the whole catalogue, so that a shard
    # multiplies exactly the matrices one pass would.
    step = batch_size(n)
    if index is not None:
        return _one_pass(q, query_col, cand_col, step, partial(
            index.top_k_rows, cand_ids=cand_ids, k=k, exclude_self=exclude_self))
    n_shards = shards or shard_count(n, rank)
    per_shard = -(-max(1, -(-n // n_shards)) // block) * block  # whole blocks
    bounds = [*range(0, n, per_shard), n] if n else [0, 0]
    parts = [_one_pass(q, query_col, cand_col, step, partial(
        top_k_rows, cand_ids=cand_ids[lo:hi], cands=cands[lo:hi], k=k,
        exclude_self=exclude_self, block=block)) for lo, hi in zip(bounds[:-1], bounds[1:])]
    if len(parts) == 1:
        return parts[0]
    merged = parts[0]
    for part in parts[1:]:
        merged = merged.unionByName(part)
    best = Window.partitionBy(query_col).orderBy(F.desc("score"), F.asc(cand_col))
    return (merged.withColumn("rank", F.row_number().over(best).cast("int"))
            .where(F.col("rank") <= k).select(query_col, "rank", cand_col, "score"))


def _one_pass(q: DataFrame, query_col: str, cand_col: str, step: int, rows) -> DataFrame:
    """top_k by `rows(query_ids, queries, excludes=...)` (top_k_rows against one shard of the
    candidate matrix, or an index's), which goes to the tasks with their closure."""
    schema = f"{query_col} int, rank int, {cand_col} int, score float"

    def score(batches):
        for pdf in batches:
            for start in range(0, len(pdf), step):
                part = pdf.iloc[start:start + step]
                qid = part[query_col].to_numpy(dtype=np.int64)
                mat = np.stack(part["features"].to_numpy()).astype(np.float32)
                qq, rr, cc, ss = rows(qid, mat, excludes=part["_exclude"].to_numpy())
                yield pd.DataFrame({query_col: qq.astype(np.int32), "rank": rr.astype(np.int32),
                                    cand_col: cc.astype(np.int32), "score": ss})

    return q.mapInPandas(score, schema)
