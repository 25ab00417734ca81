"""Train / holdout split of interactions, seeded and deterministic."""

from __future__ import annotations

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F


def holdout_split(interactions: DataFrame, fraction: float, seed: int,
                  temporal: bool) -> tuple[DataFrame, DataFrame]:
    """Hold out round(fraction * n) of each user's n items, never all of them.

    temporal=True holds out the items the user discovered last (latest first play, ties by
    item); otherwise a seeded hash order per user. Users with one item stay wholly in train.
    """
    if not 0 < fraction < 1:
        raise ValueError(f"holdout fraction must be in (0, 1), got {fraction}")
    if temporal:
        order = [F.col("first_ts").desc_nulls_last(), F.col("item_idx").desc()]
    else:
        order = [F.xxhash64(F.lit(int(seed)), "user_idx", "item_idx"), F.col("item_idx")]
    w = Window.partitionBy("user_idx").orderBy(*order)
    n = F.count("*").over(Window.partitionBy("user_idx"))
    n_out = F.least(F.round(n * F.lit(fraction)), n - 1)
    ranked = interactions.withColumn("_pos", F.row_number().over(w)).withColumn("_nout", n_out)
    holdout = ranked.where(F.col("_pos") <= F.col("_nout")).drop("_pos", "_nout")
    train = ranked.where(F.col("_pos") > F.col("_nout")).drop("_pos", "_nout")
    return train, holdout
