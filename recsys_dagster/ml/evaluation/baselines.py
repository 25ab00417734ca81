"""The baselines ALS is measured against: popularity, and item-kNN (item-item cosine
similarity on co-listening)."""

from __future__ import annotations

import numba
import numpy as np
import pandas as pd
from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from ..ids import factor_matrix, require_positions
from ..serving.topk import top_k


def item_cosine_neighbours(train: DataFrame, n_neighbours: int = 100,
                           max_items_per_user: int = 0, seed: int = 0) -> pd.DataFrame:
    """(item_idx, other_idx, sim) in the driver: the n most similar items of each item by
    co-listening cosine, ties broken by the smaller other_idx.

    cosine(i, j) = |users of i and j| / sqrt(|users of i| |users of j|), binary listening.
    The co-listening product costs the sum of squared items per user; max_items_per_user > 0
    keeps a seeded sample of that many items of each heavier user (0: every item). The
    (user, item) pairs are collected (the caller bounds them by sampling users) and
    multiplied as a sparse matrix, a block of items at a time (cosine_neighbours).
    """
    pairs = train.select("user_idx", "item_idx").distinct()
    if max_items_per_user > 0:
        order = Window.partitionBy("user_idx").orderBy(F.xxhash64("item_idx", F.lit(seed)),
                                                       "item_idx")
        pairs = (pairs.withColumn("_n", F.row_number().over(order))
                 .where(F.col("_n") <= max_items_per_user).drop("_n"))
    pdf = pairs.toPandas()
    item, other, sim = cosine_neighbours(pdf["user_idx"].to_numpy(dtype=np.int64),
                                         pdf["item_idx"].to_numpy(dtype=np.int64), n_neighbours)
    return pd.DataFrame({"item_idx": item, "other_idx": other, "sim": sim})


PRODUCT_BLOCK = 20_000_000  # co-listening entries one block of items may produce at most


def cosine_neighbours(user_idx: np.ndarray, item_idx: np.ndarray, n_neighbours: int,
                      block_entries: int = PRODUCT_BLOCK):
    """(item, other, sim) arrays from distinct (user, item) pairs: each item's n best others
    by cosine, ordered by item, then sim descending, then other ascending. Items are
    multiplied in blocks whose co-listening entries stay under block_entries, so memory is
    bounded by the block, not the catalogue."""
    from scipy import sparse

    empty = (np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float64))
    if item_idx.size == 0 or n_neighbours <= 0:
        return empty
    items, col = np.unique(item_idx, return_inverse=True)
    _, row = np.unique(user_idx, return_inverse=True)
    x = sparse.csr_matrix((np.ones(col.size, np.float64), (row, col)),
                          shape=(int(row.max()) + 1, items.size))
    x.data[:] = 1.0  # binary listening, duplicates or not
    xt = x.T.tocsr()
    listeners = np.diff(xt.indptr).astype(np.float64)
    # An item's row of the product has at most the items of all its listeners.
    bound = xt @ np.diff(x.indptr).astype(np.float64)
    cuts = [0]
    total = 0.0
    for i, b in enumerate(bound):
        if total + b > block_entries and i > cuts[-1]:
            cuts.append(i)
            total = 0.0
        total += b
    cuts.append(items.size)
    out = []
    for lo, hi in zip(cuts[:-1], cuts[1:]):
        co = (xt[lo:hi] @ x).tocsr()
        counts = _kept_per_row(co.indptr, co.indices, lo, n_neighbours)
        ptr = np.zeros(counts.size + 1, np.int64)
        np.cumsum(counts, out=ptr[1:])
        c, v = np.empty(ptr[-1], np.int64), np.empty(ptr[-1], np.float64)
        _best_per_row(co.indptr, co.indices.astype(np.int64), co.data, listeners, lo,
                      n_neighbours, ptr, c, v)
        r = np.repeat(np.arange(lo, hi), counts)
        out.append((items[r], items[c], v))
    return tuple(np.concatenate(parts) for parts in zip(*out))


@numba.njit(cache=True)
def _kept_per_row(indptr, indices, lo, n):  # pragma: no cover (compiled)
    """Others each row keeps: at most n, never the item itself."""
    out = np.zeros(indptr.size - 1, np.int64)
    for r in range(indptr.size - 1):
        others = indptr[r + 1] - indptr[r]
        for e in range(indptr[r], indptr[r + 1]):
            if indices[e] == r + lo:
                others -= 1
        out[r] = min(n, others)
    return out


@numba.njit(cache=True)
def _best_per_row(indptr, indices, counts, listeners, lo, n, ptr, out_c,
                  out_v):  # pragma: no cover (compiled; tested through cosine_neighbours)
    """Per row of the co-listening product (rows lo..): cosine = count / sqrt(listeners of
    both), itself left out, the n best by (cosine descending, other ascending), written to
    out_c / out_v from ptr[row]: two stable sorts of the row (a row has a few hundred
    entries; one global lexsort of every entry cost most of the baseline's time)."""
    for r in range(indptr.size - 1):
        s, e = indptr[r], indptr[r + 1]
        c = indices[s:e]
        keep = c != r + lo
        c = c[keep]
        v = counts[s:e][keep] / np.sqrt(listeners[r + lo] * listeners[c])
        order = np.argsort(c, kind="mergesort")
        c, v = c[order], v[order]
        order = np.argsort(-v, kind="mergesort")  # stable: equal cosines keep id order
        m = ptr[r + 1] - ptr[r]
        out_c[ptr[r]:ptr[r + 1]] = c[order[:m]]
        out_v[ptr[r]:ptr[r + 1]] = v[order[:m]]


def similarity_matrix(neighbours: pd.DataFrame, item_ids: np.ndarray):
    """A scipy CSR matrix in catalogue positions (rows and columns follow item_ids)."""
    from scipy import sparse

    rows = require_positions(item_ids, neighbours["item_idx"].to_numpy(), "item-kNN items")
    cols = require_positions(item_ids, neighbours["other_idx"].to_numpy(),
                             "item-kNN neighbours")
    n = item_ids.size
    return sparse.csr_matrix((neighbours["sim"].to_numpy(dtype=np.float32), (rows, cols)),
                             shape=(n, n))


def popularity_recommendations(train: DataFrame, users: DataFrame, n: int,
                               seen: DataFrame | None = None) -> DataFrame:
    """The popularity baseline: the n items with most training listeners, minus seen ones."""
    pop = (train.groupBy("item_idx").agg(F.countDistinct("user_idx").cast("float").alias("p"))
           .select(F.col("item_idx").alias("idx"), F.array("p").alias("features")))
    item_ids, item_mat = factor_matrix(pop)
    queries = users.select(F.col("user_idx").alias("idx"),
                           F.array(F.lit(1.0).cast("float")).alias("features"))
    return top_k(queries, item_ids, item_mat, n, "user_idx", "item_idx", exclude=seen)
