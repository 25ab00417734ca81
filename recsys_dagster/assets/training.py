"""Training: hyperparameter search and the implicit ALS factors on Spark."""

import dagster as dg
from pyspark.sql import functions as F

from ..config import ALSConfig, TuningConfig
from ..ml.als import ALSParams, train_als
from ..ml.als.confidence import ConfidenceParams
from ..ml.evaluation.plots import tuning_plot
from ..ml.evaluation.tuning import TRIALS_SCHEMA, tune
from ..resources import SparkResource
from ..tables import TableSet
from .helpers import KINDS, OWNERS, column_schema, png_markdown, tuned_params


@dg.asset(group_name="training", kinds=KINDS, owners=OWNERS, code_version="2")
def als_tuning(context: dg.AssetExecutionContext, config: TuningConfig,
               evaluation_split: TableSet, spark: SparkResource):
    """Search for ALS and confidence settings, scored on the validation split only."""
    session = spark.spark_session
    params = config.params()
    if params.search == "none":
        empty = session.createDataFrame([], TRIALS_SCHEMA)
        return dg.Output(TableSet({"trials": empty}, {"best": None}),
                         metadata={"search": "none", "trials": 0, "dagster/row_count": 0})
    candidates = params.candidates()
    context.log.info(f"{params.search} search: {len(candidates)} trials")
    result = tune(evaluation_split["train"], evaluation_split["validation"], candidates,
                  ALSParams(engine=params.engine, solver=params.solver), ConfidenceParams(),
                  params.k, params.metric, params.parallelism,
                  on_trial=lambda t: context.log.info(f"trial {t}"))
    trials = result.trials
    df = session.createDataFrame(trials, TRIALS_SCHEMA)
    png = tuning_plot(trials, f"{params.metric}@{params.k}")
    best = result.best
    return dg.Output(
        TableSet({"trials": df}, {"best": best}, {"tuning.png": png}),
        metadata={
            "search": params.search, "trials": len(trials),
            "best_score": best["score"], "best_metric": best["metric"],
            **{f"best_{name}": value for name, value in best["trial"].items()},
            "trials_table": dg.MetadataValue.md(
                trials.sort_values("score", ascending=False).to_markdown(index=False,
                                                                         floatfmt=".4f")),
            "tuning_plot": png_markdown(png, "validation score per trial"),
            "dagster/row_count": len(trials), "dagster/column_schema": column_schema(df),
        },
    )


@dg.asset(group_name="training", kinds=KINDS, owners=OWNERS, code_version="3")
def als_model(context: dg.AssetExecutionContext, config: ALSConfig, confidence_matrix: TableSet,
              als_tuning: TableSet):
    """User and item factors from implicit-feedback ALS on the confidence matrix."""
    params, tuned = tuned_params(context, config, als_tuning)
    matrix = confidence_matrix["matrix"]
    window = {}
    if "first_ts" in matrix.columns:
        row = matrix.agg(F.min("first_ts").alias("a"), F.max("last_ts").alias("b"),
                         F.count("*").alias("n")).first()
        window = {"data_first_play": str(row["a"]), "data_last_play": str(row["b"]),
                  "training_pairs": int(row["n"])}
    factors = train_als(matrix, params, window.get("training_pairs"))
    users, items = factors.user_factors, factors.item_factors
    n_users, n_items = users.count(), items.count()
    context.log.info(f"ALS {params.engine}: {factors.timings}")
    model_params = {"als": params.as_dict(), **confidence_matrix.params,
                    "tuned": tuned}
    return dg.Output(
        TableSet({"user_factors": users, "item_factors": items},
                 {**model_params, "timings": factors.timings}),
        metadata={
            "dagster/row_count": n_users + n_items,
            "dagster/column_schema": column_schema(users),
            "users": n_users, "items": n_items, "rank": params.rank,
            "engine": params.engine, "max_iter": params.max_iter, "reg_param": params.reg_param,
            "blocks": "{} user x {} item".format(*factors.blocks),
            "tuned": tuned,
            **window,
            **{f"data_{k}": str(v) for k, v in confidence_matrix.params.get("data", {}).items()},
            "fit_seconds": float(factors.timings["fit_seconds"]),
            "seconds_per_iteration": float(factors.timings["seconds_per_iteration"]),
            "params": dg.MetadataValue.json(model_params),
        },
    )
