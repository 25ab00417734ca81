"""Asset checks. Names are constants so that tests, jobs and the UI agree on them.

Checks that depend on a run's configuration (thresholds, N) are evaluated inside their asset
(check_specs); the others read the stored table.
"""


import dagster as dg
from pyspark.sql import functions as F

QUARANTINE_FRACTION = "quarantine_fraction_below_threshold"
EVERY_DAY_DELIVERED = "every_day_delivered"
PLAY_EVENTS_VALID = "play_events_non_empty_no_null_ids"
CONFIDENCE_AT_LEAST_ONE = "confidence_at_least_one"
FACTORS_FINITE = "factors_finite"
ALS_BEATS_POPULARITY = "als_beats_popularity"
CHALLENGER_NOT_WORSE = "challenger_not_worse_than_served"
RECOMMENDATIONS_AT_MOST_N = "at_most_n_per_user"
RECOMMENDATIONS_NOT_PLAYED = "no_already_played_items"
SIMILAR_ITEMS_NO_SELF = "no_self_matches"
APPROXIMATE_RECALL = "approximate_recall_above_floor"
SIMILAR_ARTISTS_NO_SELF = "no_self_matches"
SIMILAR_ARTISTS_BEAT_POPULAR = "similar_artists_beat_popular_artists"
RADIO_RULES = "stations_follow_the_rules"


@dg.asset_check(asset="play_events", name=PLAY_EVENTS_VALID, blocking=True,
                description="play_events has rows and no null or empty user or item id.")
def play_events_valid(play_events) -> dg.AssetCheckResult:
    row = play_events.agg(
        F.count("*").alias("rows"),
        F.sum(F.when(F.col("user_id").isNull() | (F.col("user_id") == ""), 1).otherwise(0)
              ).alias("bad_users"),
        F.sum(F.when(F.col("item_id").isNull() | (F.col("item_id") == ""), 1).otherwise(0)
              ).alias("bad_items"),
    ).first()
    bad_users, bad_items = int(row["bad_users"] or 0), int(row["bad_items"] or 0)
    return dg.AssetCheckResult(
        passed=row["rows"] > 0 and bad_users == 0 and bad_items == 0,
        metadata={"rows": int(row["rows"]), "null_user_ids": bad_users,
                  "null_item_ids": bad_items},
    )


@dg.asset_check(asset="confidence_matrix", name=CONFIDENCE_AT_LEAST_ONE, blocking=True,
                description="Every confidence is finite and >= 1.")
def confidence_at_least_one(confidence_matrix) -> dg.AssetCheckResult:
    m = confidence_matrix["matrix"]
    row = m.agg(F.min("confidence").alias("min"),
                F.sum(F.when(F.isnan("confidence") | F.col("confidence").isNull()
                             | (F.col("confidence") < 1.0), 1).otherwise(0)).alias("bad")
                ).first()
    bad = int(row["bad"] or 0)
    return dg.AssetCheckResult(
        passed=bad == 0 and row["min"] is not None,
        metadata={"min_confidence": float(row["min"]) if row["min"] is not None else -1.0,
                  "rows_below_one_or_nan": bad},
    )


def _non_finite(df) -> int:
    return df.where(F.exists("features", lambda x: F.isnan(x) | x.isNull()
                             | (F.abs(x) == float("inf")))).count()


@dg.asset_check(asset="als_model", name=FACTORS_FINITE, blocking=True,
                description="No NaN or infinite value in any user or item factor.")
def factors_finite(als_model) -> dg.AssetCheckResult:
    bad_users = _non_finite(als_model["user_factors"])
    bad_items = _non_finite(als_model["item_factors"])
    return dg.AssetCheckResult(
        passed=bad_users == 0 and bad_items == 0,
        metadata={"users_with_non_finite": bad_users, "items_with_non_finite": bad_items},
    )


@dg.asset_check(asset="similar_items", name=SIMILAR_ITEMS_NO_SELF,
                description="No item is listed as similar to itself.")
def similar_items_no_self(similar_items) -> dg.AssetCheckResult:
    n_self = similar_items.where(F.col("item_id") == F.col("similar_item_id")).count()
    return dg.AssetCheckResult(passed=n_self == 0, metadata={"self_matches": n_self})


ALL_CHECKS = [play_events_valid, confidence_at_least_one, factors_finite, similar_items_no_self]
