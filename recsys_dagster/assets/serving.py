"""Serving tables: per-user recommendations and similar items, with raw ids. Both take
evaluation_metrics as an input: its blocking gates stop a bad model in the run that evaluates
it, and its record says which model may be published in any later run
(publishing.record_to_publish)."""


import dagster as dg
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from .. import checks
from ..config import RecommendationsConfig, SimilarItemsConfig
from ..ml.als import confidence
from ..ml.als.fold_in import fold_in
from ..ml.serving.recommend import recommend_for_users, similar_by_factors
from ..partitions import LATEST_DAY
from ..progress import Heartbeat
from ..resources import Warehouse
from ..tables import TableSet
from .helpers import (
    SERVED_FRESHNESS,
    asset_with_optional_checks,
    fails_for_good,
    newest_catalogue,
    not_executed,
    ranking_metadata,
    recall_check_spec,
    recall_checks,
    table_metadata,
)
from .publishing import (
    as_metadata,
    pin_served_model,
    record_to_publish,
    served_model,
    served_table,
)


def users_with_fold_in(als_model: TableSet, interactions: DataFrame) -> DataFrame:
    """(idx, features, folded_in): the model's users, plus users who arrived after it was
    trained, solved against its fixed item factors (no retraining)."""
    known = als_model["user_factors"]
    newcomers = interactions.join(known.select(F.col("idx").alias("user_idx")), "user_idx",
                                  "left_anti")
    weights = confidence.ConfidenceParams(**als_model.params["confidence"])
    als = als_model.params["als"]
    folded = fold_in(confidence.confidence_matrix(newcomers, weights), als_model["item_factors"],
                     als["reg_param"], als["scale_reg"], als.get("reg_exponent", 1.0))
    return (known.select("idx", "features", F.lit(False).alias("folded_in"))
            .unionByName(folded.withColumn("folded_in", F.lit(True))))


def newest_names(item_catalog: DataFrame) -> DataFrame:
    """One name per item: the one delivered last."""
    return newest_catalogue(item_catalog).select("item_id", "name")


def _ids(index: DataFrame, idx_col: str, id_col: str) -> DataFrame:
    return index.select(F.col("idx").alias(idx_col), F.col("id").alias(id_col))


@asset_with_optional_checks(
    group_name="serving", code_version="4", freshness_policy=SERVED_FRESHNESS,
    ins={"interactions": LATEST_DAY},
    check_specs=[
        dg.AssetCheckSpec(checks.RECOMMENDATIONS_AT_MOST_N, asset="user_recommendations",
                          description="Every user has at most top_n rows, ranked 1..n."),
        dg.AssetCheckSpec(checks.RECOMMENDATIONS_NOT_PLAYED, asset="user_recommendations",
                          description="No user is recommended an item they already played "
                          "(not executed when exclude_played is false)."),
        recall_check_spec("user_recommendations"),
    ],
)
@fails_for_good
def user_recommendations(context: dg.AssetExecutionContext, config: RecommendationsConfig,
                         als_model: TableSet, evaluation_metrics: TableSet,
                         interactions: DataFrame, user_index: DataFrame, item_index: DataFrame,
                         item_catalog: DataFrame, warehouse: Warehouse):
    """Top-N items per user by predicted preference, already-played items left out; users new
    since the model was trained are folded in and flagged. The metadata's sample shows the
    first users' lists by name."""
    record = record_to_publish(context.run_id, als_model, evaluation_metrics,  # fails fast
                               served_model(warehouse.store(), "user_recommendations"))
    played = interactions.select("user_idx", "item_idx")
    users = users_with_fold_in(als_model, interactions).persist()
    params = config.params()
    # Raw ids and the folded-in flag ride along with each user's vector through the scoring,
    # so the 20-rows-a-user result is never joined with the users again.
    queries = users.join(user_index.select("idx", F.col("id").alias("user_id")), "idx")
    result = recommend_for_users(queries.select("idx", "features", "user_id", "folded_in"),
                                 als_model["item_factors"], config.top_n,
                                 seen=played if config.exclude_played else None,
                                 params=params.top_k)
    table = (result.table.join(F.broadcast(_ids(item_index, "item_idx", "item_id")), "item_idx")
             .select("user_id", "rank", "item_id", "score", "folded_in", "user_idx",
                     "item_idx")).persist()
    stats = table.groupBy("user_idx").agg(F.count("*").alias("n"), F.max("rank").alias("r"))
    with Heartbeat(context.log.info, "user_recommendations", interactions.sparkSession):
        summary = stats.agg(F.count("*").alias("users"), F.max("n").alias("max_n"),
                            F.sum("n").alias("rows"),
                            F.sum(F.when(F.col("n") != F.col("r"), 1).otherwise(0))
                            .alias("gaps")).first()  # computes the cached table
    n_rows = int(summary["rows"] or 0)  # one pass over the cached table gives all the counts
    n_items = table.select("item_idx").distinct().count()
    out = table.drop("user_idx", "item_idx")
    pin_served_model(warehouse.store(), record)
    yield dg.Output(served_table(out, record), output_name="user_recommendations", metadata={
        **table_metadata(out, n_rows, preview_rows=10, order_by=["user_id", "rank"]),
        "sample": dg.MetadataValue.md(named_sample(out, newest_names(item_catalog))),
        "users": int(summary["users"]), "top_n": config.top_n,
        "folded_in_users": users.where(F.col("folded_in")).count(),
        "distinct_items_recommended": n_items,
        "exclude_played": config.exclude_played,
        **ranking_metadata(result),
        **as_metadata(record),
    })
    max_n = int(summary["max_n"] or 0)
    yield dg.AssetCheckResult(
        check_name=checks.RECOMMENDATIONS_AT_MOST_N,
        passed=max_n <= config.top_n and int(summary["gaps"] or 0) == 0 and n_rows > 0,
        metadata={"max_per_user": max_n, "top_n": config.top_n,
                  "users_with_rank_gaps": int(summary["gaps"] or 0)},
    )
    if config.exclude_played:
        n_played = table.join(played, ["user_idx", "item_idx"]).count()
        yield dg.AssetCheckResult(check_name=checks.RECOMMENDATIONS_NOT_PLAYED,
                                  passed=n_played == 0,
                                  metadata={"already_played_rows": n_played})
    else:
        not_executed(context, checks.RECOMMENDATIONS_NOT_PLAYED,
                     "exclude_played is false: played items are recommended on purpose")
    yield from recall_checks(context, result, params.top_k)
    table.unpersist()
    users.unpersist()


