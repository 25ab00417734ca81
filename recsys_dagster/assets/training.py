"""Training: the train/validation/test split, hyperparameter search on it, the confidence
matrix, the implicit ALS factors on Spark and the artist model made from them."""

import os

import dagster as dg
import numpy as np
import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from ..config import ALSConfig, ArtistModelConfig, ConfidenceConfig, SplitConfig, TuningConfig
from ..ml.als import ALSParams, confidence, train_als
from ..ml.als.artist_model import (
    VECTOR_KINDS,
    artist_model_vectors,
    artist_songs,
    songs_with_plays,
)
from ..ml.als.confidence import ConfidenceParams
from ..ml.evaluation.evaluate import has_timestamps
from ..ml.evaluation.plots import history_plot, importance_plot
from ..ml.evaluation.split import PARTS, parts_of, split_parts
from ..ml.evaluation.study import importances
from ..ml.evaluation.tuning import TRIALS_SCHEMA, planned_trials, settings_of, tune
from ..ml.ids import with_vectors
from ..partitions import LATEST_DAY, TRAINING_WINDOW_DAYS, as_of_day, describe_window, window_range
from ..progress import Heartbeat
from ..resources import SparkResource, Warehouse
from ..tables import TableSet
from .helpers import (
    KINDS,
    OWNERS,
    POOL,
    column_schema,
    fails_for_good,
    item_artists,
    png_markdown,
    table_metadata,
    tuned_params,
)
from .publishing import model_settings, served_model


@dg.asset(group_name="training", kinds=KINDS, owners=OWNERS, pool=POOL, code_version="2",
          ins={"interactions": LATEST_DAY})
@fails_for_good
def evaluation_split(config: SplitConfig, interactions: DataFrame):
    """Train / validation / test interactions per user (temporal when timestamps exist)."""
    params = config.params()
    temporal = params.split == "temporal" or (params.split == "auto"
                                              and has_timestamps(interactions))
    # One cached pass of the per-user window; the three parts are filters of it.
    labeled = split_parts(interactions, params.validation_fraction, params.test_fraction,
                          params.seed, temporal).persist()
    frames = dict(zip(("train", "validation", "test"), parts_of(labeled, interactions.columns)))
    per_part = dict(labeled.groupBy("_part").count().collect())
    counts = {name: int(per_part.get(PARTS.index(name), 0)) for name in frames}
    kind = "temporal" if temporal else "random"
    return dg.Output(
        TableSet(frames, {"split": kind, "validation_fraction": params.validation_fraction,
                          "test_fraction": params.test_fraction, "seed": params.seed}),
        metadata={"split": kind, **{f"{n}_rows": c for n, c in counts.items()},
                  "dagster/row_count": sum(counts.values()),
                  "dagster/column_schema": column_schema(frames["train"])},
    )


@dg.asset(group_name="training", kinds=KINDS, owners=OWNERS, pool=POOL, code_version="3",
          ins={"interactions": LATEST_DAY})
@fails_for_good
def confidence_matrix(context: dg.AssetExecutionContext, config: ConfidenceConfig,
                      interactions: DataFrame, als_tuning: TableSet, warehouse: Warehouse):
    """Confidence c = 1 + alpha * f(plays) for every (user, item) pair."""
    params, _ = tuned_params(context, config, als_tuning)
    as_of = as_of_day(context.run.tags, warehouse.store().partitions("interactions"))
    first, last = window_range(as_of)
    data = {"as_of": as_of, "window": describe_window(TRAINING_WINDOW_DAYS),
            "window_days": f"{first}..{last}"}
    matrix = confidence.confidence_matrix(interactions, params).persist()
    row = matrix.agg(F.count("*").alias("n"), F.min("confidence").alias("min"),
                     F.max("confidence").alias("max"), F.avg("confidence").alias("mean")).first()
    return dg.Output(TableSet({"matrix": matrix}, {"confidence": params.as_dict(), "data": data}),
                     metadata={
        "interactions_as_of": as_of, "training_window_days": data["window_days"],
        **table_metadata(matrix, int(row["n"]), order_by=["user_idx", "item_idx"]),
        "weighting": params.weighting, "alpha": params.alpha,
        "confidence_min": float(row["min"] or 0), "confidence_max": float(row["max"] or 0),
        "confidence_mean": float(row["mean"] or 0),
    })


