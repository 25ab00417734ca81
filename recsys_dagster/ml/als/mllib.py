"""Spark MLlib's blocked ALS with implicitPrefs=True.

MLlib forms confidence itself as 1 + alpha * r. We give it r = confidence - 1 and alpha = 1,
so it trains on exactly our confidence matrix whatever the weighting. Its regularisation is
ALS-WR: lambda is scaled by each row's number of ratings.
"""

from __future__ import annotations

import time

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from .params import ALSParams, Factors


def train_mllib(confidence: DataFrame, params: ALSParams) -> Factors:
    from pyspark.ml.recommendation import ALS

    ratings = confidence.select(
        F.col("user_idx").cast("int").alias("user"),
        F.col("item_idx").cast("int").alias("item"),
        (F.col("confidence") - F.lit(1.0)).cast("float").alias("rating"),
    )
    als = ALS(
        rank=params.rank, maxIter=params.max_iter, regParam=params.reg_param,
        implicitPrefs=True, alpha=1.0, seed=params.seed,
        numUserBlocks=params.num_user_blocks, numItemBlocks=params.num_item_blocks,
        checkpointInterval=params.checkpoint_interval, nonnegative=params.nonnegative,
        userCol="user", itemCol="item", ratingCol="rating",
        intermediateStorageLevel="MEMORY_AND_DISK", finalStorageLevel="MEMORY_AND_DISK",
    )
    t0 = time.perf_counter()
    model = als.fit(ratings)
    fit_s = time.perf_counter() - t0
    users = model.userFactors.select(F.col("id").alias("idx"), "features")
    items = model.itemFactors.select(F.col("id").alias("idx"), "features")
    return Factors(users, items, {"fit_seconds": fit_s,
                                  "seconds_per_iteration": fit_s / params.max_iter},
                   (params.num_user_blocks, params.num_item_blocks), "mllib")