def named_sample(recs: DataFrame, names: DataFrame, n_users: int = 3, per_user: int = 5) -> str:
    """The first users' top items, by name (the item id where the catalogue has none)."""
    first = recs.select("user_id").distinct().orderBy("user_id").limit(n_users)
    rows = (recs.join(F.broadcast(first), "user_id").where(F.col("rank") <= per_user)
            .join(F.broadcast(names), "item_id", "left").orderBy("user_id", "rank").toPandas())
    if rows.empty:
        return "_no recommendations_"
    return "\n\n".join(
        f"**{user}**: " + ", ".join(f"{n} ({s:.2f})" for n, s in
                                    zip(group.name.fillna(group.item_id), group.score))
        for user, group in rows.groupby("user_id", sort=True))


@asset_with_optional_checks(group_name="serving", code_version="3",
                            freshness_policy=SERVED_FRESHNESS,
                            check_specs=[recall_check_spec("similar_items")])
@fails_for_good
def similar_items(context: dg.AssetExecutionContext, config: SimilarItemsConfig,
                  als_model: TableSet, evaluation_metrics: TableSet, item_index: DataFrame,
                  item_catalog: DataFrame, warehouse: Warehouse):
    """Top-N similar items per item by cosine of item factors: songs like a song (artists
    like an artist where the source's items are artists, as Last.fm's are)."""
    record = record_to_publish(context.run_id, als_model, evaluation_metrics,
                               served_model(warehouse.store(), "similar_items"))
    params = config.params()
    result = similar_by_factors(als_model["item_factors"], config.top_n, params.top_k)
    sims = result.table
    names = newest_names(item_catalog)
    table = (sims.join(F.broadcast(_ids(item_index, "item_idx", "item_id")), "item_idx")
             .join(F.broadcast(_ids(item_index, "similar_item_idx", "similar_item_id")),
                   "similar_item_idx")
             .join(F.broadcast(names), "item_id", "left")
             .join(F.broadcast(names.withColumnRenamed("item_id", "similar_item_id")
                               .withColumnRenamed("name", "similar_name")),
                   "similar_item_id", "left")
             .select("item_id", "rank", "similar_item_id", "score", "name", "similar_name")
             ).persist()
    with Heartbeat(context.log.info, "similar_items", item_index.sparkSession):
        n_rows = table.count()  # computes the cached table
    yield dg.Output(served_table(table, record), output_name="similar_items", metadata={
        **table_metadata(table, n_rows, preview_rows=10, order_by=["item_id", "rank"]),
        "items": table.select("item_id").distinct().count(), "top_n": config.top_n,
        **ranking_metadata(result),
    })
    yield from recall_checks(context, result, params.top_k)