@dg.asset(group_name="training", kinds=KINDS, owners=OWNERS, pool=POOL, code_version="5")
@fails_for_good
def als_tuning(context: dg.AssetExecutionContext, config: TuningConfig,
               evaluation_split: TableSet, spark: SparkResource, warehouse: Warehouse):
    """Search for ALS and confidence settings with Optuna, scored on the validation split
    only; the study is kept in the warehouse, so each retrain continues it. Trial 0 is the
    current settings (the served model's, read from the warehouse's record of it like
    evaluation_metrics' champion, else the defaults); a trial replaces them only
    when it beats them on validation by more than the noise (a paired bootstrap interval
    over users), and the metadata says which and why."""
    session = spark.spark_session
    params = config.params()
    if params.search == "none":
        empty = session.createDataFrame([], TRIALS_SCHEMA)
        return dg.Output(TableSet({"trials": empty}, {"best": None}),
                         metadata={"search": "none", "trials": 0, "dagster/row_count": 0})
    store = warehouse.store()
    current, source = current_settings(served_model(store))
    total = planned_trials(params, current)
    context.log.info(f"{params.search} search: {total} trials, trial 0 {source}")
    finished = []

    def on_trial(trial: dict) -> None:
        finished.append(trial)
        beat.update(len(finished), total, "trials")
        context.log.info(f"trial {trial}")

    with Heartbeat(context.log.info, "als_tuning", session) as beat:
        result = tune(evaluation_split["train"], evaluation_split["validation"], params,
                      current, study_path=study_path(store), on_trial=on_trial)
    df = session.createDataFrame(result.trials, TRIALS_SCHEMA)
    best = {**result.best, "current": source, "importance": importances(result.study)}
    context.log.info(best["reason"])
    files, metadata = tuning_report(result, best, params, source)
    return dg.Output(TableSet({"trials": df}, {"best": best}, files), metadata={
        **metadata, "dagster/row_count": len(result.trials),
        "dagster/column_schema": column_schema(df)})


def tuning_report(result, best: dict, params, source: str) -> tuple[dict, dict]:
    """(files, metadata) of a search: its plots (the score per trial; each setting's
    importance once enough trials completed), the decision and the trials table."""
    trials, study, weights = result.trials, result.study, best["importance"]
    metric = f"{params.metric}@{params.k}"
    files = {"history.png": history_plot(study, metric)}
    plots = {"optimisation_history": png_markdown(files["history.png"],
                                                  "validation score per study trial")}
    if weights:
        files["importance.png"] = importance_plot(weights, metric)
        plots["parameter_importance"] = png_markdown(files["importance.png"],
                                                     "importance of each setting")
    return files, {
        "search": params.search, "trials": len(trials),
        "pruned": int((trials.state == "pruned").sum()),
        "study": best["study"], "study_trials": len(study.trials),
        "trial_engine": best["engine"],
        "trial_0": f"the current settings: {source}",
        "adopted": best["adopted"], "decision": best["reason"],
        "current_score": best["current_score"],
        "best_trial": best["best_trial_number"], "best_trial_score": best["best_score"],
        "best_score": best["score"], "best_metric": best["metric"],
        **{f"best_{name}": value for name, value in best["trial"].items()},
        "importance": dg.MetadataValue.json(weights or {
            "none": "too few completed trials to tell"}),
        "trials_table": dg.MetadataValue.md(
            trials.sort_values("score", ascending=False).to_markdown(index=False,
                                                                     floatfmt=".4f")),
        **plots,
    }


def study_path(store) -> str:
    """The stored Optuna studies: in the warehouse, beside the tables they tuned."""
    return os.path.join(store.base_dir, "_studies", "als_tuning.journal")


