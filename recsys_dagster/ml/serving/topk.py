"""Top-k scoring of queries against a broadcast candidate matrix, on Spark.

Each task takes a batch of query vectors and multiplies it with the candidate matrix a tile
of candidates at a time (a BLAS matrix product into a buffer that stays in cache); a compiled
pass masks what must not be returned and keeps the k best of the tile in a buffer per query
that lives across tiles, so no whole row of scores is ever written to memory. There is no
users x items cross join: the only shuffle is the optional join of each query with its
exclusion list. The candidate matrix goes to the executors as a broadcast (PySpark broadcasts
large UDF closures); at rank 64 that is 256 bytes per candidate, 51 MB for 200 k items. A
matrix above MAX_SHARD_BYTES is cut into shards, scored one after the other and merged. With
an approximate index (`ann.AnnIndex`) the tasks search the index instead, in one pass.
"""

from __future__ import annotations

import threading
from functools import partial

import numba
import numpy as np
import pandas as pd
from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from ..ids import positions

QUERY_BATCH = 256  # queries per batch of the exact path: one BLAS product per score tile
SCORE_CELLS = 1 << 24  # queries x candidates of a whole-row score block: 64 MB of float32
SCORE_BLOCK = 8192  # candidates per score tile: a score never depends on the catalogue's size
CHUNK = 32  # scores whose maximum the selection compares with the k-th best before each one


