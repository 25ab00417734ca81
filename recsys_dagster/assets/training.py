"""Training: hyperparameter search and the implicit ALS factors on Spark."""

import dagster as dg
from pyspark.sql import functions as F

from ..config import ALSConfig, TuningConfig
from ..ml.als import ALSParams, train_als
from ..ml.confidence import ConfidenceParams
from ..ml.plots import tuning_plot
from ..ml.tuning import SearchSpace, random_candidates, tune
from ..resources import SparkResource
from ..tables import TableSet
from .evaluation import png_markdown
from .metadata import KINDS, OWNERS, column_schema

TRIALS_SCHEMA = ("trial int, weighting string, alpha double, rank int, reg_param double, "
                 "max_iter int, score double, seconds double")


@dg.asset(group_name="training", kinds=KINDS, owners=OWNERS, code_version="2")
def als_tuning(context: dg.AssetExecutionContext, config: TuningConfig,
               evaluation_split: TableSet, spark: SparkResource):
    """Search for ALS and confidence settings, scored on the validation split only."""
    session = spark.spark_session
    if config.search == "none":
        empty = session.createDataFrame([], TRIALS_SCHEMA)
        return dg.Output(TableSet({"trials": empty}, {"best": None}),
                         metadata={"search": "none", "trials": 0, "dagster/row_count": 0})
    space = SearchSpace(tuple(config.weighting), tuple(config.alpha), tuple(config.rank),
                        tuple(config.reg_param), tuple(config.max_iter))
    candidates = (space.grid() if config.search == "grid"
                  else random_candidates(space, config.n_trials, config.seed))
    context.log.info(f"{config.search} search: {len(candidates)} trials")
    result = tune(evaluation_split["train"], evaluation_split["validation"], candidates,
                  ALSParams(engine=config.engine, solver=config.solver), ConfidenceParams(),
                  config.k, config.metric, config.parallelism,
                  on_trial=lambda t: context.log.info(f"trial {t}"))
    trials = result.trials
    df = session.createDataFrame(trials, TRIALS_SCHEMA)
    png = tuning_plot(trials, f"{config.metric}@{config.k}")
    best = result.best
    return dg.Output(
        TableSet({"trials": df}, {"best": best}, {"tuning.png": png}),
        metadata={
            "search": config.search, "trials": len(trials),
            "best_score": best["score"], "best_metric": best["metric"],
            "best_weighting": best["confidence"]["weighting"],
            "best_alpha": best["confidence"]["alpha"], "best_rank": best["als"]["rank"],
            "best_reg_param": best["als"]["reg_param"], "best_max_iter": best["als"]["max_iter"],
            "trials_table": dg.MetadataValue.md(
                trials.sort_values("score", ascending=False).to_markdown(index=False,
                                                                         floatfmt=".4f")),
            "tuning_plot": png_markdown(png, "validation score per trial"),
            "dagster/row_count": len(trials), "dagster/column_schema": column_schema(df),
        },
    )


def tuned(section: str, als_tuning: TableSet, use_tuned: bool) -> dict:
    """The best trial's settings for `section` ('als' or 'confidence'), when asked and present."""
    best = als_tuning.params.get("best") if use_tuned else None
    return dict(best[section]) if best else {}


@dg.asset(group_name="training", kinds=KINDS, owners=OWNERS, code_version="3")
def als_model(context: dg.AssetExecutionContext, config: ALSConfig, confidence_matrix: TableSet,
              als_tuning: TableSet):
    """User and item factors from implicit-feedback ALS on the confidence matrix."""
    params = config.params()
    overrides = tuned("als", als_tuning, config.use_tuned)
    if overrides:
        params = ALSParams(**{**params.as_dict(),
                              **{k: overrides[k] for k in ("rank", "reg_param", "max_iter")}})
        context.log.info(f"using tuned ALS settings: {params}")
    matrix = confidence_matrix["matrix"]
    window = {}
    if "first_ts" in matrix.columns:
        row = matrix.agg(F.min("first_ts").alias("a"), F.max("last_ts").alias("b"),
                         F.count("*").alias("n")).first()
        window = {"data_first_play": str(row["a"]), "data_last_play": str(row["b"]),
                  "training_pairs": int(row["n"])}
    factors = train_als(matrix, params)
    users, items = factors.user_factors, factors.item_factors
    n_users, n_items = users.count(), items.count()
    context.log.info(f"ALS {params.engine}: {factors.timings}")
    model_params = {"als": params.as_dict(), **confidence_matrix.params,
                    "tuned": bool(overrides)}
    return dg.Output(
        TableSet({"user_factors": users, "item_factors": items},
                 {**model_params, "timings": factors.timings}),
        metadata={
            "dagster/row_count": n_users + n_items,
            "dagster/column_schema": column_schema(users),
            "users": n_users, "items": n_items, "rank": params.rank,
            "engine": params.engine, "max_iter": params.max_iter, "reg_param": params.reg_param,
            "tuned": bool(overrides),
            **window,
            **{f"data_{k}": str(v) for k, v in confidence_matrix.params.get("data", {}).items()},
            "fit_seconds": float(factors.timings["fit_seconds"]),
            "seconds_per_iteration": float(factors.timings["seconds_per_iteration"]),
            "params": dg.MetadataValue.json(model_params),
        },
    )
