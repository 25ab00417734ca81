"""Train / holdout split of interactions, seeded and deterministic."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from .. import setting


@dataclass(frozen=True)
class SplitParams:
    """Train / validation / test split, per user, seeded."""

    validation_fraction: float = setting(
        0.1, "Share of each user's items for validation (tuning looks only at these).")
    test_fraction: float = setting(
        0.2, "Share of each user's items for test (reported and gating numbers).")
    split: Literal["auto", "temporal", "random"] = setting(
        "auto", "auto: temporal when every play has a timestamp, else seeded per-user random.")
    seed: int = setting(7, "Seed of the random split.")


def holdout_split(interactions: DataFrame, fraction: float, seed: int,
                  temporal: bool) -> tuple[DataFrame, DataFrame]:
    """Hold out round(fraction * n) of each user's n items, never all of them.

    temporal=True holds out the items the user discovered last (latest first play, ties by
    item); otherwise a seeded hash order per user. Users with one item stay wholly in train.
    """
    train, _, test = three_way_split(interactions, 0.0, fraction, seed, temporal)
    return train, test


PARTS = ("test", "validation", "train")  # split_parts' `_part` codes: 0, 1, 2


def three_way_split(interactions: DataFrame, validation_fraction: float, test_fraction: float,
                    seed: int, temporal: bool) -> tuple[DataFrame, DataFrame, DataFrame]:
    """(train, validation, test) per user: the first round(test_fraction * n) items in the
    user's order go to test, the next round(validation_fraction * n) to validation, the rest
    to train; every user keeps at least one training item.

    The order is most recently discovered first (temporal) or a seeded hash (random), so the
    split is deterministic for a given seed.
    """
    return parts_of(split_parts(interactions, validation_fraction, test_fraction, seed,
                                temporal), interactions.columns)


def split_parts(interactions: DataFrame, validation_fraction: float, test_fraction: float,
                seed: int, temporal: bool) -> DataFrame:
    """The interactions with `_part`, the index in PARTS of the part each row falls in
    (three_way_split's rule). One window pass: cache it before reading several parts."""
    if not 0 < test_fraction < 1 or not 0 <= validation_fraction < 1 \
            or validation_fraction + test_fraction >= 1:
        raise ValueError(f"need 0 < test < 1, 0 <= validation, validation + test < 1; got "
                         f"{validation_fraction}, {test_fraction}")
    if temporal:
        order = [F.col("first_ts").desc_nulls_last(), F.col("item_idx").desc()]
    else:
        order = [F.xxhash64(F.lit(int(seed)), "user_idx", "item_idx"), F.col("item_idx")]
    n = F.count("*").over(Window.partitionBy("user_idx"))
    n_test = F.least(F.round(n * F.lit(test_fraction)), n - 1)
    n_val = F.least(F.round(n * F.lit(validation_fraction)), n - 1 - n_test)
    pos = F.row_number().over(Window.partitionBy("user_idx").orderBy(*order))
    part = F.when(pos <= n_test, 0).when(pos <= n_test + n_val, 1).otherwise(2)
    return interactions.withColumn("_part", part.cast("int"))


def parts_of(labeled: DataFrame, columns: list[str]) -> tuple[DataFrame, DataFrame, DataFrame]:
    """(train, validation, test) of split_parts' rows, with `columns`."""
    train, validation, test = (labeled.where(F.col("_part") == PARTS.index(name)).select(*columns)
                               for name in ("train", "validation", "test"))
    return train, validation, test