def current_settings(served: dict) -> tuple[dict, str]:
    """(searched settings, where they come from): the served model's (its record keeps them,
    publishing.model_settings), else the defaults."""
    model = served.get("settings")
    if model:
        return (settings_of(ConfidenceParams(**model["confidence"]), ALSParams(**model["als"])),
                f"the served model's ({served['model_version']})")
    return settings_of(ConfidenceParams(), ALSParams()), "the defaults"


@dg.asset(group_name="training", kinds=KINDS, owners=OWNERS, pool=POOL, code_version="4")
@fails_for_good
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
    context.log.info(f"ALS {fitted_by(params.engine, factors.engine)}: {factors.timings}")
    model_params = {"als": params.as_dict(), **confidence_matrix.params,
                    "tuned": tuned}
    return dg.Output(
        TableSet({"user_factors": users, "item_factors": items},
                 {**model_params, "timings": factors.timings, "fitted_by": factors.engine}),
        metadata={
            "dagster/row_count": n_users + n_items,
            "dagster/column_schema": column_schema(users),
            "users": n_users, "items": n_items, "rank": params.rank,
            "engine": fitted_by(params.engine, factors.engine), "max_iter": params.max_iter,
            "reg_param": params.reg_param,
            "blocks": "{} user x {} item".format(*factors.blocks),
            "tuned": tuned,
            **window,
            **{f"data_{k}": str(v) for k, v in confidence_matrix.params.get("data", {}).items()},
            "fit_seconds": float(factors.timings["fit_seconds"]),
            "seconds_per_iteration": float(factors.timings["seconds_per_iteration"]),
            "params": dg.MetadataValue.json(model_params),
        },
    )


def fitted_by(configured: str, used: str) -> str:
    """The engine as the UI shows it: "auto (local)" when auto chose."""
    return used if configured == used else f"{configured} ({used})"


@dg.asset(group_name="training", kinds=KINDS, owners=OWNERS, pool=POOL, code_version="1",
          ins={"interactions": LATEST_DAY})
@fails_for_good
def artist_model(context: dg.AssetExecutionContext, config: ArtistModelConfig,
                 als_model: TableSet, interactions: DataFrame, item_catalog: DataFrame,
                 item_index: DataFrame):
    """One vector per artist, for similar_artists (ml/als/artist_model.py): the play-weighted
    mean of the artist's song vectors (vectors: songs), or the item factors of ALS fitted on
    the listener x artist plays with als_model's settings (vectors: artist_als). The artists
    are the item catalogue's; a source without artists gives an empty table."""
    params = config.params()
    artist_of = item_artists(item_catalog, item_index).persist()  # read twice with artist_als
    songs = artist_songs(als_model["item_factors"], songs_with_plays(artist_of, interactions))
    settings = model_settings(als_model)
    vectors = artist_model_vectors(params.vectors, songs, artist_of, interactions,
                                   ConfidenceParams(**settings["confidence"]),
                                   ALSParams(**settings["als"]))
    artist_of.unpersist()
    frame = interactions.sparkSession.createDataFrame(
        with_vectors(pd.DataFrame({"artist_id": songs.artist_ids.astype(object)}), vectors),
        "artist_id string, features array<float>")
    with_vector = int((np.linalg.norm(vectors, axis=1) > 0).sum()) if len(vectors) else 0
    if songs.artist_ids.size == 0:
        context.log.warning("the source names no artist for its items: artist_model is empty")
    return dg.Output(
        TableSet({"artist_factors": frame},
                 {"vectors": params.vectors, "settings": settings,
                  "model_version": als_model.version}),
        metadata={"dagster/row_count": int(songs.artist_ids.size),
                  "dagster/column_schema": column_schema(frame),
                  "vectors": VECTOR_KINDS[params.vectors],
                  "artists_with_vector": with_vector, "songs": int(songs.song_ids.size),
                  "als_model_version": str(als_model.version)})

