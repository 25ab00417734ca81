"""The baselines ALS is measured against: popularity, and item-kNN (item-item cosine
similarity on co-listening)."""

from __future__ import annotations

import numpy as np
from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from ..ids import factor_matrix, require_positions
from ..serving.topk import top_k


def item_cosine_neighbours(train: DataFrame, n_neighbours: int = 100,
                           max_items_per_user: int = 0, seed: int = 0) -> DataFrame:
    """(item_idx, other_idx, sim): the n most similar items by co-listening cosine.

    cosine(i, j) = |users of i and j| / sqrt(|users of i| |users of j|), binary listening.
    The co-listening self-join costs the sum of squared items per user; max_items_per_user > 0
    keeps a seeded sample of that many items of each heavier user (0: every item).
    """
    pairs = train.select("user_idx", "item_idx").distinct()
    if max_items_per_user > 0:
        order = Window.partitionBy("user_idx").orderBy(F.xxhash64("item_idx", F.lit(seed)),
                                                       "item_idx")
        pairs = (pairs.withColumn("_n", F.row_number().over(order))
                 .where(F.col("_n") <= max_items_per_user).drop("_n"))
    counts = pairs.groupBy("item_idx").agg(F.count("*").alias("n"))
    co = (pairs.alias("a").join(pairs.alias("b"), "user_idx")
          .where(F.col("a.item_idx") != F.col("b.item_idx"))
          .groupBy(F.col("a.item_idx").alias("item_idx"), F.col("b.item_idx").alias("other_idx"))
          .agg(F.count("*").alias("co")))
    sims = (co.join(counts, "item_idx")
            .join(counts.select(F.col("item_idx").alias("other_idx"), F.col("n").alias("m")),
                  "other_idx")
            .select("item_idx", "other_idx",
                    (F.col("co") / F.sqrt(F.col("n") * F.col("m"))).alias("sim")))
    w = Window.partitionBy("item_idx").orderBy(F.desc("sim"), "other_idx")
    return (sims.withColumn("_r", F.row_number().over(w)).where(F.col("_r") <= n_neighbours)
            .drop("_r"))


def similarity_matrix(neighbours: DataFrame, item_ids: np.ndarray):
    """A scipy CSR matrix in catalogue positions (rows and columns follow item_ids)."""
    from scipy import sparse

    pdf = neighbours.toPandas()
    rows = require_positions(item_ids, pdf["item_idx"].to_numpy(), "item-kNN items")
    cols = require_positions(item_ids, pdf["other_idx"].to_numpy(), "item-kNN neighbours")
    n = item_ids.size
    return sparse.csr_matrix((pdf["sim"].to_numpy(dtype=np.float32), (rows, cols)), shape=(n, n))


def popularity_recommendations(train: DataFrame, users: DataFrame, n: int,
                               seen: DataFrame | None = None) -> DataFrame:
    """The popularity baseline: the n items with most training listeners, minus seen ones."""
    pop = (train.groupBy("item_idx").agg(F.countDistinct("user_idx").cast("float").alias("p"))
           .select(F.col("item_idx").alias("idx"), F.array("p").alias("features")))
    item_ids, item_mat = factor_matrix(pop)
    queries = users.select(F.col("user_idx").alias("idx"),
                           F.array(F.lit(1.0).cast("float")).alias("features"))
    return top_k(queries, item_ids, item_mat, n, "user_idx", "item_idx", exclude=seen)