def batch_size(n_candidates: int, cap: int = QUERY_BATCH) -> int:
    """Queries per block for callers that keep whole score rows (the evaluation's AUC needs
    them): `cap`, fewer for a large catalogue so that a block stays within a few hundred MB
    per Python worker."""
    return max(1, min(cap, SCORE_CELLS // max(n_candidates, 1)))


def normalize_rows(mat: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(mat, axis=1, keepdims=True)
    return np.divide(mat, norms, out=np.zeros_like(mat), where=norms > 0)


_SCRATCH = threading.local()  # one buffer per thread: tuning scores its trials in threads


def scratch(rows: int, cols: int) -> np.ndarray:
    """A (rows, cols) float32 array reused from one score block to the next in this thread
    (a fresh catalogue-wide block costs a page fault per 4 KiB page, as much as the product
    that fills it); valid until the thread's next call."""
    buffer = getattr(_SCRATCH, "buffer", None)
    if buffer is None or buffer.size < rows * cols:
        buffer = _SCRATCH.buffer = np.empty(rows * cols, dtype=np.float32)
    return buffer[:rows * cols].reshape(rows, cols)


class Selection:
    """The k best columns of each of a batch of score rows seen a tile at a time, best first,
    ties broken by the smaller candidate id. Masked entries (-inf, NaN, and the positions
    given to `add`) are never chosen: a row with fewer than k others ends with -inf scores
    (at position 0); callers drop them."""

    def __init__(self, rows: int, k: int, cand_ids: np.ndarray):
        self.cand_ids = np.ascontiguousarray(cand_ids, dtype=np.int64)
        self.pos = np.zeros((rows, k), dtype=np.int64)
        self.top = np.full((rows, k), -np.inf, dtype=np.float32)
        self.filled = np.zeros(rows, dtype=np.int64)
        self.worst = np.zeros(rows, dtype=np.int64)
        self.threshold = np.full(rows, np.inf, dtype=np.float32)

    def add(self, tile: np.ndarray, lo: int, ex_ptr: np.ndarray | None = None,
            ex_pos: np.ndarray | None = None, rows: np.ndarray | None = None) -> None:
        """Scores of candidates lo .. lo + tile.shape[1] (float32, C-ordered; masked in
        place) for the rows `rows` (default: every row, in order): ex_pos[ex_ptr[r]:ex_ptr[r +
        1]] are positions row r must never return."""
        if ex_ptr is None:
            ex_ptr, ex_pos = np.zeros(self.pos.shape[0] + 1, np.int64), np.zeros(0, np.int64)
        if rows is None:
            rows = np.arange(tile.shape[0], dtype=np.int64)
        if self.pos.shape[1] and tile.size:
            _select(tile, lo, rows, self.cand_ids, ex_ptr, ex_pos, self.pos, self.top,
                    self.filled, self.worst, self.threshold)

    def pending(self, bound: np.ndarray) -> np.ndarray:
        """Rows that a score up to bound[r] could still enter (all rows not yet full)."""
        return ~((self.filled == self.pos.shape[1]) & (self.threshold > bound))

    def result(self) -> tuple[np.ndarray, np.ndarray]:
        """(positions, scores), each row sorted best first."""
        _sort(self.pos, self.top, self.cand_ids)
        return self.pos, self.top


def best_positions(scores: np.ndarray, cand_ids: np.ndarray, k: int):
    """(positions, scores) of the k best columns of each whole row: Selection in one tile."""
    selection = Selection(scores.shape[0], k, cand_ids)
    selection.add(np.ascontiguousarray(scores, dtype=np.float32), 0)
    return selection.result()


@numba.njit(cache=True)
def _chunk_max(row, j):  # pragma: no cover (compiled): masked entries are -inf; no fastmath,
    # which would let a NaN hide a larger value of its chunk
    m = row[j]
    for q in range(j + 1, j + CHUNK):
        m = max(m, row[q])
    return m


@numba.njit(cache=True)
def _select(tile, lo, rows, cand_ids, ex_ptr, ex_pos, pos, top, filled, worst,
            threshold):  # pragma: no cover (compiled; tested through callers)
    """One pass over each row of a score tile, keeping its k best in a small buffer that
    lives across tiles: a value enters only if it beats the buffer's worst (lowest score,
    then largest id), and a chunk of CHUNK values is skipped at once when its maximum is
    below that worst, so a row costs about one vectorised comparison per candidate (once
    the buffer is full, almost every chunk is skipped). The row's excluded positions in
    this tile are set to -inf first. Tile row i holds the scores of buffer row rows[i]."""
    k = pos.shape[1]
    width = tile.shape[1]
    for i in range(tile.shape[0]):
        r = rows[i]
        row = tile[i]
        for e in range(ex_ptr[r], ex_ptr[r + 1]):
            p = ex_pos[e] - lo
            if 0 <= p < width:
                row[p] = -np.inf
        j = 0
        f = filled[r]
        while j < width and f < k:  # the first k candidates that are not masked
            if row[j] > -np.inf:
                pos[r, f] = lo + j
                top[r, f] = row[j]
                f += 1
            j += 1
        if f < k:
            filled[r] = f
            continue
        if filled[r] < k:  # the buffer just filled up
            filled[r] = k
            worst[r], threshold[r] = _worst(top[r], pos[r], cand_ids)
        t = threshold[r]
        while j < width:
            if j + CHUNK <= width and _chunk_max(row, j) < t:
                j += CHUNK
                continue
            end = min(width, j + CHUNK)
            while j < end:
                v = row[j]  # NaN compares false: never enters
                if v > t or (v == t and cand_ids[lo + j] < cand_ids[pos[r, worst[r]]]):
                    pos[r, worst[r]] = lo + j
                    top[r, worst[r]] = v
                    worst[r], t = _worst(top[r], pos[r], cand_ids)
                    threshold[r] = t
                j += 1


@numba.njit(cache=True)
def _worst(top, pos, cand_ids):  # pragma: no cover (compiled)
    """(slot, score) of the buffer's worst entry: the lowest score, then the largest id."""
    worst = 0
    for t in range(1, top.size):
        if top[t] < top[worst] or (top[t] == top[worst]
                                   and cand_ids[pos[t]] > cand_ids[pos[worst]]):
            worst = t
    return worst, top[worst]


@numba.njit(cache=True)
def _sort(pos, top, cand_ids):  # pragma: no cover (compiled)
    """Insertion sort of each row's buffer, best first (score descending, id ascending);
    unfilled slots (-inf) go last."""
    for r in range(pos.shape[0]):
        for t in range(1, pos.shape[1]):
            v, p = top[r, t], pos[r, t]
            u = t - 1
            while u >= 0 and (top[r, u] < v or (top[r, u] == v and v > -np.inf
                                                and cand_ids[pos[r, u]] > cand_ids[p])):
                top[r, u + 1] = top[r, u]
                pos[r, u + 1] = pos[r, u]
                u -= 1
            top[r, u + 1] = v
            pos[r, u + 1] = p


def no_rows() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The empty (query, rank, candidate, score) arrays."""
    empty = np.zeros(0, dtype=np.int64)
    return empty, empty, empty, np.zeros(0, dtype=np.float32)


def exclusions(cand_ids: np.ndarray, query_ids: np.ndarray, excludes=None,
               exclude_self: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(ptr, positions): the candidate positions query r must never get, in
    positions[ptr[r]:ptr[r + 1]] (ids not among the candidates are dropped), found in one
    vectorised search for the whole batch."""
    n_q = query_ids.size
    rows, wanted = [np.zeros(0, np.int64)], [np.zeros(0, np.int64)]
    if excludes is not None:
        lengths = np.array([0 if e is None else len(e) for e in excludes], dtype=np.int64)
        if lengths.sum():
            rows.append(np.repeat(np.arange(n_q, dtype=np.int64), lengths))
            wanted.append(np.concatenate([np.asarray(e, dtype=np.int64) for e in excludes
                                          if e is not None and len(e)]))
    if exclude_self:
        rows.append(np.arange(n_q, dtype=np.int64))
        wanted.append(np.asarray(query_ids, dtype=np.int64))
    rows, wanted = np.concatenate(rows), np.concatenate(wanted)
    pos, ok = positions(cand_ids, wanted)
    rows, pos = rows[ok], pos[ok]
    order = np.argsort(rows, kind="stable")
    ptr = np.zeros(n_q + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=n_q), out=ptr[1:])
    return ptr, pos[order].astype(np.int64)


NORM_MARGIN = 1e-4  # relative slack of the norm bound over a float32 product's rounding


class Candidates:
    """A candidate matrix prepared for exact top-k by inner product: its rows ordered by
    norm, longest first, and cut into tiles of `block` rows; the largest norm from each tile
    on bounds every later score of a query by |q| times it (Cauchy-Schwarz). Once a query's
    k-th best score is above that bound, the rest of the catalogue cannot enter its top k and
    is not scored (the pruning of Teflioudi, Gemulla & Mykytiuk, "LEMP: Fast Retrieval of
    Large Entries in a Matrix Product", 2015, with one bucket per tile). Popular items have
    long vectors, so for most queries the top k is settled within the first tiles. The
    result is exact; with unit vectors (cosine) nothing is pruned and every tile is scored.

    Built once per catalogue (in the driver, or per process) and shipped to the tasks with
    their closure. `cand_ids` ascending; rows of `cands` follow them."""

    def __init__(self, cand_ids: np.ndarray, cands: np.ndarray, block: int = SCORE_BLOCK):
        self.ids_sorted = np.ascontiguousarray(cand_ids, dtype=np.int64)
        n = self.ids_sorted.size
        mat = np.ascontiguousarray(cands, dtype=np.float32)
        mat = mat.reshape(n, mat.shape[-1] if mat.ndim == 2 else (mat.size // n if n else 0))
        norms = np.sqrt(np.square(mat, dtype=np.float64).sum(axis=1))
        order = np.lexsort((np.arange(n), -norms))  # longest first, then the caller's order
        self.ids, self.mat = self.ids_sorted[order], np.ascontiguousarray(mat[order])
        self.inverse = np.empty(n, dtype=np.int64)
        self.inverse[order] = np.arange(n)
        starts = list(range(0, n, block))
        if len(starts) > 1 and n - starts[-1] == 1:
            starts.pop()  # never a tile of one candidate: BLAS rounds a matrix-vector product
            # differently, and a pair must score the same whatever tile it falls in
        self.tiles = np.array([*starts, n], dtype=np.int64) if n else np.zeros(1, np.int64)
        rest = np.maximum.accumulate(norms[order][::-1])[::-1] if n else norms
        self.bounds = rest[self.tiles[:-1]] * (1.0 + NORM_MARGIN)
        self.scored = 0  # candidate scores computed so far, for what the pruning saved

    @property
    def size(self) -> int:
        return int(self.ids.size)

    def top_k_rows(self, query_ids: np.ndarray, queries: np.ndarray, k: int, excludes=None,
                   exclude_self: bool = False):
        """Arrays (query, rank, candidate, score) of the k best per query.

        Ties are broken by the smaller candidate id, so results are deterministic. A
        candidate that is masked (excluded, or the query itself) is never returned, even if
        fewer than k remain. Scores are computed a tile at a time into a buffer that stays in
        cache and is selected from at once (the whole score row is never written out), for
        the queries whose top k the tile can still change; a query is scored as a row of a
        matrix product, never alone (BLAS may round a product differently for another
        shape), so a pair scores the same in any batch or shard."""
        n = self.size
        kk = min(k, n)
        if kk == 0 or query_ids.size == 0:
            return no_rows()
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        ex_ptr, ex_pos = exclusions(self.ids_sorted, query_ids, excludes, exclude_self)
        ex_pos = self.inverse[ex_pos]
        q_norms = np.sqrt(np.square(queries, dtype=np.float64).sum(axis=1))
        selection = Selection(query_ids.size, kk, self.ids)
        widest = int(np.diff(self.tiles).max())
        buffer = scratch(query_ids.size, widest)
        everyone = np.arange(query_ids.size)
        for t, (lo, hi) in enumerate(zip(self.tiles[:-1], self.tiles[1:])):
            rows = np.flatnonzero(selection.pending(q_norms * self.bounds[t]))
            if rows.size == 0:
                break
            if rows.size == 1 and query_ids.size > 1:  # a product, not a matrix-vector one
                rows = everyone[:2] if rows[0] < 2 else np.array([0, rows[0]])
            tile = buffer[:rows.size, :hi - lo]
            np.matmul(queries if rows.size == everyone.size else queries[rows],
                      self.mat[lo:hi].T, out=tile)
            selection.add(tile, int(lo), ex_ptr, ex_pos, rows)
            self.scored += tile.size
        part, top = selection.result()
        rank = np.broadcast_to(np.arange(1, kk + 1), part.shape)
        keep = np.isfinite(top)
        q = np.broadcast_to(query_ids[:, None], part.shape)
        return q[keep], rank[keep], self.ids[part][keep], top[keep]


def top_k_rows(query_ids: np.ndarray, queries: np.ndarray, cand_ids: np.ndarray,
               cands: np.ndarray, k: int, excludes=None, exclude_self: bool = False,
               block: int = SCORE_BLOCK):
    """Pure NumPy core: Candidates(cand_ids, cands, block).top_k_rows(...), for one call
    (prepare Candidates once when calling many times with one catalogue)."""
    return Candidates(cand_ids, cands, block).top_k_rows(query_ids, queries, k, excludes,
                                                         exclude_self)


MAX_SHARD_BYTES = 2 << 30  # the candidate matrix one task holds at most (float32)


def shard_count(n_candidates: int, rank: int, max_bytes: int = MAX_SHARD_BYTES) -> int:
    """Shards of the candidate matrix, each at most max_bytes of float32."""
    return max(1, -(-(n_candidates * rank * 4) // max_bytes))


def top_k(queries: DataFrame, cand_ids: np.ndarray, cands: np.ndarray, k: int,
          query_col: str, cand_col: str, exclude: DataFrame | None = None,
          exclude_self: bool = False, shards: int | None = None,
          block: int = SCORE_BLOCK, index=None) -> DataFrame:
    """For each row of `queries` (idx, features, and any other columns): the k best
    candidates by dot product.

    `exclude` (query_col, cand_col) lists pairs never to return (e.g. already played).
    Returns (query_col, rank, cand_col, score, then the queries' other columns, repeated on
    each of their rows: e.g. a raw id, which then needs no join with the result; the query
    ids must then be unique). A candidate matrix larger than one task should hold
    (MAX_SHARD_BYTES; or `shards` given) is cut into shards, each scored as a whole catalogue,
    and each query's shard results merged into its top k by the same order (score, then the
    smaller id): the same rows as one pass. `index` (an ann.AnnIndex over
    `cands`): the tasks search it instead of scoring every candidate (never sharded).
    """
    carry = [c for c in queries.columns if c not in ("idx", "features")]
    q = queries.select(F.col("idx").alias(query_col), "features", *carry)
    if exclude is not None:
        ex = exclude.groupBy(query_col).agg(F.collect_list(cand_col).alias("_exclude"))
        q = q.join(ex, query_col, "left")
    else:
        q = q.withColumn("_exclude", F.lit(None).cast("array<int>"))
    cand_ids = np.ascontiguousarray(cand_ids, dtype=np.int64)
    cands = np.ascontiguousarray(cands, dtype=np.float32)
    rank = cands.shape[1] if cands.ndim == 2 else 0
    n = cand_ids.size
    step = QUERY_BATCH
    if index is not None:
        return _one_pass(q, query_col, cand_col, carry, step, partial(
            index.top_k_rows, cand_ids=cand_ids, k=k, exclude_self=exclude_self))
    n_shards = shards or shard_count(n, rank)
    per_shard = -(-max(1, -(-n // n_shards)) // block) * block  # whole blocks
    bounds = [*range(0, n, per_shard), n] if n else [0, 0]
    parts = [_one_pass(q, query_col, cand_col, carry, step, partial(
        Candidates(cand_ids[lo:hi], cands[lo:hi], block).top_k_rows, k=k,
        exclude_self=exclude_self)) for lo, hi in zip(bounds[:-1], bounds[1:])]
    if len(parts) == 1:
        return parts[0]
    merged = parts[0]
    for part in parts[1:]:
        merged = merged.unionByName(part)
    best = Window.partitionBy(query_col).orderBy(F.desc("score"), F.asc(cand_col))
    return (merged.withColumn("rank", F.row_number().over(best).cast("int"))
            .where(F.col("rank") <= k).select(query_col, "rank", cand_col, "score", *carry))


def _one_pass(q: DataFrame, query_col: str, cand_col: str, carry: list[str], step: int,
              rows) -> DataFrame:
    """top_k by `rows(query_ids, queries, excludes=...)` (Candidates.top_k_rows of one shard
    of the candidate matrix, or an index's), which goes to the tasks with their closure;
    the `carry` columns of each query are repeated on its rows."""
    types = dict(q.dtypes)
    schema = ", ".join([f"{query_col} int, rank int, {cand_col} int, score float",
                        *(f"`{c}` {types[c]}" for c in carry)])

    def score(batches):
        for pdf in batches:
            for start in range(0, len(pdf), step):
                part = pdf.iloc[start:start + step]
                qid = part[query_col].to_numpy(dtype=np.int64)
                mat = np.stack(part["features"].to_numpy()).astype(np.float32)
                qq, rr, cc, ss = rows(qid, mat, excludes=part["_exclude"].to_numpy())
                out = {query_col: qq.astype(np.int32), "rank": rr.astype(np.int32),
                       cand_col: cc.astype(np.int32), "score": ss}
                if carry:  # each row's query, by position in this batch
                    at = pd.Index(qid).get_indexer(qq)
                    out.update({c: part[c].to_numpy()[at] for c in carry})
                yield pd.DataFrame(out)

    return q.mapInPandas(score, schema)
