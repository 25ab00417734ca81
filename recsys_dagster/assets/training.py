"""Training: hyperparameter search and the implicit ALS factors on Spark."""

import dagster as dg
from pyspark.sql import functions as F

from ..config import ALSConfig, TuningConfig
from ..ml.als import ALSParams, train_als
from ..ml.als.confidence import ConfidenceParams
from ..ml.evaluation.plots import tuning_plot
from ..ml.evaluation.tuning import TRIALS_SCHEMA, settings_of, tune, with_current
from ..progress import Heartbeat
from ..resources import SparkResource, Warehouse
from ..tables import TableSet
from .helpers import KINDS, OWNERS, column_schema, png_markdown, tuned_params
from .publishing import served_model


@dg.asset(group_name="training", kinds=KINDS, owners=OWNERS, code_version="3")
def als_tuning(context: dg.AssetExecutionContext, config: TuningConfig,
               evaluation_split: TableSet, spark: SparkResource, warehouse: Warehouse):
    """Search for ALS and confidence settings, scored on the validation split only. Trial 0
    is the current settings (the served model's, else the defaults); a trial replaces them
    only when it beats them on validation by more than the noise (a paired bootstrap
    interval over users), and the metadata says which and why."""
    session = spark.spark_session
    params = config.params()
    if params.search == "none":
        empty = session.createDataFrame([], TRIALS_SCHEMA)
        return dg.Output(TableSet({"trials": empty}, {"best": None}),
                         metadata={"search": "none", "trials": 0, "dagster/row_count": 0})
    current, source = current_settings(warehouse.store())
    candidates = with_current(current, params.candidates())
    context.log.info(f"{params.search} search: {len(candidates)} trials, trial 0 {source}")
    finished = []

    def on_trial(trial: dict) -> None:
        finished.append(trial)
        beat.update(len(finished), len(candidates), "trials")
        context.log.info(f"trial {trial}")

    with Heartbeat(context.log.info, "als_tuning", session) as beat:
        result = tune(evaluation_split["train"], evaluation_split["validation"], candidates,
                      ALSParams(engine=params.engine, solver=params.solver), ConfidenceParams(),
                      params.k, params.metric, params.parallelism, on_trial=on_trial,
                      seed=params.seed)
    trials = result.trials
    df = session.createDataFrame(trials, TRIALS_SCHEMA)
    png = tuning_plot(trials, f"{params.metric}@{params.k}")
    best = {**result.best, "current": source}
    context.log.info(best["reason"])
    return dg.Output(
        TableSet({"trials": df}, {"best": best}, {"tuning.png": png}),
        metadata={
            "search": params.search, "trials": len(trials),
            "trial_0": f"the current settings: {source}",
            "adopted": best["adopted"], "decision": best["reason"],
            "current_score": best["current_score"],
            "best_trial": best["best_trial_number"], "best_trial_score": best["best_score"],
            "best_score": best["score"], "best_metric": best["metric"],
            **{f"best_{name}": value for name, value in best["trial"].items()},
            "trials_table": dg.MetadataValue.md(
                trials.sort_values("score", ascending=False).to_markdown(index=False,
                                                                         floatfmt=".4f")),
            "tuning_plot": png_markdown(png, "validation score per trial"),
            "dagster/row_count": len(trials), "dagster/column_schema": column_schema(df),
        },
    )


def current_settings(store) -> tuple[dict, str]:
    """(searched settings, where they come from): the served model's, else the defaults."""
    served = served_model(store)
    if served.get("model_version") and served["model_version"] == store.version("als_model"):
        model = store.manifest("als_model")["params"]
        return (settings_of(ConfidenceParams(**model["confidence"]), ALSParams(**model["als"])),
                f"the served model's ({served['model_version']})")
    return settings_of(ConfidenceParams(), ALSParams()), "the defaults"


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
    with Heartbeat(context.log.info, "als_model", matrix.sparkSession) as beat:
        factors = train_als(matrix, params, window.get("training_pairs"),
                            progress=lambda done, total: beat.update(done, total, "iterations"))
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
