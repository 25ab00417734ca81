"""Top-k scoring of queries against a broadcast candidate matrix, on Spark.

Each task takes a batch of query vectors, multiplies it with the candidate matrix (a BLAS
matrix product), masks what must not be returned and keeps the k best with argpartition. There
is no users x items cross join: the only shuffle is the optional join of each query with its
exclusion list. The candidate matrix goes to the executors as a broadcast (PySpark broadcasts
large UDF closures); at rank 64 that is 256 bytes per candidate, 51 MB for 200 k items.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame
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
    smaller candidate id. Masked entries (-inf) sort last; callers drop them."""
    part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    top = np.take_along_axis(scores, part, axis=1)
    # Boundary ties: argpartition may pick any of several equal scores; re-rank by (score, id).
    order = np.lexsort((cand_ids[part], -top), axis=1)
    return np.take_along_axis(part, order, axis=1), np.take_along_axis(top, order, axis=1)


def top_k_rows(query_ids: np.ndarray, queries: np.ndarray, cand_ids: np.ndarray,
               cands: np.ndarray, k: int, excludes=None, exclude_self: bool = False):
    """Pure NumPy core: arrays (query, rank, candidate, score) of the k best per query.

    Ties are broken by the smaller candidate id, so results are deterministic. A candidate
    that is masked (excluded, or the query itself) is never returned, even if fewer than k
    remain.
    """
    n = cand_ids.size
    kk = min(k, n)
    if kk == 0 or query_ids.size == 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, empty, np.zeros(0, dtype=np.float32)
    scores = queries.astype(np.float32) @ cands.T
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


def top_k(queries: DataFrame, cand_ids: np.ndarray, cands: np.ndarray, k: int,
          query_col: str, cand_col: str, exclude: DataFrame | None = None,
          exclude_self: bool = False) -> DataFrame:
    """For each row of `queries` (idx, features): the k best candidates by dot product.

    `exclude` (query_col, cand_col) lists pairs never to return (e.g. already played).
    Returns (query_col, rank, cand_col, score).
    """
    q = queries.select(F.col("idx").alias(query_col), "features")
    if exclude is not None:
        ex = exclude.groupBy(query_col).agg(F.collect_list(cand_col).alias("_exclude"))
        q = q.join(ex, query_col, "left")
    else:
        q = q.withColumn("_exclude", F.lit(None).cast("array<int>"))
    cand_ids = np.ascontiguousarray(cand_ids, dtype=np.int64)
    cands = np.ascontiguousarray(cands, dtype=np.float32)
    schema = f"{query_col} int, rank int, {cand_col} int, score float"

    step = batch_size(cand_ids.size)

    def score(batches):
        for pdf in batches:
            for start in range(0, len(pdf), step):
                part = pdf.iloc[start:start + step]
                qid = part[query_col].to_numpy(dtype=np.int64)
                mat = np.stack(part["features"].to_numpy()).astype(np.float32)
                qq, rr, cc, ss = top_k_rows(qid, mat, cand_ids, cands, k,
                                            part["_exclude"].to_numpy(), exclude_self)
                yield pd.DataFrame({query_col: qq.astype(np.int32), "rank": rr.astype(np.int32),
                                    cand_col: cc.astype(np.int32), "score": ss})

    return q.mapInPandas(score, schema)
